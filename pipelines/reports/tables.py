"""The report's tables, queried from the warehouse for one city and period, privacy rules applied.

Each table is a query in `queries/<name>.sql`, headed like the warehouse models (what it is, its grain, the
relations it reads), and an entry here saying which of its columns are counts to suppress and what is derived
from them. Values enter SQL only as bound parameters. A table with an `hour` column (UTC) gets the city's local
hour and UTC offset in its place, so every exported time reads in local time and stays unambiguous across DST.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.reports import cells
from pipelines.reports.city import INPUTS as CITY_INPUTS
from pipelines.reports.city import City
from pipelines.reports.figures import key_figures
from pipelines.reports.period import ReportPeriod
from pipelines.reports.privacy import check_columns, drop_below_k, suppress
from pipelines.warehouse.frames import query_frame, registered

QUERIES = Path(__file__).resolve().parent / "queries"
HEADER = re.compile(r"^--\s*(grain|inputs):\s*(.+?)\s*$", re.MULTILINE)
PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")
TOP_AREAS = 20
VEHICLE_TYPE_HOURS = "vehicle_type_hours"
"""A query several tables read: materialised once per report as the temp table report_vehicle_type_hours."""


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    grain: str
    inputs: tuple[str, ...]
    sql: str


def read_query(name: str) -> Query:
    text = (QUERIES / f"{name}.sql").read_text()
    header = dict(HEADER.findall(text))
    return Query(
        name=name,
        description=text.splitlines()[0].removeprefix("-- "),
        grain=header["grain"],
        inputs=tuple(i.strip() for i in header["inputs"].split(",") if i.strip()),
        sql=text,
    )


@dataclass(frozen=True)
class TableSpec:
    name: str
    counts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Count columns suppressed below k, each with the columns derived from it."""
    cells: str | None = None
    """For map cells: the count summed per H3 cell, whose cells below k are left out altogether."""

    @property
    def query(self) -> Query:
        return read_query(self.name)


TRIP_RATE = ("violations_per_100_trips",)
TABLES = (
    TableSpec("key_figures"),
    TableSpec(
        "daily",
        counts={
            "trips": ("trips_per_vehicle", *TRIP_RATE),
            "vehicles_with_trips": (),
            "violations": TRIP_RATE,
        },
    ),
    TableSpec("daily_by_vehicle_type", counts={"trips": ()}),
    TableSpec("hourly", counts={"trips": ()}),
    TableSpec("hourly_by_vehicle_type", counts={"trips": ()}),
    TableSpec("compliance_by_rule", counts={"violation_count": TRIP_RATE, "trips_ended": TRIP_RATE, "not_judged": ()}),
    TableSpec("violations_daily", counts={"violation_count": TRIP_RATE, "trips_ended": TRIP_RATE}),
    TableSpec("top_areas", counts={"violation_count": ("main_rule", "share_percent")}),
    TableSpec("violation_cells", cells="violation_count"),
    TableSpec("parking_hotspots", cells="trips_ended"),
    TableSpec("parking_spots"),
    TableSpec(
        "data_quality_daily",
        counts={
            "quarantined_records": (),
            "duplicate_records": (),
            "late_events": (),
            "unmatched_records": (),
            "conflicting_records": (),
        },
    ),
    TableSpec("rules_not_judged", counts={"not_judged": ()}),
)
TABLE_NAMES = tuple(spec.name for spec in TABLES)
NO_DATA_FIGURES = ("hours_with_data", "data_coverage_percent")
"""The key figures a period without data still has: what it lacks."""


def report_inputs() -> set[str]:
    """Every warehouse relation (model, or lake.<dataset>) a report reads."""
    return {i for name in (*TABLE_NAMES, VEHICLE_TYPE_HOURS) for i in read_query(name).inputs} | set(CITY_INPUTS)


@dataclass(frozen=True)
class ReportTables:
    city: City
    period: ReportPeriod
    resolution: int
    """The H3 resolution of the map cells."""
    k: int
    frames: dict[str, pl.DataFrame]
    suppressed_cells: int
    """Values nulled because their count was below k."""
    cells_left_out: dict[str, int]
    """Map cells below k, per cell table."""
    has_data: bool = True
    """Whether any hour of the period has an MDS delivery; without one every table is empty, not zeros."""

    def description(self, name: str) -> str:
        return read_query(name).description


def _bound(sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a statement uses (DuckDB refuses unused ones)."""
    return {name: values[name] for name in dict.fromkeys(PARAMETER.findall(sql))}


def _plain_types(frame: pl.DataFrame) -> pl.DataFrame:
    """DuckDB's HUGEINT sums arrive as decimals: whole ones become Int64, others Float64."""
    return frame.with_columns(
        pl.col(name).cast(pl.Int64 if dtype.scale == 0 else pl.Float64)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Decimal)
    )


def _local_hours(frame: pl.DataFrame, timezone: str) -> pl.DataFrame:
    """The UTC `hour` column replaced by the city's local hour and its UTC offset (DST-proof)."""
    if "hour" not in frame.columns:
        return frame
    local = pl.col("hour").dt.convert_time_zone(timezone)
    columns = ["hour_local", "utc_offset", *(c for c in frame.columns if c != "hour")]
    return frame.with_columns(
        local.dt.replace_time_zone(None).alias("hour_local"), local.dt.strftime("%:z").alias("utc_offset")
    ).select(columns)


def _days(period: ReportPeriod) -> pl.DataFrame:
    return pl.DataFrame(
        {"local_date": period.days, "hours_in_day": [period.hours_in_day(day) for day in period.days]},
        schema={"local_date": pl.Date, "hours_in_day": pl.Int32},
    )


def query_tables(
    con: duckdb.DuckDBPyConnection,
    city: City,
    period: ReportPeriod,
    k: int,
    resolution: int = cells.DEFAULT_RESOLUTION,
) -> ReportTables:
    """Every table of the report, in TABLES order, ready to write; map cells are H3 cells of `resolution`."""
    values = {**period.bound(), "top_n": TOP_AREAS}
    con.execute("set TimeZone = 'UTC'")  # hour buckets and casts of UTC instants stay in UTC
    frames: dict[str, pl.DataFrame] = {}
    suppressed_cells = 0
    cells_left_out: dict[str, int] = {}
    wide: dict[str, Any] = {}
    with registered(con, "report_days", _days(period)):
        prepared = read_query(VEHICLE_TYPE_HOURS).sql
        con.execute("create or replace temp table report_vehicle_type_hours as " + prepared, _bound(prepared, values))
        try:
            for spec in TABLES:
                sql = spec.query.sql
                frame = _plain_types(query_frame(con, sql, _bound(sql, values)))
                if spec.name == "key_figures":
                    wide = frame.row(0, named=True)
                    continue
                frame = _local_hours(frame, period.timezone)
                if spec.cells:
                    frame, left_out = drop_below_k(cells.aggregate(frame, spec.cells, resolution), spec.cells, k)
                    frame = cells.label_areas(frame, city.areas)
                    cells_left_out[spec.name] = left_out
                else:
                    frame, hidden = suppress(frame, spec.counts, k)
                    suppressed_cells += hidden
                frames[spec.name] = frame
        finally:
            con.execute("drop table if exists report_vehicle_type_hours")
    has_data = bool(wide.get("hours_with_data"))
    if not has_data:
        # Nothing was delivered for the period: say so, instead of a page of zeros and empty-day rows.
        wide = {name: wide.get(name) for name in NO_DATA_FIGURES}
        frames = {name: frame.clear() for name, frame in frames.items()}
        suppressed_cells, cells_left_out = 0, dict.fromkeys(cells_left_out, 0)
    figures = key_figures(wide, frames["compliance_by_rule"], period, k)
    suppressed_cells += int(figures["value_suppressed"].sum())
    frames = {"key_figures": figures, **frames}
    for name, frame in frames.items():
        check_columns(name, frame.columns)
    return ReportTables(city, period, resolution, k, frames, suppressed_cells, cells_left_out, has_data)
