"""podman for the image tests: a private storage, a stand-in Python base, builds and runs.

Checked on these machines (STACK_NOTES, "Containers"): Debian's podman works as root with
`runc` and cgroupfs (crun fails on hybrid cgroups) and explicit ulimits (the default
RLIMIT_NPROC cannot be set); no container registry is reachable, so the base image is made
from Debian packages (debootstrap bookworm: Python 3.11). The tricks this machine needs (the
host's CA bundle for the intercepted TLS to PyPI, host networking for the build) are passed
to `podman build` as volumes and flags: they never enter the product's Dockerfile.
"""

import os
import re
import shutil
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.topology import missing_system_package

STANDIN_BASE = "localhost/dpe-standin-python:3.11-bookworm"
# runc and cgroupfs: see the module docstring; every container gets these limits.
RUNTIME_FLAGS = ("--runtime", "runc", "--cgroup-manager", "cgroupfs")
ULIMITS = ("--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096")


@dataclass
class Podman:
    """podman on a storage of its own (nothing shared with the machine's images)."""

    root: Path
    executable: str = field(default_factory=lambda: shutil.which("podman") or "podman")

    def command(self, *args: str) -> list[str]:
        return [
            self.executable,
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--tmpdir",
            str(self.root / "tmp"),
            *RUNTIME_FLAGS,
            *args,
        ]

    def __call__(self, *args: str, timeout: float = 120, check: bool = True, **kwargs):
        result = subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, **kwargs
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:3])}: {result.stderr[-3000:]}")
        return result

    def reset(self) -> None:
        """Remove every container and image of this storage, then the storage itself."""
        with suppress(subprocess.SubprocessError):
            self("system", "reset", "--force", timeout=300, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def usable_podman(root: Path) -> Podman:
    """podman that can build and run here, or a skip (fail in CI as root) saying why not."""
    if shutil.which("podman") is None:
        missing_system_package("podman runc debootstrap", "podman (Debian)")
    if os.geteuid() != 0:
        pytest.skip("podman runs containers here as root only (no rootless setup): run as root")
    for tool in ("runc", "debootstrap"):
        if shutil.which(tool) is None:
            missing_system_package(tool, tool)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    podman = Podman(root)
    info = podman("info", check=False)
    if info.returncode != 0:
        pytest.skip(f"podman does not work on this machine: {info.stderr.strip()[-500:]}")
    return podman


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 `.sources` or one-line `sources.list`)."""
    apt = Path("/etc/apt")
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        text = path.read_text()
        for stanza in text.split("\n\n"):
            if re.search(r"^Suites:.*\bbookworm\b", stanza, re.M):
                found = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if found and "security" not in found.group(1):
                    return found.group(1)
    sources = apt / "sources.list"
    if sources.exists():
        found = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", sources.read_text(), re.M)
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def build_standin_base(podman: Podman, work: Path) -> float:
    """The stand-in for python:3.11-slim-bookworm: Debian bookworm's Python 3.11 from
    debootstrap, with python and pip in /usr/local/bin as the official image has them (a
    virtualenv there); returns the seconds it took."""
    started = time.monotonic()
    rootfs = work / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
            debian_mirror(),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    subprocess.run(["chroot", str(rootfs), "python3", "-m", "venv", "/usr/local"], check=True)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (rootfs / cache).glob("*"):
            if path.is_file():
                path.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        podman.command("import", "-", STANDIN_BASE), stdin=tar.stdout, capture_output=True
    )
    tar.wait()
    assert imported.returncode == 0, imported.stderr.decode(errors="replace")
    shutil.rmtree(rootfs)
    return time.monotonic() - started


def tls_build_volumes(work: Path) -> list[str]:
    """Where TLS to PyPI is intercepted (a CA bundle named by PIP_CERT / SSL_CERT_FILE), the
    build's pip and uv are given that bundle through read-only volumes, not the Dockerfile."""
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if not bundle or not Path(bundle).is_file():
        return []
    pip_conf = work / "pip.conf"
    pip_conf.write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    uv_toml = work / "uv.toml"
    uv_toml.write_text("system-certs = true\n")
    return [
        "-v",
        f"{bundle}:/etc/ssl/certs/ca-certificates.crt:ro",
        "-v",
        f"{pip_conf}:/etc/pip.conf:ro",
        "-v",
        f"{uv_toml}:/etc/uv/uv.toml:ro",
    ]


def source_context(repository: Path, destination: Path) -> Path:
    """The repository's files as a clone has them (tracked, plus new files git does not
    ignore), copied to `destination`: the build context without .venv and caches, which
    podman would otherwise read whole (gigabytes) before applying .dockerignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repository,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = repository / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def build_image(
    podman: Podman, repository: Path, dockerfile: str, tag: str, base: str, work: Path
) -> tuple[float, list[tuple[str, float]]]:
    """`podman build` of the repository's `dockerfile` on `base`; returns its seconds (from
    the copy of the context on) and each step's."""
    started = time.monotonic()
    context = source_context(repository, work / "context")
    command = podman.command(
        "build",
        "--pull=never",
        "--network",
        "host",
        *ULIMITS,
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        *tls_build_volumes(work),
        "-f",
        str(context / dockerfile),
        "-t",
        tag,
        str(context),
    )
    log_path = work / "build.log"
    steps: list[tuple[str, float]] = []
    last = time.monotonic()
    current = "start"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if re.match(r"\[\d+/\d+\] STEP \d+/\d+:|STEP \d+/\d+:|\[\d+/\d+\] COMMIT|COMMIT", line):
                now = time.monotonic()
                steps.append((current, now - last))
                current, last = line.strip()[:90], now
        returncode = process.wait(timeout=1800)
    steps.append((current, time.monotonic() - last))
    assert returncode == 0, log_path.read_text()[-4000:]
    shutil.rmtree(context)
    return time.monotonic() - started, steps
