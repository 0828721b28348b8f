"""The lifecycle pass: new ADEME records to a gated champion, one step function per step.

extract -> validate -> train -> evaluate -> gate_and_promote -> monitor. Each step takes the
settings and the `PassState` the step before returned and returns it completed. After a
final decision (`no_new_data`, `waiting`, `refused_data`) the steps up to `monitor` pass
the state on unchanged; `monitor` records the decision (an MLflow run). Before it trains,
`train` scores the serving champion on the labelled records the pass brought (realised
performance, `core.monitoring.performance`); the gate judges a challenger against the
baseline on its back-test (the mean over windows of records newer than their training),
not one window.

A pass is resumable: its state is saved after every step (`core.lifecycle.pipeline_log`),
and a run finding an unfinished pass (killed, or failed: MLflow down, a timeout) continues
it from the step that did not complete, rather than starting a new one: an extracted
increment is always gated, and a promotion always recorded. The CLI runs the steps in a row
(`run_pass`), the Airflow DAG one task each (`run_step`, `pipeline-step STEP`).

To add a step: a function `(settings, state, progress) -> state` that returns the state
unchanged once `state.decision` is set, its place in `STEP_FUNCTIONS`, the fields it fills
in `PassState`, and its task in dags/dpe_lifecycle.py.
"""

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd

from core.config import Settings
from core.data import ingest, quarantine, sources, warehouse
from core.data.feature_sets import FEATURE_SETS, feature_set
from core.errors import DpeError, NotFound
from core.lifecycle import data_gate, pipeline_log
from core.modeling import evaluate
from core.modeling.models import DEFAULT_MODELS, build_pipeline
from core.progress import Progress, logged, no_progress
from core.tracking.headline import BACKTEST_HEADLINE

log = logging.getLogger(__name__)

RECEPTION = "Date_réception_DPE"  # the API field the watermark filters and sorts on
SEED = 42


@dataclass
class PassState:
    """One pass as it goes: what each step found. JSON-able (`asdict`, `from_dict`)."""

    started: str
    source: str
    pass_id: int | None = None
    status: str = "running"  # running | failed | done
    steps_done: list[str] = field(default_factory=list)
    error: dict | None = None  # the failed step's {"step", "code", "message", "retryable"}
    decision: str | None = None
    dataset_version: str | None = None
    previous_version: str | None = None  # the current version when the pass started
    base_version: str | None = None  # the increment is what the dataset holds beyond it
    added: int = 0
    updated: int = 0
    rejected: int = 0
    quarantined: int = 0
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
    # The serving champion on the labelled records this pass brought, before it retrains
    # (`core.monitoring.performance.Realised`); None without a champion.
    realised: dict | None = None
    champion_before: dict | None = None
    champion_after: dict | None = None
    drift: dict = field(default_factory=lambda: {"flagged": []})
    run_id: str | None = None  # the MLflow run recording the decision
    experiments: dict | None = None  # MLflow experiment ids of the pass and the challenger

    @classmethod
    def from_dict(cls, data: dict) -> "PassState":
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def answer(self) -> dict:
        """The pass as `pipeline --json` prints it."""
        return asdict(self)


def start(settings: Settings, source: str | None = None) -> PassState:
    """A new pass (not yet recorded). Its increment is measured against the dataset version
    the last finished pass decided on (a `waiting` pass's base: its increment accumulates);
    the first pass judges the whole dataset."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    last = pipeline_log.last_done(settings)
    base = None
    if last is not None:
        base = (
            last.get("base_version") if last["decision"] == "waiting" else last["dataset_version"]
        )
    return PassState(
        started=started,
        source=str(source or settings.pipeline_source or settings.source),
        previous_version=warehouse.current_version(settings),
        base_version=base,
    )


# --- 1. extract ---------------------------------------------------------------------------


def watermark(settings: Settings) -> str | None:
    """The newest reception date of the records already ingested, never later than today
    (None before any): a record dated in the future must not stall the next fetches."""
    if warehouse.current_version(settings) is None:
        return None
    with warehouse.connect(settings) as con:
        [(newest,)] = con.execute(
            "SELECT max(date_reception_dpe) FILTER (WHERE date_reception_dpe <= current_date) "
            "FROM dpe"
        ).fetchall()
    return None if newest is None else pd.Timestamp(newest).date().isoformat()


def incremental_url(url: str, since: str | None) -> str:
    """The API URL asking for records received on or after `since`, oldest first (data-fair
    filters `<field>_gte` and `sort`; the day of the watermark is asked again: ingest keeps
    the records it already has unchanged, and a fetch never stops inside a day)."""
    params = {"sort": RECEPTION}
    if since:
        params[f"{RECEPTION}_gte"] = since
    return str(httpx.URL(url).copy_merge_params(params))


def extract(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """Ingest what is new: from the API, records received since the watermark; from a file,
    the records new or changed since the current version. Nothing beyond the base version
    (the increment is measured from the dataset, so an extract run again after a kill
    finds what the first one committed): `no_new_data`."""
    source, mark = state.source, None
    if sources.source_kind(source) == "api":
        mark = watermark(settings)
        ingest.ingest(settings, incremental_url(source, mark), progress=progress)
    elif warehouse.current_version(settings) is None:
        ingest.ingest(settings, source, progress=progress)
    else:
        changes = ingest.preview(settings, source)
        if changes["added"] + changes["updated"]:
            ingest.ingest(settings, source, progress=progress)
    version = warehouse.current_version(settings)
    state = replace(state, dataset_version=version, watermark=mark)
    if version == state.base_version:
        return replace(state, decision="no_new_data")
    return state


# --- 2. validate --------------------------------------------------------------------------


def validate(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """The data gate (`core.lifecycle.data_gate`) on the increment: too small, `waiting`;
    over a limit, `refused_data` with its reasons, the increment quarantined."""
    if state.decision:
        return state
    progress(0.0, "measuring the increment")
    version = _needed(state.dataset_version, "validate", "extract")
    new, before, frame = data_gate.increment(settings, version, state.base_version)
    found = data_gate.counts(new, before)
    state = replace(
        state, added=found["added"], updated=found["updated"], rejected=found["rejected"]
    )
    if len(new) < settings.gate_min_rows:
        why = (
            f"{len(new)} new or changed records since the last pass that decided: the data "
            f"gate judges at least {settings.gate_min_rows} (DPE_GATE_MIN_ROWS); the next pass "
            "judges them with the records that come meanwhile"
        )
        return replace(state, quality={"rows": len(new)}, decision="waiting", reasons=[why])
    measured = data_gate.measure(settings, new, before)
    reasons = data_gate.reasons(settings, measured)
    if len(before):
        progress(0.5, "the rule baseline on the window against its back-test")
        rules = data_gate.rules_drop(settings, frame, before)
        measured["rules_baseline"] = rules
        reasons += data_gate.rules_reason(settings, rules)
    state = replace(state, quality=measured, reasons=reasons)
    if not reasons:
        return state
    pass_id = _needed(state.pass_id, "validate", "start")
    held = quarantine.hold(settings, pass_id, new, reasons, state.base_version)
    return replace(state, decision="refused_data", quarantined=held)


# --- 3. train -----------------------------------------------------------------------------


def realised(settings: Settings, state: PassState) -> PassState:
    """The serving champion scored on the labelled records the pass brought, which it never
    saw, and kept (`dpe performance`, the Monitor page); a score below the champion's
    back-test range is one of the pass's reasons. Nothing without a champion."""
    from core.monitoring import performance
    from core.storage import Store
    from core.tracking import champion_store

    if champion_store.current(Store(settings)) is None:
        return state
    found = performance.score_version(settings, state.dataset_version)
    performance.record(settings, found)
    reasons = state.reasons
    if found["flagged"]:
        reasons = [*reasons, f"the champion's {found['reason']}"]
    return replace(state, realised=dict(found), reasons=reasons)


def train(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """The champion's realised performance on the new records (`realised`); then a
    challenger trained on everything older than the evaluation window (the newest
    `pipeline_window_share` of the labelled records, quarantined ones left out), scored on
    the window, with its back-test and the rules' on the same windows."""
    if state.decision:
        return state
    from core.modeling import train as training  # MLflow and sklearn: only for passes that train

    progress(0.0, "scoring the champion on the new labelled records")
    state = realised(settings, state)

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
    scores = {
        **state.scores,
        "challenger": _headline(result["metrics"]),
        "challenger_backtest": _backtest(result["metrics"], ""),
        "rules_backtest": _backtest(result["metrics"], "rules_"),
    }
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


def _backtest(found: dict, who: str) -> dict | None:
    """A run's back-test headline, flat: `name` (the mean over the windows), `name_min`,
    `name_max`; `who` "rules_" for the rules on the same windows. None without a back-test."""
    keys = [name + end for name in BACKTEST_HEADLINE for end in ("", "_min", "_max")]
    return {
        key: found[f"backtest_{who}{key}"] for key in keys if f"backtest_{who}{key}" in found
    } or None


# --- 4. evaluate --------------------------------------------------------------------------


def window_rows(settings: Settings, state: PassState, features: str):
    """The training rows and the window rows of the pass, with `features`' fields (the same
    records whatever the feature set: the split depends on the labels and dates only)."""
    from core.modeling.train import held_out

    _, frame = warehouse.load_dataset(settings, state.dataset_version)
    frame = quarantine.for_training(settings, frame)
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
    challenger: dict,
    champion: dict | None,
    baseline: dict,
    metric: str,
    margin: float,
    challenger_backtest: dict | None = None,
    rules_backtest: dict | None = None,
) -> tuple[str, str]:
    """The decision, and why: promote only a challenger that beats the baseline and, when
    there is a champion, beats it on the window by at least `margin`. Against the baseline,
    the challenger's back-test mean when it has one for `metric` (records newer than their
    training, over several windows; the rules scored on the same windows), else the window."""
    if margin < 0:
        raise DpeError(f"the gate margin must be >= 0, not {margin}")
    if (
        challenger_backtest
        and rules_backtest
        and metric in challenger_backtest.keys() & rules_backtest.keys()
    ):
        score, rules = challenger_backtest[metric], rules_backtest[metric]
        low, high = challenger_backtest[f"{metric}_min"], challenger_backtest[f"{metric}_max"]
        shown = f"back-test {metric} {score:.4f} ({low:.4f}–{high:.4f})"
    else:
        score, rules = challenger[metric], baseline[metric]
        shown = f"{metric} {score:.4f}"
    if not score > rules:
        return "kept", f"challenger {shown} does not beat the baseline's {rules:.4f}"
    if champion is None:
        return "first_champion", f"no champion yet; challenger {shown} > baseline {rules:.4f}"
    score, held = challenger[metric], champion[metric]
    if score > held and score >= held + margin:
        return (
            "promoted",
            f"challenger {metric} {score:.4f} >= champion {held:.4f} + margin {margin}",
        )
    return "kept", f"challenger {metric} {score:.4f} < champion {held:.4f} + margin {margin}"


def gate_and_promote(
    settings: Settings, state: PassState, progress: Progress = no_progress
) -> PassState:
    """Decide on the scores; promote the challenger on `first_champion` or `promoted`
    (run again after a kill, the same scores give the same decision, and promoting the
    same run again reuses its registry version)."""
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
        state.scores.get("challenger_backtest"),
        state.scores.get("rules_backtest"),
    )
    after = state.champion_before
    if decision in ("first_champion", "promoted"):
        progress(0.5, f"promoting run {run_id}")
        promoted = registry.promote(settings, run_id)
        after = {"run_id": promoted["run_id"], "model_version": promoted["model_version"]}
    return replace(state, decision=decision, reasons=[*state.reasons, why], champion_after=after)


# --- 6. monitor ---------------------------------------------------------------------------


def monitor(settings: Settings, state: PassState, progress: Progress = no_progress) -> PassState:
    """The drift of the increment against the champion's training data; then the decision
    is recorded as an MLflow run (the drift report with it)."""
    from core.monitoring.drift import drift_report
    from core.storage import Store
    from core.tracking import champion_store

    report = None
    quiet = ("no_new_data", "waiting")
    if state.decision not in quiet and champion_store.current(Store(settings)) is not None:
        progress(0.0, "drift of the increment")
        report = drift_report(settings, dataset_version=state.dataset_version)
    drift = {
        "flagged": report["drifting_features"] if report else [],
        "verdict": report["verdict"] if report else None,
    }
    state = replace(state, drift=drift)
    run_id, experiments = pipeline_log.log_decision(settings, state.answer(), report)
    return replace(state, run_id=run_id, experiments=experiments)


def _needed(value: Any, step: str, before: str) -> Any:
    """A value an earlier step set; a step run out of order says which one it needs."""
    if value is None:
        raise DpeError(f"pipeline step {step} needs the state the {before} step recorded")
    return value


STEP_FUNCTIONS = {
    "extract": extract,
    "validate": validate,
    "train": train,
    "evaluate": evaluate_models,
    "gate_and_promote": gate_and_promote,
    "monitor": monitor,
}
STEPS = tuple(STEP_FUNCTIONS)


# --- Running passes, resumably ------------------------------------------------------------


def open_pass(settings: Settings, source: str | None = None) -> PassState:
    """The unfinished pass, to continue (a `source` given replaces its own while its
    extract has not completed); else a new pass, recorded. Hold the pass lock."""
    found = pipeline_log.unfinished(settings)
    if found is None:
        state = start(settings, source)
        return replace(state, pass_id=pipeline_log.begin(settings, state.answer()))
    state = PassState.from_dict(found)
    if source and "extract" not in state.steps_done:
        state = replace(state, source=str(source))
    done = state.steps_done[-1] if state.steps_done else "its start"
    log.info("continuing pass %s (%s after %s)", state.pass_id, state.status, done)
    return replace(state, status="running", error=None)


def recorded_pass(settings: Settings, pass_id: int | None) -> PassState:
    """Pass `pass_id`, or the unfinished one when None."""
    found = (
        pipeline_log.unfinished(settings)
        if pass_id is None
        else pipeline_log.get(settings, pass_id)
    )
    if found is None:
        raise NotFound(f"no pass {pass_id}" if pass_id is not None else "no unfinished pass")
    return PassState.from_dict(found)


def run_step(
    settings: Settings, step: str, state: PassState, progress: Progress | None = None
) -> PassState:
    """Run `step` on a recorded pass unless it already ran; record the state after it, or
    the failure (then raised again)."""
    if step not in STEP_FUNCTIONS:
        raise DpeError(f"unknown pipeline step {step!r}: one of {', '.join(STEP_FUNCTIONS)}")
    if step in state.steps_done:
        return state
    position = STEPS.index(step)
    if position and STEPS[position - 1] not in state.steps_done:
        raise DpeError(f"pass {state.pass_id} has not completed step {STEPS[position - 1]}")
    # core.modeling.train logs its own progress: logged again here, each line would show twice.
    reported = progress or no_progress if step == "train" else logged(step, progress, log)
    try:
        state = STEP_FUNCTIONS[step](settings, state, reported)
    except Exception as error:
        try:
            pipeline_log.save(settings, asdict(_failed(state, step, error)))
        except Exception:  # never hide why the step failed
            log.exception("pass %s: its failure could not be recorded", state.pass_id)
        raise
    finished = step == STEPS[-1]
    state = replace(
        state,
        steps_done=[*state.steps_done, step],
        status="done" if finished else "running",
        error=None,
    )
    pipeline_log.save(settings, state.answer())
    return state


def _failed(state: PassState, step: str, error: Exception) -> PassState:
    kind = error if isinstance(error, DpeError) else None
    found = {
        "step": step,
        "code": kind.code if kind else "internal",
        "message": str(error) if kind else f"{type(error).__name__}: {error}",
        "retryable": bool(kind and kind.retryable),
    }
    return replace(state, status="failed", error=found)


def run_pass(
    settings: Settings, source: str | None = None, progress: Progress | None = None
) -> PassState:
    """One lifecycle pass, every step in a row (continuing an unfinished pass first);
    `progress` follows the whole pass."""
    with pipeline_log.one_pass_at_a_time(settings):
        state = open_pass(settings, source)
        for number, step in enumerate(STEPS):

            def step_progress(fraction: float, message: str, number=number, step=step) -> None:
                if progress is not None:
                    progress((number + fraction) / len(STEPS), f"{step}: {message}")

            state = run_step(settings, step, state, step_progress)
    return state
