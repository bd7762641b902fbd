"""Warehouse benchmark: prints figures measured side by side in one run (not a test; machines are noisy).

Two storage designs are measured one after the other on the same lake, each figure printed with the machine's load
(`uptime`) at its end:
- build-aside, the warehouse's design (pipelines/warehouse/publish.py): a build works on a private DuckDB file (a
  copy of the published one; an empty one for a full build) and publishes it by an atomic rename;
- DuckLake, the alternative: the same models built into a DuckLake (a catalog database, SQLite by default, and
  Parquet data files), each model committed as it is built, as the build runs them (`--ducklake-catalog` points it
  elsewhere, e.g. `postgres:dbname=fleetlake host=...`).

1. A lake of DAYS days of one 10,000-vehicle city (written from the provider's payloads through the same
   parse-and-write path ingestion uses, without HTTP), then a full warehouse build in a child process:
   wall time and peak memory (goals: 60 s and 4 GiB on 2 cores).
2. Rebuilding one hour (window build) after the full build (goal: 2 s): the newest hour, as the hourly schedule
   does, then an hour in the middle of the history, as re-ingested late data does. Each is built three times, as
   an hourly run builds it, in a fresh process; the median and the range are printed (a shared machine's speed
   drifts by half within minutes), with its CPU time and, on stderr with the slowest models, the time and CPU of
   each phase of the build (Warehouse.phases). Build-aside's build starts from the spare copy the build before it
   made after publishing (the benchmark waits for it, as the next hourly run comes an hour later); what a copy of
   the published file costs is printed beside it.
3. Analyst queries, each in a fresh process as a shell or notebook session runs it: open the warehouse read-only,
   run the query, read every row.
4. Zone assignment: points per second, vectorised (one STRtree query for all points) against a plain loop
   of one STRtree query per point, on the same points and areas.

Usage: .venv/bin/python benchmarks/warehouse_benchmark.py [--days 30] [--vehicles 10000] [--lake DIR]
       [--ducklake-catalog sqlite:PATH | postgres:DSN] [--skip-ducklake]
(--lake keeps the lake in DIR and reuses it on the next run with the same days and vehicles.)
"""

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import polars as pl
import shapely

from fleetlake_provider import gbfs, mds, zone_api
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from pipelines.ingest import write_partition
from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import Lake, Partition, snapshot_stem
from pipelines.warehouse.areas import AREA_PRIORITY, assign
from pipelines.warehouse.publish import spare_path

ZONE = "1"
START = datetime(2026, 3, 1, tzinfo=UTC)


def write_lake(lake: Lake, days: int, vehicles: int, reuse: bool = False) -> tuple[SimulatedProvider, int]:
    end = START + timedelta(days=days)
    provider = SimulatedProvider(
        ProviderOptions(zones=(ZONE,), vehicles=vehicles, start=START, days=days, ready_delay_s=0, page_size=10**9),
        FixedClock(end + timedelta(hours=1)),
    )
    done = lake.root / "complete"
    if reuse and done.exists():
        return provider, int(done.read_text())
    records = 0
    for h in range(days * 24):
        hour = START + timedelta(hours=h)
        key = f"{hour:%Y-%m-%dT%H}"
        window = (hour, hour + timedelta(hours=1))
        for name, payload in (
            ("mds_trips", mds.trips(provider, ZONE, key)),
            ("mds_events", mds.events_historical(provider, ZONE, key, 0, None)),
        ):
            result = write_partition(
                lake, DATASETS[name], Partition(name, ZONE, hour), [msgspec.json.encode(payload)], window
            )
            records += result.rows
    write_snapshots(lake, provider, end)
    done.write_text(str(records))
    return provider, records


def write_snapshots(lake: Lake, provider: SimulatedProvider, captured_at: datetime) -> None:
    """The snapshots the models read (zones, vehicles, time zone, geofencing), as ingestion writes them."""
    hour = captured_at.replace(minute=0, second=0, microsecond=0)
    payloads = {
        "zone_info": zone_api.info(provider),
        "zone_areas": zone_api.areas(provider, ZONE, version=2),
        "mds_vehicles": mds.vehicles(provider, ZONE, None, 0, None),
        "gbfs_system_information": gbfs.feed(provider, ZONE, "system_information", ""),
        "gbfs_geofencing_zones": gbfs.feed(provider, ZONE, "geofencing_zones", ""),
    }
    for name, payload in payloads.items():
        write_partition(
            lake,
            DATASETS[name],
            Partition(name, ZONE, hour),
            [msgspec.json.encode(payload)],
            (captured_at, captured_at),
            stem=snapshot_stem(captured_at),
            captured_at=captured_at,
            rows_filter=pl.col("source_zone_id") == ZONE if name == "zone_info" else None,
        )


# The DuckLake alternative: the same Warehouse, building in a DuckLake instead of a private file.
DUCKLAKE = """
from contextlib import contextmanager
import duckdb
from pipelines.warehouse.build import Warehouse
from pipelines.duckdb_extensions import NO_DOWNLOADS, load_extensions
from pipelines.warehouse.policy import RULE_IN_EFFECT


def open_ducklake(catalog, data_path, read_only=False):
    con = duckdb.connect(config=NO_DOWNLOADS)
    load_extensions(con, "ducklake", "postgres" if catalog.startswith("postgres:") else "sqlite")
    con.execute("set enable_progress_bar = false")
    con.execute("set memory_limit = '3GB'")
    options = "read_only" if read_only else "data_path " + repr(data_path)
    con.execute("attach " + repr("ducklake:" + catalog) + " as warehouse (" + options + ")")
    con.execute("use warehouse")
    return con


class DuckLakeWarehouse(Warehouse):
    catalog = ""
    data_path = ""

    @contextmanager
    def building(self, fresh, lap):
        with open_ducklake(self.catalog, self.data_path) as con:
            con.execute(RULE_IN_EFFECT)
            lap("connect")
            yield con
"""

BUILD = """
import sys, time, resource
from pathlib import Path
from pipelines.warehouse.build import Warehouse
w = Warehouse(Path(sys.argv[1]), Path(sys.argv[2]))
if sys.argv[3:]:
    w = DuckLakeWarehouse(Path(sys.argv[1]), Path(sys.argv[2]))
    w.catalog, w.data_path = sys.argv[3], sys.argv[4]
t = time.perf_counter()
runs = w.build()
full = time.perf_counter() - t
for phase, took in w.phases.items():
    print(f"  {phase:<28} {took.seconds:7.1f} s  cpu {took.cpu_seconds:6.1f} s", file=sys.stderr)
for run in sorted(runs, key=lambda r: -r.seconds)[:8]:
    rows = "" if run.rows is None else f"{run.rows:,} rows"
    print(f"  {run.name:<28} {run.seconds:7.1f} s  {rows:>18}", file=sys.stderr)
print(full, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

HOUR = """
import resource, shutil, sys, time
from datetime import datetime, timedelta
from pathlib import Path
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.publish import spare_path
copy = 0.0
w = Warehouse(Path(sys.argv[1]), Path(sys.argv[2]))
if sys.argv[4:]:
    w = DuckLakeWarehouse(Path(sys.argv[1]), Path(sys.argv[2]))
    w.catalog, w.data_path = sys.argv[4], sys.argv[5]
else:  # what a copy of the published file costs, alone (the build takes the spare copied after the last one)
    t = time.perf_counter()
    shutil.copyfile(sys.argv[1], sys.argv[1] + ".copy")
    copy = time.perf_counter() - t
    Path(sys.argv[1] + ".copy").unlink()
    spare = spare_path(Path(sys.argv[1]))
    print(f"  spare ready: {spare is not None and spare.exists()}", file=sys.stderr)
hour = datetime.fromisoformat(sys.argv[3])
t = time.perf_counter()
before = resource.getrusage(resource.RUSAGE_SELF)
runs = w.build((hour, hour + timedelta(hours=1)))
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
print(time.perf_counter() - t, cpu, copy)
for phase, took in w.phases.items():
    print(f"  {phase:<28} {took.seconds:7.2f} s  cpu {took.cpu_seconds:6.2f} s", file=sys.stderr)
for run in sorted(runs, key=lambda r: -r.seconds)[:6]:
    print(f"  {run.name:<28} {run.seconds:7.2f} s  {run.mode}", file=sys.stderr)
"""

# What analysts ask, from a fresh session: a compliance figure of the month, a day of occupancy, trips per day,
# one vehicle's timeline.
QUERIES = {
    "violations per rule, the month": (
        "select rule, sum(violation_count) from compliance_daily group by rule order by 2 desc"
    ),
    "deployed vehicles per hour, one day": (
        "select hour_local, avg_vehicles from occupancy_hourly where scope = 'zone' and vehicle_state = 'deployed' "
        "and hour >= timestamptz '2026-03-15 00:00:00+00' and hour < timestamptz '2026-03-16 00:00:00+00' order by 1"
    ),
    "trips and mean distance per local day": (
        "select cast(start_time_local as date), count(*), avg(distance_m) from trips group by 1 order by 1"
    ),
    "one vehicle's timeline": (
        "select * from vehicle_state_intervals where device_id = (select min(device_id) from trips) order by started_at"
    ),
}

QUERY = """
import sys, time
import duckdb
t = time.perf_counter()
if sys.argv[3:]:
    con = open_ducklake(sys.argv[3], "", read_only=True)
else:
    con = duckdb.connect(sys.argv[1], read_only=True)
rows = len(con.execute(sys.argv[2]).fetchall())
print(time.perf_counter() - t, rows)
"""


def load() -> str:
    """The machine's load averages (1, 5 and 15 minutes), as `uptime` prints them."""
    out = subprocess.run(["uptime"], capture_output=True, text=True).stdout
    return "load " + out.rsplit("load average:", 1)[-1].strip()


def zone_assignment(provider: SimulatedProvider, lake_root: Path) -> tuple[int, float, float]:
    trips = pl.read_parquet(lake_root / "mds_trips" / "**" / "*.parquet")
    points = pl.DataFrame(
        {
            "kind": "trip_end",
            "record_id": trips["trip_id"],
            "zone_id": ZONE,
            "at": trips["end_time"],
            "lng": trips["end_lng"],
            "lat": trips["end_lat"],
        }
    )
    city = provider.zones[ZONE].city
    areas = pl.DataFrame(
        {
            "zone_id": ZONE,
            "area_id": [a.area_id for a in city.areas],
            "area_type": [a.area_type for a in city.areas],
            "geometry": [shapely.to_wkb(a.geometry) for a in city.areas],
            "valid_from": START,
        }
    )
    began = time.perf_counter()
    vectorised = assign(points, areas)
    fast = time.perf_counter() - began
    tree = shapely.STRtree([a.geometry for a in city.areas])
    # The same answer point by point: the most specific containing area (AREA_PRIORITY, then area_id).
    rank = {i: (AREA_PRIORITY.get(a.area_type, 99), a.area_id) for i, a in enumerate(city.areas)}
    began = time.perf_counter()
    looped = []
    for lng, lat in zip(points["lng"], points["lat"], strict=True):
        inside = tree.query(shapely.Point(lng, lat), predicate="within")
        looped.append(city.areas[min(inside, key=rank.__getitem__)].area_id if len(inside) else None)
    slow = time.perf_counter() - began
    expected = sorted(a for a in looped if a is not None)
    assert expected == sorted(vectorised["area_id"].to_list()), "vectorised and looped assignment differ"
    return points.height, points.height / fast, points.height / slow


def wait_for_spare(published: Path, timeout_s: float = 120.0) -> None:
    """Until the spare of the published file is copied (publish.py), as it is long before the next hourly run."""
    deadline = time.monotonic() + timeout_s
    while (spare := spare_path(published)) is not None and not spare.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def child(script: str, *arguments: str, ducklake: bool = False) -> "subprocess.CompletedProcess[str]":
    """Runs `script` in a fresh Python process (as an hourly run is one), failing loudly; with DuckLake's
    connection and builder defined first when `ducklake`."""
    code = DUCKLAKE + script if ducklake else script
    out = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return out


def measure(
    label: str, published: Path, lake_root: Path, hours: list[tuple[str, datetime]], ducklake: list[str]
) -> None:
    """Every figure of one design, each followed by the machine's load when it was taken."""
    print(f"== {label}")
    full_out = child(BUILD, str(published), str(lake_root), *ducklake, ducklake=bool(ducklake))
    full, max_rss_kib = (float(x) for x in full_out.stdout.splitlines()[-1].split())
    print(f"full build:        {full:6.1f} s   (goal 60 s)  [{load()}]")
    print(f"peak memory:       {max_rss_kib / 1024 / 1024:6.2f} GiB (goal 4 GiB)")
    if ducklake:
        files = [p for p in Path(ducklake[1]).rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files) / 2**30
        print(f"stored:            {size:6.2f} GiB in {len(files):,} Parquet files")
    else:
        print(f"stored:            {published.stat().st_size / 2**30:6.2f} GiB in one DuckDB file")
    hour_runs = []
    for hour_label, hour in hours:
        outs = []
        for _ in range(3):
            if not ducklake:  # an hourly run comes an hour after the last: its spare copy has long been made
                wait_for_spare(published)
            outs.append(
                child(HOUR, str(published), str(lake_root), hour.isoformat(), *ducklake, ducklake=bool(ducklake))
            )
        figures = sorted(tuple(float(x) for x in out.stdout.split()[-3:]) for out in outs)
        low, median, high = (f[0] for f in figures)
        copy = "" if ducklake else f"; a copy of the file alone {figures[1][2]:.2f} s (off the path: the spare)"
        lead = "" if hour_runs else "one-hour rebuild:"
        print(
            f"{lead:<18} {median:6.2f} s   (goal 2 s) {hour_label}; {low:.2f}-{high:.2f} s over 3 fresh "
            f"processes, CPU {figures[1][1]:.2f} s (all threads){copy}  [{load()}]"
        )
        hour_runs.append((hour_label, outs[-1].stderr.rstrip()))
    for query_label, sql in QUERIES.items():
        out = child(QUERY, str(published), sql, *ducklake[:1], ducklake=bool(ducklake))
        seconds, rows = out.stdout.split()[-2:]
        print(f"analyst query:     {float(seconds):6.2f} s   {query_label} ({int(rows):,} rows)  [{load()}]")
    print("full build, its phases and slowest models:")
    print(full_out.stderr.rstrip())
    for hour_label, slowest in hour_runs:
        print(f"one-hour rebuild ({hour_label}), its phases and slowest models:")
        print(slowest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--lake", type=Path, help="keep the lake here and reuse it when it is already there")
    parser.add_argument("--ducklake-catalog", help="DuckLake's catalog (default: a SQLite file in a temporary folder)")
    parser.add_argument("--skip-ducklake", action="store_true", help="measure the build-aside design only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(args.lake / f"{args.days}d-{args.vehicles}v" if args.lake else Path(tmp) / "lake")
        began = time.perf_counter()
        provider, records = write_lake(lake, args.days, args.vehicles, reuse=args.lake is not None)
        print(
            f"lake: {args.days} days x {args.vehicles:,} vehicles, {records:,} records "
            f"in {time.perf_counter() - began:.0f} s"
        )
        # The hourly schedule rebuilds the newest hour; re-ingested late data rebuilds an older one.
        newest = START + timedelta(days=args.days) - timedelta(hours=1)
        middle = START + timedelta(days=args.days // 2, hours=17)
        hours = [
            ("the newest hour, as the hourly schedule builds it", newest),
            ("an hour in the middle of the history (late data)", middle),
        ]
        measure("build-aside (one DuckDB file, published by rename)", Path(tmp) / "w.duckdb", lake.root, hours, [])
        if not args.skip_ducklake:
            catalog = args.ducklake_catalog or f"sqlite:{Path(tmp) / 'ducklake.sqlite'}"
            data = Path(tmp) / "ducklake-data"
            measure(f"DuckLake (catalog {catalog.split(':')[0]}, local Parquet)", Path(tmp) / "unused", lake.root,
                    hours, [catalog, str(data) + "/"])  # fmt: skip
        points, fast, slow = zone_assignment(provider, lake.root)
        print(
            f"zone assignment:   {points:,} points; vectorised {fast:,.0f}/s, "
            f"per-point loop {slow:,.0f}/s, x{fast / slow:.0f}"
        )


if __name__ == "__main__":
    main()
