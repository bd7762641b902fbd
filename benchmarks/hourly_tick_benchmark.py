"""Hourly tick benchmark: prints figures measured side by side in one run (not a test; machines are noisy).

Ten cities of mixed size (one of 20,000 vehicles, the others 2,000 to 5,000) from the embedded provider (in a
process of its own, so its CPU time is not counted, at its real rate limit). The lake and the warehouse hold the
hours up to the previous tick; then one tick: the last hour plus a six-hour lookback ingested, and the warehouse
built for them, two ways on identical copies:

- before: every lookback partition rewritten and every lookback hour rebuilt (`rewrite_unchanged`, a window build);
- after: partitions whose records did not change are not written, and only the changed hours are rebuilt (the
  hourly schedule's `changed_hours` build).

Each line gives wall seconds, CPU seconds of this process (user + system) and the load average while it ran; the
goal is a tick under 30 s on 2 quiet cores. Usage:
    .venv/bin/python benchmarks/hourly_tick_benchmark.py [--big 20000] [--lookback 6] [--scale 1.0]
"""

import argparse
import asyncio
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from pipelines.config import Settings
from pipelines.ingest import IngestReport, hours_between, ingest_hours, ingest_snapshots
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import load, served_provider

START = datetime(2026, 3, 10, tzinfo=UTC)
LAST_HOUR = START + timedelta(hours=12)
"""The hour the tick ingests: midday, when the cities are busiest."""
SMALL_FLEETS = (2000, 2500, 3000, 3500, 4000, 4500, 5000, 2000, 3000)
SNAPSHOTS = ("zone_info", "zone_areas", "gbfs_system_information", "mds_vehicles")
T = TypeVar("T")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(label: str, work: Callable[[], T]) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = work()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"  {label:<34} {wall:7.2f} s wall {cpu:7.2f} s CPU   {load()}", flush=True)
    return result, wall, cpu


def provider(zones: tuple[str, ...], fleet: dict[str, int]) -> AbstractContextManager[str]:
    now = LAST_HOUR + timedelta(hours=1, minutes=11)  # the last hour has just been served
    return served_provider(
        [
            "--zones", ",".join(zones), "--fleet", ",".join(f"{zone}:{size}" for zone, size in fleet.items()),
            "--start", START.isoformat(), "--days", "1", "--now", now.isoformat(),
        ]
    )  # fmt: skip


def ingest(settings: Settings, lake: Lake, hours: list[datetime], rewrite: bool, snapshots: bool) -> IngestReport:
    async def run() -> IngestReport:
        async with VoiClient(settings) as client:
            if snapshots:
                await ingest_snapshots(client, lake, settings.zones, SNAPSHOTS, captured_at=START + timedelta(hours=1))
            return await ingest_hours(client, lake, settings.zones, hours, rewrite_unchanged=rewrite)

    report = asyncio.run(run())
    failed = report.with_status("failed")
    if failed:
        raise SystemExit(f"{len(failed)} partitions failed, e.g. {failed[0].error}")
    return report


def tick(settings: Settings, root: Path, way: str, window: tuple[datetime, datetime]) -> tuple[float, float]:
    """One tick on a copy of the previous tick's lake and warehouse; its wall and CPU seconds."""
    shutil.copytree(root / "warm", root / way)
    lake = Lake(root / way / "lake")
    warehouse = Warehouse(root / way / "warehouse.duckdb", lake.root)
    before = way == "before"
    print(f"{way}: " + ("every lookback hour rewritten and rebuilt" if before else "changed hours only"))
    hours = hours_between(*window)
    report, ingest_wall, ingest_cpu = measured("ingest", lambda: ingest(settings, lake, hours, before, False))
    summary = report.summary()
    print(f"    {summary['partitions_written']} partitions written, {summary['partitions_unchanged']} unchanged")
    if not before:
        print(f"    hours changed: {[f'{h:%H}' for h in warehouse.changed_hours(window)]}")
    _, build_wall, build_cpu = measured("build", lambda: warehouse.build(window, only_changed=not before))
    wall, cpu = ingest_wall + build_wall, ingest_cpu + build_cpu
    print(f"  {'tick':<34} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", type=int, default=20_000, help="vehicles of the big city")
    parser.add_argument("--lookback", type=int, default=6, help="hours before the last one the tick re-ingests")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every fleet (0.1 for a quick look)")
    args = parser.parse_args()
    sizes = (args.big, *SMALL_FLEETS)
    zones = ("1", "145", "9", "31", *(str(1001 + n) for n in range(len(sizes) - 4)))
    fleet = {zone: max(1, int(size * args.scale)) for zone, size in zip(zones, sizes, strict=True)}
    window = (LAST_HOUR - timedelta(hours=args.lookback), LAST_HOUR + timedelta(hours=1))
    print(f"{len(zones)} cities, {sum(fleet.values()):,} vehicles ({', '.join(map(str, fleet.values()))})")
    print(f"tick: {window[0]:%H:%M} to {window[1]:%H:%M} UTC ({args.lookback} h lookback + the last hour)")
    with tempfile.TemporaryDirectory() as tmp, provider(zones, fleet) as url:
        root = Path(tmp)
        settings = Settings(api_base_url=url, maas_base_url=url, zones=zones, lake_dir=root / "warm" / "lake")
        print("the previous tick's state (not timed as the tick):")
        previous = hours_between(window[0] - timedelta(hours=1), window[1] - timedelta(hours=1))
        measured(
            "ingest up to the previous hour", lambda: ingest(settings, Lake(settings.lake_dir), previous, False, True)
        )
        warm = Warehouse(root / "warm" / "warehouse.duckdb", settings.lake_dir)
        measured("build it", lambda: warm.build())
        figures = {way: tick(settings, root, way, window) for way in ("before", "after")}
    (before_wall, before_cpu), (after_wall, after_cpu) = figures["before"], figures["after"]
    print(
        f"after / before: {after_wall / before_wall:.2f} wall, {after_cpu / before_cpu:.2f} CPU; "
        f"tick {after_wall:.1f} s wall, {after_cpu:.1f} s CPU (goal: under 30 s on 2 quiet cores)   {load()}"
    )


if __name__ == "__main__":
    main()
