"""Small data helpers of the workbench pages that belong to no pipeline step: the rejection
report of a predicted batch, what the official scale says of a consumption, and the
champion's input form. Pages stay widgets and charts; this is the logic they show."""

import numpy as np
import pandas as pd

from core.data.schema import LABELS, RECORD_FIELDS, SNAKE_TO_OFFICIAL
from core.data.validation import CODE_SEPARATOR, ERROR_CODES, field_rules, number_message
from core.modeling import scales


def rejection_report(predicted: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From a `core.serving.batch.predict_frame` result: (rows rejected per code, rejected rows).

    A row may have several problems (codes "a|b"): it counts once under each of its codes.
    Each code comes with its meaning (`ERROR_CODES`) and an example: the error of a row
    rejected for that problem alone, when there is one. Rows are numbered from 1 as in a
    spreadsheet, the header being row 0.
    """
    codes = predicted["error_code"].fillna("")
    rejected = predicted.loc[codes != ""]
    listed = rejected["error_code"].str.split(CODE_SEPARATOR)
    problems = (
        pd.DataFrame({"code": listed, "alone": listed.str.len() == 1, "example": rejected["error"]})
        .explode("code")
        .rename_axis("row")
        .reset_index()
        .drop_duplicates(["row", "code"])
        .sort_values("alone", ascending=False, kind="stable")
    )
    by_code = (
        problems.groupby("code", sort=False)
        .agg(rows=("row", "size"), example=("example", "first"))
        .sort_values("rows", ascending=False, kind="stable")
        .reset_index()
    )
    by_code.insert(1, "meaning", by_code["code"].map(ERROR_CODES))
    id_column = next((c for c in ("N°DPE", "n_dpe") if c in predicted), None)
    rows = pd.DataFrame({"row": rejected.index + 1})
    if id_column:
        rows[id_column] = rejected[id_column].to_numpy()
    rows["error"] = rejected["error"].to_numpy()
    rows["error_code"] = rejected["error_code"].to_numpy()
    return by_code, rows


def label_counts(predicted: pd.DataFrame) -> pd.DataFrame:
    """Predicted rows per label, A–G in order (labels never predicted count 0)."""
    counts = predicted["predicted_label"].dropna().value_counts()
    return pd.DataFrame({"label": list(LABELS), "records": [int(counts.get(x, 0)) for x in LABELS]})


def official_answer(secteur: str | None, conso: float | None) -> dict | None:
    """What the regulation says of a consumption: the scale of the sector, the label it
    gives, the class bounds, and how far the consumption is above the next better class."""
    if conso is None:
        return None
    family = scales.family_for_sector(secteur)
    label = scales.label_for(float(conso), family)
    bounds = scales.SCALES[("energie", family)]
    distance = scales.distance_to_better_class(float(conso), family)
    better = None if label in (None, "A") else LABELS[LABELS.index(label) - 1]
    return {
        "family": family,
        "family_text": scales.FAMILIES[family][0],
        "source": scales.FAMILIES[family][1],
        "label": label,
        "bounds": bounds,
        "better_label": better,
        "better_bound": None if better is None else bounds[LABELS.index(better)],
        "distance": distance,
    }


def out_of_bounds(name: str, value: float | None) -> str | None:
    """Why a number given for record field `name` is not valid (core's words:
    `Conso_kWhep/m²/an=-1 must be >= 0`), or None."""
    if value is None:
        return None
    for rule in field_rules(name):
        if rule.fails(np.array([float(value)]))[0]:
            return number_message(RECORD_FIELDS[name].official, float(value), rule.text)
    return None


def form_fields(input_schema: list[dict]) -> list[dict]:
    """The champion's input schema as form fields: name, label, kind, unit, bounds, choices."""
    fields = []
    for entry in input_schema:
        name = entry["name"]
        spec = RECORD_FIELDS.get(name)
        kind = spec.kind if spec else ("category" if entry.get("type") == "string" else "number")
        unit = entry.get("unit") or (spec.unit if spec else None)
        low = entry.get("min", spec.min if spec else None)
        high = entry.get("max", spec.max if spec else None)
        fields.append(
            {
                "name": name,
                "label": (spec.description if spec else name) + (f" ({unit})" if unit else ""),
                "official": SNAKE_TO_OFFICIAL.get(name, name),
                "kind": kind,
                "unit": unit,
                "min": low,
                "max": high,
                "min_exclusive": bool(spec and spec.min_exclusive),
                "choices": entry.get("categories"),
                "required": bool(entry.get("required")),
            }
        )
    return fields


# --- MLflow runs, as the Train and Compare pages show them ---------------------------------

CONFUSION_ARTIFACT = "figures/confusion_matrix.png"
CONFUSION_DATA = "confusion_matrix.json"
IMPORTANCE_ARTIFACT = "field_importance.json"
PER_CLASS_METRICS = ("f1", "precision", "recall")


def experiments(settings) -> list[str]:
    """Names of the MLflow experiments that hold runs, the configured one first."""
    from core.tracking import registry

    client = registry.connect(settings)
    with registry.mlflow_errors(settings):
        names = [e.name for e in client.search_experiments() if e.name != "Default"]
    others = sorted(name for name in names if name != settings.experiment_name)
    return [settings.experiment_name, *others]


def run_view(settings, run_id: str) -> dict:
    """`core.tracking.registry.run_details` plus what the Train page draws: the experiment id (for
    the MLflow UI link), the field importance and the confusion matrix: `confusion`
    ({"labels", "counts"}, None for runs older than that artifact) and its figure."""
    import json
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow.exceptions import MlflowException

    from core.tracking import registry

    details = registry.run_details(settings, run_id)
    client = registry.connect(settings)
    with registry.mlflow_errors(settings):
        details["experiment_id"] = client.get_run(run_id).info.experiment_id
        with tempfile.TemporaryDirectory() as tmp:
            found = {}
            for name in (IMPORTANCE_ARTIFACT, CONFUSION_DATA, CONFUSION_ARTIFACT):
                try:
                    path = mlflow.artifacts.download_artifacts(
                        run_id=run_id,
                        artifact_path=name,
                        dst_path=tmp,
                        tracking_uri=settings.tracking_uri,
                    )
                except (MlflowException, OSError):
                    continue  # an older run without this artifact: nothing to draw
                found[name] = Path(path).read_bytes()
    importance = found.get(IMPORTANCE_ARTIFACT)
    details["importance"] = (
        None
        if importance is None
        else pd.Series(json.loads(importance), name="importance")
        .sort_values(ascending=False)
        .rename_axis("feature")
        .reset_index()
    )
    confusion = found.get(CONFUSION_DATA)
    details["confusion"] = None if confusion is None else json.loads(confusion)
    details["confusion_png"] = found.get(CONFUSION_ARTIFACT)
    return details


def compare_runs(settings, run_ids: list[str]) -> dict:
    """Runs side by side: headline metrics (one row per run), per-class metrics (long:
    run, label, metric, value) and parameters (one column per run)."""
    from core.tracking import registry
    from core.tracking.headline import HEADLINE

    details = [registry.run_details(settings, run_id) for run_id in run_ids]
    names = [f"{d['model']} · {d['features']} · {d['run_id'][:8]}" for d in details]
    metrics = pd.DataFrame(
        [{"run": name, **d["metrics"]} for name, d in zip(names, details, strict=True)],
        columns=["run", *HEADLINE],
    )
    per_class = pd.DataFrame(
        [
            {"run": name, "label": label, "metric": metric, "value": values[metric]}
            for name, d in zip(names, details, strict=True)
            for label, values in d["per_class"].items()
            for metric in PER_CLASS_METRICS
        ],
        columns=["run", "label", "metric", "value"],
    )
    params = pd.DataFrame({name: d["params"] for name, d in zip(names, details, strict=True)})
    return {"metrics": metrics, "per_class": per_class, "params": params.sort_index()}
