"""Honest coverage in city reports: every hour of the period counts, partial days are flagged, a period without
data says so instead of showing zeros, key figures agree with the daily table they summarise, and repeated or
conflicting deliveries reach the data-quality table."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines.reports.city import load_city
from pipelines.reports.export import export_report
from pipelines.reports.period import ReportPeriod
from pipelines.reports.tables import query_tables
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.connection import connect
from tests.conftest import BuiltWarehouse
from tests.scenario import (
    CENTER,
    area,
    ride,
    trip,
    write_events,
    write_system_information,
    write_trips,
    write_vehicles,
    write_zone_areas,
)

pytestmark = pytest.mark.integration

ZONE = "1"
H = timedelta(hours=1)
M = timedelta(minutes=1)
# Stockholm keeps summer time all April: 30 local days of 24 hours, 720 hours.
APRIL = (date(2026, 4, 1), date(2026, 4, 30))
# 46 delivered hours: local 10 April 00:00 (22:00 UTC the day before) to 11 April 22:00.
FIRST_HOUR = datetime(2026, 4, 9, 22, tzinfo=UTC)
DELIVERED = [FIRST_HOUR + n * H for n in range(46)]
REPEATED_HOUR = DELIVERED[12]


def parquet(folder: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(folder / "parquet" / f"{table}.parquet")


def figures(folder: Path) -> dict[str, float | None]:
    return {r["figure"]: r["value"] for r in parquet(folder, "key_figures").iter_rows(named=True)}


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse whose lake holds 46 hours of April for zone 1: a ride every hour, and in one hour a response
    that lists one trip twice unchanged and another twice with different distances."""
    root = tmp_path_factory.mktemp("month")
    lake = root / "lake"
    write_system_information(lake, ZONE, FIRST_HOUR - 24 * H)
    write_vehicles(lake, ZONE, FIRST_HOUR - 24 * H, ["scooter-a", "scooter-b", "scooter-c"])
    (lat, lng) = CENTER
    operations = area("city", "operations", (lat - 0.01, lng - 0.02), (lat + 0.01, lng + 0.02))
    write_zone_areas(lake, ZONE, FIRST_HOUR - 24 * H, [operations])
    for n, hour in enumerate(DELIVERED):
        ridden, events = ride(f"ride-{n}", "scooter-a", hour + 5 * M, hour + 15 * M)
        trips = [ridden]
        if hour == REPEATED_HOUR:
            same = trip("same", "scooter-b", hour + 20 * M, hour + 30 * M)
            changed = trip("changed", "scooter-c", hour + 20 * M, hour + 30 * M, distance_m=700.0)
            trips = [ridden, same, changed, same, {**changed, "distance": 750.0}]
        write_trips(lake, ZONE, hour, trips)
        write_events(lake, ZONE, hour, events)
    warehouse = Warehouse(root / "warehouse.duckdb", lake)
    warehouse.build()
    return warehouse.path


@pytest.fixture(scope="module")
def april(month: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """April's report of the month's warehouse, k=1 (every count as it is), exported once for the tests that read
    it: the export is the same whatever a test then looks at."""
    return export_report(month, ZONE, *APRIL, tmp_path_factory.mktemp("april"), k=1).folder


@pytest.mark.slow  # the first reader of `april`: it pays the month's build and export
def test_a_month_with_46_hours_of_data_says_46_of_720_and_flags_partial_days(april: Path) -> None:
    folder = april
    key = figures(folder)
    assert (key["hours_with_data"], key["hours_in_period"]) == (46, 720)
    assert key["data_coverage_percent"] == pytest.approx(100 * 46 / 720)  # 6.4 %, not 100 %
    assert key["trips"] == 48  # 46 rides and the two trips of the repeated hour

    daily = parquet(folder, "daily")
    assert daily.height == 30
    by_day = {row["local_date"]: row for row in daily.iter_rows(named=True)}
    tenth, eleventh, first = by_day[date(2026, 4, 10)], by_day[date(2026, 4, 11)], by_day[date(2026, 4, 1)]
    assert (tenth["hours_with_data"], tenth["data_coverage_percent"], tenth["data_completeness"]) == (
        24, 100.0, "complete",
    )  # fmt: skip
    assert (eleventh["hours_with_data"], eleventh["data_completeness"]) == (22, "partial")
    assert eleventh["data_coverage_percent"] == pytest.approx(100 * 22 / 24)
    # A day without data has no measures (null, not zero) and says so.
    assert (first["hours_with_data"], first["data_coverage_percent"], first["data_completeness"]) == (0, 0.0, "no data")
    assert (first["trips"], first["vehicles_with_trips"], first["violations"]) == (None, None, None)
    assert daily["data_completeness"].value_counts().sort("data_completeness").rows() == [
        ("complete", 1), ("no data", 28), ("partial", 1),
    ]  # fmt: skip

    quality = {row["local_date"]: row for row in parquet(folder, "data_quality_daily").iter_rows(named=True)}
    assert (quality[date(2026, 4, 11)]["partitions_present"], quality[date(2026, 4, 11)]["partitions_missing"]) == (
        44,
        4,
    )
    assert (quality[date(2026, 4, 1)]["partitions_missing"], quality[date(2026, 4, 1)]["coverage_percent"]) == (48, 0.0)

    html = (folder / "report.html").read_text()
    assert "46 of 720" in html
    assert "Deliveries cover 46 of the\n    period's 720 hours" in html
    assert "1 day is\n    partial (11 Apr)" in html
    assert "28 days have no data" in html


def test_in_response_duplicates_and_conflicts_reach_the_data_quality_table(month: Path, april: Path) -> None:
    folder = april
    quality = parquet(folder, "data_quality_daily").filter(local_date=date(2026, 4, 10)).row(0, named=True)
    assert (quality["duplicate_records"], quality["conflicting_records"]) == (1, 1)
    with connect(month) as con:
        hour = con.execute(
            "select mds_trips_records, mds_trips_duplicates, mds_trips_conflicts from data_quality_hourly "
            "where hour = $h",
            {"h": REPEATED_HOUR},
        ).fetchall()
        assert hour == [(3, 1, 1)]
        # The later of the two differing copies is the trip reported.
        assert con.execute("select distance_m from trips where distance_m in (700, 750)").fetchall() == [(750.0,)]
    assert "Conflicting records" in (folder / "report.html").read_text()


def test_a_period_without_data_says_so_plainly(month: Path, tmp_path: Path) -> None:
    folder = export_report(month, ZONE, date(2026, 5, 1), date(2026, 5, 31), tmp_path, k=1).folder
    key = figures(folder)
    assert (key["hours_with_data"], key["hours_in_period"], key["data_coverage_percent"]) == (0, 744, 0.0)
    # Not zeros: no trip, vehicle, violation or fleet figure at all.
    assert all(
        value is None
        for name, value in key.items()
        if name not in ("hours_with_data", "hours_in_period", "data_coverage_percent")
    )
    for table in ("daily", "hourly", "data_quality_daily", "compliance_by_rule", "violations_daily"):
        assert parquet(folder, table).height == 0, table
    html = (folder / "report.html").read_text()
    assert "No data for this period" in html
    assert "0 of 744 hours delivered" in html
    assert "<svg" not in html  # no empty charts or maps


def test_key_figures_equal_the_figures_recomputed_from_the_daily_table(built_warehouse: BuiltWarehouse) -> None:
    path = built_warehouse.warehouse.path
    for zone in ("1", "145"):
        with connect(path) as con:
            city = load_city(con, zone, datetime(2026, 3, 31, tzinfo=UTC))
            period = ReportPeriod(zone, date(2026, 3, 28), date(2026, 3, 30), city.timezone)
            tables = query_tables(con, city, period, k=1)  # k=1: nothing suppressed, every count as it is
        key = {r["figure"]: r["value"] for r in tables.frames["key_figures"].iter_rows(named=True)}
        daily = tables.frames["daily"]
        assert key["trips"] == daily["trips"].sum() > 1000
        assert key["violations"] == daily["violations"].sum()
        assert key["hours_with_data"] == daily["hours_with_data"].sum() == 48  # the two days ingested
        assert key["hours_in_period"] == daily["hours_in_day"].sum() == 71
        assert key["data_coverage_percent"] == pytest.approx(
            float((daily["data_coverage_percent"] * daily["hours_in_day"]).sum()) / float(daily["hours_in_day"].sum())
        )
        assert key["trips_per_vehicle_per_day"] == pytest.approx(
            float(daily["trips"].sum()) / float(daily["vehicle_days"].sum())
        )
        # Each day's own rate divides the same way.
        for row in daily.filter(pl.col("vehicle_days") > 0).iter_rows(named=True):
            assert row["trips_per_vehicle"] == pytest.approx(row["trips"] / row["vehicle_days"])
        # 28 Mar from 01:00 local (the first UTC hour), all of 29 Mar (23 hours: clocks go forward), 30 Mar to 02:00.
        assert daily["hours_with_data"].to_list() == [23, 23, 2]
        assert daily["data_completeness"].to_list() == ["partial", "complete", "partial"]
