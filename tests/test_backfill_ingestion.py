"""A backfill's ingestion: written by worker processes as by the one writer thread, started by the command before
its Dagster run, and joined by that run instead of fetched again."""

import asyncio
import io
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest
from rich.console import Console
from starlette.requests import Request
from starlette.responses import Response

from cli.backfill import run_backfill
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from pipelines import backfill
from pipelines.ingest import GBFS_DATASETS, MDS_SNAPSHOT_DATASETS, ZONE_DATASETS, ingest_hours, ingest_snapshots
from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lake.store import Lake
from pipelines.lake_writers import PROCESSES_FROM_PARTITIONS, worth_processes, writer_processes
from pipelines.voi.client import VoiClient
from pipelines.voi.ratelimit import RateLimiter
from tests.conftest import CREDENTIALS, loopback_settings

START = datetime(2026, 3, 28, tzinfo=UTC)
ZONES = ("1", "145")


def city() -> SimulatedProvider:
    options = ProviderOptions(zones=ZONES, vehicles=30, start=START, days=1, seed=11)
    return SimulatedProvider(options, FixedClock(START + timedelta(days=1, minutes=15)))


def lake_rows(root: Path) -> dict[str, pl.DataFrame]:
    """Every data, quarantine and superseded file of the lake by its path, its delivery times left out (each
    ingestion has its own) and its rows sorted."""
    out = {}
    for path in sorted(root.rglob("*.parquet")):
        frame = pl.read_parquet(path)
        frame = frame.drop([c for c in ("ingested_at", "superseded_at") if c in frame.columns])
        relative = str(path.relative_to(root))
        out[relative.split("/delivery-")[0]] = frame.sort(frame.columns, nulls_last=True)
    return out


def test_worker_processes_write_the_lake_the_writer_thread_writes(tmp_path: Path) -> None:
    provider = ProviderApp(city(), CREDENTIALS, rate_limit_per_minute=1_000_000)
    hours = [START + timedelta(hours=h) for h in (7, 8, 17)]
    settings = loopback_settings("http://provider", tmp_path)

    async def ingest(lake: Lake, processes: int | None) -> list[tuple[str, str, datetime, str, int, int]]:
        transport = httpx.ASGITransport(provider.app)
        async with VoiClient(settings, transport=transport, limiter=RateLimiter(10**9, burst=10**6)) as client:
            if processes is None:
                report = await ingest_hours(client, lake, ZONES, hours)
            else:
                with writer_processes(processes) as pool:
                    report = await ingest_hours(client, lake, ZONES, hours, writer=pool.write)
                    pids.update(pool.pids)
        return sorted((r.dataset, r.zone_id, r.hour, r.status, r.rows, r.received) for r in report.results)

    pids: set[int] = set()
    by_thread = asyncio.run(ingest(Lake(tmp_path / "thread"), None))
    by_processes = asyncio.run(ingest(Lake(tmp_path / "processes"), 2))
    assert by_processes == by_thread
    assert {status for *_, status, _, _ in by_thread} == {"written"}
    assert sum(rows for *_, rows, _ in by_thread) > 100
    assert pids and os.getpid() not in pids  # written elsewhere than in this process
    thread_lake, process_lake = lake_rows(tmp_path / "thread"), lake_rows(tmp_path / "processes")
    assert thread_lake.keys() == process_lake.keys()
    assert len(thread_lake) == len(ZONES) * len(hours) * len(HOURLY_DATASETS)
    for path, frame in thread_lake.items():
        assert frame.equals(process_lake[path]), path


KILLED_PARENT = """
import asyncio, os, sys
from datetime import UTC, datetime, timedelta
from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import Lake, Partition
from pipelines.lake_writers import WriterProcesses

pool = WriterProcesses(1)
hour = datetime(2026, 3, 28, tzinfo=UTC)
window = (hour, hour + timedelta(hours=1))
asyncio.run(pool.write(Lake(sys.argv[1]), DATASETS["mds_trips"], Partition("mds_trips", "1", hour), [b"{}"], window))
print(*pool.pids, flush=True)
os.kill(os.getpid(), 9)
"""


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_writer_processes_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_PARENT, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == -9, done.stderr
    (writer,) = map(int, done.stdout.split())
    deadline = time.monotonic() + 30
    while not gone(writer) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(writer)


def test_processes_are_worth_their_start_only_for_a_big_run_on_several_cores() -> None:
    assert worth_processes(PROCESSES_FROM_PARTITIONS, cores=2)
    assert not worth_processes(PROCESSES_FROM_PARTITIONS - 1, cores=2)
    assert not worth_processes(10 * PROCESSES_FROM_PARTITIONS, cores=1)


class CountedProvider(ProviderApp):
    """The embedded provider, noting the path and query of every request it answers."""

    def __init__(self, provider: SimulatedProvider) -> None:
        super().__init__(provider, CREDENTIALS)
        self.requests: Counter[str] = Counter()

    async def _guarded(self, request: Request, *args: object, **kwargs: object) -> Response:
        self.requests[f"{request.url.path}?{request.url.query}"] += 1
        return await super()._guarded(request, *args, **kwargs)  # type: ignore[arg-type]


@pytest.mark.integration
@pytest.mark.slow
def test_a_backfill_run_joins_the_ingestion_its_command_started(tmp_path: Path) -> None:
    provider = CountedProvider(city())
    with running(provider) as url, dg.DagsterInstance.ephemeral() as instance:
        settings = loopback_settings(url, tmp_path, ZONES)

        async def snapshots() -> None:  # the marts' snapshots, so that the backfill is one Dagster run
            async with VoiClient(settings) as client:
                datasets = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
                await ingest_snapshots(client, Lake(settings.lake_dir), ZONES, datasets, captured_at=START)

        asyncio.run(snapshots())
        out = io.StringIO()
        window = (START + timedelta(hours=8), START + timedelta(hours=11))
        ok = run_backfill(settings, *window, Console(file=out, width=300), lead_in_hours=0, dagster_instance=instance)
        assert ok, out.getvalue()
        runs = instance.get_run_records()
        assert len(runs) == 1 and runs[0].dagster_run.job_name == "mds_hourly_job"
        materialized = instance.get_latest_materialization_event(dg.AssetKey("mds_trips"))
        assert materialized is not None
    # Each zone and hour of each dataset was asked for once: by the command's ingestion, not again by the run.
    hourly = {query: n for query, n in provider.requests.items() if "/trips?" in query or "/historical?" in query}
    assert len(hourly) == 3 * len(ZONES) * len(HOURLY_DATASETS)
    assert set(hourly.values()) == {1}
    assert "12 partitions written, 0 unchanged" in out.getvalue()
    metadata = materialized.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["partitions_written"].value == 3 * len(ZONES)  # the joined ingestion's report
    hours = [window[0] + timedelta(hours=h) for h in range(3)]
    assert backfill.claim(backfill.Plan.of(Lake(settings.lake_dir), ZONES, hours, HOURLY_DATASETS)) is None
