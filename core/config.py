"""The one Settings object: every path, URI, limit and secret comes from here.

Values come from environment variables prefixed `DPE_` (or a `.env` file);
MLflow's own `MLFLOW_TRACKING_URI` is read under its usual name.
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

    env: Literal["development", "production"] = "development"
    # How the workbench knows its user in production: Streamlit's OIDC login (`[auth]` in
    # .streamlit/secrets.toml) or an authenticating reverse proxy (oauth2-proxy) in front.
    workbench_login: Literal["oidc", "proxy"] = "oidc"
    workbench_proxy_secret: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "With DPE_WORKBENCH_LOGIN=proxy: the secret the login proxy sends in the header "
            "X-DPE-Proxy-Secret. In production the workbench answers only requests that carry "
            "it (its health check aside) and trusts X-Forwarded-Email only from them; unset, "
            "it refuses every page."
        ),
    )
    home: Path = Path("var")

    # Data
    source: str = ADEME_API_URL
    ingest_limit: int = 10_000
    http_timeout_s: float = 30.0
    http_retries: int = 5
    http_backoff_s: float = 1.0

    # Object store (datasets and the champion model)
    model_store_uri: str | None = None
    s3_endpoint_url: str | None = None

    # MLflow
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "DPE_MLFLOW_TRACKING_URI"),
    )
    experiment_name: str = "dpe-label"
    registered_model_name: str = "dpe"

    # Services on loopback
    host: str = "127.0.0.1"
    mlflow_port: int = 5000
    api_port: int = 8000
    ui_port: int = 8501
    api_url: str | None = None
    # The API as the user's browser reaches it, when that differs from DPE_API_URL (compose).
    api_public_url: str | None = None
    mlflow_ui_url: str | None = None

    # API
    api_token: str = DEFAULT_API_TOKEN
    max_batch_rows: int = 10_000
    max_upload_mb: int = 200
    # Uploads (chunked, or bodies over 1 MiB) handled at once; more get 503 + Retry-After.
    max_concurrent_uploads: int = Field(default=2, ge=1)
    # When set, /predict and /predict/csv require it as a bearer token.
    predict_token: str = ""
    # Wrong admin tokens a client may send per minute; past that, 429 until the minute ends.
    admin_failures_per_minute: int = Field(default=5, ge=1)
    reload_interval_s: float = 5.0
    # How often the served champion's files are hashed again against the manifest.
    verify_interval_s: float = 60.0
    metrics: bool = True  # the API's Prometheus /metrics (DPE_METRICS=false: off)

    set_coverage: float = Field(
        default=0.9,
        gt=0,
        lt=1,
        description="Coverage of the label sets predictions carry: on records like the ones "
        "the champion was calibrated on (newer than its training), at least this share of "
        "sets hold the true label. Over records, not for each one; it degrades if the use of "
        "the scales shifts, which is why the realised coverage is watched (dpe performance).",
    )

    # Monitoring
    drift_psi_threshold: float = 0.2
    drift_p_value: float = 0.01
    drift_min_rows: int = 50
    log_predictions: bool = True
    log_flush_rows: int = 1_000
    log_flush_s: float = 5.0
    log_retention_days: int = 90  # prediction log days kept (DPE_LOG_RETENTION_DAYS)

    performance_min_rows: int = Field(
        default=30,
        ge=1,
        description="Labelled records a realised-performance score needs before it is "
        "judged against the champion's back-test (fewer: shown, never flagged).",
    )

    # Lifecycle pipeline (core.lifecycle.pipeline): what a pass trains, and the gates it applies
    pipeline_source: str | None = None  # default: DPE_SOURCE
    pipeline_features: str = "with-consumption"
    pipeline_model: str | None = None  # default: the feature set's best family
    pipeline_search: Literal["none", "grid", "random"] = "none"
    pipeline_window_share: float = Field(default=0.2, gt=0, lt=1)  # newest labelled records
    pipeline_experiment: str = "dpe-lifecycle"  # MLflow experiment of the pass decisions
    airflow_port: int = 8080
    airflow_ui_url: str | None = None
    gate_metric: Literal["macro_f1", "accuracy", "balanced_accuracy"] = "macro_f1"
    gate_margin: float = Field(default=0.005, ge=0)  # a challenger must beat the champion by this
    # Data gate on an increment: over any of these shares, the pass refuses the data.
    gate_max_rejected_share: float = Field(default=0.2, ge=0, le=1)
    gate_max_unlabelled_share: float = Field(default=0.6, ge=0, le=1)
    gate_max_placeholder_share: float = Field(default=0.95, ge=0, le=1)
    gate_max_new_category_share: float = Field(default=0.1, ge=0, le=1)

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
