"""Ingestion benchmark: prints figures measured side by side in one run (not a test; machines are noisy).

1. Start-up: `fleetlake --help` (wall and CPU, best of three), and a small `fleetlake backfill` run as a command:
   when its first request and its first hourly MDS request reach the provider (a loopback relay in front of the
   provider notes them), counted from the command's start.
2. Per record: unthrottled ingest (fetch, validate, keep raw, quarantine, write Parquet) in records per CPU-second of
   this process, beside the yardstick: a minimal httpx + msgspec + pyarrow script fetching the same hours and
   writing one Parquet file per partition, without validation, raw copy or quarantine.
3. Backfill of DAYS days x 3 zones through Dagster against the provider's real rate limit (4,000 requests a
   minute): wall time divided by the bound (requests / 4,000 per minute). 1.00 would be perfect.

Each figure is printed with the machine's load average while it ran; under load, CPU seconds are the figure to
compare, wall seconds say how long it took here. The provider runs in a separate process so its CPU time is not
counted. Usage:
    .venv/bin/python benchmarks/ingest_benchmark.py [--days 30] [--vehicles 300] [--skip-backfill]
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from assets.launch import run_job
from pipelines.config import Settings
from pipelines.ingest import PartitionResult, hours_between, ingest_hours
from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lake.store import Lake
from pipelines.voi.client import MDS_ACCEPT, TOKEN_PATH, VoiClient, hour_param
from pipelines.voi.ratelimit import RateLimiter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import Relay, children_cpu, load, served_provider

ZONES = ("1", "145", "9")
RATE_LIMIT = 4000


def provider(start: datetime, days: int, vehicles: int, rate_limit: int) -> AbstractContextManager[str]:
    now = start + timedelta(days=days, minutes=30)
    return served_provider(
        [
            "--zones", ",".join(ZONES), "--vehicles", str(vehicles), "--start", start.isoformat(),
            "--days", str(days), "--now", now.isoformat(), "--rate-limit", str(rate_limit),
        ]
    )  # fmt: skip


def settings(url: str, lake: Path) -> Settings:
    return Settings(api_base_url=url, maas_base_url=url, zones=ZONES, lake_dir=lake)


def throttled_backfill(start: datetime, days: int, vehicles: int) -> dict[str, float]:
    hours = hours_between(start, start + timedelta(days=days))
    finished: list[float] = []
    with provider(start, days, vehicles, RATE_LIMIT) as url, tempfile.TemporaryDirectory() as lake:
        began = time.perf_counter()
        with dg.instance_for_test() as instance:
            result = run_job(
                "mds_hourly_job",
                settings(url, Path(lake)),
                first_hour=hours[0],
                last_hour=hours[-1],
                on_progress=lambda e: finished.append(time.perf_counter()) if isinstance(e, PartitionResult) else None,
                dagster_instance=instance,
            )
        wall = time.perf_counter() - began
        assert result.success, "the backfill failed"
        # Range materializations repeat the run's metadata on every partition: one event per asset is enough.
        # The lake's assets only: the run also builds the warehouse models downstream.
        first = {
            e.asset_key: e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key.path[-1] in HOURLY_DATASETS
        }
        requests = next(iter(first.values()))["requests"].value  # type: ignore[attr-defined]
        rows = sum(m["rows"].value for m in first.values())  # type: ignore[attr-defined]
    bound = requests / RATE_LIMIT * 60
    return {
        "partitions": len(hours) * len(ZONES) * len(HOURLY_DATASETS),
        "requests": requests,
        "rows": rows,
        "bound_s": bound,
        "startup_s": min(finished) - began,
        "ingest_s": max(finished) - min(finished),
        "bookkeeping_s": wall - (max(finished) - began),
        "wall_s": wall,
    }


def help_startup() -> tuple[float, float]:
    """`fleetlake --help`: best wall and best CPU seconds of three runs."""
    fleetlake = Path(sys.executable).parent / "fleetlake"
    walls, cpus = [], []
    for _ in range(3):
        cpu, wall = children_cpu(), time.perf_counter()
        subprocess.run([str(fleetlake), "--help"], stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - wall)
        cpus.append(children_cpu() - cpu)
    return min(walls), min(cpus)


class RequestClock(Relay):
    """A relay in front of the provider that notes when the first request, and the first hourly MDS request, pass
    through it."""

    def __init__(self, upstream: str) -> None:
        self.first: float | None = None
        self.first_mds: float | None = None
        self.pid: int | None = None
        """The command's process, whose CPU seconds so far are read at each first (a wall time under load says
        little)."""
        self.first_cpu: float | None = None
        self.first_mds_cpu: float | None = None
        super().__init__(upstream)

    def _cpu(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def note(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first, self.first_cpu = now, self._cpu()
        if self.first_mds is None and self.is_hourly_mds(data):
            self.first_mds, self.first_mds_cpu = now, self._cpu()


def backfill_startup(start: datetime) -> dict[str, float]:
    """`fleetlake backfill` of two hours of one zone, as a user runs it (a fresh Dagster home and lake)."""
    fleetlake = Path(sys.executable).parent / "fleetlake"
    with provider(start, 1, 300, RATE_LIMIT) as url, tempfile.TemporaryDirectory() as home:
        clock = RequestClock(url)
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FLEETLAKE_", "VOI_", "DAGSTER_"))},
            "VOI_API_BASE_URL": clock.url,
            "VOI_MAAS_BASE_URL": clock.url,
            "FLEETLAKE_LAKE_DIR": f"{home}/lake",
            "FLEETLAKE_WAREHOUSE": f"{home}/warehouse.duckdb",
            "FLEETLAKE_LOG_FILE": f"{home}/fleetlake.log",
            "FLEETLAKE_HISTORY_START": f"{start:%Y-%m-%d}",
            "DAGSTER_HOME": home,
        }
        window = ["--start", f"{start + timedelta(hours=6):%Y-%m-%dT%H:%M}", "--end"]
        window.append(f"{start + timedelta(hours=8):%Y-%m-%dT%H:%M}")
        command = [str(fleetlake), "backfill", *window, "--zones", ZONES[0], "--lead-in-hours", "0"]
        cpu, began = children_cpu(), time.perf_counter()
        process = subprocess.Popen(
            command, env=environment, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        clock.pid = process.pid
        process.wait()
        wall, cpu = time.perf_counter() - began, children_cpu() - cpu
        clock.close()
    assert clock.first is not None and clock.first_mds is not None, "the backfill sent no request"
    return {
        "first_s": clock.first - began,
        "first_cpu_s": clock.first_cpu or float("nan"),
        "first_mds_s": clock.first_mds - began,
        "first_mds_cpu_s": clock.first_mds_cpu or float("nan"),
        "wall_s": wall,
        "cpu_s": cpu,
    }


async def minimal_ingest(url: str, lake: Path, hours: list[datetime]) -> int:
    """The yardstick: fetch every zone, hour and hourly dataset, decode, write one Parquet file per partition;
    no validation, no raw copy, no quarantine, no retries."""
    endpoints = {
        "mds_trips": ("trips", "end_time", "trips"),
        "mds_events": ("events/historical", "event_time", "events"),
    }
    defaults = Settings()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=16)) as http:
        reply = await http.post(
            url + TOKEN_PATH,
            auth=(defaults.client_id, defaults.client_secret.reveal()),
            data={"grant_type": "client_credentials"},
        )
        headers = {
            "Authorization": f"Bearer {msgspec.json.decode(reply.content)['access_token']}",
            "Accept": MDS_ACCEPT,
        }
        gate = asyncio.Semaphore(16)

        async def partition(name: str, zone: str, hour: datetime) -> int:
            path, parameter, key = endpoints[name]
            records: list[dict[str, object]] = []
            next_url: str | None = f"{url}/v1/partner-apis/mds/{zone}/{path}"
            params: dict[str, str] | None = {parameter: hour_param(hour)}
            async with gate:
                while next_url:
                    page = msgspec.json.decode((await http.get(next_url, params=params, headers=headers)).content)
                    records += page[key]
                    next_url, params = (page.get("links") or {}).get("next"), None
            folder = lake / name / f"zone_id={zone}" / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(records), folder / "part-0.parquet", compression="zstd")
            return len(records)

        counts = await asyncio.gather(*(partition(n, z, h) for h in hours for z in ZONES for n in endpoints))
    return sum(counts)


def per_record(start: datetime, days: int, vehicles: int) -> dict[str, float]:
    hours = hours_between(start, start + timedelta(days=days))
    with provider(start, days, vehicles, 10**9) as url, tempfile.TemporaryDirectory() as lake_dir:

        async def ingest(lake: Lake) -> int:
            async with VoiClient(settings(url, lake.root), limiter=RateLimiter(10**9, burst=10**6)) as client:
                report = await ingest_hours(client, lake, ZONES, hours)
                assert not report.with_status("unchanged") and not report.with_status("failed"), report.summary()
                return sum(r.received for r in report.results)

        out: dict[str, float] = {}
        # Side by side, twice each in turn: the best of two, as the machine's other work comes and goes. Each round
        # ingests into a lake of its own: into the same lake, the second round's deliveries would carry the records
        # the partitions hold already and write nothing (`unchanged`), which is not the work being compared.
        for round_ in range(2):
            cpu, wall = time.process_time(), time.perf_counter()
            records = asyncio.run(ingest(Lake(Path(lake_dir) / f"fleetlake-{round_}")))
            ingest_cpu, ingest_wall = time.process_time() - cpu, time.perf_counter() - wall
            cpu, wall = time.process_time(), time.perf_counter()
            minimal = asyncio.run(minimal_ingest(url, Path(lake_dir) / f"minimal-{round_}", hours))
            minimal_cpu, minimal_wall = time.process_time() - cpu, time.perf_counter() - wall
            assert minimal == records, (minimal, records)
            if round_ == 0 or ingest_cpu < out["ingest_cpu_s"]:
                out.update(ingest_cpu_s=ingest_cpu, ingest_wall_s=ingest_wall)
            if round_ == 0 or minimal_cpu < out["minimal_cpu_s"]:
                out.update(minimal_cpu_s=minimal_cpu, minimal_wall_s=minimal_wall)
    out["records"] = records
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--vehicles", type=int, default=300, help="vehicles per zone")
    parser.add_argument("--per-record-days", type=int, default=2, help="days of the per-record comparison")
    parser.add_argument("--skip-backfill", action="store_true", help="leave out the throttled backfill")
    args = parser.parse_args()
    start = datetime(2026, 3, 1, tzinfo=UTC)

    wall, cpu = help_startup()
    print(f"start-up ({load()})\n  fleetlake --help:  {wall:5.2f} s wall, {cpu:5.2f} s CPU  (goal: under 1 s)")
    s = backfill_startup(start)
    print(
        f"  fleetlake backfill, 2 h x 1 zone ({load()}), goal: first request within 3 s\n"
        f"    first request (token, zone list):  after {s['first_s']:6.2f} s wall, {s['first_cpu_s']:5.2f} s CPU\n"
        f"    first hourly MDS request:          after {s['first_mds_s']:6.2f} s wall, {s['first_mds_cpu_s']:5.2f} "
        f"s CPU (after the snapshots' Dagster runs)\n"
        f"    whole command:                     {s['wall_s']:6.1f} s wall, {s['cpu_s']:5.1f} s CPU"
    )

    b = per_record(start, args.per_record_days, args.vehicles)
    ours, minimal = b["records"] / b["ingest_cpu_s"], b["records"] / b["minimal_cpu_s"]
    print(
        f"per record ({load()}): {args.per_record_days} days x {len(ZONES)} zones x {args.vehicles} vehicles, "
        f"{b['records']:.0f} records, unthrottled, best of two\n"
        f"  fleetlake (validate, raw, quarantine): {ours:8,.0f} records per CPU-second "
        f"({b['ingest_cpu_s']:.1f} s CPU, {b['ingest_wall_s']:.1f} s wall)\n"
        f"  minimal httpx+msgspec+pyarrow script:  {minimal:8,.0f} records per CPU-second "
        f"({b['minimal_cpu_s']:.1f} s CPU, {b['minimal_wall_s']:.1f} s wall)\n"
        f"  ratio fleetlake / minimal: {ours / minimal:.2f} (goal: at least 1.00)"
    )

    if args.skip_backfill:
        return
    print(f"{args.days} days x {len(ZONES)} zones, {args.vehicles} vehicles per zone")
    cpu = time.process_time()
    a = throttled_backfill(start, args.days, args.vehicles)
    cpu = time.process_time() - cpu
    print(
        f"throttled backfill ({load()}): {a['partitions']:.0f} partitions, {a['requests']:.0f} requests, "
        f"{a['rows']:.0f} rows, {cpu:.1f} s CPU\n"
        f"  bound (requests / {RATE_LIMIT}/min):     {a['bound_s']:6.1f} s\n"
        f"  ingest, first to last partition:   {a['ingest_s']:6.1f} s  -> {a['ingest_s'] / a['bound_s']:.2f} x bound\n"
        f"  Dagster start-up before the first: {a['startup_s']:6.1f} s\n"
        f"  Dagster bookkeeping after the last:{a['bookkeeping_s']:6.1f} s\n"
        f"  whole run:                         {a['wall_s']:6.1f} s  -> {a['wall_s'] / a['bound_s']:.2f} x bound "
        f"(goal: 1.10)"
    )


if __name__ == "__main__":
    main()
