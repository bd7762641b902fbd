"""The GBFS geofencing rule that governs a point, and where the GBFS vehicle snapshots put each vehicle.

GBFS geofencing: the first feature (in feed order) containing a point governs it, and within it the first rule
listing the vehicle's type (or listing none); a point in no feature falls under the global rules. Features come in
snapshots, matched like zone areas (the snapshot in force at the point's time, else the earliest). Matching is
vectorised with shapely 2 STRtree queries, one per zone and snapshot.

Two python models: core.int_trip_start_geofences (one row per trip: the rule at its start) and
core.int_gbfs_vehicle_positions (one row per vehicle per GBFS snapshot: its top-priority zone area and its rule;
GBFS 2.3's account-wide sightings join it once placed in their zones, pipelines/warehouse/gbfs_v2.py).
"""

from datetime import datetime

import duckdb
import numpy as np
import polars as pl
import shapely

from pipelines.warehouse.areas import assign, within, zone_areas
from pipelines.warehouse.frames import query_frame, registered, store_captures
from pipelines.warehouse.gbfs_v2 import with_gbfs_v2
from pipelines.warehouse.window import FULL_WINDOW

GLOBAL_ORDER = 1 << 30
RULE_COLUMNS = {
    "ride_start_allowed": pl.Boolean,
    "ride_end_allowed": pl.Boolean,
    "ride_through_allowed": pl.Boolean,
    "maximum_speed_kph": pl.Float64,
    "station_parking": pl.Boolean,
}
GOVERNING_SCHEMA = {"row": pl.UInt32, "geofence_scope": pl.String, "geofence_name": pl.String, **RULE_COLUMNS}


def _naive_ms(column: pl.Series) -> np.ndarray:
    return column.dt.replace_time_zone(None).cast(pl.Datetime("ms")).to_numpy()


def _applicable_rules(features: pl.DataFrame, vehicle_types: pl.Series) -> pl.DataFrame:
    """Per feature and vehicle type among the points (null: any type), the feature's first rule for that type."""
    rules = (
        features.select("feed_order", "scope", "name", "rules")
        .with_columns(pl.col("rules").list.eval(pl.int_range(pl.len())).alias("rule_index"))
        .explode("rules", "rule_index")
        .filter(pl.col("rules").is_not_null())
        .unnest("rules")
    )
    return (
        rules.join(pl.DataFrame({"vehicle_type_id": vehicle_types.unique()}), how="cross")
        .filter(
            pl.col("vehicle_type_id").is_null()
            | pl.col("vehicle_type_ids").is_null()
            | (pl.col("vehicle_type_ids").list.len() == 0)
            | pl.col("vehicle_type_ids").list.contains(pl.col("vehicle_type_id"))
        )
        .sort("feed_order", "rule_index")
        .unique(["feed_order", "vehicle_type_id"], keep="first", maintain_order=True)
    )


def governing_rules(points: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """The rule governing each point.

    `points`: row (unique id), zone_id, at, lng, lat, vehicle_type_id (may be null: any rule applies).
    `features`: zone_id, captured_at, scope ('zone' | 'global'), name, geometry (WKB), rules, in feed order.
    Returns one row per point that has a governing rule (row, geofence_scope, geofence_name, rule columns).
    Rules are resolved per feature and vehicle type first, so each point only picks among its features.
    """
    features = features.with_row_index("feed_order").with_columns(pl.col("feed_order").cast(pl.Int64))
    pairs = []
    for (zone_id,), zone_features in features.group_by("zone_id", maintain_order=True):
        zone_points = points.filter((pl.col("zone_id") == zone_id) & pl.col("lng").is_not_null())
        if zone_points.is_empty():
            continue
        snapshots = zone_features["captured_at"].unique().sort()
        starts = _naive_ms(snapshots)
        which = np.clip(np.searchsorted(starts, _naive_ms(zone_points["at"]), side="right") - 1, 0, None)
        for index, captured_at in enumerate(snapshots):
            subset = zone_points.filter(pl.Series(which == index))
            if subset.is_empty():
                continue
            snap = zone_features.filter(pl.col("captured_at") == captured_at)
            zones = snap.filter((pl.col("scope") == "zone") & pl.col("geometry").is_not_null())
            tree = shapely.STRtree(shapely.from_wkb(zones["geometry"].to_numpy()))
            point_idx, feature_idx = within(tree, subset["lng"].to_numpy(), subset["lat"].to_numpy())
            rows = subset["row"].to_numpy()
            order = zones["feed_order"].to_numpy()[feature_idx]
            pairs.append(pl.DataFrame({"row": rows[point_idx], "feed_order": order, "precedence": order}))
            # Every point also meets the global rules, last in precedence.
            glob = snap.filter(pl.col("scope") == "global").head(1)
            if glob.height:
                pairs.append(
                    pl.DataFrame({"row": rows}).with_columns(
                        pl.lit(glob["feed_order"][0], pl.Int64).alias("feed_order"),
                        pl.lit(GLOBAL_ORDER, pl.Int64).alias("precedence"),
                    )
                )
    if not pairs:
        return pl.DataFrame(schema=GOVERNING_SCHEMA)
    applicable = _applicable_rules(features, points["vehicle_type_id"])
    ranked = (
        pl.concat(pairs)
        .join(points.select("row", "vehicle_type_id"), on="row", how="left")
        .join(applicable, on=["feed_order", "vehicle_type_id"], nulls_equal=True)
        .sort("row", "precedence")
        .unique("row", keep="first", maintain_order=True)
    )
    return ranked.select(
        pl.col("row").cast(pl.UInt32),
        pl.col("scope").alias("geofence_scope"),
        pl.col("name").alias("geofence_name"),
        *(pl.col(name).cast(dtype) for name, dtype in RULE_COLUMNS.items()),
    )


def _features(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    # No ordering in the query: DuckDB keeps each file's row order, which is the feed's precedence order.
    return query_frame(con, "select zone_id, captured_at, scope, name, geometry, rules from lake.gbfs_geofencing_zones")


def build_trip_start_geofences(con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime] | None) -> int:
    """core.int_trip_start_geofences: the geofencing rule at each trip's start (trips ending in the window)."""
    start, end = window or FULL_WINDOW
    trips = query_frame(
        con,
        "select zone_id, trip_id, end_time, start_time as at, start_lng as lng, start_lat as lat, "
        "null::varchar as vehicle_type_id from staging.stg_mds__trips "
        "where end_time >= $window_start and end_time < $window_end",
        {"window_start": start, "window_end": end},
    ).with_row_index("row")
    governed = trips.join(governing_rules(trips, _features(con)), on="row", how="left").select(
        "zone_id", "trip_id", "end_time", *(name for name in GOVERNING_SCHEMA if name != "row")
    )
    con.execute(
        "create table if not exists core.int_trip_start_geofences (zone_id varchar, trip_id uuid, "
        "end_time timestamptz, geofence_scope varchar, geofence_name varchar, ride_start_allowed boolean, "
        "ride_end_allowed boolean, ride_through_allowed boolean, maximum_speed_kph double, station_parking boolean)"
    )
    with registered(con, "governed_trip_starts", governed):
        con.execute(
            "delete from core.int_trip_start_geofences where end_time >= $window_start and end_time < $window_end",
            {"window_start": start, "window_end": end},
        )
        con.execute("insert into core.int_trip_start_geofences by name select * from governed_trip_starts")
    return governed.height


def build_gbfs_vehicle_positions(con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime] | None) -> int:
    """core.int_gbfs_vehicle_positions: every GBFS snapshot vehicle with its zone area and geofencing rule.

    A window build places the snapshots captured since the window began, not the whole history again (snapshots
    every few minutes of a large fleet are millions of sightings a day). Since, not only in: snapshots are taken on
    their own schedule, and one taken after the newest MDS hour must not wait for a window that covers it.
    """
    start, end = (window[0], FULL_WINDOW[1]) if window else FULL_WINDOW
    vehicles = query_frame(
        con,
        "select zone_id, captured_at, vehicle_id, vehicle_type_id, lat, lon as lng, is_reserved, is_disabled, "
        "station_id, last_reported from lake.gbfs_vehicle_status "
        "where date between cast(timezone('UTC', $window_start) as date) "
        "and cast(timezone('UTC', $window_end) as date) and captured_at >= $window_start and captured_at < $window_end",
        {"window_start": start, "window_end": end},
    )
    vehicles = with_gbfs_v2(con, vehicles, start, end).with_row_index("row")
    points = vehicles.select(
        pl.lit("gbfs_vehicle").alias("kind"),
        pl.col("row").cast(pl.String).alias("record_id"),
        "zone_id",
        pl.col("captured_at").alias("at"),
        "lng",
        "lat",
    )
    areas = zone_areas(con)
    top_area = assign(points, areas).select(pl.col("record_id").cast(pl.UInt32).alias("row"), "area_id", "area_type")
    governed = governing_rules(vehicles.rename({"captured_at": "at"}), _features(con))
    positions = (
        vehicles.join(top_area, on="row", how="left")
        .join(governed, on="row", how="left")
        .with_columns(pl.col("area_type").fill_null("outside"))
        .drop("row")
    )
    store_captures(con, "int_gbfs_vehicle_positions", positions, (start, end) if window else None)
    return positions.height
