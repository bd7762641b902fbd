"""The insurance warehouse: one DuckDB file of the insurance trips, rebuilt whole from the insurance lake.

It is small (one row a trip, kept for the retention period), so every build is a full one: made beside the
published file inside the owner-only folder, made 0600, and renamed over it. A whole rebuild is also what makes
a purge real: rows deleted from a DuckDB file may linger in its free blocks, a file built without them holds none.

Tables:
- `insurance_trips`: one row per trip id, with its zone and the UTC hour it ended in. A ride from one zone into
  another may come in both zones' feeds, and a corrected end time re-delivers a trip into another hour: the newest
  delivery wins, by the city warehouse's rule (stg_mds__trips): the latest ingest, then the latest hour, then the
  lowest zone id between deliveries of one ingest time and hour. Kept once per zone and hour, such a trip would be
  counted (and insured) twice;
- `insurance_quarantined`: records refused per zone, hour and reason (counts only; the records themselves stay in
  the lake's quarantine, inside the insurance area);
- `insurance_repeated`: per zone and hour, the deliveries of a trip id another zone or hour delivered before (in
  the order of data_quality_hourly: by ingest time, then hour, then zone), a duplicate when its content is the
  delivery before's and a conflict when not (counts only), so that no delivery the warehouse drops goes unseen.
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
    repeated: int


def _empty_trips() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"zone_id": pl.String, "hour": pl.Datetime("ms", "UTC"), **INSURANCE_TRIPS.schema,
                INGESTED_AT: SUPERSEDED_COLUMNS[INGESTED_AT]}
    )  # fmt: skip


def build(area: InsuranceArea) -> InsuranceBuild:
    """Rebuild the area's warehouse file from its lake; returns how many trips, refused records and repeated
    deliveries it holds."""
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
            con.execute(
                "create table insurance_repeated "
                "(zone_id varchar, hour timestamptz, duplicates bigint, conflicts bigint)"
            )
            if any(data.glob(HIVE)):
                con.execute(
                    """
                    create temporary table deliveries as
                    select zone_id::varchar as zone_id,
                           (date::date + to_hours(hour::int))::timestamptz as hour,
                           * exclude (zone_id, date, hour)
                    from read_parquet($files, hive_partitioning = true, hive_types_autocast = false,
                                      union_by_name = true)
                    """,
                    {"files": str(data / HIVE)},
                )
                con.execute(
                    """
                    insert into insurance_trips by name
                    select * from deliveries
                    qualify row_number() over (
                        partition by trip_id order by ingested_at desc nulls last, hour desc, zone_id
                    ) = 1
                    order by end_time, trip_id
                    """
                )
                con.execute(
                    """
                    insert into insurance_repeated
                    select zone_id, hour,
                           count(*) filter (where content is not distinct from previous),
                           count(*) filter (where content is distinct from previous)
                    from (
                        select zone_id, hour, content,
                               lag(content) over delivered as previous,
                               row_number() over delivered as nth
                        from (
                            -- What a delivery says: every column of its record, not where or when it came.
                            select zone_id, hour, ingested_at, trip_id,
                                   struct_pack(*columns(* exclude (zone_id, hour, ingested_at))) as content
                            from deliveries
                        )
                        window delivered as (
                            partition by trip_id order by ingested_at nulls first, hour, zone_id
                        )
                    )
                    where nth > 1
                    group by all order by all
                    """
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
            repeated = con.execute("select coalesce(sum(duplicates + conflicts), 0) from insurance_repeated").fetchone()
            con.execute("checkpoint")
        building.chmod(PRIVATE_FILE)
        building.replace(target)
    finally:
        building.unlink(missing_ok=True)
        building.with_name(building.name + ".wal").unlink(missing_ok=True)
    assert trips is not None and refused is not None and repeated is not None
    return InsuranceBuild(trips=int(trips[0]), quarantined=int(refused[0]), repeated=int(repeated[0]))
