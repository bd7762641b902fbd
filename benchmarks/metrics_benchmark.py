"""Metrics API benchmark: prints figures measured side by side in one run (not a test; machines are noisy).

A lake of DAYS days of one VEHICLES-vehicle city (the warehouse benchmark's, written from the provider's payloads
through ingestion's parse-and-write path), a full warehouse build, then the Metrics API served on loopback:
1. one query of every dockless measure by hour and geography (every zone and area) over the whole history, sent
   REPEAT times over HTTP: p50 and p95 latency (goal: p95 under 1 s), with the CPU time it took;
2. the same for the dockless measures the 15-minute pieces answer alone (all but the activity measures);
3. those figures computed by one SQL query run directly in DuckDB on the same file, REPEAT times: p50 and p95.
Each figure is printed with the machine's load (`uptime`) at its end.

Usage: .venv/bin/python benchmarks/metrics_benchmark.py [--days 30] [--vehicles 10000] [--lake DIR]
    [--warehouse FILE] [--repeat 20]
(--lake keeps the lake in DIR and reuses it on the next run with the same days and vehicles; --warehouse keeps the
built warehouse in FILE and reuses it when it is there, so the queries alone can be measured again.)
"""

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warehouse_benchmark import load, write_lake

from pipelines.lake.store import Lake
from pipelines.metrics.measures import MEASURES
from pipelines.metrics.service import MetricsService, issue_token, running
from pipelines.warehouse.build import Warehouse

SECRET = "benchmark-key-of-at-least-thirty-two-bytes"
# Every dockless measure the API answers; those the additive pieces answer alone are the ones the direct SQL computes
# too (the activity measures have pieces of their own, one per interval, core.int_metrics_activity, which it leaves
# out).
DOCKLESS = [measure.name for measure in MEASURES.values() if measure.family == "dockless"]
FROM_PIECES = [
    "dockless.deployed.avg",
    "dockless.deployed.min",
    "dockless.deployed.max",
    "dockless.deployed.avg.min",
    "dockless.deployed.avg.max",
    "dockless.utilization.idle.percent",
    "dockless.utilization.trips_per_vehicle.avg",
]
# The same figures straight from the pieces: per UTC hour and zone or area (the API's geographies).
DIRECT = """
with vehicles as (
    select zone_id, scope, area_id, time_bucket(interval 1 hour, interval_start) as hour,
        sum(state_seconds) filter (where vehicle_state = 'deployed') as deployed,
        sum(state_seconds) filter (where vehicle_state = 'on_trip') as on_trip,
        if(count(*) filter (where vehicle_state = 'deployed') = 4,
           min(min_vehicles) filter (where vehicle_state = 'deployed'), 0) as fewest,
        max(max_vehicles) filter (where vehicle_state = 'deployed') as most,
        min(state_seconds / 900) filter (where vehicle_state = 'deployed') as quarter_min,
        max(state_seconds / 900) filter (where vehicle_state = 'deployed') as quarter_max,
    from core.int_metrics_vehicles
    where vehicle_type = '*' and scope <> 'outside' and vehicle_state in ('deployed', 'on_trip')
        and interval_start >= $start and interval_start < $end
    group by all
),
trips as (
    select zone_id, scope, area_id, time_bucket(interval 1 hour, interval_start) as hour, sum(trip_count) as trips,
    from core.int_metrics_trips
    where vehicle_type = '*' and location = 'start' and interval_start >= $start and interval_start < $end
    group by all
)
select vehicles.*, deployed / 3600 as deployed_avg, (deployed - coalesce(on_trip, 0)) / deployed as idle,
    coalesce(trips.trips, 0) / (deployed / 3600) as trips_per_vehicle,
from vehicles
left join trips using (zone_id, scope, area_id, hour)
"""


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--lake", type=Path, help="keep the lake here and reuse it when it is already there")
    parser.add_argument("--warehouse", type=Path, help="keep the built warehouse here and reuse it when it is there")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = args.lake or Path(folder) / "lake"
        root.mkdir(parents=True, exist_ok=True)
        started, used = time.perf_counter(), cpu()
        _, records = write_lake(Lake(root), args.days, args.vehicles, reuse=args.lake is not None)
        print(
            f"lake: {records:,} records of {args.days} days, {args.vehicles:,} vehicles "
            f"({time.perf_counter() - started:.0f} s, {cpu() - used:.0f} s CPU; {load()})"
        )
        warehouse = Warehouse(args.warehouse or Path(folder) / "warehouse.duckdb", root)
        if args.warehouse is not None and args.warehouse.exists():
            print(f"full build: reused {args.warehouse}")
        else:
            started, used = time.perf_counter(), cpu()
            warehouse.build()
            print(
                f"full build: {time.perf_counter() - started:.0f} s "
                f"({cpu() - used:.0f} s CPU in this process; {load()})"
            )
        with duckdb.connect(str(warehouse.path), read_only=True) as con:
            ((first, horizon),) = con.sql("select min(first_hour), max(horizon) from core.int_zone_horizons").fetchall()
            ((pieces,),) = con.sql("select count(*) from core.int_metrics_vehicles").fetchall()
        last = horizon - timedelta(hours=1)
        print(
            f"query: dockless measures by hour and geography, {first:%Y-%m-%d %H:%M} to {horizon:%Y-%m-%d %H:%M} UTC; "
            f"core.int_metrics_vehicles holds {pieces:,} rows"
        )
        headers = {"Authorization": f"Bearer {issue_token(SECRET)}"}
        latencies: list[float] = []
        with running(MetricsService(warehouse.path, root, SECRET, k=10)) as url, httpx.Client(timeout=120) as client:
            queries = (("every dockless measure", DOCKLESS), ("the pieces' dockless measures", FROM_PIECES))
            for label, measures in queries:
                body = {
                    "measures": measures,
                    "interval": "PT1H",
                    "start_date": f"{first:%Y-%m-%dT%H:%M}",
                    "end_date": f"{last:%Y-%m-%dT%H:%M}",
                    "dimensions": ["geography_id"],
                }
                latencies, rows = [], 0
                used = cpu()
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.post(f"{url}/metrics", json=body, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    response.raise_for_status()
                    rows = len(response.json()["rows"])
                print(
                    f"API over HTTP, {label} ({len(measures)}): {rows:,} rows, {percentiles(latencies)}, "
                    f"{(cpu() - used) / args.repeat * 1000:.0f} ms CPU a query ({load()})"
                )
        direct, used = [], cpu()
        for _ in range(args.repeat):
            started = time.perf_counter()
            with duckdb.connect(str(warehouse.path), read_only=True) as con:
                rows = len(con.execute(DIRECT, {"start": first, "end": horizon}).fetchall())
            direct.append(time.perf_counter() - started)
        print(
            f"direct DuckDB SQL, the pieces' dockless measures: {rows:,} rows, {percentiles(direct)}, "
            f"{(cpu() - used) / args.repeat * 1000:.0f} ms CPU a query ({load()})"
        )
        ratio = statistics.median(latencies) / statistics.median(direct)
        print(f"API / direct, the pieces' dockless measures, p50: {ratio:.1f}x")


if __name__ == "__main__":
    main()
