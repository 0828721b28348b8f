"""The one Settings object: every path, URI, limit and secret comes from here.

Values come from environment variables prefixed `DPE_` (or a `.env` file);
MLflow's own `MLFLOW_TRACKING_URI` is read under its usual name. Each setting says what it is
in its `Field(description=...)`: the docs site's settings reference is generated from them.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ADEME_API_URL = "https://data.ademe.fr/data-fair/api/v1/datasets/dpe-v2-tertiaire-2/lines"
DEFAULT_API_TOKEN = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DPE_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = Field(
        default="development",
        description="`production` makes the API refuse a weak `DPE_API_TOKEN` (or "
        "`DPE_PREDICT_TOKEN`): under 24 characters or 10 distinct ones, whitespace, the "
        "default, predictable (zxcvbn); a `DPE_PREDICT_TOKEN` equal to `DPE_API_TOKEN`; and "
        "the workbench require a login and hide error details.",
    )
    workbench_login: Literal["oidc", "proxy"] = Field(
        default="oidc",
        description="In production, how the workbench knows its user: Streamlit's OIDC login "
        "(`st.login`, `[auth]` in .streamlit/secrets.toml) or an authenticating reverse proxy "
        "in front (oauth2-proxy's `X-Forwarded-Email`/`X-Forwarded-User` headers).",
    )
    workbench_proxy_secret: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "With DPE_WORKBENCH_LOGIN=proxy: the secret the login proxy sends in the header "
            "X-DPE-Proxy-Secret. In production the workbench answers only requests that carry "
            "it (its health check aside) and trusts X-Forwarded-Email only from them; unset, "
            "it refuses every page."
        ),
    )
    home: Path = Field(
        default=Path("var"),
        description="Root of all local state: the DuckDB file, the local object store, "
        "MLflow's files, Airflow's home. Two homes never share anything.",
    )

    # Data
    source: str = Field(
        default=ADEME_API_URL,
        description="What `make run` and a bare `ingest` read: the ADEME data-fair API (the "
        "default), an ADEME CSV export, or JSON API pages (a file or a folder).",
    )
    ingest_limit: int = Field(
        default=10_000, description="Records an API ingest fetches when no --limit is given."
    )
    http_timeout_s: float = Field(
        default=30.0, description="Timeout of one request to the ADEME API (seconds)."
    )
    http_retries: int = Field(
        default=5,
        description="Retries of an ADEME API request after a 429, a 5xx or a network failure.",
    )
    http_backoff_s: float = Field(
        default=1.0,
        description="First wait before a retry (seconds), doubled each time; a `Retry-After` "
        "is honoured.",
    )

    # Object store (datasets and the champion model)
    model_store_uri: str | None = Field(
        default=None,
        description="The object store: dataset snapshots, the champion model and the "
        "prediction log. Unset: `file://$DPE_HOME/store`; in deployment `s3://bucket/prefix`.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store (MinIO, SeaweedFS); credentials come "
        "from the usual `AWS_*` variables.",
    )

    # MLflow
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "DPE_MLFLOW_TRACKING_URI"),
        description="The MLflow tracking server. Unset: the one `make run` starts, "
        "`http://DPE_HOST:DPE_MLFLOW_PORT`.",
    )
    experiment_name: str = Field(
        default="dpe-label", description="MLflow experiment of the training runs."
    )
    registered_model_name: str = Field(
        default="dpe", description="MLflow registered model the champion is a version of."
    )

    # Services on loopback
    host: str = Field(
        default="127.0.0.1", description="Address the services listen on and link to."
    )
    mlflow_port: int = Field(default=5000, description="Port of the MLflow server.")
    api_port: int = Field(default=8000, description="Port of the API.")
    ui_port: int = Field(default=8501, description="Port of the workbench.")
    api_url: str | None = Field(
        default=None,
        description="Where the workbench reaches the API. Unset: `http://DPE_HOST:DPE_API_PORT`.",
    )
    api_public_url: str | None = Field(
        default=None,
        description="The API as the user's browser reaches it, when that differs from "
        "`DPE_API_URL` (compose): the workbench's link to the API docs.",
    )
    mlflow_ui_url: str | None = Field(
        default=None,
        description="The MLflow UI the workbench links to. Unset: the tracking server.",
    )

    # API
    api_token: str = Field(
        default=DEFAULT_API_TOKEN,
        description="Bearer token of `POST /admin/reload`; in production it must be strong.",
    )
    max_batch_rows: int = Field(
        default=10_000, description="Records one `POST /predict` may send (413 above)."
    )
    max_upload_mb: int = Field(
        default=200,
        description="Largest request body and upload, in MB (413 above, a chunked body too).",
    )
    max_json_mb: int = Field(
        default=16,
        ge=1,
        description="Largest JSON body POST /predict reads, in MB: 413 above, before it is "
        "parsed. 16 MB holds 10,000 records of the model's fields, or about 7,000 with all 63 "
        "ADEME columns; more records go to /predict/csv (DPE_MAX_UPLOAD_MB).",
    )
    max_record_keys: int = Field(
        default=200,
        ge=1,
        description="Most keys one JSON record may hold (ADEME's export has 63 columns): a "
        "record with more is answered with an error, unread; a body whose records hold more "
        "than this many keys each on average is refused (413) while it streams in.",
    )
    max_concurrent_uploads: int = Field(
        default=2,
        ge=1,
        description="Uploads (chunked, or bodies over 1 MiB) handled at once; more get 503 "
        "with `Retry-After`.",
    )
    upload_min_kb_s: float = Field(
        default=50.0,
        ge=0,
        description="Slowest average rate, in KB/s, an upload (a body that takes an upload slot) "
        "may arrive at once DPE_UPLOAD_GRACE_S have passed; slower, it is cut with a 408 and its "
        "slot freed. 0: no minimum.",
    )
    upload_grace_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds an upload may lag behind DPE_UPLOAD_MIN_KB_S (its start, a pause) "
        "before it is cut.",
    )
    predict_token: str = Field(
        default="",
        description="When set, `/predict` and `/predict/csv` require it as a bearer token.",
    )
    admin_failures_per_minute: int = Field(
        default=5,
        ge=1,
        description="Wrong admin tokens a client may send per minute; past that, 429 until "
        "the minute ends.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Addresses (IPs or CIDR networks, comma-separated; `*` for any) of the reverse "
        "proxies whose X-Forwarded-For the API believes: the client of a request is then the "
        "address the proxies name, for the admin token's brake and the prediction log. Empty: "
        "none, the client is the connection's peer. Launch uvicorn with --no-proxy-headers, so "
        "that it does not trust loopback on its own (`dpe api` does).",
    )
    reload_interval_s: float = Field(
        default=5.0, description="How often the API looks for a new champion (seconds)."
    )
    verify_interval_s: float = Field(
        default=60.0,
        description="How often the served champion's files are hashed again against the "
        "manifest (seconds).",
    )
    metrics: bool = Field(
        default=True, description="The API's Prometheus `GET /metrics` (`false`: no metrics)."
    )

    # Monitoring
    drift_psi_threshold: float = Field(
        default=0.2, description="PSI above which a feature may drift (with the test's p-value)."
    )
    drift_p_value: float = Field(
        default=0.01, description="p-value below which a drift test is significant."
    )
    drift_min_rows: int = Field(
        default=50, description='Fewer current records than this: "too little data".'
    )
    log_predictions: bool = Field(
        default=True, description="Log every prediction to the object store (`false`: none)."
    )
    log_flush_rows: int = Field(
        default=1_000, description="The prediction log writes a part once this many records wait..."
    )
    log_flush_s: float = Field(
        default=5.0, description="...or this many seconds after the first record began to wait."
    )
    log_retention_days: int = Field(
        default=90, description="Days of prediction log kept; older days are deleted."
    )
    log_client_quota: int = Field(
        default=10_000,
        ge=0,
        description="Predictions logged per API client (`token:…` or `host:…`) and hour; past "
        "it, the client's predictions are still answered but not logged (counted in the "
        "logger's `over_quota`). The workbench and the CLI have no quota. 0: no quota.",
    )
    drift_rows_per_host: int = Field(
        default=25,
        ge=0,
        description="In a drift report on logged predictions, an API client without a /predict "
        "token (`host:<ip>`) counts for at most this many of its rows (a random sample): one "
        "client alone cannot make drift. Authenticated clients (`token:…`), the workbench and "
        "the CLI count whole, and so does the client a report is asked for (`--client`).",
    )

    # Lifecycle pipeline (core.lifecycle.pipeline): what a pass trains, and the gates it applies
    pipeline_source: str | None = Field(
        default=None, description="What a lifecycle pass reads. Unset: `DPE_SOURCE`."
    )
    pipeline_features: str = Field(
        default="with-consumption", description="The feature set a pass trains on."
    )
    pipeline_model: str | None = Field(
        default=None,
        description="The model family a pass trains. Unset: the feature set's best family.",
    )
    pipeline_search: Literal["none", "grid", "random"] = Field(
        default="none", description="Hyper-parameter search of a pass's challenger."
    )
    pipeline_window_share: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the newest labelled records a pass evaluates on (and does not "
        "train on).",
    )
    pipeline_experiment: str = Field(
        default="dpe-lifecycle", description="MLflow experiment of the pass decisions."
    )
    airflow_port: int = Field(default=8080, description="Port of the Airflow UI (`make airflow`).")
    airflow_ui_url: str | None = Field(
        default=None,
        description="The Airflow UI the workbench links to. Unset: "
        "`http://DPE_HOST:DPE_AIRFLOW_PORT`.",
    )
    gate_metric: Literal["macro_f1", "accuracy", "balanced_accuracy"] = Field(
        default="macro_f1", description="The metric the promotion gate compares."
    )
    gate_margin: float = Field(
        default=0.005,
        ge=0,
        description="A challenger must beat the champion by this much on the gate metric.",
    )
    # Data gate on an increment: over any of these shares, the pass refuses the data.
    gate_max_rejected_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Largest share of an increment's records that may fail validation.",
    )
    gate_max_unlabelled_share: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Largest share of an increment's records that may have no label.",
    )
    gate_max_placeholder_share: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="Largest share of an increment's records that may carry a placeholder "
        "(100 m², 0.1 kWhEP/m²/an).",
    )
    gate_max_new_category_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Largest share of an increment's records that may hold a category the "
        "data never showed.",
    )

    @property
    def duckdb_path(self) -> Path:
        return self.home / "dpe.duckdb"

    @property
    def store_uri(self) -> str:
        """Root of the object store: datasets/ and models/ live below it."""
        return self.model_store_uri or f"file://{(self.home / 'store').resolve()}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"http://{self.host}:{self.mlflow_port}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.home / "mlflow" / "artifacts"

    @property
    def public_api_url(self) -> str:
        return self.api_url or f"http://{self.host}:{self.api_port}"

    @property
    def public_mlflow_url(self) -> str:
        return self.mlflow_ui_url or self.tracking_uri

    @property
    def public_airflow_url(self) -> str:
        return self.airflow_ui_url or f"http://{self.host}:{self.airflow_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
