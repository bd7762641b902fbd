"""Each zone's time zone and where it came from: core.int_zone_timezones, what every local-time column uses.

A zone's time zone is taken, in this order, from:

1. configuration: the setting `FLEETLAKE_ZONE_TIMEZONES` (`1:Europe/Stockholm,145:Europe/Berlin`), the
   operator's own word, which also corrects a feed that states a wrong one;
2. GBFS `system_information.timezone`, the provider's statement (the latest snapshot);
3. the zone's geometry: the IANA time zone at a representative point of its operations area (of all its areas
   when none is an operations area) in the latest zone_areas snapshot, looked up offline by timezonefinder, whose
   boundary data ships in the wheel.

`timezone_source` says which (`configuration`, `gbfs_system_information`, `zone_geometry`). A zone none of them
describes has no time zone (null): its local-time columns are null and data_quality_hourly counts its hours, rather
than reading UTC as local time. A name that is not an IANA time zone is skipped (a feed's) or refused (the
configuration's, when the settings are read: pipelines/config.py).
"""

import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import polars as pl
import shapely

from pipelines.warehouse.frames import query_frame, registered
from pipelines.warehouse.zone_captures import ZoneCaptures

if TYPE_CHECKING:
    from timezonefinder import TimezoneFinder

log = logging.getLogger(__name__)
CONFIGURATION, GBFS, GEOMETRY = "configuration", "gbfs_system_information", "zone_geometry"
ZONE_TIMEZONES_SCHEMA: dict[str, Any] = {"zone_id": pl.String, "timezone": pl.String, "timezone_source": pl.String}
# The zones the build's hourly partitions hold (those of the snapshot datasets: zone_captures.py).
PARTITION_ZONES = "select distinct zone_id from core.int_hourly_partitions"


def latest_area_geometries(areas: pl.DataFrame) -> pl.DataFrame:
    """(zone_id, geometry) of each zone's latest areas (ZoneCaptures.latest_areas) that have a geometry: its
    operations areas, or every area when it has none."""
    located = areas.filter(pl.col("geometry").is_not_null())
    operations = (pl.col("area_type") == "operations").fill_null(False)
    return located.filter(operations | ~operations.any().over("zone_id")).select("zone_id", "geometry")


def is_timezone(name: str) -> bool:
    """Whether `name` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@cache
def _finder() -> "TimezoneFinder":
    """Loaded once per process (its boundary data takes a second or two), and only when a zone needs it."""
    from timezonefinder import TimezoneFinder  # half a second to import: only when needed

    return TimezoneFinder()


def timezone_at(geometries: list[bytes]) -> str | None:
    """The IANA time zone at a representative point of the union of WKB `geometries` (None when unknown)."""
    shapes = [g for g in shapely.from_wkb(geometries) if g is not None and not g.is_empty]
    if not shapes:
        return None
    point = shapely.union_all(shapes).representative_point()
    name = _finder().timezone_at(lng=point.x, lat=point.y)
    return name if name and is_timezone(name) else None


def zone_timezones(
    zones: list[str], configured: Mapping[str, str], gbfs: dict[str, str], geometries: dict[str, list[bytes]]
) -> pl.DataFrame:
    """One row per zone (those of `zones` and `configured`): its time zone and source, by the module's order."""
    rows: list[tuple[str, str | None, str | None]] = []
    for zone in sorted(set(zones) | set(configured)):
        if zone in configured:
            rows.append((zone, configured[zone], CONFIGURATION))
            continue
        stated = gbfs.get(zone)
        if stated is not None and is_timezone(stated):
            rows.append((zone, stated, GBFS))
            continue
        if stated is not None:
            log.warning("zone %s: GBFS system_information names %r, not an IANA time zone", zone, stated)
        found = timezone_at(geometries[zone]) if zone in geometries else None
        rows.append((zone, found, GEOMETRY if found else None))
    return pl.DataFrame(rows, schema=ZONE_TIMEZONES_SCHEMA, orient="row")


def read_zone_timezones(
    con: duckdb.DuckDBPyConnection, configured: Mapping[str, str], captures: ZoneCaptures
) -> pl.DataFrame:
    """Every zone's time zone and its source, from the configuration, the lake's zone snapshots (`captures`) and
    the zones of the hourly partitions (ZONE_TIMEZONES_SCHEMA)."""
    partitions = query_frame(con, PARTITION_ZONES)["zone_id"].drop_nulls().to_list()
    zones = sorted(set(captures.zones) | set(partitions))
    gbfs = captures.gbfs_timezones
    pending = set(zones) - set(configured) - {z for z, tz in gbfs.items() if is_timezone(tz)}
    geometries: dict[str, list[bytes]] = {}
    if pending:  # the lookup loads boundary data: only when some zone needs it
        areas = latest_area_geometries(captures.latest_areas).filter(pl.col("zone_id").is_in(sorted(pending)))
        for (zone,), group in areas.group_by("zone_id"):
            geometries[str(zone)] = group["geometry"].to_list()
    return zone_timezones(zones, configured, gbfs, geometries)


def build_zone_timezones(con: duckdb.DuckDBPyConnection, configured: Mapping[str, str], captures: ZoneCaptures) -> int:
    """core.int_zone_timezones: every zone's time zone and its source (a small table, rebuilt whole each build:
    a zone's time zone holds for all its history)."""
    table = read_zone_timezones(con, configured, captures)
    with registered(con, "zone_timezones", table):
        con.execute("create or replace table core.int_zone_timezones as select * from zone_timezones")
    return table.height
