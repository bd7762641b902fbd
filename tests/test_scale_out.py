"""The scale-out deployment on loopback (docs/scale-out.md): run and event storage in Postgres, the lake in an
S3-compatible store (moto's server), a backfill of four zones fanned out per zone across two Celery workers
(a Redis broker), and marts equal to the single-machine backfill of the same hours; the warehouse's catalog in
Postgres, so that a reader on another machine (a process with a folder of its own) opens the build published.

Every server is started by the test on a free loopback port and stopped after it. Outside CI the test skips
when Postgres or Redis is not installed; under CI=true it fails, since `.ci/run` installs them.
"""

import asyncio
import io
import os
import queue
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from rich.console import Console

from cli.backfill import run_backfill
from cli.snapshots import SNAPSHOT_DATASETS
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.server import running
from pipelines.config import Settings
from pipelines.ingest import ingest_snapshots
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.models import discover
from tests.comparable_rows import comparable
from tests.conftest import CREDENTIALS, START, loopback_settings, make_provider
from tests.loopback_servers import all_running, missing_servers, postgres, redis, s3_server
from tests.scale_out_deployment import S3_KEY, S3_SECRET, celery_workers, deployment_env, run_zone_backfill

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
ZONES = ("1", "9", "31", "145")
WINDOW = (START + timedelta(hours=8), START + timedelta(hours=10))
LEAD_IN_HOURS = 1
BUCKET = "fleetlake-scale-out"
STAMPS = ("ingested_at", "captured_at")
"""Columns that say when a delivery or a snapshot was taken (wall-clock times that differ between two runs)."""
CAPTURED_AT = WINDOW[1] + timedelta(minutes=5)
MARTS = sorted(name for name, model in discover().items() if model.schema == "main")


# A reader on another machine: the deployment's settings, a warehouse path of its own, nothing built there.
READER = """
from pipelines.config import Settings
from pipelines.warehouse.build import Warehouse
settings = Settings.from_env()
warehouse = Warehouse(settings.warehouse, settings.lake_dir, settings=settings)
with warehouse.connect(read_only=True) as con:
    con.execute("select count(*) from trips").fetchall()
print(warehouse.pull().build_id, "read")
"""


def _servers_or_skip() -> None:
    missing = missing_servers()
    if missing:
        message = f"the scale-out test needs {', '.join(missing)} (Debian: apt-get install postgresql redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI must run the scale-out test; .ci/run installs them)")
        pytest.skip(message)


def marts(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every mart's rows, comparable (tests/comparable_rows.py), without the wall-clock stamps of deliveries and
    snapshots."""
    with duckdb.connect(str(path), read_only=True) as con:
        out = {}
        for mart in MARTS:
            names = [row[0] for row in con.execute(f'describe "{mart}"').fetchall()]
            kept = ", ".join(f'"{n}"' for n in names if not n.endswith(STAMPS))
            out[mart] = comparable(con.execute(f'select {kept} from "{mart}"').fetchall())
        return out


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    city = make_provider(zones=ZONES, days=1, vehicles=30)
    with running(ProviderApp(city, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        yield url


def take_snapshots(settings: Settings, lake: Lake) -> None:
    """Every snapshot of every zone at one capture time: marts read snapshots by their capture time (GBFS
    occupancy's hour, a parked vehicle's violation), and both runs must see the same ones."""

    async def take() -> None:
        async with VoiClient(settings) as client:
            report = await ingest_snapshots(client, lake, ZONES, SNAPSHOT_DATASETS, CAPTURED_AT)
        assert not report.with_status("failed")

    asyncio.run(take())


def test_a_backfill_fanned_out_over_two_celery_workers_equals_the_single_machine_run(
    provider_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _servers_or_skip()
    single = loopback_settings(provider_url, tmp_path / "single", zones=ZONES)
    servers = (postgres(), s3_server(tmp_path / "s3"), redis(tmp_path / "redis"))
    with all_running(*servers) as (pg_url, s3_url, broker):
        env = deployment_env(
            home=tmp_path / "dagster_home",
            postgres_url=pg_url,
            broker=broker,
            s3_endpoint=s3_url,
            lake=f"s3://{BUCKET}/lake",
            warehouse=tmp_path / "scaled" / "warehouse.duckdb",
            provider_url=provider_url,
            zones=ZONES,
        )
        import s3fs  # here, not at collection: aiobotocore's ~1 CPU s would load in every pytest worker

        bucket = s3fs.S3FileSystem(endpoint_url=s3_url, key=S3_KEY, secret=S3_SECRET)

        bucket_filled: queue.Queue[bool] = queue.Queue()
        """Whether the snapshots were taken into the bucket, told once."""

        def the_deployments_run() -> subprocess.CompletedProcess[str]:
            """Two Celery workers, then the run, launched once both are ready (so that either may take a zone's
            step) and the bucket holds the snapshots; in a thread, while this process runs the single machine's
            backfill."""

            def wait_for_the_bucket() -> None:
                if not bucket_filled.get(timeout=300):
                    raise RuntimeError("the snapshots were not taken into the bucket")

            with celery_workers(env, ("first", "second"), tmp_path / "workers", while_starting=wait_for_the_bucket):
                return run_zone_backfill(env, *WINDOW, LEAD_IN_HOURS, tmp_path / "run")

        with ThreadPoolExecutor(max_workers=1) as deployment:
            launched = deployment.submit(the_deployments_run)
            try:  # the deployment's bucket, with the snapshots the single machine's lake gets too
                bucket.mkdir(BUCKET)
                for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
                    monkeypatch.setenv(name, env[name])
                take_snapshots(single, Lake(env["FLEETLAKE_LAKE_DIR"]))
            except BaseException:
                bucket_filled.put(False)
                raise
            bucket_filled.put(True)
            # The single-machine run: the repo's default configuration, `fleetlake backfill` in this process, its
            # own lake and warehouse (the provider serves both runs the same city).
            take_snapshots(single, Lake(single.lake_dir))
            with dg.DagsterInstance.ephemeral() as instance:  # in memory: half the CPU of SQLite on disk
                console = Console(file=io.StringIO())
                assert run_backfill(single, *WINDOW, console, lead_in_hours=LEAD_IN_HOURS, dagster_instance=instance)
            run = launched.result()
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

        # A reader on another machine (its own process and local folder, the deployment's settings) opens the
        # build published, while this process looks at what the run left.
        elsewhere = tmp_path / "another-machine" / "warehouse.duckdb"
        reader = subprocess.Popen(
            [sys.executable, "-c", READER],
            env={**env, "FLEETLAKE_WAREHOUSE": str(elsewhere)},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        try:  # the reader ends with the test, whatever fails first
            # The run, its steps and the worker that ran each are in Postgres.
            import psycopg2

            with psycopg2.connect(pg_url) as con, con.cursor() as cur:
                cur.execute("select status from runs where pipeline_name = 'zone_backfill_job'")
                assert cur.fetchall() == [("SUCCESS",)]
                cur.execute(
                    "select event from event_logs where step_key like 'ingest_zone[%%]' and event like %s",
                    ("%Executing steps%in celery worker%",),
                )
                ran_on = {worker for (event,) in cur.fetchall() for worker in ("first@", "second@") if worker in event}
            assert ran_on == {"first@", "second@"}, "the four zones were not shared by both workers"

            # The build is published for every machine: its file in the bucket, named current in the catalog, and the
            # reader opened it.
            with psycopg2.connect(pg_url) as con, con.cursor() as cur:
                cur.execute("select build_id, uri from fleetlake_warehouse_builds")
                ((build_id, build_uri),) = cur.fetchall()
            assert build_uri == f"s3://{BUCKET}/lake/_warehouse/{build_id}.duckdb"
            assert bucket.exists(build_uri)

            # The lake is in the bucket: every hour of every zone, of both datasets.
            hours = LEAD_IN_HOURS + int((WINDOW[1] - WINDOW[0]) / timedelta(hours=1))
            for zone in ZONES:
                for dataset in ("mds_trips", "mds_events"):
                    found = bucket.glob(f"{BUCKET}/lake/{dataset}/zone_id={zone}/date=*/hour=*/part-0.parquet")
                    assert len(found) == hours, (dataset, zone, found)

            scaled, local = marts(tmp_path / "scaled" / "warehouse.duckdb"), marts(single.warehouse)
            said, error = reader.communicate(timeout=300)
        finally:
            reader.kill()  # nothing, when it ended
            reader.wait()
        assert reader.returncode == 0, error[-4000:]
        assert said.split() == [build_id, "read"]

    assert marts(elsewhere) == scaled  # the other machine's copy is the build published
    with duckdb.connect(str(single.warehouse), read_only=True) as con:
        assert {z for (z,) in con.execute("select distinct zone_id::varchar from trips").fetchall()} == set(ZONES)
    assert sum(len(rows) for rows in local.values()) > 1000  # a real city, not two empty warehouses
    differing = {
        mart: (
            sorted(set(local[mart]) - set(scaled[mart]), key=str)[:3],
            sorted(set(scaled[mart]) - set(local[mart]), key=str)[:3],
        )
        for mart in MARTS
        if scaled[mart] != local[mart]
    }
    assert not differing, f"marts differ (single-machine rows only, scaled-out rows only): {differing}"
