"""The lifecycle pass: new ADEME records to a gated champion, one step function per step.

extract -> validate -> train -> evaluate -> gate_and_promote -> monitor. Each step takes the
settings and the `PassState` the step before returned and returns it completed; the CLI runs
them in a row, the Airflow DAG one task each (`pipeline-step STEP`, the state as JSON). After
a final decision (`no_new_data`, `refused_data`) a step passes the state on unchanged;
`monitor` records every pass (`core.lifecycle.pipeline_log`).
"""

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import httpx
import pandas as pd

from core.config import Settings
from core.data import ingest, sources, warehouse
from core.data.feature_sets import FEATURE_SETS, feature_set
from core.data.schema import LABELS, RECORD_FIELDS
from core.errors import DpeError
from core.lifecycle import pipeline_log
from core.modeling import evaluate
from core.modeling.models import DEFAULT_MODELS, build_pipeline
from core.progress import Progress, logged, no_progress

log = logging.getLogger(__name__)

STEPS = ("extract", "validate", "train", "evaluate", "gate_and_promote", "monitor")
RECEPTION = "Date_réception_DPE"  # the API field the watermark filters and sorts on
SEED = 42


@dataclass
class PassState:
    """One pass as it goes: what each step found. JSON-able (`asdict`, `from_dict`)."""

    started: str
    source: str
    decision: str | None = None
    dataset_version: str | None = None
    previous_version: str | None = None
    added: int = 0
    updated: int = 0
    rejected: int = 0
    watermark: str | None = None
    quality: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    feature_set: str | None = None
    model: str | None = None
    baseline: str | None = None
    window: dict | None = None
    scores: dict = field(
        default_factory=lambda: {"challenger": None, "champion": None, "rules": None}
    )
    challenger_run_id: str | None = None
    champion_before: dict | None = None
    champion_after: dict | None = None
    drift: dict = field(default_factory=lambda: {"flagged": []})
    run_id: str | None = None  # the MLflow run recording the decision

    @classmethod
    def from_dict(cls, data: dict) -> "PassState":
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def answer(self) -> dict:
        """The pass as `pipeline --json` prints it (the issue's keys first)."""
        return asdict(self)


def start(settings: Settings, source: str | None = None) -> PassState:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    return PassState(
        started=started, source=str(source or settings.pipeline_source or settings.source)
    )


# --- 1. extract ---------------------------------------------------------------------------


def watermark(settings: Settings) -> str | None:
    """The newest reception date of the records already ingested (None before any)."""
    if warehouse.current_version(settings) is None:
        return None
    with warehouse.connect(settings) as con:
        [(newest,)] = con.execute("SELECT max(date_reception_dpe) FROM dpe").fetchall()
    return None if newest is None else pd.Timestamp(newest).date().isoformat()


def incremental_url(url: str, since: str | None) -> str:
    """The API URL asking for records received on or after `since`, oldest first (data-fair
    filters `<field>_gte` and `sort`; the day of the watermark is asked again: ingest keeps
    the records it already has unchanged)."""
    params = {"sort": RECEPTION}
    if since:
        params[f"{RECEPTION}_gte"] = since
    return str(httpx.URL(url).copy_merge_params(params))


def extract(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """Ingest what is new: from the API, records received since the watermark; from a file,
    the records new or changed since the current version. Nothing new: `no_new_data`."""
    previous = warehouse.current_version(settings)
    source, mark = state.source, None
    if sources.source_kind(source) == "api":
        mark = watermark(settings)
        source = incremental_url(source, mark)
    elif previous is not None:
        changes = ingest.preview(settings, source)
        if changes["added"] + changes["updated"] == 0:
            return replace(
                state, decision="no_new_data", dataset_version=previous, previous_version=previous
            )
    result = ingest.ingest(settings, source, progress=progress)
    state = replace(
        state,
        dataset_version=result["dataset_version"],
        previous_version=previous,
        added=result["added"],
        updated=result["updated"],
        watermark=mark,
    )
    if result["added"] + result["updated"] == 0:
        return replace(state, decision="no_new_data")
    return state


# --- 2. validate --------------------------------------------------------------------------


def increment(settings: Settings, state: PassState) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The records this pass added or changed, and the ones there were before it."""
    _, frame = warehouse.load_dataset(settings, state.dataset_version)
    if state.previous_version is None:
        return frame, frame.iloc[0:0]
    _, before = warehouse.load_dataset(settings, state.previous_version)
    merged = frame.merge(before, how="left", indicator=True)
    return frame[(merged["_merge"] == "left_only").to_numpy()].reset_index(drop=True), before


def quality(new: pd.DataFrame, before: pd.DataFrame) -> dict:
    """Shares of the increment's rows: rejected (and the rejected rows per code), unlabelled,
    holding a placeholder, holding a category never seen before; and the record fields it
    leaves empty that were filled."""
    rows = len(new)
    if rows == 0:
        return {"rows": 0}
    unseen = pd.Series(False, index=new.index)
    if len(before):
        for name, spec in RECORD_FIELDS.items():
            if spec.kind == "category":
                known = set(before[name].dropna())
                unseen |= new[name].notna() & ~new[name].isin(known)
    emptied = [
        name
        for name in RECORD_FIELDS
        if len(before) and new[name].isna().all() and before[name].notna().any()
    ]
    return {
        "rows": rows,
        "rejected_share": float(new["reject_reason"].notna().mean()),
        "rejected_by_code": rejected_by_code(new),
        "unlabelled_share": float((~new["etiquette_dpe"].isin(LABELS)).mean()),
        "placeholder_share": float((new["surface_placeholder"] | new["conso_placeholder"]).mean()),
        "new_category_share": float(unseen.mean()),
        "missing_fields": emptied,
    }


def rejected_by_code(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per rejection code (a row counts once under each of its codes), most first;
    empty for a snapshot from before codes."""
    if "reject_code" not in frame:
        return {}
    codes = frame["reject_code"].dropna().str.split("|").map(set).explode()
    return {str(code): int(n) for code, n in codes.value_counts().items()}


def quality_reasons(settings: Settings, measured: dict) -> list[str]:
    """Why the increment is refused (empty when it passes the data gate)."""
    limits = {
        "rejected_share": ("records rejected by validation", settings.gate_max_rejected_share),
        "unlabelled_share": ("records without a label A-G", settings.gate_max_unlabelled_share),
        "placeholder_share": ("records holding a placeholder", settings.gate_max_placeholder_share),
        "new_category_share": (
            "records with a category never seen",
            settings.gate_max_new_category_share,
        ),
    }
    reasons = [
        f"{measured[key]:.0%} {what} (limit {limit:.0%})"
        for key, (what, limit) in limits.items()
        if measured.get(key, 0) > limit
    ]
    by_code = measured.get("rejected_by_code")
    if by_code and measured.get("rejected_share", 0) > settings.gate_max_rejected_share:
        # The first limit's reason: how many rows each code rejected.
        reasons[0] += ": " + ", ".join(f"{code} {n}" for code, n in by_code.items())
    if measured.get("missing_fields"):
        reasons.append(f"fields empty in every new record: {', '.join(measured['missing_fields'])}")
    return reasons


def validate(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """The data gate on the increment: over a limit, `refused_data` with its reasons."""
    if state.decision:
        return state
    progress(0.0, "measuring the increment")
    new, before = increment(settings, state)
    measured = quality(new, before)
    rejected = int(new["reject_reason"].notna().sum())
    reasons = quality_reasons(settings, measured)
    decision = "refused_data" if reasons else None
    return replace(state, quality=measured, rejected=rejected, reasons=reasons, decision=decision)


# --- 3. train -----------------------------------------------------------------------------


def train(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """A challenger trained on everything older than the evaluation window (the newest
    `pipeline_window_share` of the labelled records), scored on the window."""
    if state.decision:
        return state
    from core.modeling import train as training  # MLflow and sklearn: only for passes that train

    features = feature_set(settings.pipeline_features).name
    model = settings.pipeline_model or DEFAULT_MODELS[features]
    result = training.train(
        settings,
        features,
        model,
        search=settings.pipeline_search,
        dataset_version=state.dataset_version,
        progress=progress,
        seed=SEED,
        test_size=settings.pipeline_window_share,
        split="time",
    )
    window = {"from": result["test_from"], "to": result["test_to"], "rows": result["test_rows"]}
    scores = {**state.scores, "challenger": _headline(result["metrics"])}
    return replace(
        state,
        feature_set=features,
        model=model,
        window=window,
        scores=scores,
        challenger_run_id=result["run_id"],
    )


def _headline(found: dict) -> dict:
    return {name: found[name] for name in evaluate.HEADLINE if name in found}


# --- 4. evaluate --------------------------------------------------------------------------


def window_rows(settings: Settings, state: PassState, features: str):
    """The training rows and the window rows of the pass, with `features`' fields (the same
    records whatever the feature set: the split depends on the labels and dates only)."""
    from core.modeling.train import held_out

    _, frame = warehouse.load_dataset(settings, state.dataset_version)
    return held_out(frame, features, "time", settings.pipeline_window_share, SEED)


def evaluate_models(
    settings: Settings, state: PassState, progress: Progress = no_progress
) -> PassState:
    """The current champion and the challenger's baseline scored on the challenger's window."""
    if state.decision:
        return state
    from core.serving.champion import load_champion
    from core.storage import Store
    from core.tracking import champion_store

    progress(0.0, "scoring the champion and the baseline on the window")
    features = _needed(state.feature_set, "evaluate", "train")
    baseline = FEATURE_SETS[features].baseline
    held = window_rows(settings, state, features)
    if baseline == "rules":
        reference = build_pipeline("rules", features).fit(held.X_train, held.y_train)
    else:
        from sklearn.dummy import DummyClassifier

        reference = DummyClassifier(strategy="most_frequent").fit(held.X_train, held.y_train)
    scores = {
        **state.scores,
        "rules": _headline(evaluate.model_metrics(reference, held.X_test, held.y_test)),
    }
    manifest = champion_store.current(Store(settings))
    before = None
    if manifest is not None:
        champion = load_champion(settings, manifest)
        seen = window_rows(settings, state, manifest.feature_set or features)
        scores["champion"] = _headline(
            evaluate.model_metrics(champion.pipeline, seen.X_test, seen.y_test)
        )
        before = {"run_id": manifest.run_id, "model_version": manifest.model_version}
    return replace(state, scores=scores, baseline=baseline, champion_before=before)


# --- 5. gate and promote ------------------------------------------------------------------


def gate(
    challenger: dict, champion: dict | None, baseline: dict, metric: str, margin: float
) -> tuple[str, str]:
    """The decision on the window's scores, and why: promote only a challenger that beats
    the baseline and, when there is a champion, beats it by at least `margin`."""
    if margin < 0:
        raise DpeError(f"the gate margin must be >= 0, not {margin}")
    score, rules = challenger[metric], baseline[metric]
    if not score > rules:
        return "kept", f"challenger {metric} {score:.4f} does not beat the baseline's {rules:.4f}"
    if champion is None:
        return (
            "first_champion",
            f"no champion yet; challenger {metric} {score:.4f} > baseline {rules:.4f}",
        )
    held = champion[metric]
    if score > held and score >= held + margin:
        return (
            "promoted",
            f"challenger {metric} {score:.4f} >= champion {held:.4f} + margin {margin}",
        )
    return "kept", f"challenger {metric} {score:.4f} < champion {held:.4f} + margin {margin}"


def gate_and_promote(
    settings: Settings, state: PassState, progress: Progress = no_progress
) -> PassState:
    """Decide on the scores; promote the challenger on `first_champion` or `promoted`."""
    if state.decision:
        return state
    from core.tracking import registry

    run_id = _needed(state.challenger_run_id, "gate_and_promote", "evaluate")
    decision, why = gate(
        state.scores["challenger"],
        state.scores["champion"],
        state.scores["rules"],
        settings.gate_metric,
        settings.gate_margin,
    )
    after = state.champion_before
    if decision in ("first_champion", "promoted"):
        progress(0.5, f"promoting run {run_id}")
        promoted = registry.promote(settings, run_id)
        after = {"run_id": promoted["run_id"], "model_version": promoted["model_version"]}
    return replace(state, decision=decision, reasons=[*state.reasons, why], champion_after=after)


# --- 6. monitor ---------------------------------------------------------------------------


def monitor(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """The drift of the increment against the champion's training data; then the pass is
    recorded (an MLflow run and a `pipeline_runs` row, the drift report with them)."""
    from core.monitoring.drift import drift_report
    from core.storage import Store
    from core.tracking import champion_store

    report = None
    if state.decision != "no_new_data" and champion_store.current(Store(settings)) is not None:
        progress(0.0, "drift of the increment")
        report = drift_report(settings, dataset_version=state.dataset_version)
    drift = {
        "flagged": report["drifting_features"] if report else [],
        "verdict": report["verdict"] if report else None,
    }
    state = replace(state, drift=drift)
    return replace(state, run_id=pipeline_log.record(settings, state.answer(), report))


def _needed(value: str | None, step: str, before: str) -> str:
    """A value an earlier step set; a step run out of order says which one it needs."""
    if value is None:
        raise DpeError(f"pipeline step {step} needs the state the {before} step printed")
    return value


STEP_FUNCTIONS = {
    "extract": extract,
    "validate": validate,
    "train": train,
    "evaluate": evaluate_models,
    "gate_and_promote": gate_and_promote,
    "monitor": monitor,
}


def run_step(
    settings: Settings, step: str, state: PassState, progress: Progress | None = None
) -> PassState:
    if step not in STEP_FUNCTIONS:
        raise DpeError(f"unknown pipeline step {step!r}: one of {', '.join(STEP_FUNCTIONS)}")
    # core.modeling.train logs its own progress: logged again here, each line would show twice.
    reported = progress or no_progress if step == "train" else logged(step, progress, log)
    return STEP_FUNCTIONS[step](settings, state, reported)


def run_pass(
    settings: Settings, source: str | None = None, progress: Progress | None = None
) -> PassState:
    """One lifecycle pass, every step in a row; `progress` follows the whole pass."""
    state = start(settings, source)
    for number, step in enumerate(STEP_FUNCTIONS):

        def step_progress(fraction: float, message: str, number=number, step=step) -> None:
            if progress is not None:
                progress((number + fraction) / len(STEP_FUNCTIONS), f"{step}: {message}")

        state = run_step(settings, step, state, step_progress)
    return state
