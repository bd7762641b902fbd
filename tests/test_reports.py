"""City reports: the period's local calendar, privacy rules, and every export read back against the marts.

The exports are written once per session from the shared warehouse (2 days of Stockholm, free-floating, and
Berlin, parking-spot, across the 2026 switch to summer time) and checked with independent readers: openpyxl for
the workbook, polars for CSV and Parquet, json for GeoJSON, DuckDB queries of the marts for the values, and
headless Chromium for the page.
"""

import base64
import collections
import itertools
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb
import h3
import polars as pl
import pytest
import shapely
import shapely.geometry
from typer.testing import CliRunner

from assets.reports import city_report
from assets.resources import resources_for
from cli import app as cli
from pipelines.config import Settings
from pipelines.reports import cells, labels
from pipelines.reports.city import UnknownZone, load_city
from pipelines.reports.export import ReportFiles, export_report
from pipelines.reports.figures import key_figures
from pipelines.reports.period import ReportPeriod, previous_month
from pipelines.reports.privacy import (
    FORBIDDEN_COLUMNS,
    SUPPRESSED_SUFFIX,
    PrivacyError,
    check_columns,
    drop_below_k,
    suppress,
)
from pipelines.reports.tables import TABLE_NAMES, query_tables
from pipelines.warehouse.connection import connect
from tests.conftest import BuiltWarehouse

if TYPE_CHECKING:
    from openpyxl import Workbook

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
FIRST_DAY, LAST_DAY = date(2026, 3, 28), date(2026, 3, 30)
K = 10
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# -- the period: local days, DST-correct UTC bounds ------------------------------------------------------------


def test_period_days_last_23_and_25_hours_across_the_2026_switches() -> None:
    spring = ReportPeriod("1", date(2026, 3, 28), date(2026, 3, 30), "Europe/Stockholm")
    assert [spring.hours_in_day(day) for day in spring.days] == [24, 23, 24]
    assert spring.hours == 71
    assert spring.start_utc == datetime(2026, 3, 27, 23, tzinfo=UTC)
    assert spring.end_utc == datetime(2026, 3, 30, 22, tzinfo=UTC)  # exclusive: midnight of the 31st, CEST
    assert spring.utc_offsets() == ["+01:00", "+02:00"]
    autumn = ReportPeriod("1", date(2026, 10, 25), date(2026, 10, 25), "Europe/Stockholm")
    assert autumn.hours_in_day(date(2026, 10, 25)) == 25
    assert (autumn.start_utc, autumn.end_utc) == (
        datetime(2026, 10, 24, 22, tzinfo=UTC),
        datetime(2026, 10, 25, 23, tzinfo=UTC),
    )
    march = ReportPeriod.month("1", 2026, 3, "Europe/Stockholm")
    assert (march.start, march.end, march.hours) == (date(2026, 3, 1), date(2026, 3, 31), 31 * 24 - 1)
    assert march.slug == "zone-1_2026-03-01_2026-03-31"
    assert previous_month(date(2026, 1, 15)) == (date(2025, 12, 1), date(2025, 12, 31))
    with pytest.raises(ValueError, match="ends"):
        ReportPeriod("1", date(2026, 3, 2), date(2026, 3, 1), "UTC")
    with pytest.raises(Exception, match="Mars/Olympus"):
        ReportPeriod("1", date(2026, 3, 1), date(2026, 3, 1), "Mars/Olympus")


def test_every_table_is_documented() -> None:
    documented = (REPO / "docs" / "city_reports.md").read_text()
    for table in TABLE_NAMES:
        assert f"| `{table}` |" in documented, table


# -- privacy rules -------------------------------------------------------------------------------------------


def test_counts_below_k_and_what_derives_from_them_are_suppressed_zero_is_not() -> None:
    frame = pl.DataFrame(
        {
            "day": [1, 2, 3, 4],
            "trips": [0, 3, 10, 250],
            "median_s": [None, 600.0, 610.0, 620.0],
            "violations": [9, 0, 12, 1],
            "rate": [None, 0.0, 120.0, 0.4],
        }
    )
    suppressed, hidden = suppress(frame, {"trips": ("median_s", "rate"), "violations": ("rate",)}, k=10)
    assert suppressed.columns == [
        "day", "trips", "trips_suppressed", "median_s", "violations", "violations_suppressed", "rate",
    ]  # fmt: skip
    assert suppressed["trips"].to_list() == [0, None, 10, 250]
    assert suppressed["trips_suppressed"].to_list() == [False, True, False, False]
    assert suppressed["median_s"].to_list() == [None, None, 610.0, 620.0]
    assert suppressed["violations"].to_list() == [None, 0, 12, None]
    assert suppressed["rate"].to_list() == [None, None, 120.0, None]
    assert hidden == 3
    cells = pl.DataFrame({"cell_lat": [1.0, 2.0, 3.0], "trips_ended": [1, 10, 40]})
    kept, left_out = drop_below_k(cells, "trips_ended", 10)
    assert kept["trips_ended"].to_list() == [10, 40] and left_out == 1


def test_identifier_columns_are_refused() -> None:
    check_columns("fine", ["zone_id", "area_id", "trips"])
    for column in ("device_id", "trip_id", "vehicle_id", "event_id", "licence_plate", "Device_ID"):
        with pytest.raises(PrivacyError, match="identifier"):
            check_columns("leaky", ["trips", column])


def test_h3_cells_sum_counts_name_their_main_rule_and_area() -> None:
    # Two places in one resolution-10 cell of Stockholm (about 20 m apart), one 1 km away.
    points = pl.DataFrame(
        {
            "lat": [59.33250, 59.33260, 59.34250],
            "lng": [18.02430, 18.02440, 18.02430],
            "rule": ["speeding", "parking_outside_spot", "speeding"],
            "violation_count": [3, 3, 5],
        }
    )
    found = cells.aggregate(points, "violation_count", 10)
    assert found.columns == ["h3_cell", "cell_lat", "cell_lng", "violation_count", "main_rule"]
    busy = h3.latlng_to_cell(59.3325, 18.0243, 10)
    assert h3.latlng_to_cell(59.3326, 18.0244, 10) == busy  # the two places share a cell
    assert (
        found.rows()
        == [
            (busy, *(round(v, 6) for v in h3.cell_to_latlng(busy)), 6, "parking_outside_spot"),  # a tie: first by name
            (h3.latlng_to_cell(59.3425, 18.0243, 10), *found.row(1)[1:3], 5, "speeding"),
        ]
    )
    assert {h3.get_resolution(c) for c in found["h3_cell"]} == {10}
    assert 70 < cells.edge_length_m(10) < 80
    ring = cells.boundary(busy)
    assert ring[0] == ring[-1] and len(ring) == 7
    assert _signed_area(ring) > 0  # counter-clockwise, RFC 7946 exterior ring
    assert shapely.Polygon(ring).contains(shapely.Point(18.0243, 59.3325))  # (lng, lat)
    # Labelled by the smallest area holding the centre; parking spots never name a cell.
    around = shapely.Point(18.0243, 59.3325)
    areas = pl.DataFrame(
        {
            "area_type": ["operations", "no-parking", "parking-spot"],
            "area_name": ["Stockholm", "Old town", "Spot 1"],
            "geometry": [shapely.to_wkb(around.buffer(r)) for r in (0.02, 0.002, 0.002)],
        }
    )
    labelled = cells.label_areas(found, areas)
    assert labelled.select("area_name", "area_type").rows() == [
        ("Old town", "no-parking"),
        ("Stockholm", "operations"),
    ]
    assert cells.label_areas(found, areas.head(0))["area_name"].to_list() == [cells.OUTSIDE] * 2


def test_the_h3_resolution_is_a_setting_with_bounds() -> None:
    assert Settings().report_h3_resolution == cells.DEFAULT_RESOLUTION
    assert Settings(FLEETLAKE_REPORT_H3_RESOLUTION="9").report_h3_resolution == 9
    with pytest.raises(ValueError, match="FLEETLAKE_REPORT_H3_RESOLUTION"):
        Settings(FLEETLAKE_REPORT_H3_RESOLUTION="12")


def test_key_figures_hide_what_a_small_count_would_reveal() -> None:
    period = ReportPeriod("1", date(2026, 3, 29), date(2026, 3, 29), "Europe/Stockholm")
    wide = {"trips": 4, "trip_duration_median_min": 9.5, "violations": 30, "trips_ended": 4}
    wide |= {"violations_per_100_trips": 750.0, "deployed_fleet_avg": 3.2, "unique_vehicles": 5}
    by_rule = pl.DataFrame(
        {"rule": ["speeding"], "violation_count_suppressed": [False], "trips_ended_suppressed": [True]},
    ).with_columns(pl.lit(None, pl.Float64).alias("violations_per_100_trips"))
    figures = {row["figure"]: row for row in key_figures(wide, by_rule, period, k=10).iter_rows(named=True)}
    for name in ("trips", "trip_duration_median_min", "violations_per_100_trips", "violations_per_100_trips.speeding"):
        assert figures[name]["value"] is None and figures[name]["value_suppressed"], name
    assert figures["violations"]["value"] == 30
    # Parked vehicles are public (GBFS): fleet figures stay.
    assert figures["deployed_fleet_avg"]["value"] == 3.2 and figures["unique_vehicles"]["value"] == 5
    assert figures["hours_in_period"]["value"] == 23


# -- exports of the shared warehouse -------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    warehouse: Path
    files: dict[str, ReportFiles]


@pytest.fixture(scope="module")
def exported(built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    out = tmp_path_factory.mktemp("reports")
    path = built_warehouse.warehouse.path
    return Exported(path, {zone: export_report(path, zone, FIRST_DAY, LAST_DAY, out, k=K) for zone in ("1", "145")})


@pytest.fixture
def marts(exported: Exported) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(exported.warehouse) as con:
        con.execute("set TimeZone = 'UTC'")
        yield con


def mart(con: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> pl.DataFrame:
    return pl.DataFrame(pl.from_arrow(con.execute(sql, params).to_arrow_table()))


def parquet(files: ReportFiles, table: str) -> pl.DataFrame:
    return pl.read_parquet(files.parquet[table])


def bounds(zone: str) -> dict[str, Any]:
    tz = {"1": "Europe/Stockholm", "145": "Europe/Berlin"}[zone]
    period = ReportPeriod(zone, FIRST_DAY, LAST_DAY, tz)
    return {"zone": zone, "start": period.start_utc, "end": period.end_utc, "first": FIRST_DAY, "last": LAST_DAY}


def read_workbook(path: Path) -> "Workbook":
    """A workbook read back by openpyxl, an independent reader. Imported here: it costs every pytest worker a
    quarter of a CPU second at collection, and one worker runs these tests."""
    import openpyxl

    return openpyxl.load_workbook(path)


@pytest.mark.integration
def test_every_format_is_written_in_one_folder_per_zone_and_period(exported: Exported) -> None:
    files = exported.files["1"]
    assert files.folder.name == "zone-1_2026-03-28_2026-03-30"
    assert {p.name for p in files.folder.iterdir()} == {
        "report.html", "report.xlsx", "csv", "parquet", "violations.geojson", "parking_hotspots.geojson",
        "zone_areas.geojson", "parking_spots.geojson",
    }  # fmt: skip
    assert sorted(p.stem for p in (files.folder / "csv").iterdir()) == sorted(TABLE_NAMES)
    assert sorted(p.stem for p in (files.folder / "parquet").iterdir()) == sorted(TABLE_NAMES)
    assert not [p for p in files.folder.parent.iterdir() if p.name.startswith(".")], "temporary folders left"
    assert (files.city, files.timezone) == ("Stockholm", "Europe/Stockholm")
    assert exported.files["145"].timezone == "Europe/Berlin"


@pytest.mark.integration
def test_csv_and_parquet_hold_the_same_tables(exported: Exported) -> None:
    for files in exported.files.values():
        for table in TABLE_NAMES:
            frame = parquet(files, table)
            assert frame.height == files.rows[table], table
            from_csv = pl.read_csv(files.csv[table], schema=frame.schema)
            assert from_csv.equals(frame), table


@pytest.mark.integration
def test_workbook_has_one_typed_sheet_per_table_with_frozen_headers(exported: Exported) -> None:
    for files in exported.files.values():
        workbook = read_workbook(files.xlsx)
        assert workbook.sheetnames == ["about", *TABLE_NAMES]
        about = {row[0]: row[1] for row in workbook["about"].iter_rows(min_row=2, values_only=True)}
        assert about["timezone"].startswith(files.timezone) and about["k"].startswith(f"{K}:")
        for table in TABLE_NAMES:
            sheet = workbook[table]
            frame = parquet(files, table)
            assert len(table) <= 31
            assert sheet.freeze_panes == "A2", table
            rows = list(sheet.iter_rows(values_only=True))
            titles = labels.titles(frame.columns)
            assert list(rows[0]) == list(titles.values()), table
            assert len(set(rows[0])) == len(rows[0]), table
            widths = _column_widths(sheet)
            for index, title in enumerate(titles.values(), start=1):
                longest_word = max(len(word) for word in title.split())
                assert longest_word <= widths[index] <= 63, (table, title, widths[index])
            # On paper: A4 landscape, one page wide (fitToWidth left out means its default, 1), the header row
            # repeated on every page.
            setup = sheet.page_setup
            fit = (setup.fitToWidth or 1, setup.fitToHeight)
            assert (setup.orientation, setup.paperSize, fit) == ("landscape", 9, (1, 0)), table
            assert sheet.sheet_properties.pageSetUpPr.fitToPage, table
            assert sheet.print_title_rows == "$1:$1", table
            assert len(rows) - 1 == frame.height, table
            for written, expected in zip(rows[1:], frame.iter_rows(), strict=True):
                for got, value in zip(written, expected, strict=True):
                    if isinstance(value, float):
                        assert got == pytest.approx(value, rel=1e-12), table
                    else:
                        assert got == _excel(value) and type(got) is type(_excel(value)), (table, got, value)


def _column_widths(sheet: Any) -> dict[int, float]:
    """Width of each column by index (openpyxl keeps adjacent columns of one width as one range)."""
    widths = {}
    for dimension in sheet.column_dimensions.values():
        if dimension.min is not None:
            for index in range(dimension.min, dimension.max + 1):
                widths[index] = dimension.width
    return widths


def _excel(value: Any) -> Any:
    """What a value reads back as from a workbook (Excel has dates only as midnight datetimes)."""
    return datetime.combine(value, datetime.min.time()) if type(value) is date else value


@pytest.mark.integration
def test_workbook_cells_are_typed(exported: Exported) -> None:
    sheet = read_workbook(exported.files["1"].xlsx)["daily"]
    header = [cell.value for cell in sheet[1]]
    first = dict(zip(header, sheet[2], strict=True))
    assert first["Day"].is_date and first["Day"].number_format == "yyyy-mm-dd"
    assert first["Trips"].data_type == "n" and isinstance(first["Trips"].value, int)
    assert first["Trips suppressed"].data_type == "b"
    hourly = read_workbook(exported.files["1"].xlsx)["hourly"]
    assert hourly["A2"].is_date and hourly["A2"].number_format == "yyyy-mm-dd hh:mm"


@pytest.mark.integration
def test_tables_equal_the_marts(exported: Exported, marts: duckdb.DuckDBPyConnection) -> None:
    for zone, files in exported.files.items():
        b = bounds(zone)
        figures = {r["figure"]: r["value"] for r in parquet(files, "key_figures").iter_rows(named=True)}
        trips = mart(
            marts,
            """
            select count(*) as trips, count(distinct device_id) as vehicles,
                median(duration_s) filter (where not (is_under_10s or is_over_5h or is_impossible_speed)) as median_s
            from trips
            where zone_id = $zone and cast(start_time_local as date) between $first and $last
            """,
            zone=zone, first=b["first"], last=b["last"],
        ).row(0, named=True)  # fmt: skip
        assert figures["trips"] == trips["trips"] > 1000
        assert figures["vehicles_with_trips"] == trips["vehicles"]
        assert figures["trip_duration_median_min"] == pytest.approx(trips["median_s"] / 60)

        deployed = mart(
            marts,
            """
            select hour_local, avg_vehicles, min_vehicles, max_vehicles from occupancy_hourly
            where zone_id = $zone and area_type = 'zone' and vehicle_state = 'deployed'
                and hour >= $start and hour < $end
            order by hour
            """,
            zone=zone, start=b["start"], end=b["end"],
        )  # fmt: skip
        hourly = parquet(files, "hourly").filter(pl.col("deployed_fleet_avg").is_not_null())
        assert hourly["hour_local"].to_list() == deployed["hour_local"].to_list()
        assert hourly["deployed_fleet_avg"].to_list() == pytest.approx(deployed["avg_vehicles"].to_list())
        assert figures["deployed_fleet_avg"] == pytest.approx(deployed["avg_vehicles"].mean())
        assert figures["deployed_fleet_max"] == deployed["max_vehicles"].max()

        started = mart(
            marts,
            """
            select hour_local, sum(trip_count) as trips from trips_hourly
            where zone_id = $zone and hour >= $start and hour < $end
            group by all order by 1
            """,
            zone=zone, start=b["start"], end=b["end"],
        )  # fmt: skip
        shown = parquet(files, "hourly").join(started, on="hour_local", suffix="_mart")
        assert shown.height == started.height
        unsuppressed = shown.filter(~pl.col("trips_suppressed"))
        assert unsuppressed["trips"].to_list() == unsuppressed["trips_mart"].to_list()

        # The fleet split by vehicle type adds up to the mart's zone-wide figure, hour by hour.
        by_type = (
            parquet(files, "hourly_by_vehicle_type").group_by("hour_local").agg(pl.col("deployed_fleet_avg").sum())
        )
        summed = hourly.join(by_type, on="hour_local", suffix="_by_type")
        assert summed.height == hourly.height
        assert summed["deployed_fleet_avg_by_type"].to_list() == pytest.approx(summed["deployed_fleet_avg"].to_list())

        violations = mart(
            marts,
            """
            select local_date, rule, violation_count, trip_count as trips_ended, violations_per_100_trips
            from compliance_daily where zone_id = $zone and local_date between $first and $last order by 1, 2
            """,
            zone=zone, first=b["first"], last=b["last"],
        )  # fmt: skip
        daily = parquet(files, "violations_daily")
        visible = daily.filter(~pl.col("violation_count_suppressed") & ~pl.col("trips_ended_suppressed"))
        assert visible.drop(cs for cs in visible.columns if cs.endswith(SUPPRESSED_SUFFIX)).equals(
            violations.join(visible.select("local_date", "rule"), on=["local_date", "rule"], how="semi")
        )
        assert daily.height == violations.height
        by_rule = parquet(files, "compliance_by_rule")
        totals = violations.group_by("rule").agg(pl.col("violation_count").sum())
        assert dict(by_rule.select("rule", "violation_count").iter_rows()) == {
            rule: (count if count == 0 or count >= K else None) for rule, count in totals.iter_rows()
        }


@pytest.mark.integration
def test_parking_spots_equal_the_parking_mart(exported: Exported, marts: duckdb.DuckDBPyConnection) -> None:
    b = bounds("145")
    expected = mart(
        marts,
        """
        select area_id, 100 * sum(avg_vehicles) / sum(capacity) as occupancy_percent, max(max_vehicles) as peak
        from parking_occupancy_hourly where zone_id = '145' and hour >= $start and hour < $end
        group by area_id order by area_id
        """,
        start=b["start"], end=b["end"],
    )  # fmt: skip
    spots = parquet(exported.files["145"], "parking_spots").sort("area_id")
    assert spots.height == expected.height > 10
    assert spots["occupancy_percent"].to_list() == pytest.approx(expected["occupancy_percent"].to_list())
    assert spots["peak_vehicles"].to_list() == expected["peak"].to_list()
    figures = {r["figure"]: r["value"] for r in parquet(exported.files["145"], "key_figures").iter_rows(named=True)}
    assert 0 < figures["parking_occupancy_percent"] < 100
    stockholm = {r["figure"]: r["value"] for r in parquet(exported.files["1"], "key_figures").iter_rows(named=True)}
    assert stockholm["parking_occupancy_percent"] is None  # free-floating: no spots
    assert parquet(exported.files["1"], "parking_spots").is_empty()


@pytest.mark.integration
def test_small_counts_are_suppressed_and_flagged(exported: Exported, marts: duckdb.DuckDBPyConnection) -> None:
    b = bounds("1")
    started = mart(
        marts,
        """
        select hour_local, vehicle_type, sum(trip_count) as trips_mart from trips_hourly
        where zone_id = '1' and hour >= $start and hour < $end group by all
        """,
        start=b["start"], end=b["end"],
    )  # fmt: skip
    table = parquet(exported.files["1"], "hourly_by_vehicle_type").join(
        started, on=["hour_local", "vehicle_type"], how="left"
    )
    small = table.filter(pl.col("trips_mart").is_between(1, K - 1))
    assert small.height > 0, "the shared city has hours with a few bicycle trips"
    assert small["trips"].null_count() == small.height
    assert small["trips_suppressed"].all()
    shown = table.filter(pl.col("trips_mart").fill_null(0).is_in([0]) | (pl.col("trips_mart") >= K))
    assert not shown["trips_suppressed"].any()
    assert shown["trips"].to_list() == shown["trips_mart"].fill_null(0).to_list()
    for zone in ("1", "145"):
        areas = parquet(exported.files[zone], "top_areas")
        hidden = areas.filter(pl.col("violation_count_suppressed"))
        assert hidden["main_rule"].null_count() == hidden["share_percent"].null_count() == hidden.height
        assert (areas.filter(~pl.col("violation_count_suppressed"))["violation_count"] >= K).all()
        for cell_table, count in (("violation_cells", "violation_count"), ("parking_hotspots", "trips_ended")):
            assert (parquet(exported.files[zone], cell_table)[count] >= K).all()
    assert exported.files["1"].suppressed_cells > 0 and exported.files["1"].cells_left_out > 0


@pytest.mark.integration
def test_every_table_is_suppressed_with_a_larger_k(built_warehouse: BuiltWarehouse) -> None:
    with connect(built_warehouse.warehouse.path) as con:
        city = load_city(con, "145", datetime(2026, 4, 1, tzinfo=UTC))
        period = ReportPeriod("145", FIRST_DAY, LAST_DAY, city.timezone)
        tables = query_tables(con, city, period, k=1_000_000)
    figures = {r["figure"]: r for r in tables.frames["key_figures"].iter_rows(named=True)}
    for name in ("trips", "vehicles_with_trips", "trip_duration_median_min", "trip_distance_median_km"):
        assert figures[name]["value"] is None and figures[name]["value_suppressed"], name
    assert tables.frames["violation_cells"].is_empty() and tables.frames["parking_hotspots"].is_empty()
    daily = tables.frames["daily"].filter(pl.col("hours_with_data") > 0)
    assert daily["trips_suppressed"].all() and daily["trips_per_vehicle"].null_count() == daily.height


@pytest.mark.integration
def test_geojson_cells_are_valid_h3_cells_and_carry_no_ids(
    exported: Exported, marts: duckdb.DuckDBPyConnection
) -> None:
    for zone, files in exported.files.items():
        city_bounds = _area_bounds(marts, zone)
        for stem, count in (("violations", "violations"), ("parking_hotspots", "trips_ended")):
            document = json.loads(files.geojson[stem].read_text())
            assert document["type"] == "FeatureCollection"
            assert len(document["features"]) == files.rows[{"violations": "violation_cells"}.get(stem, stem)]
            assert document["features"] or zone == "1", "Berlin's maps have cells of at least k"
            for feature in document["features"]:
                assert feature["type"] == "Feature" and "id" not in feature
                properties = feature["properties"]
                assert set(properties) <= {
                    "h3_cell", "cell_lat", "cell_lng", "violations", "main_rule", "trips_ended",
                    "area_name", "area_type",
                }  # fmt: skip
                assert properties[count] >= K and properties["area_name"]
                assert h3.get_resolution(properties["h3_cell"]) == cells.DEFAULT_RESOLUTION
                assert feature["geometry"]["type"] == "Polygon"
                (ring,) = feature["geometry"]["coordinates"]
                assert len(ring) == 7 and ring[0] == ring[-1] and _signed_area(ring) > 0
                centre = shapely.Point(properties["cell_lng"], properties["cell_lat"])
                assert shapely.Polygon(ring).contains(centre)
                for x, y in ring:  # lng, lat order, near the zone
                    assert city_bounds[0] - 0.05 <= x <= city_bounds[2] + 0.05
                    assert city_bounds[1] - 0.05 <= y <= city_bounds[3] + 0.05


@pytest.mark.integration
def test_map_cells_count_every_located_record_of_their_cell(
    exported: Exported, marts: duckdb.DuckDBPyConnection
) -> None:
    """The cells, recounted here from the marts' own coordinates: every cell of at least k, and no other."""
    for zone, files in exported.files.items():
        b = bounds(zone)
        for table, count, sql in (
            ("violation_cells", "violation_count", "select lat, lng from compliance_violations where zone_id = $zone "
             "and observed_at >= $start and observed_at < $end and lat is not null and lng is not null"),
            ("parking_hotspots", "trips_ended", "select end_lat, end_lng from trips where zone_id = $zone "
             "and end_time >= $start and end_time < $end and end_lat is not null and end_lng is not null"),
        ):  # fmt: skip
            places = marts.execute(sql, {"zone": zone, "start": b["start"], "end": b["end"]}).fetchall()
            counted = collections.Counter(h3.latlng_to_cell(lat, lng, cells.DEFAULT_RESOLUTION) for lat, lng in places)
            expected = {cell: n for cell, n in counted.items() if n >= K}
            written = parquet(files, table)
            assert dict(zip(written["h3_cell"], written[count], strict=True)) == expected, (zone, table)


@pytest.mark.integration
def test_zone_areas_and_parking_spots_are_published_as_geojson_layers(
    exported: Exported, marts: duckdb.DuckDBPyConnection
) -> None:
    for zone, files in exported.files.items():
        areas = json.loads(files.geojson["zone_areas"].read_text())["features"]
        spots = json.loads(files.geojson["parking_spots"].read_text())["features"]
        shown = load_city(marts, zone, datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=UTC)).areas
        assert len(areas) == shown.filter(pl.col("area_type") != "parking-spot").height > 0
        assert len(spots) == shown.filter(pl.col("area_type") == "parking-spot").height
        assert {f["properties"]["area_type"] for f in spots} <= {"parking-spot"}
        for feature in (*areas, *spots):
            geometry = shapely.geometry.shape(feature["geometry"])
            assert geometry.is_valid and geometry.geom_type in ("Polygon", "MultiPolygon")
            for polygon in getattr(geometry, "geoms", [geometry]):
                assert polygon.exterior.is_ccw  # RFC 7946: exterior rings counter-clockwise
        occupancy = parquet(files, "parking_spots")
        capacities = {f["properties"]["area_id"]: f["properties"].get("capacity") for f in spots}
        assert {r["area_id"]: r["capacity"] for r in occupancy.iter_rows(named=True)} == {
            area: capacity for area, capacity in capacities.items() if area in set(occupancy["area_id"])
        }
    assert (
        exported.files["145"].geojson
        and json.loads(exported.files["145"].geojson["parking_spots"].read_text())["features"]
    ), "Berlin has parking spots"


def _area_bounds(con: duckdb.DuckDBPyConnection, zone: str) -> tuple[float, float, float, float]:
    """(min lng, min lat, max lng, max lat) of the zone's areas, read with shapely from the staging model."""
    blobs = [blob for (blob,) in con.execute(
        "select geometry from staging.stg_zone__areas where zone_id = $zone", {"zone": zone}
    ).fetchall()]  # fmt: skip
    min_lng, min_lat, max_lng, max_lat = shapely.total_bounds(shapely.from_wkb(blobs))
    return float(min_lng), float(min_lat), float(max_lng), float(max_lat)


def _signed_area(ring: Any) -> float:
    return float(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2)


@pytest.mark.integration
def test_no_identifier_leaves_the_warehouse(exported: Exported, marts: duckdb.DuckDBPyConnection) -> None:
    identifiers = {
        value
        for (value,) in marts.execute(
            """
            select device_id::varchar from trips union select trip_id::varchar from trips
            union select event_id::varchar from vehicle_state_intervals
            union select vehicle_id from staging.stg_mds__vehicles
            union select device_id::varchar from staging.stg_mds__vehicles
            """
        ).fetchall()
        if value
    }
    assert len(identifiers) > 1000
    # Short vehicle codes (4 characters here) cannot be told from numbers in text; their columns are checked.
    codes = {i for i in identifiers if not UUID.fullmatch(i) and len(i) >= 8}
    for files in exported.files.values():
        for path in files.folder.rglob("*"):
            if path.is_dir():
                continue
            if path.suffix == ".parquet":
                frame = pl.read_parquet(path)
                check_columns(path.name, frame.columns)
                text = frame.write_csv()
            elif path.suffix == ".xlsx":
                with zipfile.ZipFile(path) as archive:
                    text = "".join(archive.read(n).decode() for n in archive.namelist() if n.endswith(".xml"))
            else:
                text = path.read_text(encoding="utf-8")
            assert not set(UUID.findall(text)) & identifiers, path
            assert not [c for c in codes if c in text], path
            header = text.splitlines()[0].lower() if path.suffix == ".csv" else ""
            assert not set(header.split(",")) & FORBIDDEN_COLUMNS, path


@pytest.mark.integration
def test_local_time_throughout_across_the_switch_to_summer_time(exported: Exported) -> None:
    files = exported.files["1"]
    daily = parquet(files, "daily")
    assert dict(daily.select("local_date", "hours_in_day").iter_rows()) == {
        date(2026, 3, 28): 24, date(2026, 3, 29): 23, date(2026, 3, 30): 24,
    }  # fmt: skip
    hourly = parquet(files, "hourly")
    on_the_29th = hourly.filter(pl.col("hour_local").dt.date() == date(2026, 3, 29))
    assert on_the_29th.height == 23
    assert 2 not in on_the_29th["hour_local"].dt.hour().to_list()  # 02:00 does not exist that night
    offsets = dict(zip(on_the_29th["hour_local"].dt.hour(), on_the_29th["utc_offset"], strict=True))
    assert offsets[1] == "+01:00" and offsets[3] == "+02:00"
    assert (
        parquet(files, "data_quality_daily").filter(pl.col("local_date") == date(2026, 3, 29))["hours_in_day"][0] == 23
    )
    page = files.html.read_text()
    assert "local time in Europe/Stockholm" in page and "UTC +01:00, +02:00" in page
    assert "2026-03-27 23:00 to 2026-03-30 22:00 UTC" in page


@pytest.mark.integration
def test_page_is_self_contained(exported: Exported) -> None:
    page = exported.files["145"].html.read_text()
    assert page.count("<svg") == 5
    assert '<meta name="viewport"' in page and "@media print" in page
    assert not re.search(r"<script|<link[^>]+stylesheet|<img|@import|url\(\s*['\"]?https?:", page)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "&lt;10" in page  # suppressed values are shown as such
    assert "Berlin parking" in page


@pytest.mark.slow
@pytest.mark.integration
def test_cli_writes_a_report_and_refuses_unknown_zones(built_warehouse: BuiltWarehouse, tmp_path: Path) -> None:
    """`fleetlake export`, its options and settings read by the command itself, in this process (the tests of
    `fleetlake serve` and `fleetlake provider serve` start the command line in a process of its own)."""
    env = {"FLEETLAKE_WAREHOUSE": str(built_warehouse.warehouse.path)}
    command = ["export", "--zone", "145", "--start", "2026-03-29", "--end", "2026-03-29"]
    result = CliRunner().invoke(cli.app, [*command, "--out", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output[-2000:]
    html = Path(re.search(r"html:\s+(\S+)", result.stdout).group(1))  # type: ignore[union-attr]
    assert html == tmp_path / "zone-145_2026-03-29_2026-03-29" / "report.html"
    assert html.is_file() and (html.parent / "report.xlsx").is_file()
    assert "Europe/Berlin" in result.stdout
    with pytest.raises(UnknownZone, match="no data for zone '999'"):
        export_report(built_warehouse.warehouse.path, "999", FIRST_DAY, LAST_DAY, tmp_path)
    with pytest.raises(ValueError, match="invalid zone id"):
        export_report(built_warehouse.warehouse.path, "../1", FIRST_DAY, LAST_DAY, tmp_path)


@pytest.mark.slow
@pytest.mark.integration
def test_monthly_asset_writes_every_zone(built_warehouse: BuiltWarehouse, tmp_path: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [city_report],
            partition_key="2026-03-01",
            resources=resources_for(
                Settings(zones=("1", "145", "999"), warehouse=built_warehouse.warehouse.path, reports_dir=tmp_path)
            ),
            instance=instance,
        )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("city_report")
    metadata = materialization.metadata
    assert metadata["zones"].value == "1, 145" and metadata["skipped_zones"].value == "999"
    period = metadata["period"].value
    assert isinstance(period, str) and period.startswith("2026-03-01 to 2026-03-31")
    assert metadata["suppressed_cells"].value > 0  # type: ignore[operator]
    for zone in ("1", "145"):
        html = Path(str(metadata[f"html_zone_{zone}"].value))
        assert html == tmp_path / f"zone-{zone}_2026-03-01_2026-03-31" / "report.html" and html.is_file()
    daily = pl.read_parquet(tmp_path / "zone-1_2026-03-01_2026-03-31" / "parquet" / "daily.parquet")
    assert daily.height == 31 and daily["hours_in_day"].sum() == 31 * 24 - 1


# -- the page in a browser -----------------------------------------------------------------------------------

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)


def _found(candidates: tuple[str, ...], name: str) -> str | None:
    return next((c for c in candidates if Path(c).is_file()), None) or shutil.which(name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, chromedriver = _found(CHROMIUM, "chromium"), _found(CHROMEDRIVER, "chromedriver")
    if not chromium or not chromedriver:
        message = "Chromium not found: apt-get install chromium chromium-driver"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI must run the browser test)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver: selenium-manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.integration
def test_page_renders_its_charts_and_maps_in_chromium(
    exported: Exported, marts: duckdb.DuckDBPyConnection, browser: Any
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    files = exported.files["145"]
    browser.set_window_size(1280, 1000)
    _open(browser, files.html)
    charts = browser.execute_script(
        """
        return [...document.querySelectorAll('figure')].map(f => {
            const svg = f.querySelector('svg');
            const box = svg.getBoundingClientRect();
            return {id: f.id, width: box.width, height: box.height,
                    shapes: svg.querySelectorAll('path, use, rect, polygon').length,
                    text: svg.querySelectorAll('text').length, words: svg.textContent};
        });
        """
    )
    assert [c["id"] for c in charts] == [
        "chart-daily", "chart-hourly", "chart-violations", "chart-violations_map", "chart-hotspots_map",
    ]  # fmt: skip
    for chart in charts:
        assert chart["width"] > 600 and chart["height"] > 200, chart
        assert chart["shapes"] > 20 and chart["text"] > 3, chart
    # The maps draw every area of the zone (Berlin: its parking spots among them).
    counted = marts.execute(
        "select count(distinct area_id) from staging.stg_zone__areas where zone_id = '145'"
    ).fetchone()
    assert counted is not None
    (areas,) = counted
    assert areas > 30 and charts[3]["shapes"] > areas and charts[4]["shapes"] > areas
    # The busiest parking cell inside a named area is labelled with that area's name.
    hot = parquet(files, "parking_hotspots").filter(pl.col("area_type") != "outside")
    assert not hot.is_empty() and hot["area_name"][0] in charts[4]["words"]
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors

    # A desktop window and a phone: the page never scrolls sideways, every table fits its box (on the phone, a
    # wide table's rows become cards), every chart and map is drawn within the page's width.
    for width, name in ((1280, "report-desktop.png"), (390, "report-phone.png")):
        browser.set_window_size(width, 900)
        _open(browser, files.html)
        layout = browser.execute_script(
            """
            const page = document.documentElement;
            return {
                overflow: page.scrollWidth - window.innerWidth,
                tables: [...document.querySelectorAll('.table')].map(t => t.scrollWidth - t.clientWidth),
                charts: [...document.querySelectorAll('figure svg')].map(svg => {
                    const box = svg.getBoundingClientRect();
                    const style = getComputedStyle(svg);
                    return {width: box.width, height: box.height, left: box.left, right: box.right,
                            shown: style.display !== 'none' && style.visibility === 'visible'};
                }),
                viewport: window.innerWidth,
            };
            """
        )
        assert layout["overflow"] <= 0, (width, "the page scrolls sideways")
        assert len(layout["tables"]) >= 7 and max(layout["tables"]) <= 0, (width, layout["tables"])
        assert len(layout["charts"]) == 5, width
        for chart in layout["charts"]:
            assert chart["shown"] and chart["width"] > 0.8 * min(width - 60, 896) and chart["height"] > 150, chart
            assert chart["left"] >= 0 and chart["right"] <= layout["viewport"], chart
        _full_page_screenshot(browser, ARTIFACTS / name)
    pdf = browser.print_page()
    (ARTIFACTS / "report.pdf").write_bytes(base64.b64decode(pdf))
    assert (ARTIFACTS / "report.pdf").read_bytes()[:4] == b"%PDF"
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _open(browser: Any, page: Path) -> None:
    """Load the page and wait (a minute at most) until Chromium's document holds every figure the file holds: a
    full run on a busy machine once read the DOM with only the first three of the five figures in it."""
    from selenium.webdriver.support.ui import WebDriverWait

    figures = page.read_text(encoding="utf-8").count("<figure ")
    browser.get(page.as_uri())
    loaded = "return document.readyState === 'complete' && document.querySelectorAll('figure').length === arguments[0]"
    WebDriverWait(browser, 60).until(lambda b: b.execute_script(loaded, figures))


def _full_page_screenshot(browser: Any, path: Path) -> None:
    size = browser.execute_script(
        "return {width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight}"
    )
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000


# -- the workbook on paper -----------------------------------------------------------------------------------

SOFFICE = ("/usr/bin/soffice", "/usr/bin/libreoffice")
A4_LANDSCAPE_PT = (841.9, 595.3)


@pytest.fixture(scope="module")
def workbook_pdf(exported: Exported, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Berlin's workbook printed to PDF by LibreOffice headless, as a city official's office would print it."""
    soffice = _found(SOFFICE, "soffice")
    if not soffice:
        message = "LibreOffice not found: apt-get install libreoffice-calc"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI must print the workbook)")
        pytest.skip(message)
    out = tmp_path_factory.mktemp("printed")
    profile = out / "profile"  # a profile of its own: no lock shared with another LibreOffice on the machine
    result = subprocess.run(
        [soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
         "--convert-to", "pdf", "--outdir", str(out), str(exported.files["145"].xlsx)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    pdf = out / "report.pdf"
    assert result.returncode == 0 and pdf.is_file(), result.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(pdf, ARTIFACTS / "workbook.pdf")
    return pdf


@pytest.mark.slow
@pytest.mark.integration
def test_workbook_prints_each_sheet_one_page_wide(exported: Exported, workbook_pdf: Path) -> None:
    """Every printed page is A4 landscape and holds every column title of its sheet (named in the page header):
    no sheet is cut into strips of columns, and the header row repeats on each page a sheet runs to."""
    from pypdf import PdfReader

    workbook = read_workbook(exported.files["145"].xlsx)
    titles = {sheet.title: [" ".join(str(c.value).split()) for c in sheet[1]] for sheet in workbook.worksheets}
    pages = PdfReader(workbook_pdf).pages
    printed: dict[str, int] = {}
    for number, page in enumerate(pages, start=1):
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(A4_LANDSCAPE_PT, abs=1)
        text = " ".join(page.extract_text().split())
        sheet = text.split(" ", 1)[0]
        assert sheet in titles, (number, text[:80])
        missing = [title for title in titles[sheet] if title not in text]
        assert not missing, (number, sheet, missing)
        printed[sheet] = printed.get(sheet, 0) + 1
    assert set(printed) == set(titles), "every sheet is printed"
    # Three days fit a few pages per sheet: rows run down the pages, never across.
    for sheet in workbook.worksheets:
        assert printed[sheet.title] <= 1 + sheet.max_row // 20, (sheet.title, printed[sheet.title], sheet.max_row)
