"""Backfill benchmark: a big city on both cores, and the whole `fleetlake backfill` against the rate-limit bound
(not a test; machines are noisy). Each figure is printed with the machine's load while it ran.

1. Big city: HOURS hours of one 20,000-vehicle zone ingested at the rate limit (4,000 requests a minute), written
   by ingestion's one writer thread, then by worker processes (pipelines/lake_writers.py), side by side: wall and
   CPU seconds (this process and its writers), the rate-limit bound (requests / 4,000 per minute) and the CPU floor
   (CPU seconds / cores). Both cores used: wall close to CPU / 2; goal: wall within 1.2x the larger of the bound
   and the floor. The simulator takes longer to serve such a city than fleetlake to ingest it (one process, a
   fraction of a second a page), so its answers are recorded once and replayed in-process for the measured runs:
   the client, its rate limiter and everything after are fleetlake's own, the provider costs nothing.
2. The whole command: `fleetlake backfill` of DAYS days x 3 zones x 300 vehicles as a user runs it (a fresh lake
   and Dagster home with the repo's dagster.yaml, so the snapshots come first, then the ingestion, the Dagster run
   and the warehouse build), through a loopback relay that counts its requests and notes its first hourly MDS
   request: wall against the bound; goal: 1.10x, and the first hourly request within 3 s.

The provider runs in a separate process, so its CPU time is not counted. Usage:
    .venv/bin/python benchmarks/backfill_benchmark.py [--hours 24] [--big 20000] [--days 30] [--skip-big-city]
        [--skip-command]
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

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import Relay, children_cpu, load, served_provider

RATE_LIMIT = 4000
START = datetime(2026, 3, 1, tzinfo=UTC)
FLEETLAKE = Path(sys.executable).parent / "fleetlake"
INSTANCE_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"


def provider(zones: str, fleet: str, days: int) -> AbstractContextManager[str]:
    now = START + timedelta(days=days, minutes=30)
    return served_provider(
        [
            "--zones", zones, "--fleet", fleet, "--start", START.isoformat(), "--days", str(days),
            "--now", now.isoformat(), "--rate-limit", str(RATE_LIMIT),
        ]
    )  # fmt: skip


class Replayed(httpx.AsyncBaseTransport):
    """Answers each request with what the provider answered to the same request on a recording pass (`upstream`
    set); without an upstream, replays only."""

    def __init__(self) -> None:
        self.upstream: httpx.AsyncBaseTransport | None = httpx.AsyncHTTPTransport()
        self.answers: dict[tuple[str, str], tuple[int, list[tuple[str, str]], bytes]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, str(request.url))
        if self.upstream is not None:
            response = await self.upstream.handle_async_request(request)
            body = await response.aread()  # decoded: the replay sends it as it is
            headers = [(k, v) for k, v in response.headers.items() if k not in ("content-encoding", "content-length")]
            self.answers[key] = (response.status_code, headers, body)
        status, headers, body = self.answers[key]
        return httpx.Response(status, headers=headers, content=body)


def big_city(hours: int, vehicles: int) -> None:
    from pipelines.config import Settings
    from pipelines.ingest import IngestReport, hours_between, ingest_hours
    from pipelines.lake.store import Lake
    from pipelines.lake_writers import usable_cores, writer_processes
    from pipelines.voi.client import VoiClient

    cores = usable_cores()
    wanted = hours_between(START, START + timedelta(hours=hours))
    print(f"big city: {hours} h of one {vehicles:,}-vehicle zone at {RATE_LIMIT} requests a minute, {cores} cores")
    with provider("1,", f"1:{vehicles}", max(1, -(-hours // 24))) as url, tempfile.TemporaryDirectory() as root:
        settings = Settings(api_base_url=url, maas_base_url=url, zones=("1",))

        replayed = Replayed()

        async def ingest(lake: Lake, processes: bool) -> IngestReport:
            async with VoiClient(settings, transport=replayed) as client:
                if not processes:
                    return await ingest_hours(client, lake, ("1",), wanted)
                with writer_processes(cores) as pool:
                    return await ingest_hours(client, lake, ("1",), wanted, writer=pool.write)

        began = time.perf_counter()
        asyncio.run(ingest(Lake(Path(root) / "recorded"), False))
        replayed.upstream = None
        print(f"  recorded the provider's answers in {time.perf_counter() - began:.1f} s wall", flush=True)
        for way, processes in (("one writer thread", False), (f"{cores} writer processes", True)):
            own, children, wall = time.process_time(), children_cpu(), time.perf_counter()
            report = asyncio.run(ingest(Lake(Path(root) / way.replace(" ", "-")), processes))
            wall = time.perf_counter() - wall
            own, children = time.process_time() - own, children_cpu() - children
            cpu = own + children
            assert not report.with_status("failed"), report.with_status("failed")[0].error
            bound, floor = report.requests / RATE_LIMIT * 60, cpu / cores
            records = sum(r.received for r in report.results)
            print(
                f"  {way:<22} {wall:6.1f} s wall, {cpu:6.1f} s CPU ({own:.1f} this process, {children:.1f} writers; "
                f"{records:,} records, {report.requests} requests; {load()})\n"
                f"    bound {bound:5.1f} s, CPU floor (CPU / {cores}) {floor:5.1f} s: wall / larger = "
                f"{wall / max(bound, floor):.2f} (goal: 1.2); CPU / wall = {cpu / wall:.2f} cores",
                flush=True,
            )


class CountingRelay(Relay):
    """A relay in front of the provider that counts the requests passing through it and notes when the first
    hourly MDS one does."""

    def __init__(self, upstream: str) -> None:
        self.requests = 0
        self.first_mds: float | None = None
        super().__init__(upstream)

    def note(self, data: bytes) -> None:
        self.requests += data.count(b" HTTP/1.1\r\n")  # one request line each
        if self.first_mds is None and self.is_hourly_mds(data):
            self.first_mds = time.perf_counter()


def whole_command(days: int, vehicles: int) -> None:
    zones = ("1", "145", "9")
    print(f"fleetlake backfill: {days} days x {len(zones)} zones x {vehicles} vehicles, a fresh lake and Dagster home")
    fleet = ",".join(f"{zone}:{vehicles}" for zone in zones)
    with provider(",".join(zones), fleet, days) as url, tempfile.TemporaryDirectory() as home:
        # The repo's instance configuration, as a user's DAGSTER_HOME (the repo root) has it: its event log storage.
        (Path(home) / "dagster.yaml").write_text(INSTANCE_CONFIG.read_text())
        relay = CountingRelay(url)
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FLEETLAKE_", "VOI_", "DAGSTER_"))},
            "VOI_API_BASE_URL": relay.url,
            "VOI_MAAS_BASE_URL": relay.url,
            "FLEETLAKE_LAKE_DIR": f"{home}/lake",
            "FLEETLAKE_WAREHOUSE": f"{home}/warehouse.duckdb",
            "FLEETLAKE_LOG_FILE": f"{home}/fleetlake.log",
            "FLEETLAKE_HISTORY_START": f"{START:%Y-%m-%d}",
            "DAGSTER_HOME": home,
        }
        window = ["--start", f"{START:%Y-%m-%dT%H:%M}", "--end", f"{START + timedelta(days=days):%Y-%m-%dT%H:%M}"]
        command = [str(FLEETLAKE), "backfill", *window, "--zones", ",".join(zones), "--lead-in-hours", "0"]
        cpu, began = children_cpu(), time.perf_counter()
        done = subprocess.run(command, env=environment, cwd=home, capture_output=True, text=True, check=False)
        wall, cpu = time.perf_counter() - began, children_cpu() - cpu
        relay.close()
    if done.returncode != 0:
        raise SystemExit(f"the backfill failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    bound = relay.requests / RATE_LIMIT * 60
    first = (relay.first_mds or float("nan")) - began
    print(
        f"  {relay.requests} requests, bound {bound:.1f} s; whole command {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"-> {wall / bound:.2f} x bound (goal: 1.10); first hourly request after {first:.2f} s (goal: 3 s); "
        f"{load()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, default=24, help="hours of the big city")
    parser.add_argument("--big", type=int, default=20000, help="vehicles of the big city")
    parser.add_argument("--days", type=int, default=30, help="days of the whole command's backfill")
    parser.add_argument("--vehicles", type=int, default=300, help="vehicles per zone of the whole command")
    parser.add_argument("--skip-big-city", action="store_true")
    parser.add_argument("--skip-command", action="store_true")
    args = parser.parse_args()
    if not args.skip_big_city:
        big_city(args.hours, args.big)
    if not args.skip_command:
        whole_command(args.days, args.vehicles)


if __name__ == "__main__":
    main()
