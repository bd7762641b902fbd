"""The readable report: one self-contained HTML page (styles and SVG charts inline, no script, no fetch).

Tables are rendered here as rows of display cells: numbers formatted for reading, a suppressed value shown as
"<k" and explained in the legend, codes replaced by their labels. The page's layout lives in the template.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
import polars as pl
from markupsafe import Markup

from pipelines.reports import labels
from pipelines.reports.charts import Chart
from pipelines.reports.privacy import SUPPRESSED_SUFFIX
from pipelines.reports.tables import TABLES, ReportTables

TEMPLATES = Path(__file__).resolve().parent / "templates"
NO_DATA = "–"
COORDINATES = ("cell_lat", "cell_lng")
CODES: dict[str, Callable[[str], str]] = {
    "rule": labels.rule,
    "main_rule": labels.rule,
    "area_type": labels.area_type,
    "vehicle_type": labels.vehicle_type,
}


@dataclass(frozen=True)
class Cell:
    text: str
    kind: str = "text"
    """text, num or date: how the cell aligns and wraps."""
    suppressed: bool = False


@dataclass(frozen=True)
class HtmlTable:
    name: str
    title: str
    description: str
    columns: list[str]
    numeric: list[bool]
    rows: list[list[Cell]]
    more: int
    """Rows of the full table not shown on the page (they are in the workbook and the CSV)."""


@dataclass(frozen=True)
class Download:
    label: str
    href: str


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return NO_DATA
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _text(column: str, value: Any) -> str:
    if value is None:
        return NO_DATA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column in COORDINATES:
        return f"{value:.4f}"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, datetime):
        return f"{value:%a %-d %b %H:%M}"
    if isinstance(value, date):
        return f"{value:%a %-d %b %Y}"
    return CODES[column](str(value)) if column in CODES else str(value)


def _flags(name: str) -> dict[str, list[str]]:
    """For each column, the flags that say it was suppressed (its own count's, or those it derives from)."""
    spec = next(spec for spec in TABLES if spec.name == name)
    flags: dict[str, list[str]] = {}
    for count, derived in spec.counts.items():
        for column in (count, *derived):
            flags.setdefault(column, []).append(count + SUPPRESSED_SUFFIX)
    return flags


def html_table(
    tables: ReportTables, name: str, title: str, limit: int | None = None, hide: tuple[str, ...] = ()
) -> HtmlTable:
    frame = tables.frames[name]
    flags = _flags(name)
    shown = [c for c in frame.columns if not c.endswith(SUPPRESSED_SUFFIX) and c not in hide]
    numeric = [frame.schema[c].is_numeric() for c in shown]
    kinds = [
        "num" if n else "date" if frame.schema[c].is_temporal() else "text" for c, n in zip(shown, numeric, strict=True)
    ]
    rows = []
    for row in frame.head(limit).iter_rows(named=True) if limit else frame.iter_rows(named=True):
        cells = []
        for column, kind in zip(shown, kinds, strict=True):
            hidden = row[column] is None and any(row[flag] for flag in flags.get(column, []))
            text = f"<{tables.k}" if hidden else _text(column, row[column])
            cells.append(Cell(text, kind, hidden))
        rows.append(cells)
    return HtmlTable(
        name=name,
        title=title,
        description=tables.description(name),
        columns=[labels.column(c) for c in shown],
        numeric=numeric,
        rows=rows,
        more=max(frame.height - limit, 0) if limit else 0,
    )


def _figures(tables: ReportTables) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Headline cards, then the compliance rate of each rule."""
    cards: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for row in tables.frames["key_figures"].iter_rows(named=True):
        value = row["value"]
        if row["value_suppressed"]:
            text = f"<{tables.k}"
        elif value is None:
            text = NO_DATA
        elif row["figure"] == "hours_with_data":
            text = f"{int(value):,} of {tables.period.hours:,}"  # of every hour of the period, not of those seen
        elif row["unit"] in ("trips", "vehicles", "violations", "hours") and float(value).is_integer():
            text = f"{int(value):,}"
        else:
            text = _number(float(value))
        unit = row["unit"] if row["unit"] in ("%", "min", "km") and text != NO_DATA else ""
        entry = {**row, "text": text, "unit_text": unit}
        (rules if row["figure"].startswith("violations_per_100_trips.") else cards).append(entry)
    return cards, rules


def render_html(
    tables: ReportTables, charts: dict[str, Chart], downloads: list[Download], generated_at: datetime
) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    cards, rules = _figures(tables)
    period = tables.period
    sections = {
        "daily": html_table(tables, "daily", "Day by day"),
        "compliance_by_rule": html_table(tables, "compliance_by_rule", "Compliance by rule"),
        "top_areas": html_table(tables, "top_areas", "Areas with the most violations", limit=10, hide=("area_id",)),
        "parking_spots": html_table(tables, "parking_spots", "Parking spots", limit=15, hide=("area_id",)),
        "parking_hotspots": html_table(tables, "parking_hotspots", "Busiest parking cells", limit=10),
        "data_quality_daily": html_table(tables, "data_quality_daily", "Data quality by day"),
        "rules_not_judged": html_table(tables, "rules_not_judged", "Rules not judged", hide=("reason",)),
    }
    return environment.get_template("report.html.j2").render(
        city=tables.city,
        period=period,
        offsets=", ".join(period.utc_offsets()),
        k=tables.k,
        generated_at=generated_at,
        cards=cards,
        rules=rules,
        charts={name: {**vars(chart), "svg": Markup(chart.svg)} for name, chart in charts.items()},
        tables=sections,
        downloads=downloads,
        suppressed_cells=tables.suppressed_cells,
        cells_left_out=sum(tables.cells_left_out.values()),
        has_parking_spots=not tables.frames["parking_spots"].is_empty(),
        has_data=tables.has_data,
        hours_with_data=_hours_with_data(tables),
        partial_days=tables.frames["daily"].filter(data_completeness="partial")["local_date"].to_list(),
        days_without_data=tables.frames["daily"].filter(data_completeness="no data").height,
        has_rules_not_judged=not tables.frames["rules_not_judged"].is_empty(),
        timezone_source=labels.timezone_source(tables.city.timezone_source),
        warm_up_hours=_warm_up_hours(tables),
    )


def _hours_with_data(tables: ReportTables) -> int:
    figures = tables.frames["key_figures"]
    value = figures.filter(figure="hours_with_data")["value"].item()
    return int(value or 0)


def _warm_up_hours(tables: ReportTables) -> int:
    """Hours of the period whose fleet counts are lower bounds (the start of the data, or after a gap)."""
    figures = tables.frames["key_figures"].filter(pl.col("figure") == "warm_up_hours")["value"]
    return int(figures[0]) if figures.len() and figures[0] is not None else 0
