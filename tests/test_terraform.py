"""deploy/terraform, statically (no provider can be downloaded here, so no `plan`): it is
formatted (`terraform fmt -check`, where terraform is installed), it parses (python-hcl2), and
its names agree with what the rest of the deployment expects: the bucket and namespace of the
overlays, one Secret per workload with the keys that workload reads (the same names compose
gives it, DPE_ ones being settings), the store's prefixes, the S3 policies of MinIO."""

import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest

from core.config import Settings
from core.data.warehouse import SNAPSHOT_DIR
from core.monitoring.prediction_store import PREFIX as PREDICTIONS_DIR
from tests.support.cli import ROOT
from tests.support.topology import load_compose
from tests.test_k8s import K8S, containers, render, secrets_referenced, workloads

TERRAFORM = ROOT / "deploy" / "terraform"
# The compose service whose environment each Secret stands for.
SECRET_SERVICE = {
    "dpe-api": "api",
    "dpe-workbench": "workbench",
    "dpe-sync": "sync",
    "dpe-pipeline": "airflow-scheduler",
    "dpe-mlflow": "mlflow",
}
# What a Secret holds in compose without being a secret there (a fixed user name).
COMPOSE_LITERALS = {"AWS_ACCESS_KEY_ID", "MLFLOW_TRACKING_USERNAME", "MLFLOW_AUTH_ADMIN_USERNAME"}


def production() -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(K8S / "overlays" / "production")}


def unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


def blocks(kind: str) -> dict[str, dict]:
    """Every `kind` block (variable, output, locals...) of the module: {name: body}; a
    resource's name is `type.name`."""
    found: dict[str, dict] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with open(path) as handle:
            parsed = hcl2.load(handle)
        for block in parsed.get(kind, []):
            if kind == "resource":
                for type_, named in block.items():
                    for name, body in named.items():
                        found[f"{unquote(type_)}.{unquote(name)}"] = body
            elif kind == "locals":
                found.update(block)
            else:
                found.update({unquote(name): body for name, body in block.items()})
    return found


def default(variable: str):
    value = blocks("variable")[variable]["default"]
    return unquote(value) if isinstance(value, str) else value


def test_terraform_is_formatted(tmp_path):
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "terraform is not installed: `terraform fmt -check` not run (hcl2 checks below)"
        )
    env = {"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)}
    check = [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)]
    result = subprocess.run(check, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "bad.tf").write_text('variable "x" {\ndefault="y"\n}\n')  # the check can fail
    result = subprocess.run(
        [terraform, "fmt", "-check", str(tmp_path)], capture_output=True, env=env, timeout=60
    )
    assert result.returncode != 0


def test_every_file_parses_and_a_broken_one_does_not(tmp_path):
    assert {"versions.tf", "variables.tf", "outputs.tf"} <= {p.name for p in TERRAFORM.glob("*")}
    assert blocks("resource") and blocks("variable") and blocks("output")
    broken = tmp_path / "broken.tf"
    broken.write_text('resource "aws_s3_bucket" "x" {\n  bucket = \n')
    with pytest.raises(Exception), open(broken) as handle:  # noqa: B017 - any parse error
        hcl2.load(handle)


def test_variables_and_outputs_are_documented():
    for kind in ("variable", "output"):
        for name, body in blocks(kind).items():
            assert len(unquote(body.get("description", ""))) > 20, (kind, name)


def test_bucket_and_namespace_are_the_ones_the_overlays_and_compose_use():
    objects = production()
    config = next(o["data"] for (kind, _), o in objects.items() if kind == "ConfigMap")
    bucket = default("bucket_name")
    assert config["DPE_MODEL_STORE_URI"] == f"s3://{bucket}/store"
    (mlflow,) = containers(objects[("Deployment", "mlflow")])
    command = mlflow["command"]
    assert command[command.index("--artifacts-destination") + 1] == f"s3://{bucket}/mlflow"
    assert {o["metadata"]["namespace"] for o in objects.values()} == {default("namespace")}
    assert f"s3://{bucket}/store" in (ROOT / "docker-compose.yml").read_text()


def secret_keys() -> dict[str, set[str]]:
    """{Secret: its keys}, read from the expressions of `local.workload_secrets`."""
    local = blocks("locals")
    expanded = {
        "local.s3_keys": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "local.mlflow_login": set(local["mlflow_login"]) - {"__is_block__"},
    }
    assert "AWS_SECRET_ACCESS_KEY" in local["s3_keys"]  # what `local.s3_keys` expands to
    keys = {}
    for name, expression in local["workload_secrets"].items():
        if name.startswith("__"):
            continue
        found = set(re.findall(r"\b([A-Z][A-Z0-9_]+) =", expression))
        for reference, names in expanded.items():
            if reference in expression:
                found |= names
        keys[unquote(name)] = found
    return keys


def test_one_secret_per_workload_with_the_keys_compose_gives_it():
    keys = secret_keys()
    referenced = set().union(*(secrets_referenced(w) for w in workloads(production())))
    assert set(keys) == referenced - {"dpe-workbench-auth"}  # that one: the operator's OIDC
    services = load_compose()["services"]
    settings = {f"DPE_{name.upper()}" for name in Settings.model_fields}
    for secret, names in keys.items():
        compose_env = services[SECRET_SERVICE[secret]]["environment"]
        for name in names:
            assert name in compose_env, (secret, name)
            if name not in COMPOSE_LITERALS:  # a secret in compose too: from .env
                assert "${" in str(compose_env[name]), (secret, name)
            if name.startswith("DPE_"):
                assert name in settings, (secret, name)
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= names, secret
    assert "DPE_API_TOKEN" in keys["dpe-api"]
    assert "MLFLOW_BACKEND_STORE_URI" in keys["dpe-mlflow"]
    assert not any(name.startswith("MLFLOW_") for name in keys["dpe-api"])  # never MLflow


def test_the_lifecycle_rules_follow_the_store_layout():
    [lifecycle] = [
        body
        for name, body in blocks("resource").items()
        if name.startswith("aws_s3_bucket_lifecycle_configuration.")
    ]
    rules = {unquote(rule["id"]): rule for rule in lifecycle["rule"]}
    store = Settings(_env_file=None, model_store_uri="s3://dpe/store").store_uri
    prefix = store.removeprefix("s3://dpe/") + "/"

    def rule_prefix(rule: dict) -> str:
        return unquote(rule["filter"][0]["prefix"])

    assert rule_prefix(rules["dataset-snapshots"]) == f"{prefix}{SNAPSHOT_DIR}/"
    assert rule_prefix(rules["prediction-log"]) == f"{prefix}{PREDICTIONS_DIR}/"
    assert default("prediction_log_days") == Settings(_env_file=None).log_retention_days
    # Snapshots are never deleted (a champion's training data may be old): only moved.
    assert "expiration" not in rules["dataset-snapshots"]


def test_each_s3_identity_has_the_policy_of_its_minio_user():
    resources = blocks("resource")
    clients = re.search(r"toset\(\[(.*?)\]\)", str(blocks("locals")["s3_clients"])).group(1)
    names = {unquote(name.strip()) for name in clients.split(",")}
    setup = (ROOT / "deploy" / "minio" / "setup.sh").read_text()
    assert names == set(re.search(r"for client in ([a-z ]+); do", setup).group(1).split())
    policy = resources["aws_iam_group_policy.prefixes"]["policy"]
    assert "/../minio/policies/${each.key}.json" in policy
    for name in names:
        assert (Path(TERRAFORM / ".." / "minio" / "policies" / f"{name}.json")).is_file()
