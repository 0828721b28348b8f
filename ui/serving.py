"""The champion as the workbench's own pages predict with it (Predict, Batch predict)."""

import streamlit as st

from core.config import Settings
from core.errors import DpeError
from core.monitoring import prediction_log
from core.serving import champion
from core.tracking import champion_store


@st.cache_resource(show_spinner=False)
def _prediction_logger(store_uri: str, _settings: Settings) -> prediction_log.PredictionLogger:
    return prediction_log.PredictionLogger(_settings)


def prediction_sink(settings: Settings):
    """Where the pages' predictions are logged for monitoring (None when logging is off)."""
    if not settings.log_predictions:
        return None
    return _prediction_logger(settings.store_uri, settings).log


@st.cache_resource(max_entries=4, show_spinner="Loading the champion…")
def _load_champion(store_uri: str, key: tuple, _settings: Settings, _manifest: dict):
    manifest = champion_store.Manifest.from_dict(_manifest)
    return champion.load_champion(_settings, manifest, sink=prediction_sink(_settings))


def load_champion(settings: Settings, manifest: dict):
    """(the loaded champion of this manifest, problem): loaded once per promotion."""
    try:
        key = champion_store.manifest_key(champion_store.Manifest.from_dict(manifest))
        return _load_champion(settings.store_uri, key, settings, manifest), None
    except DpeError as error:
        return None, str(error)
