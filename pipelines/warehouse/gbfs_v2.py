"""GBFS 2.3 vehicles placed in zones by geometry: core.int_gbfs_v2_vehicle_zones.

GBFS 2.3's free_bike_status is account-wide (pipelines/gbfs_v2.py): it lists every zone's parked vehicles and says
nothing of their zone. Each sighting is placed in the zone whose areas (the zone API's, the snapshot in force at the
capture, as zone areas are matched everywhere) contain it; a vehicle in no zone's areas goes to the zone it lies
nearest to among those whose extent holds it (the areas' bounding box widened by 50 km, core.int_zone_extents'
notion of where a zone is: a vehicle parked just beyond the operations area still belongs to its city), and one
beyond every zone's extent is kept with no zone (`zone_placement` 'outside'): counted, not dropped.

The placed sightings join GBFS 3.0's in core.int_gbfs_vehicle_positions (`with_gbfs_v2`), so the occupancy marts
take 2.3 as they take 3.0. Where a zone has a 3.0 snapshot at the same capture, the zone's own feed is used and
the 2.3 sightings of that zone and capture stay here only.
"""

from datetime import datetime

import duckdb
import numpy as np
import polars as pl
import shapely

from pipelines.gbfs_v2 import ACCOUNT
from pipelines.warehouse.areas import zone_areas
from pipelines.warehouse.frames import query_frame, store_captures
from pipelines.warehouse.window import FULL_WINDOW
from pipelines.warehouse.zone_extents import zone_extents

SIGHTING_COLUMNS = (
    "captured_at",
    "vehicle_id",
    "vehicle_type_id",
    "lat",
    "lng",
    "is_reserved",
    "is_disabled",
    "station_id",
    "last_reported",
)
PLACEMENT_SCHEMA: dict[str, pl.DataType] = {"row": pl.UInt32(), "zone_id": pl.String(), "distance": pl.Float64()}


def _naive_ms(column: pl.Series) -> np.ndarray:
    return column.dt.replace_time_zone(None).cast(pl.Datetime("ms")).to_numpy()


def place_in_zones(sightings: pl.DataFrame, areas: pl.DataFrame) -> pl.DataFrame:
    """Each sighting's zone (null beyond every zone's extent) and how: 'inside' an area, 'near' one, 'outside'.

    `sightings`: captured_at, lng, lat (and any other columns, kept). `areas`: zone_id, area_id, area_type,
    geometry (WKB), valid_from (staging.stg_zone__areas)."""
    points = sightings.with_row_index("row")
    candidates = [pl.DataFrame(schema=PLACEMENT_SCHEMA)]
    extents = {row["zone_id"]: row for row in zone_extents(areas).iter_rows(named=True)}
    located = points.filter(pl.col("lng").is_not_null() & pl.col("lat").is_not_null())
    for (zone_id,), zone_areas_ in areas.sort("valid_from").group_by("zone_id", maintain_order=True):
        box = extents.get(str(zone_id))
        if box is None or located.is_empty():
            continue
        near = located.filter(
            pl.col("lat").is_between(box["min_lat"], box["max_lat"])
            & pl.col("lng").is_between(box["min_lng"], box["max_lng"])
        )
        if near.is_empty():
            continue
        snapshots = zone_areas_["valid_from"].unique().sort()
        which = np.clip(
            np.searchsorted(_naive_ms(snapshots), _naive_ms(near["captured_at"]), side="right") - 1, 0, None
        )
        for index, valid_from in enumerate(snapshots):
            subset = near.filter(pl.Series(which == index))
            if subset.is_empty():
                continue
            geometries = shapely.from_wkb(zone_areas_.filter(pl.col("valid_from") == valid_from)["geometry"].to_numpy())
            zone = shapely.union_all(geometries[~shapely.is_empty(geometries)])
            distance = shapely.distance(zone, shapely.points(subset["lng"].to_numpy(), subset["lat"].to_numpy()))
            candidates.append(
                pl.DataFrame(
                    {"row": subset["row"], "zone_id": str(zone_id), "distance": distance}, schema=PLACEMENT_SCHEMA
                )
            )
    best = pl.concat(candidates).sort("row", "distance", "zone_id").unique("row", keep="first", maintain_order=True)
    placed = points.join(best, on="row", how="left")
    return placed.with_columns(
        pl.when(pl.col("zone_id").is_null())
        .then(pl.lit("outside"))
        .when(pl.col("distance") == 0)
        .then(pl.lit("inside"))
        .otherwise(pl.lit("near"))
        .alias("zone_placement")
    ).drop("row", "distance")


def build_gbfs_v2_vehicle_zones(con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime] | None) -> int:
    """core.int_gbfs_v2_vehicle_zones: every GBFS 2.3 sighting with its zone (null: outside every known zone).

    Like core.int_gbfs_vehicle_positions, a window build places the snapshots captured since the window began."""
    start, end = (window[0], FULL_WINDOW[1]) if window else FULL_WINDOW
    sightings = query_frame(
        con,
        "select captured_at, vehicle_id, vehicle_type_id, lat, lon as lng, is_reserved, is_disabled, station_id, "
        "last_reported from lake.gbfs_v2_free_bike_status "
        "where zone_id = $account and captured_at >= $window_start and captured_at < $window_end",
        {"account": ACCOUNT, "window_start": start, "window_end": end},
    )
    placed = place_in_zones(sightings, zone_areas(con)).select("zone_id", *SIGHTING_COLUMNS, "zone_placement")
    store_captures(con, "int_gbfs_v2_vehicle_zones", placed, (start, end) if window else None)
    return placed.height


def with_gbfs_v2(
    con: duckdb.DuckDBPyConnection, vehicles: pl.DataFrame, start: datetime, end: datetime
) -> pl.DataFrame:
    """GBFS 3.0's snapshot vehicles (zone_id and SIGHTING_COLUMNS) and the GBFS 2.3 sightings placed in a zone for
    the zones and captures 3.0 has no snapshot of."""
    v2 = query_frame(
        con,
        "select zone_id, captured_at, vehicle_id, vehicle_type_id, lat, lng, is_reserved, is_disabled, station_id, "
        "last_reported from core.int_gbfs_v2_vehicle_zones "
        "where zone_id is not null and captured_at >= $window_start and captured_at < $window_end",
        {"window_start": start, "window_end": end},
    )
    covered = vehicles.select("zone_id", "captured_at").unique()
    v2 = v2.join(covered, on=["zone_id", "captured_at"], how="anti")
    if v2.is_empty():
        return vehicles
    return pl.concat([vehicles, v2.select(vehicles.columns).cast(vehicles.schema)])
