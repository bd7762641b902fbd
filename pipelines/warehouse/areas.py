"""Which zone areas contain a point, at the time of the point: trip starts and ends, and event locations.

Zone areas come in snapshots; a point is matched against the snapshot in force at its time (or the earliest
snapshot, for points older than every snapshot). Matching is vectorised with shapely 2: one STRtree per zone and
snapshot, queried once for all of its distinct coordinates, split across the cores.
"""

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC

import duckdb
import numpy as np
import polars as pl
import shapely

from pipelines.warehouse.frames import query_frame

CHUNK_POINTS = 100_000
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
# What placing a point tells: its most specific area, and whether it lies in an operations area or a parking spot.
PLACEMENT_SCHEMA: dict[str, pl.DataType] = {
    "area_id": pl.String(),
    "area_type": pl.String(),
    "in_operations": pl.Boolean(),
    "in_parking_spot": pl.Boolean(),
}
POINT_AREAS_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "record_id": pl.String(),
    "zone_id": pl.String(),
    "point_time": pl.Datetime("ms", "UTC"),
    **PLACEMENT_SCHEMA,
}
COORDINATE_AREAS_SCHEMA: dict[str, pl.DataType] = {
    "zone_id": pl.String(),
    "valid_from": pl.Datetime("us", "UTC"),
    "lng": pl.Float64(),
    "lat": pl.Float64(),
    **PLACEMENT_SCHEMA,
}
# Every location the window's trips (both ends, at the trip's end time: the time its partition is keyed by) and
# events were seen at: what the warehouse places in zone areas and in policy geographies.
WINDOW_LOCATIONS = """
select zone_id, end_time as at, unnest([start_lng, end_lng]) as lng, unnest([start_lat, end_lat]) as lat,
from staging.stg_mds__trips
where end_time >= $window_start and end_time < $window_end
union all
select zone_id, event_time as at, lng, lat,
from staging.stg_mds__events
where event_time >= $window_start and event_time < $window_end
"""


def within(tree: shapely.STRtree, lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point index, geometry index) of every point inside a geometry of `tree`.

    Large inputs are split across threads: shapely releases the GIL, so two cores query twice as fast.
    """
    chunks = max(1, min(os.cpu_count() or 1, len(lng) // CHUNK_POINTS))
    bounds = np.linspace(0, len(lng), chunks + 1).astype(np.int64)

    def query(part: int) -> np.ndarray:
        start, end = bounds[part], bounds[part + 1]
        found: np.ndarray = tree.query(shapely.points(lng[start:end], lat[start:end]), predicate="within")
        found[0] += start
        return found

    with ThreadPoolExecutor(chunks) as pool:
        pairs = np.concatenate(list(pool.map(query, range(chunks))), axis=1)
    return pairs[0], pairs[1]


@dataclass(frozen=True)
class Snapshot:
    valid_from: np.datetime64
    tree: shapely.STRtree
    area_ids: np.ndarray
    area_types: np.ndarray
    rank: np.ndarray
    """Each area's place in the order (priority, area_id): the lowest rank containing a point is its area."""

    def locate(self, lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each point: the index of its most specific area (-1 in none), in operations, in a parking spot.

        Points repeat (a vehicle's events share the spot where it stands, a trip starts where the last ended), so
        each distinct coordinate is tested once.
        """
        coordinates = pl.DataFrame({"lng": lng, "lat": lat})
        distinct = coordinates.unique()
        inverse = (
            coordinates.join(distinct.with_row_index("i"), on=["lng", "lat"], how="left", maintain_order="left")["i"]
            .to_numpy()
            .astype(np.int64)
        )
        area, in_operations, in_spot = self.locate_distinct(distinct["lng"].to_numpy(), distinct["lat"].to_numpy())
        return area[inverse], in_operations[inverse], in_spot[inverse]

    def locate_distinct(self, lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`locate` for coordinates known to be distinct."""
        point_idx, area_idx = within(self.tree, lng, lat)
        best = np.full(len(lng), len(self.rank), dtype=np.int64)
        np.minimum.at(best, point_idx, self.rank[area_idx])
        by_rank = np.append(np.argsort(self.rank), -1)  # rank -> area index; "no area" -> -1
        in_operations = np.zeros(len(lng), dtype=bool)
        in_operations[point_idx[self.area_types[area_idx] == "operations"]] = True
        in_spot = np.zeros(len(lng), dtype=bool)
        in_spot[point_idx[self.area_types[area_idx] == "parking-spot"]] = True
        return by_rank[best], in_operations, in_spot


def _snapshots(areas: pl.DataFrame) -> Iterator[tuple[str, list[Snapshot]]]:
    for (zone_id,), by_zone in areas.sort("valid_from").group_by("zone_id", maintain_order=True):
        snapshots = []
        for (valid_from,), snap in by_zone.group_by("valid_from", maintain_order=True):
            geometries = shapely.from_wkb(snap["geometry"].to_numpy())
            area_ids = snap["area_id"].to_numpy()
            area_types = snap["area_type"].to_numpy()
            priorities = np.array([AREA_PRIORITY.get(t, 99) for t in area_types])
            rank = np.empty(len(area_ids), dtype=np.int64)
            rank[np.lexsort((area_ids.astype(str), priorities))] = np.arange(len(area_ids))
            snapshots.append(
                Snapshot(
                    np.datetime64(valid_from.astimezone(UTC).replace(tzinfo=None), "ms"),
                    shapely.STRtree(geometries),
                    area_ids,
                    area_types,
                    rank,
                )
            )
        yield str(zone_id), snapshots


def zone_areas(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every zone area snapshot in the warehouse, in the shape `assign` takes."""
    return query_frame(con, "select zone_id, area_id, area_type, geometry, valid_from from staging.stg_zone__areas")


def place_coordinates(coordinates: pl.DataFrame, areas: pl.DataFrame) -> pl.DataFrame:
    """The most specific area (AREA_PRIORITY, then area_id) of distinct coordinates, each in its areas' snapshot.

    `coordinates`: zone_id, valid_from (the snapshot to place it in), lng, lat, each row distinct. `areas` as for
    `assign`. Returns every coordinate whose snapshot is known, with area_id and area_type (null in no area),
    in_operations and in_parking_spot.
    """
    out = [pl.DataFrame(schema=COORDINATE_AREAS_SCHEMA)]
    snapshots = {(zone_id, s.valid_from): s for zone_id, found in _snapshots(areas) for s in found}
    keys = ["zone_id", "valid_from"]
    for (zone_id, valid_from), group in coordinates.group_by(keys):
        snapshot = snapshots.get((str(zone_id), np.datetime64(valid_from.astimezone(UTC).replace(tzinfo=None), "ms")))
        if snapshot is None:
            continue
        area, in_operations, in_spot = snapshot.locate_distinct(group["lng"].to_numpy(), group["lat"].to_numpy())
        inside = pl.Series(area >= 0)
        gather = pl.Series(np.where(area >= 0, area, 0))
        out.append(
            group.select(*keys, "lng", "lat")
            .with_columns(
                # Gathered by polars: numpy would make a Python string per row.
                area_id=pl.when(inside).then(pl.Series(snapshot.area_ids, dtype=pl.String).gather(gather)),
                area_type=pl.when(inside).then(pl.Series(snapshot.area_types, dtype=pl.String).gather(gather)),
                in_operations=pl.Series(in_operations),
                in_parking_spot=pl.Series(in_spot),
            )
            .cast(COORDINATE_AREAS_SCHEMA)  # type: ignore[arg-type]
        )
    return pl.concat(out)


def assign(points: pl.DataFrame, areas: pl.DataFrame) -> pl.DataFrame:
    """The most specific area containing each point (AREA_PRIORITY, then area_id), at the point's time.

    `points`: kind, record_id, zone_id, at (UTC timestamp), lng, lat. `areas`: zone_id, area_id, area_type,
    geometry (WKB), valid_from. Returns one row per point inside some area (`at` as `point_time`), with
    `in_operations` and `in_parking_spot`: compliance asks both of a point whose most specific area is another one.
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
            area, in_operations, in_spot = snapshot.locate(subset["lng"].to_numpy(), subset["lat"].to_numpy())
            inside = area >= 0
            out.append(
                pl.DataFrame(
                    {
                        "kind": subset["kind"].filter(pl.Series(inside)),
                        "record_id": subset["record_id"].filter(pl.Series(inside)),
                        "zone_id": pl.repeat(str(zone_id), int(inside.sum()), eager=True),
                        "point_time": subset["at"].filter(pl.Series(inside)),
                        # Gathered by polars: numpy would make a Python string per row.
                        "area_id": pl.Series(snapshot.area_ids, dtype=pl.String).gather(area[inside]),
                        "area_type": pl.Series(snapshot.area_types, dtype=pl.String).gather(area[inside]),
                        "in_operations": in_operations[inside],
                        "in_parking_spot": in_spot[inside],
                    }
                )
            )
    if not out:
        return pl.DataFrame(schema=POINT_AREAS_SCHEMA)
    result = pl.concat(out)
    # In time order: readers join on `point_time` too, and DuckDB then skips the row groups outside their times.
    return result.select(list(POINT_AREAS_SCHEMA)).cast(POINT_AREAS_SCHEMA).sort("point_time")  # type: ignore[arg-type]
