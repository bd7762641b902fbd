"""How far the warehouse is from the truth when the provider rounds its times (not a test: it prints figures).

Builds the embedded provider's city with every time rounded down to `--bin` seconds (ingested in-process, built
whole) and compares the marts with the provider's truth on those rounded times: vehicles left on_trip, zone x hour
x state occupancy rows that differ, state transitions the MDS 2.0 state machine does not allow, vehicles whose
state-and-place sequence differs, and trips' anomaly flags. `--sql-dir` builds with other models (another
checkout's `sql/`), to measure a change before and after on the same lake:

    .venv/bin/python benchmarks/rounded_times_truth.py --bin 900 --out /tmp/rounded
    git worktree add /tmp/before <commit> && .venv/bin/python benchmarks/rounded_times_truth.py --bin 900 \\
        --out /tmp/rounded --sql-dir /tmp/before/sql
"""

import argparse
import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import polars as pl

from fleetlake_provider.app import Credentials, ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from fleetlake_provider.truth import truth_frames
from pipelines.config import Settings
from pipelines.ingest import (
    GBFS_DATASETS,
    MDS_SNAPSHOT_DATASETS,
    ZONE_DATASETS,
    hours_between,
    ingest_hours,
    ingest_snapshots,
)
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.state_machine import is_transition

START = datetime(2026, 3, 28, tzinfo=UTC)
INTERVALS = """
select zone_id, cast(device_id as varchar) as device_id, vehicle_state, started_by, start_lat, start_lng,
from vehicle_state_intervals
order by zone_id, device_id, started_at, position_in_instant
"""
INTERVALS_BY_ID = INTERVALS.replace("position_in_instant", "ended_at, event_id")
ZONES = ("1", "145")


@dataclass(frozen=True)
class City:
    provider: SimulatedProvider
    lake: Path


def city(bin_s: int, days: int, vehicles: int, out: Path) -> City:
    """The rounded city, its lake ingested once into `out` (kept for further runs with other models)."""
    end = START + timedelta(days=days)
    options = ProviderOptions(
        zones=ZONES, vehicles=vehicles, start=START, days=days, seed=11, timestamp_rounding_s=bin_s
    )
    provider = SimulatedProvider(options, FixedClock(end + timedelta(minutes=15)))
    lake = out / "lake"
    if not lake.exists():
        settings = Settings(api_base_url="http://provider", maas_base_url="http://provider", zones=ZONES, lake_dir=lake)
        app = ProviderApp(provider, Credentials(), rate_limit_per_minute=1_000_000).app

        async def ingest() -> None:
            async with VoiClient(settings, transport=httpx.ASGITransport(app=app)) as client:
                await ingest_hours(client, Lake(lake), ZONES, hours_between(START, end))
                snapshots = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
                await ingest_snapshots(client, Lake(lake), ZONES, snapshots, captured_at=end)

        asyncio.run(ingest())
    return City(provider, lake)


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    result = pl.DataFrame(pl.from_arrow(con.sql(sql).to_arrow_table()))
    return result.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").cast(pl.Datetime("ms", "UTC"))
        for name, dtype in result.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )


def hourly_seconds(intervals: pl.DataFrame) -> pl.DataFrame:
    """Vehicle-seconds per zone, hour and state of the true timeline."""
    return (
        intervals.filter(pl.col("end_time") > pl.col("start_time"))
        .with_columns(
            hour=pl.datetime_ranges(
                pl.col("start_time").dt.truncate("1h"), pl.col("end_time") - pl.duration(milliseconds=1), "1h"
            )
        )
        .explode("hour")
        .with_columns(
            ms=(
                pl.min_horizontal("end_time", pl.col("hour") + pl.duration(hours=1))
                - pl.max_horizontal("start_time", "hour")
            ).dt.total_milliseconds()
        )
        .group_by("zone_id", "vehicle_state", "hour")
        .agg(true_seconds=pl.col("ms").sum() / 1000)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=int, default=900, help="seconds the provider rounds its times down to")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--vehicles", type=int, default=150)
    parser.add_argument("--out", type=Path, required=True, help="folder for the lake and the warehouse")
    parser.add_argument("--sql-dir", type=Path, default=None, help="the models to build with (default: this one's)")
    args = parser.parse_args()
    rounded = city(args.bin, args.days, args.vehicles, args.out)
    name = "warehouse.duckdb" if args.sql_dir is None else f"warehouse-{args.sql_dir.parent.name}.duckdb"
    (args.out / name).unlink(missing_ok=True)
    warehouse = Warehouse(args.out / name, rounded.lake, **({"sql_dir": args.sql_dir} if args.sql_dir else {}))
    warehouse.build()
    truth = truth_frames(rounded.provider)
    with warehouse.connect(read_only=True) as con:
        columns = {
            c
            for (c,) in con.sql(
                "select column_name from duckdb_columns() where table_name = 'vehicle_state_intervals'"
            ).fetchall()
        }
        # Before the order existed, simultaneous intervals came in event_id order (the last one lasting).
        intervals = frame(con, INTERVALS if "position_in_instant" in columns else INTERVALS_BY_ID)
        occupancy = frame(
            con, "select zone_id, vehicle_state, hour, state_seconds from occupancy_hourly where area_type = 'zone'"
        )
        trips = frame(
            con, "select cast(trip_id as varchar) as trip_id, is_under_10s, is_over_5h, is_impossible_speed from trips"
        )
    states = truth["vehicle_states"]
    last = intervals.group_by("zone_id", "device_id", maintain_order=True).last()
    true_last = states.group_by("zone_id", "device_id", maintain_order=True).last()
    ends = last.join(true_last, on=["zone_id", "device_id"], suffix="_true")
    print(f"times rounded to {args.bin} s; models: {args.sql_dir or 'this checkout'}")
    print(
        f"vehicles left on_trip: {(ends['vehicle_state'] == 'on_trip').sum()} "
        f"(truth {(ends['vehicle_state_true'] == 'on_trip').sum()}); "
        f"last state wrong: {(ends['vehicle_state'] != ends['vehicle_state_true']).sum()} of {ends.height}"
    )
    compared = hourly_seconds(states).join(occupancy, on=["zone_id", "vehicle_state", "hour"], how="inner")
    wrong = compared.filter((pl.col("state_seconds") - pl.col("true_seconds")).abs() > 1e-6)
    print(f"zone x hour x state occupancy rows differing from the truth: {wrong.height} of {compared.height}")
    invalid = differing = 0
    true_sequences = {
        key: list(zip(g["vehicle_state"], g["lat"], g["lng"], strict=True))
        for key, g in states.group_by("zone_id", "device_id", maintain_order=True)
    }
    for key, g in intervals.group_by("zone_id", "device_id", maintain_order=True):
        sequence = g["vehicle_state"].to_list()
        by = g["started_by"].to_list()
        invalid += sum(not is_transition(a, (e,), b) for a, e, b in zip(sequence, by[1:], sequence[1:], strict=False))
        differing += list(zip(sequence, g["start_lat"], g["start_lng"], strict=True)) != true_sequences[key]
    print(f"invalid state transitions: {invalid}; vehicles whose state and place sequence differs: {differing}")
    true_flags = truth["trips"].select(
        "trip_id",
        under=pl.col("duration_s") < 10,
        over=pl.col("duration_s") > 5 * 3600,
        speed=pl.col("distance_m") / pl.col("duration_s") * 3.6 > 45,
    )
    flags = trips.join(true_flags, on="trip_id")
    differ = flags.filter(
        (pl.col("is_under_10s") != pl.col("under"))
        | (pl.col("is_over_5h") != pl.col("over"))
        | (pl.col("is_impossible_speed") != pl.col("speed"))
        | pl.any_horizontal(pl.col("is_under_10s", "is_over_5h", "is_impossible_speed").is_null())
    )
    print(
        f"trips: {flags.height}; flagged under 10 s: {flags['is_under_10s'].sum()} (truth {flags['under'].sum()}); "
        f"trips whose flags differ from the truth: {differ.height}"
    )


if __name__ == "__main__":
    main()
