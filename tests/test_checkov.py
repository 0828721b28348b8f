"""checkov (its own environment, .venv-checkov: `make checkov-install`) over what is deployed:
the Dockerfiles, both rendered Kubernetes overlays, the Terraform module, and a secrets scan
of the compose file and deploy/ (checkov has no compose policies: tests/test_deploy.py checks
the compose hardening). Zero failed checks; every skip is annotated where it is made, with
why. The summary per framework is printed (pytest -s, or `make lint-deploy`)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import ROOT
from tests.test_k8s import K8S

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
FRAMEWORKS = ("dockerfile", "kubernetes", "terraform", "secrets")


def scan_tree(destination: Path) -> Path:
    """What checkov reads, laid out in one folder: the Dockerfiles, the overlays as kubectl
    renders them, the Terraform module (with the MinIO policies it reads), compose, deploy/."""
    kubectl = ROOT / ".venv" / "bin" / "kubectl"
    (destination / "k8s").mkdir(parents=True)
    for overlay in ("local", "production"):
        rendered = subprocess.run(
            [str(kubectl), "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        (destination / "k8s" / f"{overlay}.yaml").write_text(rendered)
    shutil.copy(ROOT / "Dockerfile", destination / "Dockerfile")
    (destination / "airflow").mkdir()
    shutil.copy(ROOT / "deploy" / "airflow" / "Dockerfile", destination / "airflow" / "Dockerfile")
    shutil.copytree(ROOT / "deploy" / "terraform", destination / "deploy" / "terraform")
    shutil.copytree(ROOT / "deploy" / "minio", destination / "deploy" / "minio")
    shutil.copytree(ROOT / "deploy" / "postgres", destination / "deploy" / "postgres")
    shutil.copy(ROOT / "docker-compose.yml", destination / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", destination / "env.example")
    return destination


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    """checkov's JSON report per framework, from one run over the scan tree."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: `make checkov-install` makes it")
    tree = scan_tree(tmp_path_factory.mktemp("checkov"))
    command = [str(CHECKOV), "-d", str(tree), "--framework", *FRAMEWORKS, "--output", "json"]
    command += ["--skip-download", "--compact"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tree)
    assert result.stdout.strip(), result.stderr[-3000:]
    parsed = json.loads(result.stdout)
    found = {
        report["check_type"]: report
        for report in (parsed if isinstance(parsed, list) else [parsed])
    }
    for framework in FRAMEWORKS:
        report = found.get(framework, {"results": {}})
        summary = report.get("summary", {})
        print(
            f"checkov {framework}: {summary.get('passed', 0)} passed, "
            f"{summary.get('failed', 0)} failed, {summary.get('skipped', 0)} skipped"
        )
        for check in report["results"].get("skipped_checks", []):
            why = check["check_result"].get("suppress_comment")
            print(f"  skipped {check['check_id']} {check['resource']}: {why}")
    return found


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_no_check_fails(reports, framework):
    if framework == "secrets" and framework not in reports:
        return  # a secrets scan that finds nothing reports nothing
    results = reports[framework]["results"]
    failed = [
        f"{check['check_id']} {check['resource']} {check['file_path']}: {check['check_name']}"
        for check in results.get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    if framework != "secrets":
        assert reports[framework]["summary"]["passed"] > 10, framework  # it did scan


def test_every_skip_says_why(reports):
    for report in reports.values():
        for check in report["results"].get("skipped_checks", []):
            reason = (check["check_result"].get("suppress_comment") or "").strip()
            assert len(reason) > 15, (check["check_id"], check["resource"], reason)


def test_checkov_catches_a_careless_pod(tmp_path):
    """The scan can fail: a root pod with a writable root filesystem and no limits."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "careless"},
        "spec": {"containers": [{"name": "c", "image": "python:latest"}]},
    }
    (tmp_path / "pod.yaml").write_text(json.dumps(pod))
    command = [str(CHECKOV), "-f", str(tmp_path / "pod.yaml"), "--framework", "kubernetes"]
    command += ["--output", "json", "--skip-download", "--compact", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    failed = {check["check_id"] for check in json.loads(result.stdout)["results"]["failed_checks"]}
    assert {"CKV_K8S_22", "CKV_K8S_14", "CKV_K8S_13"} <= failed  # read-only root, tag, limits
