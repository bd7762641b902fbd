"""`export_report`: one city's report for one period, every format, in one folder that appears whole.

    <out_dir>/zone-<zone>_<start>_<end>/
        report.html                 the readable page (charts and maps inline)
        report.xlsx                 an `about` sheet, then one sheet per table
        csv/<table>.csv, parquet/<table>.parquet
        violations.geojson, parking_hotspots.geojson   H3 cells with their counts
        zone_areas.geojson, parking_spots.geojson      the zone's areas and parking spots, the maps' context

The folder is written under a hidden name beside its final place and renamed into it, so a reader (or a
city's download link) sees the previous report or the new one, never a half-written one; re-running replaces it.
"""

import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from pipelines.lake.store import check_zone_id
from pipelines.reports import cells, labels
from pipelines.reports.charts import draw_charts
from pipelines.reports.city import known_zones, load_city
from pipelines.reports.html import Download, render_html
from pipelines.reports.period import ReportPeriod
from pipelines.reports.tables import ReportTables, query_tables, read_query
from pipelines.reports.threshold import DEFAULT_K
from pipelines.reports.writers import area_features, cell_features, write_csv, write_geojson, write_parquet, write_xlsx
from pipelines.warehouse.connection import connect

HTML, XLSX = "report.html", "report.xlsx"
AREA = {"area_name": "area_name", "area_type": "area_type"}
CELL_LAYERS = {
    "violations": ("violation_cells", {"violation_count": "violations", "main_rule": "main_rule", **AREA}),
    "parking_hotspots": ("parking_hotspots", {"trips_ended": "trips_ended", **AREA}),
}
AREA_LAYERS = ("zone_areas", "parking_spots")
GEOJSON = (*CELL_LAYERS, *AREA_LAYERS)
SPOT_MEASURES = ("capacity", "avg_vehicles", "occupancy_percent", "peak_vehicles", "hours_full")


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    html: Path
    xlsx: Path
    csv: dict[str, Path]
    parquet: dict[str, Path]
    geojson: dict[str, Path]
    city: str
    timezone: str
    rows: dict[str, int] = field(default_factory=dict)
    suppressed_cells: int = 0
    cells_left_out: int = 0


def _about(tables: ReportTables, generated_at: datetime) -> pl.DataFrame:
    period = tables.period
    facts = [
        ("zone_id", period.zone_id),
        ("city", tables.city.name),
        ("first_day", period.start.isoformat()),
        ("last_day", f"{period.end.isoformat()} (included)"),
        ("timezone", f"{period.timezone}: every day and hour in this workbook is local time"),
        ("timezone_source", labels.timezone_source(tables.city.timezone_source)),
        ("utc_offsets", ", ".join(period.utc_offsets())),
        ("start_utc", period.start_utc.isoformat()),
        ("end_utc", f"{period.end_utc.isoformat()} (excluded)"),
        ("k", f"{tables.k}: counts from 1 to {tables.k - 1} are empty, with <column>_suppressed TRUE"),
        (
            "map_cells",
            f"H3 cells of resolution {tables.resolution} (edges of about {cells.edge_length_m(tables.resolution):.0f} "
            "m); cells below k left out",
        ),
        ("generated_at_utc", generated_at.astimezone(UTC).isoformat(timespec="seconds")),
    ]
    facts += [(f"sheet {name}", read_query(name).description) for name in tables.frames]
    return pl.DataFrame(facts, schema={"field": pl.String, "value": pl.String}, orient="row")


def _write(tables: ReportTables, folder: Path, generated_at: datetime) -> None:
    (folder / "csv").mkdir(parents=True)
    (folder / "parquet").mkdir()
    for name, frame in tables.frames.items():
        write_csv(frame, folder / "csv" / f"{name}.csv")
        write_parquet(frame, folder / "parquet" / f"{name}.parquet")
    write_xlsx(_about(tables, generated_at), tables.frames, folder / XLSX, f"{tables.city.name}, {tables.period.label}")
    for stem, (table, properties) in CELL_LAYERS.items():
        write_geojson(cell_features(tables.frames[table], properties), folder / f"{stem}.geojson")
    areas = tables.city.areas
    spots = areas.filter(pl.col("area_type") == "parking-spot")
    measures = tables.frames["parking_spots"].select("area_id", *SPOT_MEASURES)
    write_geojson(area_features(areas.filter(pl.col("area_type") != "parking-spot")), folder / "zone_areas.geojson")
    write_geojson(area_features(spots, measures), folder / "parking_spots.geojson")
    downloads = [Download("Workbook (XLSX, one sheet per table)", XLSX)]
    downloads += [Download(f"{stem}.geojson (GIS layer)", f"{stem}.geojson") for stem in GEOJSON]
    downloads += [Download(f"{name}.csv", f"csv/{name}.csv") for name in tables.frames]
    downloads += [Download(f"{name}.parquet", f"parquet/{name}.parquet") for name in tables.frames]
    charts = draw_charts(tables) if tables.has_data else {}  # a period without data has nothing to draw
    html = render_html(tables, charts, downloads, generated_at)
    (folder / HTML).write_text(html, encoding="utf-8")


def _replace(staging: Path, folder: Path) -> None:
    old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def export_report(
    warehouse_path: Path,
    zone_id: str,
    start: date,
    end: date,
    out_dir: Path,
    k: int = DEFAULT_K,
    generated_at: datetime | None = None,
    h3_resolution: int = cells.DEFAULT_RESOLUTION,
) -> ReportFiles:
    """Write the report of zone `zone_id` for its local days `start` to `end` (both included) under `out_dir`;
    its maps count on H3 cells of `h3_resolution`."""
    check_zone_id(zone_id)
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if not Path(warehouse_path).is_file():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}: build it first (fleetlake build)")
    generated_at = generated_at or datetime.now(UTC)
    with connect(warehouse_path) as con:
        con.execute("set enable_progress_bar = false")
        # The areas as they were at the end of the period (to the day: the time zone is not known yet).
        city = load_city(con, zone_id, datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC))
        period = ReportPeriod(zone_id, start, end, city.timezone)
        tables = query_tables(con, city, period, k, h3_resolution)
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / period.slug
    staging = out_dir / f".{period.slug}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _write(tables, staging, generated_at)
        _replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ReportFiles(
        folder=folder,
        html=folder / HTML,
        xlsx=folder / XLSX,
        csv={name: folder / "csv" / f"{name}.csv" for name in tables.frames},
        parquet={name: folder / "parquet" / f"{name}.parquet" for name in tables.frames},
        geojson={stem: folder / f"{stem}.geojson" for stem in GEOJSON},
        city=city.name,
        timezone=city.timezone,
        rows={name: frame.height for name, frame in tables.frames.items()},
        suppressed_cells=tables.suppressed_cells,
        cells_left_out=sum(tables.cells_left_out.values()),
    )


def warehouse_zones(warehouse_path: Path) -> list[str]:
    """The zones a warehouse has data for: those a report can be written for."""
    with connect(warehouse_path) as con:
        return known_zones(con)
