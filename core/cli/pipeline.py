"""`pipeline` (one lifecycle pass, or --history) and `pipeline-step` (one step, for Airflow)."""

import json

from core.config import Settings
from core.errors import DpeError
from core.lifecycle import pipeline, pipeline_log


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="one lifecycle pass: extract, validate, train, evaluate, gate, monitor"
    )
    parser.add_argument(
        "--source", help="API URL or file (default: DPE_PIPELINE_SOURCE, DPE_SOURCE)"
    )
    parser.add_argument("--history", action="store_true", help="list past passes, newest first")
    parser.set_defaults(run=_pipeline_command)

    parser = subparsers.add_parser(
        "pipeline-step", help="one step of a pass, on the state the step before printed"
    )
    parser.add_argument("step", choices=pipeline.STEPS, help="the step to run")
    parser.add_argument(
        "--input", default="{}", help="the JSON state the step before printed ({} to start)"
    )
    parser.add_argument("--source", help="for extract with no state: the source to read")
    parser.set_defaults(run=_step_command)


def _pipeline_command(args, settings: Settings) -> dict:
    if args.history:
        return {"runs": pipeline_log.history(settings)}
    return pipeline.run_pass(settings, args.source).answer()


def _step_command(args, settings: Settings) -> dict:
    try:
        data = json.loads(args.input)
    except json.JSONDecodeError as error:
        raise DpeError(f"--input is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise DpeError("--input must be a JSON object (the state a step printed)")
    state = (
        pipeline.PassState.from_dict(data)
        if "started" in data
        else pipeline.start(settings, args.source or data.get("source"))
    )
    return pipeline.run_step(settings, args.step, state).answer()
