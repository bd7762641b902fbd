"""The insurance warehouse: one DuckDB file of the insurance trips, rebuilt whole from the insurance lake.

It is small (one row a trip, kept for the retention period), so every build is a full one: made beside the
published file inside the owner-only folder, made 0600, and renamed over it. A whole rebuild is also what makes
a purge real: rows deleted from a DuckDB file may linger in its free blocks, a file built without them holds none.

Tables:
- `insurance_trips`: one row per trip (the newest delivery of its hour), with its zone and the UTC hour it ended in;
- `insurance_quarantined`: records refused per zone, hour and reason (counts only; the records themselves stay in
  the lake's quarantine, inside the insurance area).
"""

import os
import uuid
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.insurance.area import InsuranceArea
from pipelines.insurance.trips import INSURANCE_TRIPS, NAME
from pipelines.lake.filesystem import PRIVATE_FILE
from pipelines.lake.store import INGESTED_AT, QUARANTINE, SUPERSEDED_COLUMNS

HIVE = "zone_id=*/date=*/hour=*/*.parquet"


@dataclass(frozen=True)
class InsuranceBuild:
    trips: int
    quarantined: int


def _empty_trips() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"zone_id": pl.String, "hour": pl.Datetime("ms", "UTC"), **INSURANCE_TRIPS.schema,
                INGESTED_AT: SUPERSEDED_COLUMNS[INGESTED_AT]}
    )  # fmt: skip


def build(area: InsuranceArea) -> InsuranceBuild:
    """Rebuild the area's warehouse file from its lake; returns how many trips and refused records it holds."""
    lake = area.lake
    data = lake.root / NAME
    quarantine = lake.root / QUARANTINE / f"dataset={NAME}"
    target = area.warehouse
    building = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.building")
    try:
        with duckdb.connect(str(building)) as con:
            con.execute("set threads = 2")
            con.execute("set TimeZone = 'UTC'")
            con.register("empty_trips", _empty_trips())
            con.execute("create table insurance_trips as select * from empty_trips")
            con.unregister("empty_trips")
            if any(data.glob(HIVE)):
                con.execute(
                    """
                    insert into insurance_trips by name
                    select zone_id::varchar as zone_id,
                           (date::date + to_hours(hour::int))::timestamptz as hour,
                           * exclude (zone_id, date, hour)
                    from read_parquet($files, hive_partitioning = true, hive_types_autocast = false,
                                      union_by_name = true)
                    order by end_time, trip_id
                    """,
                    {"files": str(data / HIVE)},
                )
            con.execute(
                "create table insurance_quarantined (zone_id varchar, hour timestamptz, reason varchar, records bigint)"
            )
            if any(quarantine.glob(HIVE)):
                con.execute(
                    """
                    insert into insurance_quarantined
                    select zone_id::varchar, (date::date + to_hours(hour::int))::timestamptz,
                           reason, count(*)
                    from read_parquet($files, hive_partitioning = true, hive_types_autocast = false)
                    group by all order by all
                    """,
                    {"files": str(quarantine / HIVE)},
                )
            trips = con.execute("select count(*) from insurance_trips").fetchone()
            refused = con.execute("select coalesce(sum(records), 0) from insurance_quarantined").fetchone()
            con.execute("checkpoint")
        building.chmod(PRIVATE_FILE)
        building.replace(target)
    finally:
        building.unlink(missing_ok=True)
        building.with_name(building.name + ".wal").unlink(missing_ok=True)
    assert trips is not None and refused is not None
    return InsuranceBuild(trips=int(trips[0]), quarantined=int(refused[0]))
