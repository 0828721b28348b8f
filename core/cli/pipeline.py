"""`pipeline` (one lifecycle pass; --history, --last, --accept) and `pipeline-step` (one
step of a pass, what each Airflow task runs)."""

import getpass

from core.config import Settings
from core.data import quarantine
from core.errors import NotFound
from core.lifecycle import pipeline, pipeline_log


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="one lifecycle pass: extract, validate, train, evaluate, gate, monitor "
        "(an unfinished pass is continued first)",
    )
    parser.add_argument(
        "--source", help="API URL or file (default: DPE_PIPELINE_SOURCE, DPE_SOURCE)"
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--history", action="store_true", help="list past passes, newest first")
    shown.add_argument("--last", action="store_true", help="the newest pass and its decision")
    shown.add_argument(
        "--accept",
        type=int,
        metavar="PASS_ID",
        help="release the records pass PASS_ID refused (quarantined) to training",
    )
    parser.add_argument(
        "--by", help="with --accept: who accepts (recorded; default: your user name)"
    )
    parser.set_defaults(run=_pipeline_command)

    parser = subparsers.add_parser(
        "pipeline-step",
        help="one step of a pass (extract opens the unfinished pass, or a new one)",
    )
    parser.add_argument("step", choices=pipeline.STEPS, help="the step to run")
    parser.add_argument(
        "--pass",
        dest="pass_id",
        type=int,
        help="the pass (default: the unfinished one; extract starts one if there is none)",
    )
    parser.add_argument("--source", help="for extract: the source to read")
    parser.set_defaults(run=_step_command)


def _pipeline_command(args, settings: Settings) -> dict:
    if args.history:
        return {"runs": pipeline_log.history(settings)}
    if args.last:
        last = pipeline_log.history(settings, limit=1)
        if not last:
            raise NotFound("no lifecycle pass yet: `python -m core pipeline` runs one")
        return _summary(last[0])
    if args.accept is not None:
        return quarantine.accept(settings, args.accept, args.by or getpass.getuser())
    return pipeline.run_pass(settings, args.source).answer()


def _summary(found: dict) -> dict:
    """What `make pipeline` prints at the end: one sentence, then the pass's facts."""
    error = found.get("error")
    if found.get("status") == "failed" and error:
        retry = "trying again later may work" if error.get("retryable") else "not retryable"
        said = f"failed at step {error['step']}: {error['message']} ({retry})"
    elif found.get("status") == "running":
        said = "unfinished (stopped, or still running): the next run continues it"
    else:
        reasons = found.get("reasons") or []
        said = f"decided {found.get('decision')}" + (": " + "; ".join(reasons) if reasons else "")
    keys = ("pass_id", "status", "decision", "dataset_version", "added", "updated", "rejected")
    return {
        "summary": f"pass {found.get('pass_id')} {said}",
        **{key: found.get(key) for key in keys},
        "reasons": found.get("reasons") or [],
        "error": error,
    }


def _step_command(args, settings: Settings) -> dict:
    with pipeline_log.one_pass_at_a_time(settings):
        if args.step == pipeline.STEPS[0] and args.pass_id is None:
            state = pipeline.open_pass(settings, args.source)
        else:
            state = pipeline.recorded_pass(settings, args.pass_id)
        return pipeline.run_step(settings, args.step, state).answer()
