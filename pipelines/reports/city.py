"""What a report needs to know about its city besides the figures: name, time zone, parking mode and areas."""

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl
import shapely

from pipelines.warehouse.frames import query_frame

INPUTS = (
    "stg_gbfs__system_information",
    "int_zone_timezones",
    "stg_zone__areas",
    "lake.zone_info",
    "occupancy_hourly",
    "trips",
)
"""What the queries of this module read, beside the report queries' own inputs."""
KNOWN_ZONES = """
select zone_id from staging.stg_gbfs__system_information
union select zone_id from lake.zone_info
union select distinct zone_id from main.occupancy_hourly
union select distinct zone_id from main.trips
"""
# The time zone every mart uses (core.int_zone_timezones) and where it came from.
FACTS = """
with zone_info as (
    select zone_name, parking_mode from lake.zone_info
    where zone_id = $zone_id
    order by captured_at desc
    limit 1
)
select
    (select timezone from core.int_zone_timezones where zone_id = $zone_id) as timezone,
    coalesce(
        (select zone_name from zone_info),
        (select system_id from staging.stg_gbfs__system_information where zone_id = $zone_id)
    ) as name,
    (select parking_mode from zone_info) as parking_mode,
    (select timezone_source from core.int_zone_timezones where zone_id = $zone_id) as timezone_source,
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


class UnknownTimezone(ValueError):
    """The zone's time zone is not known: a report in local time cannot be written (UTC would be a guess)."""

    def __init__(self, zone_id: str) -> None:
        super().__init__(
            f"the time zone of zone {zone_id!r} is not known (no GBFS system_information, no zone areas to look it "
            f"up from): set FLEETLAKE_ZONE_TIMEZONES={zone_id}:<Area/City> and build again"
        )


@dataclass(frozen=True)
class City:
    zone_id: str
    name: str
    timezone: str
    parking_mode: str | None
    areas: pl.DataFrame
    """area_id, area_type, area_name and geometry (WKB) of each zone area."""
    timezone_source: str | None = None
    """Where the time zone came from: configuration, gbfs_system_information or zone_geometry."""

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
    if not timezone:
        raise UnknownTimezone(zone_id)
    return str(timezone)


def load_city(con: duckdb.DuckDBPyConnection, zone_id: str, at: datetime) -> City:
    """The city of `zone_id`, with its areas as they were at `at`."""
    zones = known_zones(con)
    if zone_id not in zones:
        raise UnknownZone(f"the warehouse holds no data for zone {zone_id!r}; it knows {zones or 'no zone yet'}")
    timezone, name, parking_mode, timezone_source = con.execute(FACTS, {"zone_id": zone_id}).fetchall()[0]
    if not timezone:
        raise UnknownTimezone(zone_id)
    areas = query_frame(con, AREAS, {"zone_id": zone_id, "at": at})
    return City(
        zone_id=zone_id,
        name=name or f"zone {zone_id}",
        timezone=timezone,
        parking_mode=parking_mode,
        areas=areas,
        timezone_source=timezone_source,
    )
