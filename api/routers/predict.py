from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile, status
from fastapi.responses import Response

from api.deps import ChampionDep, SettingsDep
from api.schemas import PredictRequest, PredictResponse, Problem
from core.errors import DpeError
from core.predict import predict_frame, summary, to_csv_bytes

router = APIRouter(tags=["predict"])

NOT_LOADED = {"model": Problem, "description": "no model loaded"}


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        status.HTTP_413_CONTENT_TOO_LARGE: {
            "model": Problem,
            "description": "more records than DPE_MAX_BATCH_ROWS",
        },
        status.HTTP_503_SERVICE_UNAVAILABLE: NOT_LOADED,
    },
    summary="Predict the label of one or more buildings",
)
def predict(body: PredictRequest, champion: ChampionDep, settings: SettingsDep) -> PredictResponse:
    """One prediction per record, in order. A record the model cannot take (unknown category,
    value out of range) gets `label: null` and an `error` naming the field, in a 200."""
    if len(body.records) > settings.max_batch_rows:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(body.records)} records: at most {settings.max_batch_rows} per request "
            "(DPE_MAX_BATCH_ROWS); send a CSV to /predict/csv for more",
        )
    predictions = champion.predict(body.records, source="api")
    # A dict, not a PredictResponse: FastAPI validates and serialises it in one pass.
    return {"model_version": champion.model_version, "predictions": predictions}


@router.post(
    "/predict/csv",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {
            "content": {"text/csv": {"example": "N°DPE,...,predicted_label,proba_A,...,error\n"}},
            "description": "The input CSV plus predicted_label, proba_A..proba_G and error "
            "(empty when predicted); UTF-8, `,`-separated; counts in X-Rows, X-Predicted, "
            "X-Rejected.",
        },
        status.HTTP_413_CONTENT_TOO_LARGE: {
            "model": Problem,
            "description": "upload larger than DPE_MAX_UPLOAD_MB",
        },
        status.HTTP_422_UNPROCESSABLE_CONTENT: {"model": Problem, "description": "unreadable CSV"},
        status.HTTP_503_SERVICE_UNAVAILABLE: NOT_LOADED,
    },
    summary="Predict every row of a CSV",
)
def predict_csv(
    file: Annotated[
        UploadFile,
        File(description="ADEME CSV export or snake_case columns; `,` or `;`, UTF-8 or cp1252"),
    ],
    champion: ChampionDep,
    settings: SettingsDep,
) -> Response:
    """Rows that fail validation carry their reason in `error` and are not predicted; none
    is dropped."""
    limit = settings.max_upload_mb * 2**20
    if file.size is not None and file.size > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"upload of {file.size} bytes: at most {settings.max_upload_mb} MB (DPE_MAX_UPLOAD_MB)",
        )
    from core.ingest import read_csv  # DuckDB: loaded by the first CSV, not at start up

    try:
        frame = read_csv(file.file.read(), name=file.filename or "uploaded CSV")
    except DpeError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    predicted = predict_frame(champion, frame, source="api")
    counts = summary(predicted)
    return Response(
        to_csv_bytes(predicted),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="predictions.csv"',
            "X-Model-Version": champion.model_version,
            **{f"X-{key.title()}": str(value) for key, value in counts.items()},
        },
    )
