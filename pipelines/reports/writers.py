"""Writing report tables for the people who use them: CSV and Parquet per table, one workbook, GeoJSON layers."""

import json
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import polars as pl
import shapely
import xlsxwriter

from pipelines.reports import labels
from pipelines.reports.cells import boundary
from pipelines.reports.privacy import check_columns

SHEET_NAME_LIMIT = 31
MAX_WIDTH_CHARS = 60
"""A wider value (a description) wraps within its column instead."""
TITLE_LINE_CHARS = 14
"""A column title longer than this wraps onto several lines of its header row."""
PIXELS_PER_CHAR = 7
LINE_HEIGHT_PT = 15
A4 = 9
"""xlsxwriter's paper code for A4."""
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


def _title_width(title: str) -> int:
    """Characters a wrapped title needs: its longest word, and room for short titles to stay on one line."""
    return max(max(len(word) for word in title.split()), min(len(title), TITLE_LINE_CHARS))


def column_widths(frame: pl.DataFrame) -> dict[str, int]:
    """Widths in characters that fit each (wrapped) header and its values as displayed, up to MAX_WIDTH_CHARS."""
    widths = {}
    for column in frame.columns:
        longest = max([_title_width(column), *(len(_cell_text(v)) for v in frame[column].drop_nulls())])
        widths[column] = min(longest, MAX_WIDTH_CHARS) + 2
    return widths


def _header_lines(frame: pl.DataFrame, widths: Mapping[str, int]) -> int:
    """Lines of the tallest wrapped header (Excel does not size a written row to its wrapped text)."""
    lines = 1
    for column in frame.columns:
        line, count = 0, 1
        for word in column.split():
            needed = len(word) if line == 0 else line + 1 + len(word)
            if needed > widths[column] - 1 and line:
                count, line = count + 1, len(word)
            else:
                line = needed
        lines = max(lines, count)
    return lines


def _print_settings(sheet: Any, title: str, columns: int) -> None:
    """On paper: A4 landscape, one page wide (as many tall as the rows need), the header row on every page, the
    sheet's name, the report's title and page numbers in the margins."""
    sheet.set_landscape()
    sheet.set_paper(A4)
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.set_margins(left=0.4, right=0.4, top=0.75, bottom=0.6)
    sheet.set_header(f'&L&"-,Bold"&A&R{_escaped(title)}', {"margin": 0.3})
    sheet.set_footer("&CPage &P of &N", {"margin": 0.3})
    sheet.print_area(0, 0, sheet.dim_rowmax or 0, columns - 1)


def _escaped(text: str) -> str:
    """Text for a page header: a single & starts a control code there."""
    return text.replace("&", "&&")


def write_xlsx(about: pl.DataFrame, sheets: Mapping[str, pl.DataFrame], path: Path, title: str) -> Path:
    """One sheet per table after an `about` sheet: readable column titles (the table's column names stay in the CSV
    and Parquet files), typed cells, a frozen header row, columns sized to fit, and print settings on every sheet.
    """
    workbook = xlsxwriter.Workbook(path)
    try:
        for name, table in {"about": about, **sheets}.items():
            if len(name) > SHEET_NAME_LIMIT:
                raise ValueError(f"sheet name {name!r} is longer than Excel's {SHEET_NAME_LIMIT} characters")
            frame = table.rename(labels.titles(table.columns))
            widths = column_widths(frame)
            wrapped = {c: {"text_wrap": True, "valign": "top"} for c in frame.columns if widths[c] > MAX_WIDTH_CHARS}
            frame.write_excel(
                workbook,
                worksheet=name,
                table_name=name,
                table_style="Table Style Light 9",
                header_format={"bold": True, "text_wrap": True, "valign": "bottom"},
                column_formats=cast(Any, wrapped) or None,
                dtype_formats=DATE_FORMATS,
                float_precision=3,
                column_widths=cast(Any, {c: PIXELS_PER_CHAR * w + 5 for c, w in widths.items()}),
                row_heights={0: LINE_HEIGHT_PT * _header_lines(frame, widths)},
                freeze_panes=(1, 0),
            )
            _print_settings(workbook.get_worksheet_by_name(name), title, frame.width)
    finally:
        workbook.close()
    return path


def cell_features(cells: pl.DataFrame, properties: Mapping[str, str]) -> dict[str, Any]:
    """H3 cells as RFC 7946 polygons (lng, lat; counter-clockwise), with only the named properties.

    `properties` maps a column of `cells` to its property name in the file; every cell also carries its id
    (h3_cell) and centre.
    """
    check_columns("geojson", properties.values())
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in boundary(row["h3_cell"])]]},
            "properties": {
                "h3_cell": row["h3_cell"],
                "cell_lat": row["cell_lat"],
                "cell_lng": row["cell_lng"],
                **{name: row[column] for column, name in properties.items()},
            },
        }
        for row in cells.iter_rows(named=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def area_features(areas: pl.DataFrame, properties: pl.DataFrame | None = None) -> dict[str, Any]:
    """Zone areas (area_id, area_type, area_name, geometry as WKB) as RFC 7946 features: exterior rings
    counter-clockwise, holes clockwise. `properties`, keyed by area_id, adds columns to the areas it names."""
    extra = {row["area_id"]: row for row in properties.iter_rows(named=True)} if properties is not None else {}
    check_columns("geojson", next(iter(extra.values()), {}).keys())
    features = []
    for row in areas.iter_rows(named=True):
        geometry = shapely.orient_polygons(shapely.from_wkb(row["geometry"]), exterior_cw=False)
        added = {key: value for key, value in extra.get(row["area_id"], {}).items() if key not in row}
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(shapely.to_geojson(geometry)),
                "properties": {
                    "area_id": row["area_id"],
                    "area_type": row["area_type"],
                    "area_name": row["area_name"],
                    **added,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_geojson(collection: Mapping[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
