"""Places in a report are H3 cells (the hexagonal grid most mobility data is shared on), never points.

A located record (a violation, a trip's end) counts in the cell of resolution `resolution` that holds it; the
resolution comes from the settings (FLEETLAKE_REPORT_H3_RESOLUTION, 10 by default: cells of about 0.015 km²,
edges of about 76 m, as fine as the city's streets and no finer). Cells with fewer than k records are then left
out entirely (privacy.drop_below_k). Each cell is labelled with the zone area its centre lies in: the smallest
area holding it, so a no-parking area inside the operations area names the cells within it.
"""

import h3
import numpy as np
import polars as pl
import shapely

DEFAULT_RESOLUTION = 10
FINEST_RESOLUTION = 11
"""Finer cells (edges under 25 m) would single out a doorway: the settings refuse them."""
OUTSIDE = "outside every area"
CELL_COLUMNS = ("h3_cell", "cell_lat", "cell_lng")


def edge_length_m(resolution: int) -> float:
    """The average edge of a hexagon at `resolution`, in metres (its width is about twice that)."""
    return float(h3.average_hexagon_edge_length(resolution, unit="m"))


def aggregate(points: pl.DataFrame, count: str, resolution: int) -> pl.DataFrame:
    """Located counts summed per H3 cell, most first.

    `points` has lat, lng and `count` (records at that exact place), and optionally `rule`: then each cell also
    gets its `main_rule`, the rule counted most there (ties to the first by name). The result has h3_cell (the
    cell's id as hex text), its centre cell_lat and cell_lng (rounded to 6 decimals), `count`, [main_rule].
    """
    cells = [h3.latlng_to_cell(lat, lng, resolution) for lat, lng in zip(points["lat"], points["lng"], strict=True)]
    located = points.with_columns(pl.Series("h3_cell", cells, dtype=pl.String))
    totals = located.group_by("h3_cell").agg(pl.col(count).sum())
    if "rule" in points.columns:
        main = (
            located.group_by("h3_cell", "rule")
            .agg(pl.col(count).sum().alias("by_rule"))
            .sort(["h3_cell", "by_rule", "rule"], descending=[False, True, False])
            .group_by("h3_cell", maintain_order=True)
            .agg(pl.col("rule").first().alias("main_rule"))
        )
        totals = totals.join(main, on="h3_cell")
    centres = [h3.cell_to_latlng(cell) for cell in totals["h3_cell"]]
    framed = totals.with_columns(
        pl.Series("cell_lat", [round(lat, 6) for lat, _ in centres], dtype=pl.Float64),
        pl.Series("cell_lng", [round(lng, 6) for _, lng in centres], dtype=pl.Float64),
        pl.col(count).cast(pl.Int64),
    )
    columns = [*CELL_COLUMNS, count, *(["main_rule"] if "rule" in points.columns else [])]
    return framed.select(columns).sort([count, "h3_cell"], descending=[True, False])


def boundary(cell: str) -> list[tuple[float, float]]:
    """The cell's outline as a closed (lng, lat) ring, counter-clockwise (RFC 7946), rounded to 6 decimals."""
    ring = [(round(lng, 6), round(lat, 6)) for lat, lng in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    if shapely.Polygon(ring).exterior.is_ccw:
        return ring
    return ring[::-1]


def label_areas(cells: pl.DataFrame, areas: pl.DataFrame) -> pl.DataFrame:
    """`cells` with area_name and area_type of the smallest zone area holding each cell's centre ("outside every
    area" where none does). Parking spots are left out: a spot is far smaller than a cell, so its name would
    stand for the whole cell."""
    lngs, lats = cells["cell_lng"].to_numpy(), cells["cell_lat"].to_numpy()
    best_area = np.full(cells.height, np.inf)
    names: list[str] = [OUTSIDE] * cells.height
    types: list[str] = ["outside"] * cells.height
    for area_type, area_name, blob in zip(areas["area_type"], areas["area_name"], areas["geometry"], strict=True):
        if area_type == "parking-spot" or not cells.height:
            continue
        geometry = shapely.from_wkb(blob)
        inside = np.asarray(shapely.contains_xy(geometry, lngs, lats), dtype=bool) & (geometry.area < best_area)
        for index in np.flatnonzero(inside):
            best_area[index] = geometry.area
            names[index], types[index] = area_name or area_type, area_type
    return cells.with_columns(
        pl.Series("area_name", names, dtype=pl.String), pl.Series("area_type", types, dtype=pl.String)
    )
