"""The places MDS Policy rules cover: geographies (MDS Geography) and the points that lie in them.

A rule names its geographies by UUID; the agency publishes them through its Geography API. The policy folder
holds them as that API's JSON beside the policies (`geographies.json`: a `geographies` list, bare or under
`data`, each a Geography or `{"geography": Geography}` as in MDS 1.2; or one `{"geography": ...}` per file).
A geography's polygons and multipolygons are its area; point features (stops) cover no area.

core.policy_geographies holds one row per geography; core.int_policy_geography_points every distinct trip start
or end and event location that lies in one (a row per point and geography). Without geographies that table is
empty and a build skips it.
"""

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import shapely
from shapely.geometry import shape

from pipelines.warehouse.areas import WINDOW_LOCATIONS, within
from pipelines.warehouse.frames import query_frame, registered
from pipelines.warehouse.sqltext import sql_text
from pipelines.warehouse.window import FULL_WINDOW, Window

GEOGRAPHIES_SCHEMA: dict[str, Any] = {
    "zone_id": pl.String,
    "geography_id": pl.String,
    "name": pl.String,
    "geography_type": pl.String,
    "effective_date": pl.Datetime("ms", "UTC"),
    "retire_date": pl.Datetime("ms", "UTC"),
    "geometry": pl.Binary,
    "source_file": pl.String,
}
POINTS_SCHEMA: dict[str, Any] = {"lng": pl.Float64, "lat": pl.Float64, "geography_id": pl.String}
CREATE_POINTS = (
    "create table if not exists core.int_policy_geography_points (lng double, lat double, geography_id varchar)"
)
# The distinct locations of the window's trip starts and ends and events.
WINDOW_POINTS = sql_text(
    "select distinct lng, lat from ({body}) as points where lng is not null and lat is not null",
    body=WINDOW_LOCATIONS,
)
# Those not placed in a geography before (the others are looked at again: few, and cheap to place).
NOT_PLACED = """
select * from ({body}) as window_points
anti join core.int_policy_geography_points using (lng, lat)
"""


class GeographyError(ValueError):
    """A geography file that is not MDS Geography JSON."""


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def geography_objects(document: Any) -> list[dict[str, Any]]:
    """The Geography objects of one JSON document, whatever the wrapper (none for a policy file)."""
    if isinstance(document, dict) and isinstance(document.get("data"), dict):
        document = document["data"]
    if not isinstance(document, dict):
        return []
    if isinstance(document.get("geographies"), list):
        entries = document["geographies"]
    elif isinstance(document.get("geography"), dict) or "geography_json" in document:
        entries = [document]
    else:
        return []
    return [entry["geography"] if isinstance(entry.get("geography"), dict) else entry for entry in entries]


def _area(geography: dict[str, Any], path: Path) -> shapely.Geometry:
    """The union of the geography's polygonal features (empty when it has none, as a stop list)."""
    collection = geography.get("geography_json")
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise GeographyError(f"{path}: geography {geography.get('geography_id')} has no GeoJSON FeatureCollection")
    try:
        parts = [shape(feature["geometry"]) for feature in collection.get("features") or [] if feature.get("geometry")]
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as error:
        raise GeographyError(f"{path}: geography {geography.get('geography_id')}: {error}") from error
    polygons = [part for part in parts if part.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.make_valid(shapely.union_all(polygons)) if polygons else shapely.Polygon()


def geography_rows(document: Any, path: Path, zone_id: str | None) -> list[dict[str, Any]]:
    rows = []
    for geography in geography_objects(document):
        if not geography.get("geography_id"):
            raise GeographyError(f"{path}: a geography without geography_id")
        rows.append(
            {
                "zone_id": zone_id,
                "geography_id": str(geography["geography_id"]),
                "name": geography.get("name"),
                "geography_type": geography.get("geography_type"),
                "effective_date": _moment(geography.get("effective_date")),
                "retire_date": _moment(geography.get("retire_date")),
                "geometry": shapely.to_wkb(_area(geography, path)),
                "source_file": str(path),
            }
        )
    return rows


def fingerprint(geographies: pl.DataFrame) -> str:
    """Changes whenever a geography's id or area does: points placed before must then be placed again."""
    digest = hashlib.sha256()
    for geography_id, wkb in sorted(geographies.select("geography_id", "geometry").rows()):
        digest.update(geography_id.encode() + b"\0" + wkb)
    return digest.hexdigest()


def build_policy_geography_points(con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
    """The `int_policy_geography_points` model: the window's new locations placed in every geography they lie in;
    every location again when the geographies changed (the table's comment keeps their fingerprint)."""
    geographies = query_frame(con, "select geography_id, geometry from core.policy_geographies")
    marker = "policy geographies " + fingerprint(geographies)
    found = con.execute(
        "select comment from duckdb_tables() where schema_name = 'core' and table_name = 'int_policy_geography_points'"
    ).fetchall()
    add = window is not None and found == [(marker,)]
    if not add:
        con.execute("drop table if exists core.int_policy_geography_points")
        con.execute(CREATE_POINTS)
        con.execute(sql_text("comment on table core.int_policy_geography_points is {literal}", literal=marker))
    areas = shapely.from_wkb(geographies["geometry"].to_numpy())
    if not len(areas) or shapely.is_empty(areas).all():
        return 0  # no rule names a place: nothing lies anywhere
    start, end = window if add and window is not None else FULL_WINDOW
    query = sql_text(NOT_PLACED, body=WINDOW_POINTS) if add else WINDOW_POINTS
    points = query_frame(con, query, {"window_start": start, "window_end": end})
    point_index, area_index = within(shapely.STRtree(areas), points["lng"].to_numpy(), points["lat"].to_numpy())
    placed = pl.DataFrame(
        {
            "lng": points["lng"].to_numpy()[point_index],
            "lat": points["lat"].to_numpy()[point_index],
            "geography_id": np.asarray(geographies["geography_id"].to_list(), dtype=object)[area_index],
        },
        schema=POINTS_SCHEMA,
    )
    with registered(con, "placed_points", placed):
        # Distinct: an id given to two areas (see load_policy_geographies) holds a point inside both once.
        con.execute("insert into core.int_policy_geography_points by name select distinct * from placed_points")
    return placed.height


__all__ = [
    "GEOGRAPHIES_SCHEMA",
    "GeographyError",
    "build_policy_geography_points",
    "geography_objects",
    "geography_rows",
]
