"""POST /predict (JSON records) and POST /predict/csv (a CSV upload): one champion, one rule
per record, whatever the route (core.serving.champion, core.serving.batch)."""

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, HTTPException, Request, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.background import BackgroundTask

from api.auth import check_predict_token, client_identity
from api.deps import ChampionDep, SettingsDep, count_refusal
from api.json_limits import read_limited
from api.logs import REQUEST_ID
from api.schemas import (
    STRIPPED,
    PredictRequest,
    PredictResponse,
    Problem,
    validate_records,
)
from core import tempfiles
from core.config import Settings
from core.errors import DpeError
from core.serving import batch
from core.serving.champion import SMALL_BATCH, Champion, Prediction
from core.serving.records import read_records

# Up to this size, a body of up to SMALL_BATCH records is predicted on the event loop.
INLINE_BODY_BYTES = 64 * 2**10
# A \uD800-\uDFFF escape: JSON allows it alone, Unicode (and so any UTF-8 answer) does not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _OrjsonRequest(Request):
    """A request whose JSON body is read within the limits of api.json_limits (size, records,
    keys per record: a 413 while it streams in) and parsed by orjson: 2.6× as fast as
    `json.loads` on 1,000 records. A body orjson refuses goes to `json.loads`, so that what
    is accepted (NaN, an integer beyond a float's range: infinite, as in a CSV) and how
    malformed JSON is answered (FastAPI's 422) stay what they were; what neither is Unicode
    (bytes that are not UTF-8, a lone surrogate) is malformed JSON too."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            settings: Settings = self.app.state.settings
            try:
                self._body = await read_limited(
                    self.stream(),
                    self.headers.get("content-length"),
                    settings.max_json_mb,
                    settings.max_batch_rows,
                    settings.max_record_keys,
                )
            except HTTPException:
                count_refusal(self, "too_many_records")
                raise
        return self._body

    async def json(self):
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = _python_json(body)
        return self._json


def _python_json(body: bytes):
    try:
        parsed = json.loads(body, parse_int=_json_int)
    except UnicodeDecodeError as error:
        raise json.JSONDecodeError("the body is not UTF-8", "", error.start) from None
    found = _SURROGATE_ESCAPE.search(body)
    if found:  # orjson refuses these; json.loads took them: keep them out of the answer
        try:
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise json.JSONDecodeError(
                "text holds an unpaired surrogate (\\uD800-\\uDFFF): not valid Unicode",
                "",
                found.start(),
            ) from None
    return parsed


def _json_int(text: str) -> int | float:
    """A JSON integer: an int, or, past 15 digits, a float as orjson reads it (infinite
    beyond a float's range, which an int could not even be converted to)."""
    return int(text) if len(text) <= 15 else float(text)


class _OrjsonRoute(APIRoute):
    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            # Before FastAPI reads the body: a client without the token sends none in.
            check_predict_token(request)
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return route


# With DPE_PREDICT_TOKEN set, `create_app` declares its bearer scheme on both routes.
router = APIRouter(tags=["predict"], route_class=_OrjsonRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: {
        "model": Problem,
        "description": "`bad_request`: a body that cannot be parsed at all (e.g. broken multipart)",
    },
    status.HTTP_401_UNAUTHORIZED: {
        "model": Problem,
        "description": "`unauthorized`: DPE_PREDICT_TOKEN is set and the bearer token is "
        "missing or wrong",
    },
    status.HTTP_408_REQUEST_TIMEOUT: {
        "model": Problem,
        "description": "an upload (a body over 1 MiB, or chunked) came in slower than "
        "DPE_UPLOAD_MIN_KB_S",
    },
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "model": Problem,
        "description": "`invalid_input`: the request does not fit the schema (`errors` names "
        "each field), the CSV is empty or cannot be read (not UTF-8 nor cp1252: the line is "
        "named), or the JSON is not JSON",
    },
    status.HTTP_503_SERVICE_UNAVAILABLE: {
        "model": Problem,
        "description": "`unavailable` (try again later): no model loaded, or too many uploads "
        "at once (Retry-After)",
    },
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        **ERRORS,
        status.HTTP_413_CONTENT_TOO_LARGE: {
            "model": Problem,
            "description": "`too_large`: more records than DPE_MAX_BATCH_ROWS, a record with "
            "more keys than DPE_MAX_RECORD_KEYS (on average), or a body above DPE_MAX_JSON_MB",
        },
    },
    summary="Predict the label of one or more buildings",
)
async def predict(
    body: PredictRequest, champion: ChampionDep, settings: SettingsDep, request: Request
) -> Response:
    """One prediction per record, in order. A record the model cannot take (text in a number
    field, a value out of range, more than DPE_MAX_RECORD_KEYS keys) gets `label: null`, an
    `error` naming the field, and its problems in `errors` (`{"field", "code", "message"}`),
    in a 200."""
    who = {"client": client_identity(request, settings), "request_id": REQUEST_ID.get()}
    predict = partial(_predictions, champion, body.records, settings.max_record_keys, who)
    if len(body.records) <= SMALL_BATCH and len(await request.body()) <= INLINE_BODY_BYTES:
        # A few records take well under a millisecond: inline beats a hop to a thread.
        predictions = predict()
    else:  # in a thread, so that the event loop keeps answering meanwhile
        predictions = await run_in_threadpool(predict)
    # Serialised here with orjson: `Champion.predict` gives what PredictResponse describes
    # (labels, floats, texts), so FastAPI's validation on the way out would only cost time.
    content = {
        "model_version": champion.model_version,
        "set_coverage": champion.set_coverage,
        "set_note": champion.set_note,
        "predictions": predictions,
    }
    return Response(orjson.dumps(content), media_type="application/json")


def _predictions(
    champion: Champion, records: Sequence[Mapping], max_keys: int, who: dict
) -> list[Prediction]:
    """`champion.predict(records)`, the records read as columns here: their value types tell
    at once if any breaks the `Record` schema (api.schemas), which then names the problems."""
    columns = read_records(records, blanks=STRIPPED)  # text stripped as the schema strips it
    if columns.typed:
        return champion.predict(records, "api", max_keys=max_keys, columns=columns, **who)
    return champion.predict(_validated(records), "api", max_keys=max_keys, **who)


def _validated(records: Sequence[Mapping]) -> Sequence[Mapping]:
    """`records` validated in full: RequestValidationError (422) as FastAPI raises it."""
    try:
        return validate_records(records)
    except ValidationError as error:
        errors = error.errors(include_url=False)
        raise RequestValidationError(
            [{**e, "loc": ("body", "records", *e["loc"])} for e in errors]
        ) from None


@router.post(
    "/predict/csv",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {
            "content": {
                "text/csv": {
                    "example": "N°DPE,...,predicted_label,proba_A,...,label_set,set_size,error,"
                    "error_code,warning\n"
                }
            },
            "description": "The input CSV plus predicted_label, proba_A..proba_G, label_set "
            "(the labels kept at X-Set-Coverage, joined by `|`, e.g. `C|D`; empty without "
            "calibration), set_size, error (empty when predicted), error_code (its codes joined "
            "by `|`) and warning; UTF-8, `,`-separated; counts in X-Rows, X-Predicted, "
            "X-Rejected.",
        },
        **ERRORS,
        status.HTTP_413_CONTENT_TOO_LARGE: {
            "model": Problem,
            "description": "`too_large`: upload larger than DPE_MAX_UPLOAD_MB",
        },
    },
    summary="Predict every row of a CSV",
)
def predict_csv(
    file: Annotated[
        UploadFile,
        File(
            description="ADEME CSV export or snake_case columns; `,` or `;`, UTF-8 or cp1252; "
            "not empty",
            # An empty file is refused (422): the schema says so, for clients and fuzzers.
            json_schema_extra={"minLength": 1},
        ),
    ],
    champion: ChampionDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    """Rows that fail validation carry their reason in `error` (and its codes in `error_code`)
    and are not predicted; none is dropped. A file with none of the model's fields is
    refused (422, naming them)."""
    # The upload goes to disk and the answer is sent from disk: memory holds neither file.
    tmp = tempfiles.make_dir("api")  # named after this process: see api.main's lifespan
    source, target = tmp / "input.csv", tmp / "predicted.csv"
    name = file.filename or "uploaded CSV"
    try:
        with source.open("wb") as copy:
            shutil.copyfileobj(file.file, copy, 2**20)
        counts = batch.predict_csv(
            champion,
            source,
            target,
            name=name,
            source_tag="api",
            client=client_identity(request, settings),
            request_id=REQUEST_ID.get(),  # a sync route's thread has the request's context
        )
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, DpeError):  # named after the upload, never our temp path
            count_refusal(request, "unreadable_csv")
            raise type(error)(str(error).replace(str(source), name)) from None  # api.errors
        raise
    return FileResponse(
        target,
        media_type="text/csv; charset=utf-8",
        filename="predictions.csv",
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
        headers={
            "X-Model-Version": champion.model_version,
            **({"X-Set-Coverage": str(champion.set_coverage)} if champion.set_coverage else {}),
            **{f"X-{key.title()}": str(counts[key]) for key in ("rows", "predicted", "rejected")},
        },
    )
