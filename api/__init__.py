"""The FastAPI sidecar serving the champion model: `uvicorn api.main:app`."""
