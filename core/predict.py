"""The champion model: loading, input validation, single and batch prediction.

One code path serves the API, the workbench's Predict and Batch pages and the CLI:
- `load_champion(settings)` reads `models/dpe/champion/manifest.json` from the object store,
  downloads the files it lists, checks every sha256 before unpickling anything, and builds
  the predictor;
- `Champion.predict(records)` answers a list of dicts (snake_case or official ADEME names,
  every field optional): one result per record, with `error` set, and no label, when the
  record is well formed but the model cannot take it (unknown category, value out of range);
- `predict_frame(champion, frame)` does the same for a whole CSV, vectorised, and keeps
  every row: the input columns, then `predicted_label`, `proba_A`..`proba_G` and `error`.

Speed. A pipeline is `RecordEncoder` (numpy, microseconds per record) then a classifier.
Tree ensembles also get a fast engine (`core.engines`): a numba kernel for forests, treelite
for gradient boosting. Each is checked against `pipeline.predict_proba` at load time and
dropped, with a warning, if it differs by more than `TOLERANCE`.

Start-up. Importing sklearn (with scipy and pandas) takes ~1.2 s, most of a server's cold
start. So this module imports neither at the top, and `serving_champions` first reads a
forest pipeline without them (`_read_light`): its encoder's state and its trees' arrays,
straight into the numba engine. A server answers with that, then unpickles the same
download normally, which checks the engine against sklearn (`api.state`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.config import Settings
from core.encoding import FieldEncoding
from core.errors import DpeError
from core.schema import LABEL_COLUMN, LABELS, OFFICIAL_TO_SNAKE, RECORD_FIELDS, to_snake_case
from core.storage import Store

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

CHAMPION_DIR = "models/dpe/champion"
MANIFEST_PATH = f"{CHAMPION_DIR}/manifest.json"
PREDICTION_COLUMNS = ("predicted_label", *(f"proba_{label}" for label in LABELS), "error")
TOLERANCE = 1e-6  # largest difference to sklearn's probabilities a fast engine may show
SMALL_BATCH = 64  # up to this many rows, the compiled model is faster than sklearn
CHUNK_ROWS = 20_000  # rows predicted at a time in a batch: bounds memory, paces progress
VERIFY_ROWS = 300  # synthetic records engines are checked on at load: > PARALLEL_ROWS

# A prediction sink receives (records, results, model_version, source) after each prediction,
# on a background thread: records is a DataFrame of the snake_case record fields, results a
# list of {"label", "probabilities", "error"}. `core.monitoring.PredictionLogger.log` fits.
# A sink with `takes_columns = True` gets, from `Champion.predict`, a mapping of the fields'
# columns (name -> array) instead: no DataFrame is built for it (the API's log is one).
PredictionSink = Callable[["pd.DataFrame", list[dict], str, str], None]

# The one thread every champion hands its predictions to its sink on.
_SINK_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpe-prediction-sink")


# --- Loading ------------------------------------------------------------------------------


def read_manifest(store: Store) -> dict:
    """The champion's manifest; DpeError when there is none or the store cannot be read."""
    try:
        data = store.read_bytes(MANIFEST_PATH)
    except FileNotFoundError:
        raise DpeError(
            f"no champion model in {store.uri()}: train one and promote it "
            "(python -m core promote RUN_ID)"
        ) from None
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise DpeError(f"{store.uri(MANIFEST_PATH)} is not valid JSON: {error}") from error
    missing = [key for key in ("model_version", "model_file", "files") if key not in manifest]
    if missing:
        raise DpeError(f"{store.uri(MANIFEST_PATH)} lacks {', '.join(missing)}")
    return manifest


def manifest_key(manifest: Mapping) -> tuple:
    """What tells two champions apart: a new promotion changes it."""
    return (
        str(manifest.get("model_version")),
        manifest.get("run_id"),
        manifest["files"].get(manifest["model_file"]),
    )


def _download(store: Store, manifest: dict) -> dict[str, bytes]:
    """Every file the manifest lists, its sha256 checked: {relative path: content}."""
    files = {}
    for relative, expected in manifest["files"].items():
        path = f"{CHAMPION_DIR}/{relative}"
        try:
            data = store.read_bytes(path)
        except FileNotFoundError:
            raise DpeError(f"champion file {store.uri(path)} is missing") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise DpeError(
                f"champion file {store.uri(path)} does not match its sha256 in the manifest "
                f"(expected {expected}, got {digest}): refusing to load it"
            )
        files[relative] = data
    if manifest["model_file"] not in files:
        raise DpeError(f"the manifest lists no checksum for {manifest['model_file']}")
    return files


def load_champion(
    settings: Settings,
    manifest: dict | None = None,
    *,
    store: Store | None = None,
    sink: PredictionSink | None = None,
) -> Champion:
    """Load the promoted champion (the given manifest, else the store's current one), its
    fast engines checked against sklearn. Never imports mlflow: the model file is a pickled
    sklearn Pipeline, and mlflow's import alone exceeds the API's cold start budget."""
    store = store or Store(settings)
    manifest = manifest or read_manifest(store)
    champion = _unpickled(manifest, _download(store, manifest), sink)
    champion.compile()
    return champion


def serving_champions(
    manifest: dict, store: Store, sink: PredictionSink | None = None
) -> Iterator[Champion]:
    """The champion as a server that must answer at once serves it, from one download: first
    quick (a RandomForest or ExtraTrees pipeline read without sklearn, into a numba engine
    not checked yet, `_read_light`; any other model in plain sklearn), then with its fast
    engines checked."""
    files = _download(store, manifest)
    light = _read_light(files[manifest["model_file"]])
    if light is not None:
        yield Champion(manifest, light, example=_input_example(files, manifest), sink=sink)
    champion = _unpickled(manifest, files, sink)
    if light is None:
        yield champion
    champion.compile()
    yield champion


def _unpickled(manifest: dict, files: dict[str, bytes], sink: PredictionSink | None) -> Champion:
    """The champion of the pickled pipeline, its engines sklearn's until `compile()`."""
    try:
        pipeline = pickle.loads(files[manifest["model_file"]])
    except Exception as error:  # any unpickling failure means the same to the user
        raise DpeError(f"could not load {manifest['model_file']}: {error}") from error
    if not hasattr(pipeline, "predict_proba"):
        raise DpeError(f"{manifest['model_file']} holds no classifier with predict_proba")
    return Champion(manifest, pipeline, example=_input_example(files, manifest), sink=sink)


# --- Reading a forest without sklearn ----------------------------------------------------


class _Attributes:
    """An unpickled object's attributes and nothing else: what a light read makes of the
    sklearn estimators it knows."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _TreeArrays:
    """An sklearn `Tree` as the arrays `core.engines.ForestEngine` reads."""

    def __init__(self, n_features, n_classes, n_outputs):
        self.n_outputs = n_outputs

    def __setstate__(self, state: dict) -> None:
        nodes = state["nodes"]
        self.node_count = state["node_count"]
        self.children_left, self.children_right = nodes["left_child"], nodes["right_child"]
        self.feature, self.threshold = nodes["feature"], nodes["threshold"]
        self.value = state["values"]


class _LightForest:
    """A forest read without sklearn: its classes, and the numba engine as predict_proba."""

    def __init__(self, forest):
        from core.engines import ForestEngine

        self.classes_ = forest.classes_
        self.predict_proba = ForestEngine(forest)


_LIGHT_CLASSES = {
    ("sklearn.pipeline", "Pipeline"): _Attributes,
    ("sklearn.ensemble._forest", "RandomForestClassifier"): _Attributes,
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"): _Attributes,
    ("sklearn.tree._classes", "DecisionTreeClassifier"): _Attributes,
    ("sklearn.tree._classes", "ExtraTreeClassifier"): _Attributes,
    ("sklearn.tree._tree", "Tree"): _TreeArrays,
    ("core.features", "RecordEncoder"): FieldEncoding,
}


# What rebuilds numpy arrays and scalars (numpy 2's module names and numpy 1's).
_NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy._core.multiarray", "numpy.core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("copyreg", "_reconstructor")}


class _LightUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and `_LIGHT_CLASSES` only: anything else ends the light read."""

    def find_class(self, module: str, name: str):
        if (module, name) in _LIGHT_CLASSES:
            return _LIGHT_CLASSES[module, name]
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not read without sklearn")


def _read_light(data: bytes) -> _Attributes | None:
    """The pickled pipeline, if it is `RecordEncoder` then a single-output forest, as
    (encoder's state, numba engine) without importing sklearn; else None."""
    try:
        pipeline = _LightUnpickler(io.BytesIO(data)).load()
        (_, encoder), (_, forest) = pipeline.steps
    except Exception:  # not a pipeline this reads: the normal load will
        return None
    trees = getattr(forest, "estimators_", [])
    if not isinstance(encoder, FieldEncoding) or getattr(forest, "n_outputs_", 0) != 1:
        return None
    if not trees or not all(isinstance(getattr(t, "tree_", None), _TreeArrays) for t in trees):
        return None
    pipeline.steps = [("encode", encoder), ("classify", _LightForest(forest))]
    return pipeline


def _input_example(files: dict[str, bytes], manifest: dict) -> list[dict]:
    """Records of the MLflow input example shipped with the model, if any."""
    model_dir = manifest.get("model_dir", Path(manifest["model_file"]).parent.as_posix())
    data = files.get(f"{model_dir}/input_example.json")
    if data is None:
        return []
    example = json.loads(data)
    example = example.get("dataframe_split", example) if isinstance(example, dict) else example
    if isinstance(example, dict) and "columns" in example:
        return [dict(zip(example["columns"], row, strict=True)) for row in example["data"]]
    return example if isinstance(example, list) else []


# --- Input validation ------------------------------------------------------------------------


def _shown(value: float) -> str:
    """A number as `core.ingest` shows it in reasons: 100 rather than 100.0."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _bound_text(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _spec_checks(name: str) -> list[tuple[Callable, str]]:
    """(fails, rule) pairs of a number field: the checks and messages of `core.ingest.clean`."""
    spec = RECORD_FIELDS[name]
    checks = []
    if spec.kind == "integer":
        checks.append((lambda v: v != np.trunc(v), "is not an integer"))
    if spec.min is not None:
        bound = _bound_text(spec.min)
        if spec.min_exclusive:
            checks.append((lambda v, m=spec.min: v <= m, f"must be > {bound}"))
        else:
            checks.append((lambda v, m=spec.min: v < m, f"must be >= {bound}"))
    if spec.max is not None:
        checks.append((lambda v, m=spec.max: v > m, f"must be <= {_bound_text(spec.max)}"))
    return checks


def _schema_checks(name: str, entry: Mapping | None) -> list[tuple[Callable, str]]:
    """Bounds the manifest's input schema sets beyond core.schema's."""
    spec, entry = RECORD_FIELDS[name], entry or {}
    checks = []
    low, high = entry.get("min"), entry.get("max")
    if low is not None and low != spec.min:
        checks.append((lambda v, m=low: v < m, f"must be >= {_bound_text(low)}"))
    if high is not None and high != spec.max:
        checks.append((lambda v, m=high: v > m, f"must be <= {_bound_text(high)}"))
    return checks


def _to_number(value) -> float | None:
    """A JSON number or number text (decimal point or comma) as a float; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "."))
        except ValueError:
            return None
    return None


def _parse_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floats (NaN when missing or not a number) and where a value is not a number."""
    if all(value is None or type(value) in (float, int) for value in values):
        return values.astype(float), np.zeros(len(values), dtype=bool)  # None -> NaN
    numbers = [None if value is None else _to_number(value) for value in values]
    bad = np.array([v is not None and n is None for v, n in zip(values, numbers, strict=True)])
    return np.array([np.nan if n is None else n for n in numbers], dtype=float), bad


class _Errors:
    """Error messages of the failing rows, gathered field by field: only they are looped over."""

    def __init__(self, n: int, initial: np.ndarray | None = None):
        self.n = n
        self.rows: dict[int, list[str]] = {}
        if initial is not None:  # from a batch: pandas is loaded
            import pandas as pd

            for row in np.flatnonzero(pd.notna(initial)):
                self.rows[row] = [initial[row]]

    def add(self, mask: np.ndarray, message: Callable[[int], str]) -> None:
        for row in np.flatnonzero(mask):
            self.rows.setdefault(row, []).append(message(row))

    def joined(self) -> np.ndarray:
        """One message per row, None where nothing failed."""
        out = np.full(self.n, None, dtype=object)
        for row, messages in self.rows.items():
            out[row] = "; ".join(messages)
        return out


def _refused(values: np.ndarray, known: frozenset) -> np.ndarray:
    """Where a value is neither missing nor text the model knows (one loop, no call per value:
    faster than a ufunc calling a lambda)."""
    return np.fromiter(
        (not (v is None or (isinstance(v, str) and v in known)) for v in values),
        dtype=bool,
        count=len(values),
    )


def _category_error(official: str, value) -> str:
    if not isinstance(value, str):
        return f"{official}={value!r} is not text"
    return f"{official}='{value}' is not a category the model knows (see its input_schema)"


# --- The champion ----------------------------------------------------------------------------


class Champion:
    """A loaded champion: its manifest, its pipeline and the engines that run it."""

    def __init__(
        self,
        manifest: dict,
        pipeline,
        example: list[dict] | None = None,
        sink: PredictionSink | None = None,
    ):
        self.manifest = manifest
        self.model_version = str(manifest["model_version"])
        self.pipeline = pipeline
        self.sink = sink
        self.loaded_at = datetime.now(UTC)
        schema = {entry["name"]: entry for entry in manifest.get("input_schema", [])}
        # Per field with a closed list: the values the model knows.
        self._categories = {
            name: frozenset(entry["categories"])
            for name, entry in schema.items()
            if RECORD_FIELDS.get(name)
            and RECORD_FIELDS[name].kind == "category"
            and entry.get("categories") is not None
        }
        numbers = [name for name, spec in RECORD_FIELDS.items() if spec.kind != "category"]
        self._spec_checks = {name: _spec_checks(name) for name in numbers}
        self._schema_checks = {name: _schema_checks(name, schema.get(name)) for name in numbers}
        self._example = example or []
        self._build_engines()

    # Engines: `_small` answers up to SMALL_BATCH rows, `_large` more. Both start as the
    # classifier's own predict_proba; `compile()` swaps in faster ones checked against it.

    def _build_engines(self) -> None:
        steps = getattr(self.pipeline, "steps", [])
        head = steps[0][1] if len(steps) == 2 else None
        if isinstance(head, FieldEncoding):
            self._encoder, self._classifier = head, steps[1][1]
        else:  # any other pipeline (e.g. the rule model) takes a DataFrame of the fields
            self._encoder, self._classifier = None, self.pipeline
        classes = [str(c) for c in self._classifier.classes_]
        if not set(classes) <= set(LABELS):
            raise DpeError(f"the champion predicts classes {classes}, not labels A–G")
        self._class_columns = [LABELS.index(c) for c in classes]
        self._small = self._large = self._classifier.predict_proba
        self.light = isinstance(self._classifier, _LightForest)
        engine = "numba-forest, not checked yet" if self.light else "sklearn"
        self.engines = {"small": engine, "large": engine}

    def compile(self) -> None:
        """Swap in the fast engines (see the module's doc) that give sklearn's probabilities,
        within TOLERANCE, on the input example and synthetic records; drop the others."""
        if self._encoder is None or self.light:  # a light champion has no sklearn to check
            return
        from core.engines import fast_engines  # numba: imported once a model is served

        records = [_snake_case(record) for record in self._example]
        frame = _fields_frame(records + _synthetic_records(self._encoder, VERIFY_ROWS))
        try:
            expected = self.pipeline.predict_proba(frame)
            matrix = self._encoder.transform(frame)
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
        if self.light:  # a forest: the most probable label
            return np.array(LABELS, dtype=object)[np.argmax(proba, axis=1)]
        from core.models import label_index_from_proba  # sklearn is loaded: the pipeline is

        return np.array(LABELS, dtype=object)[label_index_from_proba(self.pipeline, proba)]

    def predict_proba(self, records) -> np.ndarray:
        """Probabilities (n, 7), columns A..G, of records already validated: a list of
        dicts or a DataFrame of snake_case fields, numbers as numbers."""
        if len(records) == 0:
            return np.zeros((0, len(LABELS)))
        if self._encoder is None:
            return self._all_labels(self._classifier.predict_proba(_fields_frame(records)))
        return self._engine_proba(self._encoder.transform(records))

    def _columns_proba(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """`predict_proba` of records given as columns (object arrays, float arrays for
        numbers): the encoder reads them as they are."""
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

    def predict(self, records: Sequence[Mapping], source: str = "app") -> list[dict]:
        """One result per record: {"label", "probabilities" {A..G}, "error"}.

        Fields by snake_case or official ADEME name, all optional. A record the model cannot
        take gets label and probabilities None and an error naming the field and the reason;
        the others are predicted exactly as if each came alone.
        """
        columns, floats, not_numbers = _columns([_snake_case(record) for record in records])
        errors = _Errors(len(records))
        for name, bad in not_numbers.items():
            official, values = RECORD_FIELDS[name].official, columns[name]
            errors.add(bad, lambda row, v=values, o=official: f"{o}='{v[row]}' is not a number")
        self._check(columns, floats, errors, self._spec_checks)
        errors = errors.joined()
        inputs = {**columns, **floats}
        valid = np.flatnonzero(np.equal(errors, None))
        selected = {name: inputs[name][valid] for name in RECORD_FIELDS}
        proba = self._columns_proba(selected) if len(valid) else np.zeros((0, len(LABELS)))
        results = [{"label": None, "probabilities": None, "error": e} for e in errors]
        labels = self.labels_of(proba).tolist()
        for row, label, probabilities in zip(valid.tolist(), labels, proba.tolist(), strict=True):
            results[row] = {
                "label": label,
                "probabilities": dict(zip(LABELS, probabilities, strict=True)),
                "error": None,
            }
        self._log(inputs, lambda: results, source)
        return results

    def _check(self, columns, floats, errors: _Errors, number_checks: dict) -> None:
        """Add to `errors` what the model cannot take: numbers out of bounds (`number_checks`
        then the manifest's), categories that are not text or that the model does not know."""
        for name, values in floats.items():
            official, failed = RECORD_FIELDS[name].official, np.isnan(values)
            for fails, rule in number_checks.get(name, []) + self._schema_checks[name]:
                mask = ~failed
                mask[mask] = fails(values[mask])
                errors.add(
                    mask, lambda row, v=values, o=official, r=rule: f"{o}={_shown(v[row])} {r}"
                )
                failed |= mask  # one message per field, as clean() gives
        for name, known in self._categories.items():
            values, official = columns[name], RECORD_FIELDS[name].official
            refused = _refused(values, known)
            errors.add(refused, lambda row, v=values, o=official: _category_error(o, v[row]))

    def _log(self, inputs: dict[str, np.ndarray], results: Callable, source: str) -> None:
        """Hand the predictions to the sink on its thread (what it takes is built there): the
        record fields' columns `inputs`, and `results()`."""
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
                sink(records, results(), version, source)
            except Exception:  # logging must never break predicting
                log.exception("prediction sink failed")

        _SINK_THREAD.submit(deliver)


# --- Records ---------------------------------------------------------------------------------


def _snake_case(record: Mapping) -> Mapping:
    """Official ADEME names as snake_case; a snake_case key wins over its official twin."""
    if _OFFICIAL_NAMES.isdisjoint(record):
        return record
    renamed = {OFFICIAL_TO_SNAKE[k]: v for k, v in record.items() if k in OFFICIAL_TO_SNAKE}
    return {**renamed, **record}


_OFFICIAL_NAMES = frozenset(OFFICIAL_TO_SNAKE)
_NUMBER_TYPES = frozenset({float, int, type(None)})
_TEXT_TYPES = frozenset({str, type(None)})


def _columns(
    records: Sequence[Mapping],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each record field as an object array: text stripped; blank text, None, NaN and NA are
    missing (None), as an empty CSV cell is. Also, per number field, its floats (NaN when
    missing or not a number) and where a value is not a number. Columns holding only what
    JSON gives (numbers, text, null) take a fast path; any other value the general one."""
    columns, floats, not_numbers = {}, {}, {}
    for name, spec in RECORD_FIELDS.items():
        raw = [record.get(name) for record in records]
        types = set(map(type, raw))
        number = spec.kind != "category"
        values = np.empty(len(raw), dtype=object)
        if number and types <= _NUMBER_TYPES:  # None and NaN -> NaN, as the general path
            numbers = np.array(raw, dtype=float)
            values[:] = raw
            values[np.isnan(numbers)] = None
            columns[name], floats[name] = values, numbers
            not_numbers[name] = np.zeros(len(raw), dtype=bool)
            continue
        if types <= _TEXT_TYPES:
            values[:] = [None if v is None else (v.strip() or None) for v in raw]
        else:
            values[:] = [(v.strip() or None) if isinstance(v, str) else v for v in raw]
            import pandas as pd  # values JSON does not give: not at API start

            values[pd.isna(values)] = None
        columns[name] = values
        if number:
            floats[name], not_numbers[name] = _parse_numbers(values)
    return columns, floats, not_numbers


def _fields_frame(records) -> pd.DataFrame:
    """The record fields as a DataFrame: numbers as floats, categories as text or None."""
    import pandas as pd

    if isinstance(records, pd.DataFrame):
        frame = records.reindex(columns=list(RECORD_FIELDS))
    else:
        frame = pd.DataFrame.from_records(list(records), columns=list(RECORD_FIELDS))
    for name, spec in RECORD_FIELDS.items():
        if spec.kind == "category":
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def _synthetic_records(encoder: FieldEncoding, n: int) -> list[dict]:
    """Records spread over what the encoder knows (its categories, around its medians),
    with missing and unseen values, to check the fast engines against sklearn."""
    rng = np.random.default_rng(0)
    records = [{}]
    for _ in range(n - 1):
        record = {}
        for name in encoder.category_fields:
            choices = [*encoder.categories_[name], None, "not seen in training"]
            record[name] = choices[rng.integers(len(choices))]
        for name in encoder.number_fields:
            if rng.random() < 0.15:
                continue
            scale = encoder.medians_[name] or 1.0
            record[name] = float(abs(scale) * rng.lognormal(0.0, 1.0))
        records.append(record)
    return records


# --- Batches ---------------------------------------------------------------------------------


def predict_frame(
    champion: Champion,
    frame: pd.DataFrame,
    source: str = "batch",
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """The input rows, all of them in order, plus `predicted_label`, `proba_A`..`proba_G` and
    `error` (empty when predicted). Rows are checked as ingest checks them (`clean`), then as
    `Champion.predict` checks records; those that fail carry the reason and are not predicted.
    `progress(fraction)` is called as chunks are predicted."""
    import pandas as pd

    from core.ingest import clean  # DuckDB: imported when a batch comes, not at API start

    # clean() checks only the record fields and the label for a prediction: give it those
    # (the other columns are kept as they came), which halves its time on ADEME's 63.
    cleaned = clean(frame[checked_columns(frame.columns)]).reset_index(drop=True)
    columns = {
        name: _object_column(cleaned[name])
        for name, spec in RECORD_FIELDS.items()
        if spec.kind == "category"
    }
    floats = {
        name: cleaned[name].to_numpy(dtype=float, na_value=np.nan)
        for name, spec in RECORD_FIELDS.items()
        if spec.kind != "category"
    }
    errors = _Errors(len(cleaned), initial=cleaned["reject_reason"].to_numpy(dtype=object))
    champion._check(columns, floats, errors, number_checks={})  # clean() did core.schema's
    errors = errors.joined()
    valid = np.flatnonzero(pd.isna(errors))
    inputs = {**columns, **floats}
    proba = np.full((len(cleaned), len(LABELS)), np.nan)
    for start in range(0, len(valid), CHUNK_ROWS):
        rows = valid[start : start + CHUNK_ROWS]
        proba[rows] = champion._columns_proba({name: inputs[name][rows] for name in RECORD_FIELDS})
        if progress:
            progress((start + len(rows)) / len(valid))
    labels = np.full(len(cleaned), None, dtype=object)
    labels[valid] = champion.labels_of(proba[valid])
    result = frame.drop(columns=[c for c in PREDICTION_COLUMNS if c in frame])
    result = result.reset_index(drop=True)
    result["predicted_label"] = labels
    for column, label in enumerate(LABELS):
        result[f"proba_{label}"] = proba[:, column]
    result["error"] = np.where(pd.isna(errors), "", errors)
    champion._log(inputs, lambda: _results(labels, proba, errors), source)
    return result


def checked_columns(columns) -> list[str]:
    """The columns a prediction reads (record fields and the label, by either name)."""
    return [
        column
        for column, name in zip(columns, to_snake_case(columns), strict=True)
        if name in RECORD_FIELDS or name == OFFICIAL_TO_SNAKE[LABEL_COLUMN]
    ]


def predict_csv(
    champion: Champion,
    source: str | Path | bytes,
    target: str | Path,
    name: str | None = None,
    source_tag: str = "batch",
    progress: Callable[[float], None] | None = None,
) -> dict:
    """`predict_frame` on a CSV file (a path or its bytes), written to `target` as
    `write_csv` writes it; returns its `summary`. Only the columns a prediction reads
    become pandas columns: DuckDB copies the others from the input file to the output,
    which takes a third off reading and writing ADEME's 63 columns."""
    from core.ingest import csv_table  # DuckDB: imported when a batch comes
    from core.warehouse import quote

    with csv_table(source, name) as table:
        predicted = predict_frame(
            champion, table.frame(checked_columns(table.columns)), source_tag, progress
        )
        table.connection.register("predictions", _csv_ready(predicted[list(PREDICTION_COLUMNS)]))
        kept = [quote(c) for c in table.columns if c not in PREDICTION_COLUMNS]
        table.query(
            f"COPY (SELECT {', '.join([*kept, 'predictions.*'])} FROM {table.scan} "
            f"POSITIONAL JOIN predictions) TO {_sql_text(target)} (HEADER, DELIMITER ',')"
        )
    return summary(predicted)


def _object_column(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=object, copy=True)
    values[series.isna().to_numpy()] = None
    return values


def _results(labels, proba, errors) -> list[dict]:
    results = []
    for label, row, error in zip(labels, proba.tolist(), errors, strict=True):
        probabilities = None if label is None else dict(zip(LABELS, row, strict=True))
        results.append({"label": label, "probabilities": probabilities, "error": error})
    return results


def summary(predicted: pd.DataFrame) -> dict:
    """{"rows", "predicted", "rejected"} of a `predict_frame` result."""
    rejected = int((predicted["error"] != "").sum())
    return {"rows": len(predicted), "predicted": len(predicted) - rejected, "rejected": rejected}


def write_csv(predicted: pd.DataFrame, path: str | Path) -> None:
    """A `predict_frame` result as CSV: UTF-8, `,`-separated, whatever the input was; floats
    as their shortest exact text; empty cells where nothing was predicted. DuckDB writes it,
    in C++ and threads: pandas' `to_csv` takes 3× as long on 100,000 ADEME rows."""
    import duckdb  # imported here: loaded by the first batch, not at API start up

    with duckdb.connect() as con:
        con.register("predicted", _csv_ready(predicted))
        con.execute(f"COPY predicted TO {_sql_text(path)} (HEADER, DELIMITER ',')")


def _csv_ready(predicted: pd.DataFrame) -> pd.DataFrame:
    """Missing values as DuckDB writes them, empty: NaN would be "nan", "" a quoted ""."""
    import pandas as pd

    out = predicted.copy(deep=False)
    for label in LABELS:
        out[f"proba_{label}"] = pd.array(out[f"proba_{label}"].to_numpy(), dtype="Float64")
    out["error"] = out["error"].replace("", None)
    return out


def _sql_text(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def to_csv_bytes(predicted: pd.DataFrame) -> bytes:
    """`write_csv`, as bytes."""
    with tempfile.TemporaryDirectory(prefix="dpe-predict-") as tmp:
        path = Path(tmp) / "predicted.csv"
        write_csv(predicted, path)
        return path.read_bytes()


# --- Command line ----------------------------------------------------------------------------


def _predict_command(args, settings: Settings) -> dict:
    from core.monitoring import PredictionLogger

    # The logger flushes what is queued at interpreter exit.
    sink = PredictionLogger(settings).log if settings.log_predictions else None
    champion = load_champion(settings, sink=sink)
    log.info("predict: champion version %s, engines %s", champion.model_version, champion.engines)
    started = time.perf_counter()  # the CSV's own time: read, check, predict, write
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    counts = predict_csv(
        champion,
        args.input,
        output,
        source_tag="cli",
        progress=lambda done: log.info("predict: %.0f%%", 100 * done),
    )
    return {
        **counts,
        "model_version": champion.model_version,
        "output": str(output),
        "seconds": round(time.perf_counter() - started, 2),
    }


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="predict the labels of a CSV with the champion")
    parser.add_argument("--input", required=True, help="CSV of records (ADEME or snake_case names)")
    parser.add_argument("--output", required=True, help="CSV to write: input + prediction columns")
    parser.set_defaults(run=_predict_command)
