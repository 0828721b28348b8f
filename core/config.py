"""The one Settings object: every path, URI, limit and secret comes from here.

Values come from environment variables prefixed `DPE_` (or a `.env` file);
MLflow's own `MLFLOW_TRACKING_URI` is read under its usual name.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ADEME_API_URL = "https://data.ademe.fr/data-fair/api/v1/datasets/dpe-v2-tertiaire-2/lines"
DEFAULT_API_TOKEN = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DPE_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
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
    reload_interval_s: float = 5.0

    # Monitoring
    drift_psi_threshold: float = 0.2
    drift_p_value: float = 0.01
    drift_min_rows: int = 50
    log_predictions: bool = True
    log_flush_rows: int = 1_000
    log_flush_s: float = 5.0

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
