"""core.int_zone_extents: where each zone is, so a location far from it can be told apart.

A zone's extent is the bounding box of every area the zone API ever gave it, widened by FAR_KM on each side. A trip
end or an event location outside it is flagged, not quarantined (pipelines/lake/plausibility.py: a GPS glitch, or a
vehicle truly carried away; the record is otherwise sound and already counts as outside every area):
`trips.is_far_from_zone`, and counted in data_quality_hourly. A zone without areas has no extent: whether its
locations are far is not known (the flag is null there, and nothing is counted).
"""

import math

import duckdb
import numpy as np
import polars as pl
import shapely

from pipelines.warehouse.frames import query_frame, registered

FAR_KM = 50.0
KM_PER_DEGREE_LAT = 111.2
EXTENTS_SCHEMA: dict[str, pl.DataType] = {
    "zone_id": pl.String(),
    "min_lat": pl.Float64(),
    "max_lat": pl.Float64(),
    "min_lng": pl.Float64(),
    "max_lng": pl.Float64(),
}


def zone_extents(areas: pl.DataFrame) -> pl.DataFrame:
    """Each zone's widened bounding box from its areas' WKB geometries (`zone_id`, `geometry`)."""
    rows = []
    for (zone_id,), group in areas.group_by("zone_id", maintain_order=True):
        geometries = shapely.from_wkb(group["geometry"].to_numpy())
        bounds = shapely.bounds(geometries[~shapely.is_empty(geometries)])
        if not len(bounds):
            continue
        min_lng, min_lat = np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1])
        max_lng, max_lat = np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3])
        lat_margin = FAR_KM / KM_PER_DEGREE_LAT
        widest = max(abs(min_lat), abs(max_lat)) + lat_margin  # the margin in longitude holds at the far edge
        lng_margin = min(180.0, FAR_KM / (KM_PER_DEGREE_LAT * max(math.cos(math.radians(min(widest, 89.0))), 1e-6)))
        rows.append(
            {
                "zone_id": str(zone_id),
                "min_lat": float(min_lat) - lat_margin,
                "max_lat": float(max_lat) + lat_margin,
                "min_lng": float(min_lng) - lng_margin,
                "max_lng": float(max_lng) + lng_margin,
            }
        )
    return pl.DataFrame(rows, schema=EXTENTS_SCHEMA)


def build_zone_extents(con: duckdb.DuckDBPyConnection, window: object = None) -> int:
    """The `int_zone_extents` python model: replaced whole on every build (a row per zone)."""
    extents = zone_extents(query_frame(con, "select zone_id, geometry from staging.stg_zone__areas"))
    with registered(con, "loaded_zone_extents", extents):
        con.execute("create or replace table core.int_zone_extents as select * from loaded_zone_extents")
    return extents.height
