"""Which zone areas contain a point, at the time of the point: trip starts and ends, and event locations.

Zone areas come in snapshots; a point is matched against the snapshot in force at its time (or the earliest
snapshot, for points older than every snapshot). Matching is vectorised with shapely 2: one STRtree per zone and
snapshot, queried with all of its points at once.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC

import duckdb
import numpy as np
import polars as pl
import shapely

from pipelines.warehouse.frames import query_frame

# The most specific rule first: a point in a no-riding park inside the operations area is "in the park".
AREA_PRIORITY = {
    "no-riding": 1,
    "no-parking": 2,
    "parking-spot": 3,
    "slow-zone": 4,
    "incentive": 5,
    "operations": 6,
    "free-floating": 7,
}
POINT_AREAS_SCHEMA = {
    "kind": pl.String,
    "record_id": pl.String,
    "zone_id": pl.String,
    "area_id": pl.String,
    "area_type": pl.String,
    "priority": pl.Int32,
}


@dataclass(frozen=True)
class Snapshot:
    valid_from: np.datetime64
    tree: shapely.STRtree
    area_ids: np.ndarray
    area_types: np.ndarray


def _snapshots(areas: pl.DataFrame) -> Iterator[tuple[str, list[Snapshot]]]:
    for (zone_id,), by_zone in areas.sort("valid_from").group_by("zone_id", maintain_order=True):
        snapshots = []
        for (valid_from,), snap in by_zone.group_by("valid_from", maintain_order=True):
            geometries = shapely.from_wkb(snap["geometry"].to_numpy())
            snapshots.append(
                Snapshot(
                    np.datetime64(valid_from.astimezone(UTC).replace(tzinfo=None), "ms"),
                    shapely.STRtree(geometries),
                    snap["area_id"].to_numpy(),
                    snap["area_type"].to_numpy(),
                )
            )
        yield str(zone_id), snapshots


def zone_areas(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every zone area snapshot in the warehouse, in the shape `assign` takes."""
    return query_frame(con, "select zone_id, area_id, area_type, geometry, valid_from from staging.stg_zone__areas")


def assign(points: pl.DataFrame, areas: pl.DataFrame) -> pl.DataFrame:
    """Areas containing each point.

    `points`: kind, record_id, zone_id, at (UTC timestamp), lng, lat. `areas`: zone_id, area_id, area_type,
    geometry (WKB), valid_from. Returns one row per (point, containing area); points in no area have no row.
    """
    out = []
    by_zone = dict(_snapshots(areas))
    for (zone_id,), zone_points in points.filter(pl.col("lng").is_not_null()).group_by("zone_id"):
        snapshots = by_zone.get(str(zone_id))
        if not snapshots:
            continue
        starts = np.array([s.valid_from for s in snapshots])
        at = zone_points["at"].dt.replace_time_zone(None).cast(pl.Datetime("ms")).to_numpy()
        which = np.clip(np.searchsorted(starts, at, side="right") - 1, 0, None)
        for index, snapshot in enumerate(snapshots):
            mask = which == index
            if not mask.any():
                continue
            subset = zone_points.filter(pl.Series(mask))
            geometries = shapely.points(subset["lng"].to_numpy(), subset["lat"].to_numpy())
            point_idx, area_idx = snapshot.tree.query(geometries, predicate="within")
            out.append(
                pl.DataFrame(
                    {
                        "kind": subset["kind"].to_numpy()[point_idx],
                        "record_id": subset["record_id"].to_numpy()[point_idx],
                        "zone_id": np.full(len(point_idx), str(zone_id)),
                        "area_id": snapshot.area_ids[area_idx],
                        "area_type": snapshot.area_types[area_idx],
                    }
                )
            )
    if not out:
        return pl.DataFrame(schema=POINT_AREAS_SCHEMA)
    result = pl.concat(out).with_columns(
        pl.col("area_type").replace_strict(AREA_PRIORITY, default=99, return_dtype=pl.Int32).alias("priority")
    )
    return result.cast(POINT_AREAS_SCHEMA)  # type: ignore[arg-type]
