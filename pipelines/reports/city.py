"""What a report needs to know about its city besides the figures: name, time zone, parking mode and areas."""

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl
import shapely

from pipelines.warehouse.frames import query_frame

UNKNOWN_TIMEZONE = "UTC"
INPUTS = ("stg_gbfs__system_information", "stg_zone__areas", "lake.zone_info", "occupancy_hourly", "trips")
"""What the queries of this module read, beside the report queries' own inputs."""
KNOWN_ZONES = """
select zone_id from staging.stg_gbfs__system_information
union select zone_id from lake.zone_info
union select distinct zone_id from main.occupancy_hourly
union select distinct zone_id from main.trips
"""
# The time zone every mart uses (GBFS system_information), else the one the trips were localised with.
FACTS = """
with zone_info as (
    select zone_name, parking_mode from lake.zone_info
    where zone_id = $zone_id
    order by captured_at desc
    limit 1
)
select
    coalesce(
        (select timezone from staging.stg_gbfs__system_information where zone_id = $zone_id),
        (select any_value(timezone) from main.trips where zone_id = $zone_id)
    ) as timezone,
    coalesce(
        (select zone_name from zone_info),
        (select system_id from staging.stg_gbfs__system_information where zone_id = $zone_id)
    ) as name,
    (select parking_mode from zone_info) as parking_mode
"""
# The zone's areas as the snapshot in force at the end of the period described them (the first one if all
# snapshots are later).
AREAS = """
with snapshots as (
    select distinct valid_from from staging.stg_zone__areas where zone_id = $zone_id
),
chosen as (
    select coalesce(
        (select max(valid_from) from snapshots where valid_from < $at),
        (select min(valid_from) from snapshots)
    ) as valid_from
)
select area_id, area_type, area_name, geometry
from staging.stg_zone__areas
where zone_id = $zone_id and valid_from = (select valid_from from chosen)
order by area_type, area_name, area_id
"""


class UnknownZone(LookupError):
    """The warehouse holds nothing about the zone."""


@dataclass(frozen=True)
class City:
    zone_id: str
    name: str
    timezone: str
    parking_mode: str | None
    areas: pl.DataFrame
    """area_id, area_type, area_name and geometry (WKB) of each zone area."""

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(min_lng, min_lat, max_lng, max_lat) of the zone's areas; None without any."""
        if self.areas.is_empty():
            return None
        geometries = shapely.from_wkb(self.areas["geometry"].to_numpy())
        min_lng, min_lat, max_lng, max_lat = shapely.total_bounds(geometries)
        return float(min_lng), float(min_lat), float(max_lng), float(max_lat)

    def reference_latitude(self) -> float:
        bounds = self.bounds()
        return 0.0 if bounds is None else (bounds[1] + bounds[3]) / 2


def known_zones(con: duckdb.DuckDBPyConnection) -> list[str]:
    return sorted(str(zone) for (zone,) in con.execute(KNOWN_ZONES).fetchall() if zone is not None)


def timezone_of(con: duckdb.DuckDBPyConnection, zone_id: str) -> str:
    timezone = con.execute(FACTS, {"zone_id": zone_id}).fetchall()[0][0]
    return str(timezone) if timezone else UNKNOWN_TIMEZONE


def load_city(con: duckdb.DuckDBPyConnection, zone_id: str, at: datetime) -> City:
    """The city of `zone_id`, with its areas as they were at `at`."""
    zones = known_zones(con)
    if zone_id not in zones:
        raise UnknownZone(f"the warehouse holds no data for zone {zone_id!r}; it knows {zones or 'no zone yet'}")
    timezone, name, parking_mode = con.execute(FACTS, {"zone_id": zone_id}).fetchall()[0]
    areas = query_frame(con, AREAS, {"zone_id": zone_id, "at": at})
    return City(
        zone_id=zone_id,
        name=name or f"zone {zone_id}",
        timezone=timezone or UNKNOWN_TIMEZONE,
        parking_mode=parking_mode,
        areas=areas,
    )
