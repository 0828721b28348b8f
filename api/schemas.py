"""Request and response bodies, with the examples OpenAPI shows at /docs.

A record here checks types only (text for categories, numbers for numbers, strictly: `true`
or `"12"` in a number field is a 422 naming the field): bounds and categories are the
model's to judge, so a well-formed record it cannot take is answered in a 200 with its error
rather than rejected with a 422 (`core.serving.champion` validates). Keys that are no record field
are passed on, for the prediction to warn about them.

Speed: a request's records are taken as they are when each is an object (`PredictRequest`
checks the envelope only); `api.routers.predict` then reads them as columns, whose value
types tell at once whether any record breaks its `Record` type, and only then validates
them in full (`validate_records`), for the same 422 as ever. Validating 1,000 records one
by one here took a fifth of a 1,000-record request.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, WrapValidator
from typing_extensions import TypedDict

from api.errors import STATUS_CODES
from core.data.schema import LABELS, RECORD_FIELDS
from core.data.validation import ERROR_CODES

RECORD_EXAMPLE: dict[str, Any] = {
    "secteur_activite": "W : Administrations, banques, bureaux",
    "periode_construction": "1989-2000",
    "categorie_erp": "5ème Catégorie",
    "methode_du_dpe": "dpe tertiaire facture",
    "version_dpe": 2.2,
    "surface_utile": 850.0,
    "annee_construction": 1995,
    "type_energie_n_1": "Électricité",
    "conso_kwhep_m2_an": 180.0,
    "emission_ges_kgco2_m2_an": 12.0,
    "n_departement_ban": "69",
}
PROBABILITIES_EXAMPLE: dict[str, Any] = dict(
    zip(LABELS, (0.0, 0.05, 0.8, 0.1, 0.05, 0.0, 0.0), strict=True)
)


# What a Record's `str_strip_whitespace` strips off text: Unicode White_Space (pydantic-core
# trims as Rust does), which is str.strip()'s white space but \x1c-\x1f. Records taken as
# given (see the module's doc) have their text stripped of it when read as columns.
STRIPPED = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def _field(spec):
    # Integers are numbers here: 1990.5 is the model's to refuse (200 + error), as in a CSV.
    # Strict: pydantic would otherwise read `false` as 0.0 and "12" as 12.0.
    python_type = str if spec.kind == "category" else Annotated[float, Field(strict=True)]
    description = spec.description + (f" ({spec.unit})" if spec.unit else "")
    return Annotated[
        python_type | None,
        Field(
            validation_alias=AliasChoices(spec.name, spec.official),
            description=f"{description}. Official name: `{spec.official}`.",
        ),
    ]


# A TypedDict, not a BaseModel: pydantic validates it straight into the dicts core.serving.champion
# takes, a third faster than building and dumping a model per record. Its fields come from
# RECORD_FIELDS, which a type checker cannot read: hence the two ignores.
Record = TypedDict(  # type: ignore[misc]
    "Record", {spec.name: _field(spec) for spec in RECORD_FIELDS.values()}, total=False
)
Record.__doc__ = (
    "One building. Every field is optional; snake_case or official ADEME names. Other keys "
    "are not used: the prediction warns about them."
)
Record.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
    extra="allow", str_strip_whitespace=True, json_schema_extra={"examples": [RECORD_EXAMPLE]}
)


def _objects_as_given(records: Any, validate: Callable[[Any], list]) -> Any:
    """Records that are all objects, as they are (see the module's doc); else in full."""
    if type(records) is list and records and all(type(r) is dict for r in records):
        return records
    return validate(records)


class PredictRequest(BaseModel):
    records: Annotated[list[Record], WrapValidator(_objects_as_given)] = Field(
        min_length=1, description="1 to DPE_MAX_BATCH_ROWS records"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"records": [RECORD_EXAMPLE, {"Secteur_activité": "M : Magasins de vente"}]}
            ]
        }
    )


_RECORDS = TypeAdapter(list[Record])


def validate_records(records: Sequence[Mapping]) -> list[Record]:
    """Records validated field by field against `Record` (ValidationError naming each
    problem by the record's index and its field)."""
    return _RECORDS.validate_python(records)


class RecordProblem(BaseModel):
    """One reason a record was not predicted."""

    field: str | None = Field(description="the record field (snake_case); null: the whole record")
    code: str = Field(
        description="what is wrong: "
        + "; ".join(f"`{code}`: {meaning}" for code, meaning in ERROR_CODES.items()),
        json_schema_extra={"enum": list(ERROR_CODES)},
    )
    message: str = Field(description="for a person: the field's ADEME name, the value, the rule")


class Prediction(BaseModel):
    label: str | None = Field(description="A–G; null when the record could not be predicted")
    label_set: list[str] | None = Field(
        default=None,
        description="the labels kept at coverage DPE_SET_COVERAGE (`set_coverage`), in A–G "
        "order, the predicted label always among them: on records like those the champion "
        "was calibrated on, at least that share of sets hold the true label (over records, "
        "not for each one). Null when the record could not be predicted, or the champion "
        "has no calibration (`set_note` says so)",
    )
    probabilities: dict[str, float] | None = Field(description="per label, A to G")
    error: str | None = Field(
        default=None,
        description="why the record was not predicted (field and reason): the messages of "
        "`errors` joined by `; `",
    )
    errors: list[RecordProblem] = Field(
        default_factory=list,
        description="each problem of a record not predicted; empty when predicted",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="what was predicted anyway: a category the model never saw, a key that is "
        "no record field (with the closest field names)",
    )


class PredictResponse(BaseModel):
    model_version: str
    set_coverage: float | None = Field(
        default=None, description="the coverage of the label sets; null without calibration"
    )
    set_note: str | None = Field(
        default=None, description="why the predictions carry no label set (null when they do)"
    )
    predictions: list[Prediction] = Field(description="one per record, in order")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version": "3",
                    "set_coverage": 0.9,
                    "set_note": None,
                    "predictions": [
                        {
                            "label": "C",
                            "label_set": ["C", "D"],
                            "probabilities": PROBABILITIES_EXAMPLE,
                            "error": None,
                            "errors": [],
                            "warnings": [],
                        },
                        {
                            "label": None,
                            "label_set": None,
                            "probabilities": None,
                            "error": "Surface_utile=-3 must be > 0",
                            "errors": [
                                {
                                    "field": "surface_utile",
                                    "code": "below_minimum",
                                    "message": "Surface_utile=-3 must be > 0",
                                }
                            ],
                            "warnings": [],
                        },
                    ],
                }
            ]
        }
    )


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    model_version: str | None = None
    loaded_at: str | None = Field(default=None, description="ISO 8601, UTC")
    detail: str | None = Field(default=None, description="what is wrong, when something is")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "model_version": "3", "loaded_at": "2026-01-05T10:00:00+00:00"}
            ]
        }
    )


class Reload(BaseModel):
    reloaded: bool = Field(description="true when a new champion was loaded")
    model_version: str | None
    detail: str | None = None


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: body, then keys and indexes")
    msg: str
    type: str


class Problem(BaseModel):
    """Every error answer: `detail` says what is wrong, `code` what kind of problem it is;
    `errors`, on a 422 for a request that does not fit the schema, each field's problem."""

    detail: str
    code: str = Field(
        description="by status: "
        + ", ".join(f"`{code}` ({status})" for status, code in STATUS_CODES.items())
        + "; `unavailable` is the one worth trying again later",
    )
    errors: list[FieldError] | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "what went wrong", "code": "invalid_input"}]}
    )


MANIFEST_EXAMPLE = {
    "registered_model": "dpe",
    "model_version": "3",
    "run_id": "0f6c2b1d9e5a4f7c8b3a2d1e0f9c8b7a",
    "model_uri": "models:/dpe/3",
    "promoted_at": "2026-01-05T10:00:00+00:00",
    "dataset_version": "5a1f0c9e2b7d4e3a",
    "feature_set": "with-consumption",
    "model_family": "rf",
    "labels": list(LABELS),
    "metrics": {"accuracy": 0.93, "macro_f1": 0.9},
    "input_schema": [
        {
            "name": "surface_utile",
            "type": "number",
            "required": False,
            "categories": None,
            "min": 0,
            "max": 1000000,
            "unit": "m²",
        }
    ],
    "model_dir": "v3",
    "model_file": "v3/model.skops",
    "files": {"v3/model.skops": "sha256 hex digest"},
}
