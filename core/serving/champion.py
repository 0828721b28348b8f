"""The champion: one code path predicts for the API, the workbench's pages and the CLI.

- `load_champion(settings)` reads the manifest (`core.tracking.champion_store`), downloads the files
  it lists, checks every sha256, then reads the model through `core.tracking.model_format`:
  a skops file rebuilt from the types this project trusts, its trees checked, or a champion
  promoted before skops (`model.pkl`) read by name only, with a warning. Nothing in the
  file runs; anything else is refused (Conflict, naming what was untrusted);
- `Champion.predict(records)` answers a list of dicts (snake_case or official ADEME names,
  every field optional): one `Prediction` per record, with `error` set, and no label, when
  a value cannot be read (text in a number field, a value out of range), each problem in
  `errors` with its field and code (`core.data.validation.ERROR_CODES`); a category the
  model never saw is predicted and named in `warnings`. With the label, its `label_set`:
  the labels kept at the coverage `DPE_SET_COVERAGE` by the calibration shipped beside the
  model (`core.modeling.conformal`, `calibration.json`); None for a champion trained before
  label sets (`Champion.set_note` says so).

Speed. A pipeline is `RecordEncoder` (numpy, microseconds per record) then a classifier.
Tree ensembles also get a fast engine (`core.serving.engines`): a numba kernel for forests, treelite
for gradient boosting; the rule models a numpy one on columns (`core.serving.rule_engines`), no
DataFrame built. Each is checked against `pipeline.predict_proba` at load time and
dropped, with a warning, if it differs by more than `TOLERANCE`.

Start-up. This module imports neither sklearn nor pandas at the top: `serving_champions`
first reads a forest or rule pipeline's skops file without them (`core.serving.light_reader`), and a
server answers with that, then loads the same download through skops (`api.state`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

import numpy as np

from core.config import Settings
from core.data.schema import LABELS, RECORD_FIELDS
from core.data.validation import (
    MESSAGE_SEPARATOR,
    Problem,
    RowErrors,
    RowWarnings,
    Rule,
    add_number_errors,
    schema_checks,
    spec_checks,
)
from core.errors import DpeError
from core.modeling import conformal
from core.modeling.encoding import FieldEncoding, distinct_rows
from core.serving.light_reader import LightPipeline, read_light
from core.serving.records import (
    TEXT_TYPES,
    RecordColumns,
    check_keys,
    fields_frame,
    frame_columns,
    read_records,
    snake_case_record,
    synthetic_records,
    unseen_category,
)
from core.serving.rule_engines import ColumnsEngine, checked_rule_engine, rule_engine
from core.storage import Store
from core.tracking import champion_store
from core.tracking.champion_store import Manifest
from core.tracking.model_format import load_model

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

TOLERANCE = 1e-6  # largest difference to sklearn's probabilities a fast engine may show
SMALL_BATCH = 64  # up to this many rows, the compiled model is faster than sklearn
VERIFY_ROWS = 300  # synthetic records engines are checked on at load: > PARALLEL_ROWS


class Prediction(TypedDict):
    """One record's answer. `label`, `label_set` (labels in A..G order) and `probabilities`
    ({A..G}) are None when `error` says why the record could not be predicted: its messages
    joined by `; `, each of them in `errors` with its field and code (empty when predicted);
    `label_set` is None also for a champion without calibration; `warnings` name what was
    predicted anyway."""

    label: str | None
    label_set: list[str] | None
    probabilities: dict[str, float] | None
    error: str | None
    errors: list[Problem]
    warnings: list[str]


class PredictionSink(Protocol):
    """Receives each prediction, on a background thread: `records` a DataFrame of the
    snake_case record fields, `results` a list of `Prediction`, `client` and `request_id`
    who asked (or None). `core.monitoring.prediction_log.PredictionLogger.log` fits. A sink with
    `takes_columns = True` gets, from `Champion.predict`, a mapping of the fields' columns
    (name -> array) instead: no DataFrame is built for it (the API's log is one)."""

    def __call__(
        self,
        records: pd.DataFrame,
        results: list[Prediction],
        model_version: str,
        source: str,
        *,
        client: str | None,
        request_id: str | None,
    ) -> None: ...


# The one thread every champion hands its predictions to its sink on.
_SINK_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpe-prediction-sink")


# --- Loading ------------------------------------------------------------------------------


def load_champion(
    settings: Settings,
    manifest: Manifest | None = None,
    *,
    store: Store | None = None,
    sink: PredictionSink | None = None,
) -> Champion:
    """Load the promoted champion (the given manifest, else the store's current one), its
    fast engines checked against sklearn. Never imports mlflow (its import alone exceeds the
    API's cold start budget): the file is read by `core.tracking.model_format`."""
    store = store or Store(settings)
    manifest = manifest or champion_store.read_manifest(store)
    champion = _loaded(
        manifest, champion_store.download(store, manifest), sink, settings.set_coverage
    )
    champion.compile()
    return champion


def serving_champions(
    manifest: Manifest,
    store: Store,
    sink: PredictionSink | None = None,
    coverage: float = conformal.DEFAULT_COVERAGE,
) -> Iterator[Champion]:
    """The champion as a server that must answer at once serves it, from one download: first
    quick (a RandomForest or ExtraTrees pipeline's skops file read without sklearn, its trees
    walked by numpy, or a rule model's state served by its numpy engine, not checked yet,
    `core.serving.light_reader`; any other model in plain sklearn), then with its fast
    engines checked."""
    files = champion_store.download(store, manifest)
    skops_file = manifest.model_file.endswith(".skops")  # a legacy pickle is read in full
    light = read_light(files[manifest.model_file]) if skops_file else None
    if light is not None:
        yield _champion(manifest, files, light, sink, coverage)
    champion = _loaded(manifest, files, sink, coverage)
    if light is None:
        yield champion
    champion.compile()
    yield champion


def _loaded(
    manifest: Manifest, files: dict[str, bytes], sink: PredictionSink | None, coverage: float
) -> Champion:
    """The champion of the model file, its engines sklearn's until `compile()`."""
    pipeline = load_model(files[manifest.model_file], manifest.model_file)
    if not manifest.model_file.endswith(".skops"):
        log.warning(
            "champion %s is a pickle promoted before skops (%s), read with trusted types only: "
            "promote a model trained by this release to serve a skops file",
            manifest.model_version,
            manifest.model_file,
        )
    return _champion(manifest, files, pipeline, sink, coverage)


def _champion(
    manifest: Manifest,
    files: dict[str, bytes],
    pipeline,
    sink: PredictionSink | None,
    coverage: float,
) -> Champion:
    """`pipeline` as the champion, with the input example and calibration shipped beside it."""
    return Champion(
        manifest,
        pipeline,
        example=_input_example(files, manifest),
        sink=sink,
        calibration=_calibration(files, manifest),
        coverage=coverage,
    )


def _model_dir(manifest: Manifest) -> str:
    return manifest.model_dir or Path(manifest.model_file).parent.as_posix()


def _calibration(files: dict[str, bytes], manifest: Manifest) -> conformal.Calibration | None:
    """The label sets' calibration shipped beside the model (None: trained before them)."""
    path = f"{_model_dir(manifest)}/{conformal.CALIBRATION_FILE}"
    data = files.get(path)
    return None if data is None else conformal.Calibration.from_json(data, path)


def _input_example(files: dict[str, bytes], manifest: Manifest) -> list[dict]:
    """Records of the MLflow input example shipped with the model, if any."""
    data = files.get(f"{_model_dir(manifest)}/input_example.json")
    if data is None:
        return []
    example = json.loads(data)
    example = example.get("dataframe_split", example) if isinstance(example, dict) else example
    if isinstance(example, dict) and "columns" in example:
        return [dict(zip(example["columns"], row, strict=True)) for row in example["data"]]
    return example if isinstance(example, list) else []


# --- The champion ----------------------------------------------------------------------------


class Champion:
    """A loaded champion: its manifest, its pipeline and the engines that run it."""

    def __init__(
        self,
        manifest: Manifest,
        pipeline,
        example: list[dict] | None = None,
        sink: PredictionSink | None = None,
        calibration: conformal.Calibration | None = None,
        coverage: float = conformal.DEFAULT_COVERAGE,
    ):
        self.manifest = manifest
        self.model_version = manifest.model_version
        self.pipeline = pipeline
        self.sink = sink
        self.calibration = calibration
        self.set_coverage = None if calibration is None else coverage
        self._thresholds = None if calibration is None else calibration.at(coverage)
        self.loaded_at = datetime.now(UTC)
        schema = {entry["name"]: entry for entry in manifest.input_schema}
        # Per field with a closed list: the values the model knows.
        self._categories = {
            name: frozenset(entry["categories"])
            for name, entry in schema.items()
            if RECORD_FIELDS.get(name)
            and RECORD_FIELDS[name].kind == "category"
            and entry.get("categories") is not None
        }
        self._known_or_missing = {name: known | {None} for name, known in self._categories.items()}
        numbers = [name for name, spec in RECORD_FIELDS.items() if spec.kind != "category"]
        self._spec_checks = {name: spec_checks(name) for name in numbers}
        self._schema_checks = {name: schema_checks(name, schema.get(name)) for name in numbers}
        self._example = example or []
        self._build_engines()

    # Engines: `_small` answers up to SMALL_BATCH rows, `_large` more. Both start as the
    # classifier's own predict_proba; `compile()` swaps in faster ones checked against it.

    def _build_engines(self) -> None:
        steps = getattr(self.pipeline, "steps", [])
        head = steps[0][1] if len(steps) == 2 else None
        # The sklearn RecordEncoder or, in a light champion, its attributes alone: only
        # FieldEncoding's `transform_columns` is used, which both have.
        self._encoder: FieldEncoding | None
        if isinstance(head, FieldEncoding):
            self._encoder, self._classifier = head, steps[1][1]
        else:  # any other pipeline (e.g. the rule model) takes a DataFrame of the fields
            self._encoder, self._classifier = None, self.pipeline
        classes = [str(c) for c in self._classifier.classes_]
        if not set(classes) <= set(LABELS):
            raise DpeError(f"the champion predicts classes {classes}, not labels A–G")
        self._class_columns = [LABELS.index(c) for c in classes]
        self._columns_engine: ColumnsEngine | None = None  # a rule model's, on columns
        self.light = isinstance(self.pipeline, LightPipeline)
        found = rule_engine(self.pipeline) if self.light and self._encoder is None else None
        if found is not None:  # a light rule model: its numpy engine, not checked yet
            engine, self._columns_engine = found
        else:
            self._small = self._large = self._classifier.predict_proba
            engine = "numpy-forest" if self.light else "sklearn"
        engine += ", not checked yet" if self.light else ""
        self.engines = {"small": engine, "large": engine}

    def compile(self) -> None:
        """Swap in the fast engines (see the module's doc) that give sklearn's probabilities,
        within TOLERANCE, on the input example and synthetic records; drop the others."""
        if self.light:  # a light champion has no sklearn to check
            return
        if self._encoder is None:  # a rule model: its numpy engine, checked, on columns
            found = checked_rule_engine(self.pipeline, self._example, TOLERANCE, VERIFY_ROWS)
            if found is not None:
                name, self._columns_engine = found
                self.engines = {"small": name, "large": name}
            return
        from core.serving.engines import fast_engines  # numba: imported once a model is served

        records = [snake_case_record(record) for record in self._example]
        frame = fields_frame(records + synthetic_records(self._encoder, VERIFY_ROWS))
        try:
            expected = self.pipeline.predict_proba(frame)
            matrix = self._encoder.transform_columns(frame_columns(frame))
        except Exception as error:  # nothing to check against: keep sklearn
            log.warning("fast engines not checked (%s): sklearn answers", error)
            return
        for name, sizes, engine in fast_engines(self._classifier):
            try:
                # An engine for small batches only is checked on small batches.
                step = SMALL_BATCH if sizes == ("small",) else len(matrix)
                got = np.vstack([engine(matrix[i : i + step]) for i in range(0, len(matrix), step)])
                difference = float(np.max(np.abs(got - expected)))
            except Exception as error:  # an engine that cannot run is not used
                log.warning("%s engine failed its check (%s): sklearn answers", name, error)
                continue
            if difference > TOLERANCE:
                log.warning(
                    "%s engine differs from sklearn by %.3g: sklearn answers", name, difference
                )
                continue
            for size in sizes:
                setattr(self, f"_{size}", engine)
                self.engines[size] = name

    def labels_of(self, proba: np.ndarray) -> np.ndarray:
        """The label of each row of probabilities, as the model itself decides it (the scale
        model answers the median class, which stays monotone in the consumption)."""
        if self.light:  # a forest or a rule model: the most probable label
            return np.array(LABELS, dtype=object)[np.argmax(proba, axis=1)]
        from core.modeling.models import (
            label_index_from_proba,  # sklearn is loaded: the pipeline is
        )

        return np.array(LABELS, dtype=object)[label_index_from_proba(self.pipeline, proba)]

    @property
    def set_note(self) -> str | None:
        """Why predictions carry no label set (None when they do)."""
        if self.calibration is not None:
            return None
        return (
            f"champion v{self.model_version} was trained before label sets (no "
            f"{conformal.CALIBRATION_FILE}): label_set is empty; retrain and promote a model "
            "to get them"
        )

    def kept_labels(self, proba: np.ndarray, labels) -> np.ndarray | None:
        """(n, 7) booleans: the labels each row's set keeps at `set_coverage`, its predicted
        label (`labels`) always among them; None when the champion has no calibration."""
        if self._thresholds is None:
            return None
        predicted = np.array([LABELS.index(label) for label in labels], dtype=np.intp)
        return self._thresholds.label_sets(proba, predicted)

    def label_sets(self, proba: np.ndarray, labels) -> list[list[str] | None]:
        """Each row's label set (labels in A..G order), None for every row when the champion
        has no calibration."""
        kept = self.kept_labels(proba, labels)
        return [None] * len(proba) if kept is None else list(conformal.set_labels(kept))

    def predict_proba(self, records) -> np.ndarray:
        """Probabilities (n, 7), columns A..G, of records already validated: a list of
        dicts or a DataFrame of snake_case fields, numbers as numbers."""
        if len(records) == 0:
            return np.zeros((0, len(LABELS)))
        frame = fields_frame(records)
        if self._encoder is None:
            if self.light:  # a light rule model has its numpy engine only
                return self.columns_proba(frame_columns(frame))
            return self._all_labels(self._classifier.predict_proba(frame))
        return self._engine_proba(self._encoder.transform_columns(frame_columns(frame)))

    def columns_proba(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """`predict_proba` of records given as columns (object arrays, float arrays for
        numbers): the encoder reads them as they are."""
        if self._columns_engine is not None:
            return self._all_labels(self._columns_engine(columns))
        if self._encoder is None:
            import pandas as pd

            return self.predict_proba(pd.DataFrame(columns, dtype=object))
        return self._engine_proba(self._encoder.transform_columns(columns))

    def _engine_proba(self, matrix: np.ndarray) -> np.ndarray:
        engine = self._small if len(matrix) <= SMALL_BATCH else self._large
        return self._all_labels(engine(matrix))

    def _all_labels(self, proba: np.ndarray) -> np.ndarray:
        """The classifier's columns (its classes) as columns A..G."""
        full = np.zeros((len(proba), len(LABELS)))
        full[:, self._class_columns] = proba
        return full

    def predict(
        self,
        records: Sequence[Mapping],
        source: str = "app",
        client: str | None = None,
        request_id: str | None = None,
        max_keys: int | None = None,
        columns: RecordColumns | None = None,
    ) -> list[Prediction]:
        """One `Prediction` per record (`client` and `request_id` go to the sink only).

        Fields by snake_case or official ADEME name, all optional. A record the model cannot
        take (a value that cannot be read, only fields it does not know, more than
        `max_keys` keys) gets label and probabilities None and an error naming the field
        and the reason; the others are predicted exactly as if each came alone, with
        `warnings` naming what was set aside (unknown keys, categories the model never saw).
        `columns`: the records as `read_records` gives them, when the caller read them.
        """
        values, floats, not_numbers, _ = columns or read_records(records)
        errors, warnings = RowErrors(len(records)), RowWarnings(len(records))
        check_keys(records, errors, warnings, max_keys)
        self.check(values, floats, errors, warnings, self._spec_checks, not_numbers)
        inputs = {**values, **floats}
        valid = np.ones(len(records), dtype=bool)
        valid[list(errors.rows)] = False
        selected = {name: inputs[name][valid] for name in RECORD_FIELDS}
        proba = self.columns_proba(selected) if valid.any() else np.zeros((0, len(LABELS)))
        results = self._predictions(proba, valid, errors, warnings)
        self.hand_to_sink(inputs, lambda: results, source, client, request_id)
        return results

    def _predictions(
        self, proba: np.ndarray, valid: np.ndarray, errors: RowErrors, warnings: RowWarnings
    ) -> list[Prediction]:
        """Each record's answer: the `valid` ones' from their rows of `proba`, in order; the
        others' from their errors. Dict literals and C-level maps: for 1,000 records, the
        answers' 5,000 dicts and lists are among the costliest things a request builds."""
        labels = self.labels_of(proba).tolist()
        sets = self.label_sets(proba, labels)
        probabilities = map(dict, map(zip, repeat(LABELS), proba.tolist()))
        rows, warned = np.flatnonzero(valid).tolist(), warnings.rows
        predicted: list[Prediction] = [
            {
                "label": label,
                "label_set": kept,
                "probabilities": by_label,
                "error": None,
                "errors": [],
                "warnings": warned.get(row, []),
            }
            for row, label, kept, by_label in zip(rows, labels, sets, probabilities, strict=True)
        ]
        if not errors.rows:
            return predicted
        by_row = dict(zip(rows, predicted, strict=True))
        for row, problems in errors.rows.items():
            by_row[row] = {
                "label": None,
                "label_set": None,
                "probabilities": None,
                "error": MESSAGE_SEPARATOR.join(problem["message"] for problem in problems),
                "errors": problems,
                "warnings": warned.get(row, []),
            }
        return [by_row[row] for row in range(errors.n)]

    def check(
        self,
        columns: Mapping[str, np.ndarray],
        floats: Mapping[str, np.ndarray],
        errors: RowErrors,
        warnings: RowWarnings,
        number_checks: Mapping[str, list[Rule]],
        not_numbers: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Add to `errors` what the model cannot take: values that are not numbers (where
        `not_numbers` says so), numbers out of bounds (`number_checks` then the manifest's),
        categories that are not text; to `warnings` the categories the model never saw
        (predicted as an unknown one, its scale family still read from the sector's code)."""
        for name, numbers in floats.items():
            not_number = np.zeros(len(numbers), bool) if not_numbers is None else not_numbers[name]
            checks = number_checks.get(name, []) + self._schema_checks[name]
            values = columns.get(name, numbers)  # as given: named when not a number
            add_number_errors(errors, name, values, numbers, not_number, checks)
        for name, known in self._categories.items():
            values, official = columns[name], RECORD_FIELDS[name].official
            if set(map(type, values)) <= TEXT_TYPES:  # JSON's text and null: in C, by set
                unseen = ~np.fromiter(
                    map(self._known_or_missing[name].__contains__, values), bool, len(values)
                )
            else:
                not_text, unseen = _category_flags(values, known)
                errors.add(
                    not_text,
                    name,
                    "not_text",
                    lambda row, v=values, o=official: f"{o}={v[row]!r} is not text",
                )
            warnings.add(
                unseen,
                lambda row, v=values, o=official, k=known: unseen_category(o, v[row], k),
            )

    def hand_to_sink(
        self,
        inputs: dict[str, np.ndarray],
        results: Callable,
        source: str,
        client: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Hand the predictions to the sink on its thread (what it takes is built there): the
        record fields' columns `inputs`, and `results()`, asked by `client` in `request_id`."""
        if self.sink is None:
            return
        sink, version = self.sink, self.model_version
        columns = getattr(sink, "takes_columns", False)

        def deliver():
            try:
                if columns:
                    records = inputs
                else:
                    import pandas as pd

                    records = pd.DataFrame(inputs)[list(RECORD_FIELDS)]
                sink(records, results(), version, source, client=client, request_id=request_id)
            except Exception:  # logging must never break predicting
                log.exception("prediction sink failed")

        _SINK_THREAD.submit(deliver)


def _category_flags(values: np.ndarray, known: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per value of a category column: not text (neither None nor a str); text the model
    never saw (not in `known`). Decided once per distinct value (`distinct_rows`)."""

    def flags(value) -> tuple[bool, bool]:
        is_text = isinstance(value, str)
        return value is not None and not is_text, is_text and value not in known

    found = distinct_rows(values)
    if found is None:  # a value that cannot be hashed (a list in JSON): value by value
        per_row = np.array([flags(v) for v in values], bool).reshape(-1, 2)
    else:
        distinct, rows = found
        per_row = np.array([flags(v) for v in distinct], bool).reshape(-1, 2)[rows]
    return per_row[:, 0], per_row[:, 1]
