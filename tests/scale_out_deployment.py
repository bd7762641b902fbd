"""A scale-out deployment on loopback, as docs/scale-out.md describes it, for the scale-out test and the
benchmark that measures it: the environment every process shares, Celery workers, and a backfill launched with
`dagster job execute`. Only configuration differs from the single-machine default; no code path is special.
"""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from fleetlake_provider.app import Credentials
from tests.loopback_servers import stop_group

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "docs" / "scale-out"
BIN = Path(sys.executable).parent
S3_KEY, S3_SECRET = "fleetlake", "fleetlake-secret"
WORKER_READY_S = 180


def deployment_env(
    *,
    home: Path,
    postgres_url: str,
    broker: str,
    s3_endpoint: str,
    lake: str,
    warehouse: Path,
    provider_url: str,
    zones: tuple[str, ...],
    executor: str = "celery",
) -> dict[str, str]:
    """The environment of every process of the deployment (the run's and the workers'), its instance in
    `home` with docs/scale-out/dagster.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    credentials = Credentials()
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        # SQLAlchemy's plain postgresql:// means psycopg 3; dagster-postgres installs psycopg2.
        "FLEETLAKE_DAGSTER_POSTGRES_URL": postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
        # The warehouse's catalog and build lock in the same server: any worker may build, any machine read.
        "FLEETLAKE_WAREHOUSE_CATALOG": postgres_url,
        "FLEETLAKE_EXECUTOR": executor,
        "FLEETLAKE_CELERY_BROKER": broker,
        "FLEETLAKE_CELERY_BACKEND": broker,
        "FLEETLAKE_LAKE_DIR": lake,
        "FLEETLAKE_WAREHOUSE": str(warehouse),
        "FLEETLAKE_ZONES": ",".join(zones),
        "FLEETLAKE_LOG_FILE": str(home / "fleetlake.log"),
        "VOI_API_BASE_URL": provider_url,
        "VOI_CLIENT_ID": credentials.client_id,
        "VOI_CLIENT_SECRET": credentials.client_secret,
        "VOI_AUTH_TOKEN": credentials.auth_token,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": "us-east-1",
    }


def _wait_ready(log: Path, process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + WORKER_READY_S
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if " ready." in text:
            return
        if process.poll() is not None:
            said = output.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the Celery worker exited with {process.returncode}: {text[-3000:]}{said}")
        time.sleep(0.5)
    raise RuntimeError(f"the Celery worker was not ready within {WORKER_READY_S} s: {log.read_text()[-3000:]}")


@contextlib.contextmanager
def celery_workers(
    env: dict[str, str], names: tuple[str, ...], logs: Path, while_starting: Callable[[], None] = lambda: None
) -> Iterator[None]:
    """One Celery worker process per name (`dagster-celery worker start`, concurrency 1), ready when the block
    starts, stopped with their children when it ends. `while_starting` runs in this process meanwhile: each
    worker takes seconds to import Dagster and connect, time the caller's own work can use."""
    logs.mkdir(parents=True, exist_ok=True)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            log, output = logs / f"worker-{name}.log", logs / f"worker-{name}.out"
            with output.open("ab") as out:
                process = subprocess.Popen(
                    [
                        str(BIN / "dagster-celery"),
                        "worker",
                        "start",
                        "-A",
                        "dagster_celery.app",
                        "-y",
                        str(DEPLOY / "celery.yaml"),
                        "--name",
                        name,
                        "--",
                        "--concurrency=1",
                        f"--logfile={log}",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            workers.append(process)
        while_starting()
        for name, process in zip(names, workers, strict=True):
            _wait_ready(logs / f"worker-{name}.log", process, logs / f"worker-{name}.out")
        yield
    finally:
        for process in workers:
            stop_group(process)


def run_zone_backfill(
    env: dict[str, str], start: datetime, end: datetime, lead_in_hours: int, folder: Path, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`zone_backfill_job` for [start, end) after its lead-in, as an operator launches it from a shell."""
    folder.mkdir(parents=True, exist_ok=True)
    run_config = folder / "run.yaml"
    run_config.write_text(
        "ops:\n  zones_to_backfill:\n    config:\n"
        f"      start: '{start.isoformat()}'\n      end: '{end.isoformat()}'\n      lead_in_hours: {lead_in_hours}\n"
    )
    command = [str(BIN / "dagster"), "job", "execute", "-m", "assets.definitions", "-a", "defs"]
    return subprocess.run(
        [*command, "-j", "zone_backfill_job", "-c", str(run_config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
