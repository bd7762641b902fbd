"""The first hours of a history: the demo's city backfilled without and with the lead-in, against the truth.

Mimics `fleetlake demo` run at --now (default 01:30 UTC): the provider simulates from the midnight before the
48-hour window; the window is backfilled once with no lead-in (as backfills did before they read one) and once
after the 48-hour lead-in `fleetlake backfill` plans. Prints, per zone, the deployed fleet in the window's first
hour and over its first 23 hours, in the warehouse and in the simulator's truth. Not a test. Usage:
    .venv/bin/python benchmarks/first_hours.py [--now 2026-11-30T01:30] [--out DIR]
"""

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from fleetlake_provider.app import Credentials, ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from fleetlake_provider.truth import truth_frames
from pipelines.config import Secret, Settings
from pipelines.ingest import (
    GBFS_DATASETS,
    MDS_SNAPSHOT_DATASETS,
    ZONE_DATASETS,
    hours_between,
    ingest_hours,
    ingest_snapshots,
)
from pipelines.lake.store import Lake
from pipelines.lead_in import plan_lead_in
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse

DEMO_HOURS = 48
DEPLOYED = ("available", "reserved", "non_operational", "on_trip")  # MDS dockless.deployed: the right of way
FIRST_DAY_HOURS = 23


def truth_deployed(provider: SimulatedProvider, start: datetime, end: datetime) -> dict[str, float]:
    """Time-weighted mean deployed vehicles over [start, end), per zone."""
    states = truth_frames(provider)["vehicle_states"].filter(pl.col("vehicle_state").is_in(DEPLOYED))
    overlap = pl.min_horizontal("end_time", pl.lit(end)) - pl.max_horizontal("start_time", pl.lit(start))
    hours = (end - start).total_seconds() / 3600
    shares = (
        states.filter((pl.col("start_time") < end) & (pl.col("end_time") > start))
        .group_by("zone_id")
        .agg((overlap.dt.total_milliseconds().sum() / 3.6e6 / hours).alias("deployed"))
    )
    return dict(shares.sort("zone_id").rows())


def mart_deployed(warehouse: Warehouse, start: datetime, end: datetime) -> dict[str, float]:
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "select zone_id, avg(avg_vehicles) from occupancy_hourly "
            "where area_type = 'zone' and vehicle_state = 'deployed' and hour >= $start and hour < $end "
            "group by zone_id order by zone_id",
            {"start": start, "end": end},
        ).fetchall()
    return dict(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--now", default="2026-11-30T01:30")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now).replace(tzinfo=UTC)
    out = args.out or Path(tempfile.mkdtemp(prefix="first-hours-"))
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=DEMO_HOURS)
    start = first_hour.replace(hour=0)
    options = ProviderOptions(start=start, days=(now - start).days + 1)
    provider = SimulatedProvider(options, FixedClock(now))
    last_ready = (now - timedelta(seconds=options.ready_delay_s)).replace(minute=0, second=0, microsecond=0)
    credentials = Credentials()
    spans = {"first hour": (first_hour, first_hour + timedelta(hours=1))}
    spans[f"first {FIRST_DAY_HOURS} h"] = (first_hour, first_hour + timedelta(hours=FIRST_DAY_HOURS))
    print(f"window [{first_hour:%Y-%m-%dT%H:%M}Z, {last_ready:%Y-%m-%dT%H:%M}Z), zones {', '.join(options.zones)}")
    for span, (a, b) in spans.items():
        print(f"  truth, {span}: {truth_deployed(provider, a, b)}")
    with running(ProviderApp(provider, credentials, rate_limit_per_minute=1_000_000)) as url:
        for name, lead_in_hours in (("no lead-in", 0), ("48 h lead-in", 48)):
            lake = out / name.replace(" ", "-")
            settings = Settings(
                api_base_url=url,
                maas_base_url=url,
                client_secret=Secret(credentials.client_secret),
                auth_token=Secret(credentials.auth_token),
                zones=options.zones,
                lake_dir=lake,
            )
            lead_in = plan_lead_in(settings, options.zones, first_hour, lead_in_hours)
            hours = hours_between(lead_in.first_to_fetch or first_hour, last_ready)

            async def ingest(settings: Settings = settings, hours: list[datetime] = hours) -> None:
                async with VoiClient(settings) as client:
                    await ingest_hours(client, Lake(settings.lake_dir), settings.zones, hours)
                    snapshots = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
                    await ingest_snapshots(client, Lake(settings.lake_dir), settings.zones, snapshots, now)

            asyncio.run(ingest())
            warehouse = Warehouse(lake.with_suffix(".duckdb"), lake, lead_in_hours=48)
            warehouse.build()
            for span, (a, b) in spans.items():
                print(f"  {name} ({len(hours)} h ingested), {span}: {mart_deployed(warehouse, a, b)}")


if __name__ == "__main__":
    main()
