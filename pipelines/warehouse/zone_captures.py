"""What a build needs of the zones' snapshot datasets (GBFS system_information, zone areas, zone info), read from
each zone's newest or oldest capture rather than from its whole history.

Every build asks the same few questions of them: which zones they hold, each zone's latest GBFS time zone, its
latest areas (to find a time zone from its geometry) and its first capture of areas (core.int_zone_timezones and
the zone-context check, build.py). Through the `lake.<dataset>` views each answer read every capture ever taken (a
file each, growing with the history), twice a build. A snapshot's file is named and foldered by its capture time
(lake/store.py), so each answer lies in one hour folder of each zone: its newest (or oldest) one holding a file.
A zone whose edge captures hold no row (an empty areas capture) or no time zone DuckDB knows is read whole, as
before, so every answer is the one the whole history gives.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from pipelines.lake.filesystem import LakePath, uri
from pipelines.lake.listing import LakeListing
from pipelines.warehouse.frames import query_frame
from pipelines.warehouse.sqltext import sql_text

SOURCE = (
    "read_parquet({literal}, hive_partitioning = true, union_by_name = true, "
    "hive_types = {{'zone_id': 'VARCHAR', 'date': 'DATE', 'hour': 'INTEGER'}})"
)
# As staging.stg_gbfs__system_information: the latest snapshot whose time zone DuckDB knows.
GBFS_TIMEZONES = """
with captures as (
    select zone_id, timezone, captured_at, timezone in (select name from pg_timezone_names()) as known
    from {body}
)
select zone_id, arg_max(timezone, captured_at) filter (where known) as timezone from captures group by zone_id
"""
# As staging.stg_zone__areas: a capture's areas are those of its rows; the zone's latest one with a row, and its
# first capture.
AREAS = """
select zone_id, area_type, geometry
from {body}
qualify captured_at = max(captured_at) over (partition by zone_id)
"""
FIRST_AREAS = "select zone_id, min(captured_at) as first_captured_at from {body} group by zone_id"
ZONES = "select distinct zone_id from {body}"


@dataclass(frozen=True)
class ZoneCaptures:
    """The answers, as the whole history of each dataset gives them."""

    zones: list[str]
    """The zones any of the three datasets holds a row of."""
    gbfs_timezones: dict[str, str]
    """Each zone's time zone in its latest GBFS system_information whose time zone DuckDB knows."""
    latest_areas: pl.DataFrame
    """(zone_id, area_type, geometry): each zone's rows in its latest zone-areas capture holding one."""
    first_areas: dict[str, datetime]
    """Each zone's first capture of zone areas holding a row."""


def _hour_folders(listing: LakeListing, zone: LakePath, newest: bool) -> Iterable[LakePath]:
    """The zone's hour folders, newest (or oldest) first, listing only as far as the caller reads."""
    for date in sorted((f for f in listing.folders(zone) if f.name.startswith("date=")), reverse=newest):
        yield from sorted((f for f in listing.folders(date) if f.name.startswith("hour=")), reverse=newest)


def _edge_files(listing: LakeListing, zone: LakePath, newest: bool) -> list[LakePath]:
    """The files of the zone's newest (or oldest) hour folder holding one (none when it has none)."""
    for hour in _hour_folders(listing, zone, newest):
        if files := listing.glob(hour, "*.parquet"):
            return sorted(files)
    return []


def _answers(
    con: duckdb.DuckDBPyConnection,
    listing: LakeListing,
    dataset: LakePath,
    query: str,
    newest: bool,
    answered: str | None = None,
) -> pl.DataFrame:
    """`query` over each zone's edge capture files; for the zones those leave without a row (or a non-null
    `answered` column), over the zone's every file."""
    zones = {f.name.removeprefix("zone_id="): f for f in listing.folders(dataset) if f.name.startswith("zone_id=")}
    edges = [uri(file) for zone in zones.values() for file in _edge_files(listing, zone, newest)]
    frame = query_frame(con, sql_text(query, body=sql_text(SOURCE, literal=edges))) if edges else None
    done: set[Any] = set()
    if frame is not None:
        done = set((frame if answered is None else frame.filter(pl.col(answered).is_not_null()))["zone_id"])
    whole = [
        f"{uri(folder)}/date=*/hour=*/*.parquet"
        for zone, folder in sorted(zones.items())
        if zone not in done and listing.any(folder, "date=*/hour=*/*.parquet")
    ]
    if not whole:
        return frame if frame is not None else pl.DataFrame()
    rest = query_frame(con, sql_text(query, body=sql_text(SOURCE, literal=whole)))
    if frame is None:
        return rest
    redone = set(rest["zone_id"])
    return pl.concat([frame.filter(~pl.col("zone_id").is_in(sorted(redone))), rest], how="vertical_relaxed")


def read_zone_captures(con: duckdb.DuckDBPyConnection, listing: LakeListing, lake_dir: LakePath) -> ZoneCaptures:
    """The answers, from `listing`'s files of the lake's three zone snapshot datasets."""
    gbfs = _answers(con, listing, lake_dir / "gbfs_system_information", GBFS_TIMEZONES, True, "timezone")
    areas = _answers(con, listing, lake_dir / "zone_areas", AREAS, True)
    first = _answers(con, listing, lake_dir / "zone_areas", FIRST_AREAS, False)
    info = _answers(con, listing, lake_dir / "zone_info", ZONES, True)
    zones = {str(z) for frame in (gbfs, areas, info) if not frame.is_empty() for z in frame["zone_id"]}
    return ZoneCaptures(
        zones=sorted(zones),
        gbfs_timezones={} if gbfs.is_empty() else dict(gbfs.filter(pl.col("timezone").is_not_null()).iter_rows()),
        latest_areas=(
            pl.DataFrame(schema={"zone_id": pl.String, "area_type": pl.String, "geometry": pl.Binary})
            if areas.is_empty()
            else areas.select("zone_id", "area_type", "geometry")
        ),
        first_areas={} if first.is_empty() else dict(first.iter_rows()),
    )


__all__ = ["ZoneCaptures", "read_zone_captures"]
