"""Writing report tables for the people who use them: CSV and Parquet per table, one workbook, GeoJSON cells."""

import json
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import polars as pl
import xlsxwriter

from pipelines.reports.privacy import Grid, check_columns

SHEET_NAME_LIMIT = 31
MAX_WIDTH_CHARS = 60
PIXELS_PER_CHAR = 7
DATE_FORMATS: dict[Any, str] = {pl.Date: "yyyy-mm-dd", pl.Datetime: "yyyy-mm-dd hh:mm"}


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S", date_format="%Y-%m-%d")
    return path


def write_parquet(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_parquet(path)
    return path


def _cell_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return "yyyy-mm-dd hh:mm"
    if isinstance(value, date):
        return "yyyy-mm-dd"
    return str(value)


def column_widths(frame: pl.DataFrame) -> dict[str, int]:
    """Pixel widths that fit each header and its values as displayed, up to MAX_WIDTH_CHARS."""
    widths = {}
    for column in frame.columns:
        longest = max([len(column) + 2, *(len(_cell_text(v)) for v in frame[column].drop_nulls())])
        widths[column] = PIXELS_PER_CHAR * min(longest, MAX_WIDTH_CHARS) + 12
    return widths


def write_xlsx(about: pl.DataFrame, sheets: Mapping[str, pl.DataFrame], path: Path) -> Path:
    """One sheet per table after an `about` sheet: typed cells, a frozen header row, columns sized to fit."""
    workbook = xlsxwriter.Workbook(path)
    try:
        for name, frame in {"about": about, **sheets}.items():
            if len(name) > SHEET_NAME_LIMIT:
                raise ValueError(f"sheet name {name!r} is longer than Excel's {SHEET_NAME_LIMIT} characters")
            frame.write_excel(
                workbook,
                worksheet=name,
                table_name=name,
                table_style="Table Style Light 9",
                dtype_formats=DATE_FORMATS,
                float_precision=3,
                column_widths=cast(Any, column_widths(frame)),
                freeze_panes=(1, 0),
            )
    finally:
        workbook.close()
    return path


def feature_collection(cells: pl.DataFrame, grid: Grid, properties: Mapping[str, str]) -> dict[str, Any]:
    """Grid cells as RFC 7946 polygons (lng, lat; counter-clockwise), with only the named properties.

    `properties` maps a column of `cells` to its property name in the file.
    """
    check_columns("geojson", properties.values())
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[list(p) for p in grid.cell(row["cell_lat"], row["cell_lng"])]],
            },
            "properties": {
                "cell_lat": row["cell_lat"],
                "cell_lng": row["cell_lng"],
                **{name: row[column] for column, name in properties.items()},
            },
        }
        for row in cells.iter_rows(named=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def write_geojson(collection: Mapping[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
