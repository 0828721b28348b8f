"""The FastAPI sidecar serving the champion model: `uvicorn api.main:app`."""

import sys

from fastapi import encoders
from fastapi._compat import shared


def _skip_pydantic_v1_until_imported() -> None:
    """FastAPI asks of each route parameter and each answer whether it is a pydantic.v1 model,
    importing pydantic.v1 to know (~0.1 s of the cold start). Nothing is one until something
    imports pydantic.v1 (nothing here does): it is imported to answer only from then on."""
    is_v1_class, is_v1_instance = (
        shared.is_pydantic_v1_model_class,
        encoders.is_pydantic_v1_model_instance,
    )
    shared.is_pydantic_v1_model_class = lambda cls: (
        "pydantic.v1" in sys.modules and is_v1_class(cls)
    )
    encoders.is_pydantic_v1_model_instance = lambda obj: (
        "pydantic.v1" in sys.modules and is_v1_instance(obj)
    )


_skip_pydantic_v1_until_imported()
