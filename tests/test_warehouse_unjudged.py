"""Unknown is not a violation: a rule whose zone areas, limit, parking mode or local time is not known is not judged,
the gap is counted (compliance_unjudged, data_quality_hourly), and a zone's time zone says where it came from."""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import shapely
from polars.testing import assert_frame_equal

from fleetlake_provider.truth import truth_frames
from pipelines.config import Settings, parse_zone_timezones
from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lake.store import QUARANTINE, RAW, SUPERSEDED
from pipelines.reports.city import UnknownTimezone
from pipelines.reports.export import export_report
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.timezones import zone_timezones
from tests.conftest import BuiltWarehouse
from tests.scenario import (
    area,
    event,
    query,
    ride,
    tables,
    write_hours,
    write_rides,
    write_system_information,
    write_vehicles,
    write_zone_areas,
    write_zone_info,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, winter time: Stockholm is UTC+1
OPS = area("ops-1", "operations", (59.30, 18.00), (59.36, 18.12))
NO_PARKING = area("np-1", "no-parking", (59.330, 18.070), (59.332, 18.074))
IN_NO_PARKING = (59.331, 18.072)
OUTSIDE = (59.40, 18.30)


def at(hours: float, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


@pytest.fixture(autouse=True)
def plain_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLEETLAKE_POLICY_DIR", "FLEETLAKE_IDLE_LIMIT_HOURS", "FLEETLAKE_ZONE_TIMEZONES"):
        monkeypatch.delenv(name, raising=False)


def four_trips(lake: Path) -> None:
    """Zone 1: three trips ending 10:00-11:00 UTC (one outside the operations area, one in a no-parking area, one
    at 30 km/h over a 20 km/h limit) and one ending 11:00-12:00; GBFS time zone, zone_info, no zone areas."""
    rides = [
        ride("trip-out", "d1", at(10), at(10, 10), end_at=OUTSIDE),
        ride("trip-np", "d2", at(10), at(10, 10), end_at=IN_NO_PARKING),
        ride("trip-fast", "d3", at(10), at(10, 6), distance_m=3_000),
        ride("trip-late", "d4", at(11), at(11, 10)),
    ]
    write_rides(lake, "1", rides)
    write_system_information(lake, "1", at(12))
    write_zone_info(lake, "1", at(12), max_speed=20)
    write_vehicles(lake, "1", at(12), ["d1", "d2", "d3", "d4"])


@pytest.fixture(scope="module")
def four_trips_built(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """`four_trips` built in full, once for the module: a test that changes the lake changes a copy of both."""
    root = tmp_path_factory.mktemp("four-trips")
    four_trips(root / "lake")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("FLEETLAKE_POLICY_DIR", "FLEETLAKE_IDLE_LIMIT_HOURS", "FLEETLAKE_ZONE_TIMEZONES"):
            monkeypatch.delenv(name, raising=False)
        warehouse = Warehouse(root / "w.duckdb", root / "lake")
        warehouse.build()
    return warehouse


def copy_of(built: Warehouse, root: Path) -> Warehouse:
    """The built warehouse and its lake, copied side by side into `root` (as they sit side by side in theirs)."""
    shutil.copytree(built.lake_dir, root / "lake")
    shutil.copyfile(built.path, root / "w.duckdb")
    return Warehouse(root / "w.duckdb", root / "lake")


def test_no_zone_areas_is_not_a_violation_and_is_counted(four_trips_built: Warehouse) -> None:
    warehouse = four_trips_built

    # Before: all four trips were "ended outside the operations area". Now only speeding, whose limit is known.
    violations = query(warehouse, "select rule, count(*) as n from compliance_violations group by rule")
    assert dict(violations.iter_rows()) == {"speeding": 1}
    trips = query(warehouse, "select end_in_operations, end_area_type, areas_captured_at from trips")
    assert trips.null_count().row(0) == (4, 4, 4)

    unjudged = query(warehouse, "select rule, reason, count(*) as n from compliance_unjudged group by all")
    assert {(r, why): n for r, why, n in unjudged.iter_rows()} == {
        ("parking_in_forbidden_area", "no_zone_areas"): 4,
        ("parking_outside_operations", "no_zone_areas"): 4,
        ("start_not_allowed", "no_geofencing"): 4,
    }
    daily = query(
        warehouse,
        "select rule, violation_count, trip_count, not_judged_count from compliance_daily "
        "where rule = 'parking_outside_operations'",
    )
    assert daily.rows() == [("parking_outside_operations", 0, 4, 4)]

    quality = query(
        warehouse,
        "select hour, trips_not_judged, trips_without_zone_areas, trips_without_geofencing, "
        "trips_without_speed_limit, timezone_source from data_quality_hourly where trips_not_judged > 0 "
        "order by hour",
    )
    assert quality.rows() == [
        (at(10), 3, 3, 3, 0, "gbfs_system_information"),
        (at(11), 1, 1, 1, 0, "gbfs_system_information"),
    ]


def test_zone_areas_arriving_later_make_the_trips_judged_on_the_next_build(
    tmp_path: Path, four_trips_built: Warehouse
) -> None:
    warehouse = copy_of(four_trips_built, tmp_path)
    lake = tmp_path / "lake"
    assert query(warehouse, "select count(*) from compliance_unjudged where reason = 'no_zone_areas'").item() == 8

    # The first capture of the areas arrives after the trips; the hourly build of the next hour judges them all.
    write_zone_areas(lake, "1", at(12, 30), [OPS, NO_PARKING])
    write_hours(lake, "1", [], [event("d1/after", "d1", at(12, 40), "trip_start", "on_trip")])
    warehouse.build(window=(at(12), at(13)))

    violations = query(warehouse, "select rule, trip_id from compliance_violations order by rule")
    assert violations["rule"].to_list() == ["parking_in_forbidden_area", "parking_outside_operations", "speeding"]
    assert query(warehouse, "select count(*) from compliance_unjudged where reason = 'no_zone_areas'").item() == 0
    assert query(warehouse, "select count(*) from trips where areas_captured_at = $at", {"at": at(12, 30)}).item() == 4
    quality = query(warehouse, "select sum(trips_without_zone_areas), sum(trips_not_judged) from data_quality_hourly")
    assert quality.row(0) == (0, 4)  # still no GBFS geofencing: start_not_allowed stays unjudged
    full = Warehouse(tmp_path / "full.duckdb", lake)
    full.build()
    orders = {
        "trips": "trip_id",
        "compliance_violations": "violation_key",
        "compliance_unjudged": "unjudged_key",
        "data_quality_hourly": "zone_id, hour",
    }
    expected = tables(full, orders)
    for relation, frame in tables(warehouse, orders).items():
        assert_frame_equal(frame, expected[relation])


@pytest.mark.slow
def test_hour_by_hour_builds_judge_and_count_as_a_full_build(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    four_trips(lake)
    write_zone_areas(lake, "2", at(9), [OPS])  # another zone's areas: zone 1 still has none
    hourly = Warehouse(tmp_path / "hourly.duckdb", lake)
    for hour in (at(9), at(10), at(11)):
        hourly.build(window=(hour, hour + timedelta(hours=1)))
    full = Warehouse(tmp_path / "full.duckdb", lake)
    full.build()
    orders = {
        "trips": "trip_id",
        "core.int_trip_speed_limits": "trip_id",
        "compliance_violations": "violation_key",
        "compliance_unjudged": "unjudged_key",
        "data_quality_hourly": "zone_id, hour",
    }
    expected = tables(full, orders)
    for relation, frame in tables(hourly, orders).items():
        assert_frame_equal(frame, expected[relation])
    assert query(hourly, "select count(*) from compliance_unjudged").item() == 12


def test_areas_without_an_operations_area_do_not_judge_that_rule(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    four_trips(lake)
    write_zone_areas(lake, "1", at(12), [NO_PARKING])
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    violations = query(warehouse, "select rule from compliance_violations order by rule")
    assert violations["rule"].to_list() == ["parking_in_forbidden_area", "speeding"]
    unjudged = query(
        warehouse,
        "select reason, count(*) from compliance_unjudged where rule = 'parking_outside_operations' group by all",
    )
    assert unjudged.rows() == [("no_operations_area", 4)]


def test_no_speed_limit_and_no_parking_mode_are_not_judged(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    fast = ride("trip-fast", "d3", at(10), at(10, 6), distance_m=3_000)
    write_hours(lake, "1", [fast[0]], fast[1])
    write_system_information(lake, "1", at(12))
    write_zone_areas(lake, "1", at(12), [OPS])
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    assert query(warehouse, "select count(*) from compliance_violations").item() == 0
    unjudged = query(warehouse, "select rule, reason from compliance_unjudged order by rule")
    assert unjudged.rows() == [
        ("parking_outside_spot", "no_parking_mode"),
        ("speeding", "no_speed_limit"),
        ("start_not_allowed", "no_geofencing"),
    ]
    quality = query(
        warehouse,
        "select trips_not_judged, trips_without_speed_limit, trips_without_parking_mode from data_quality_hourly "
        "where hour = $hour",
        {"hour": at(10)},
    )
    assert quality.row(0) == (1, 1, 1)


@pytest.mark.parametrize("configured", [False, True])
def test_a_speed_rule_for_some_days_needs_the_local_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    """A Monday-only 10 km/h policy rule; a 30 km/h trip on Monday 2 March in a zone whose time zone is unknown
    (no GBFS, no areas) is not judged, not judged by the zone API's 20 km/h instead; configured, it is judged."""
    folder = tmp_path / "policies"
    folder.mkdir()
    speed_rule: dict[str, object] = {
        "name": "Mondays slow",
        "rule_id": "9b2f3c6e-0d1a-4a51-8f0e-3b3f1a2c4d5e",
        "rule_type": "speed",
        "rule_units": "kph",
        "geographies": [],
        "states": {"on_trip": []},
        "maximum": 10,
        "days": ["mon"],
    }
    body: dict[str, object] = {
        "name": "City",
        "policy_id": "3f0c1f7c-0a8e-4a8e-9f27-6b7c1a0b7c33",
        "rules": [speed_rule],
    }
    body |= {"start_date": 1767225600000, "published_date": 1767224400000}
    (folder / "policies.json").write_text(json.dumps({"policies": [body]}))
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(folder))
    if configured:
        monkeypatch.setenv("FLEETLAKE_ZONE_TIMEZONES", "1:Europe/Stockholm")
    lake = tmp_path / "lake"
    fast = ride("trip-fast", "d3", at(10), at(10, 6), distance_m=3_000)
    write_hours(lake, "1", [fast[0]], fast[1])
    write_zone_info(lake, "1", at(12), max_speed=20)
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    speeding = query(warehouse, "select limit_value from compliance_violations where rule = 'speeding'")
    unjudged = query(warehouse, "select reason from compliance_unjudged where rule = 'speeding'")
    limits = query(warehouse, "select limit_kph, limit_source, local_time_unknown from core.int_trip_speed_limits")
    if configured:
        assert speeding["limit_value"].to_list() == [10.0]
        assert unjudged.is_empty()
        assert limits.rows() == [(10.0, "policy", False)]
    else:
        assert speeding.is_empty()
        assert unjudged["reason"].to_list() == ["no_local_time"]
        assert limits.rows() == [(None, None, True)]
        quality = query(
            warehouse, "select trips_without_speed_limit from data_quality_hourly where hour = $h", {"h": at(10)}
        )
        assert quality.item() == 1


@pytest.mark.parametrize("configured", [False, True])
def test_a_time_rule_for_some_days_needs_the_local_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    """A Monday-only rule: available at most 1 hour. A vehicle available 5 hours from Monday 2 March 00:00 UTC, in a
    zone whose time zone is unknown, is not judged (not by the 72-hour default instead); configured, it is."""
    folder = tmp_path / "policies"
    folder.mkdir()
    time_rule: dict[str, object] = {
        "name": "Mondays short",
        "rule_id": "5c7e1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d",
        "rule_type": "time",
        "rule_units": "hours",
        "geographies": [],
        "states": {"available": []},
        "maximum": 1,
        "days": ["mon"],
    }
    body: dict[str, object] = {
        "name": "City",
        "policy_id": "3f0c1f7c-0a8e-4a8e-9f27-6b7c1a0b7c33",
        "rules": [time_rule],
    }
    body |= {"start_date": 1767225600000, "published_date": 1767224400000}
    (folder / "policies.json").write_text(json.dumps({"policies": [body]}))
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(folder))
    if configured:
        monkeypatch.setenv("FLEETLAKE_ZONE_TIMEZONES", "1:Europe/Stockholm")
    lake = tmp_path / "lake"
    events = [
        event("v/on", "v", at(0), "service_start", "available"),
        event("v/start", "v", at(5), "trip_start", "on_trip"),
    ]
    write_hours(lake, "1", [], events)
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    idle = query(warehouse, "select limit_value from compliance_violations where rule = 'idle_too_long'")
    unjudged = query(warehouse, "select rule, reason, evidence_at from compliance_unjudged")
    quality = query(warehouse, "select sum(vehicle_states_not_judged)::bigint from data_quality_hourly")
    if configured:
        assert idle["limit_value"].to_list() == [3600.0]
        assert unjudged.is_empty()
        assert quality.item() == 0
    else:
        assert idle.is_empty()
        assert unjudged.rows() == [("idle_too_long", "no_local_time", at(0))]
        assert quality.item() == 1


# -- time zones ---------------------------------------------------------------------------------------------------


def one_trip_zone(lake: Path, zone: str, *, gbfs: str | None, areas: bool) -> None:
    """A trip 10:00-10:10 UTC in `zone`, with GBFS system_information naming `gbfs` and Stockholm's areas."""
    trip, events = ride(f"trip-{zone}", f"d-{zone}", at(10), at(10, 10))
    write_hours(lake, zone, [trip], events)
    if gbfs is not None:
        write_system_information(lake, zone, at(12), gbfs)
    if areas:
        write_zone_areas(lake, zone, at(12), [OPS])


def test_a_zone_time_zone_comes_from_configuration_gbfs_or_geometry_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    one_trip_zone(lake, "1", gbfs=None, areas=True)  # geometry only: Stockholm, UTC+1 in March
    one_trip_zone(lake, "2", gbfs="Europe/London", areas=True)  # GBFS wins over geometry: UTC+0
    one_trip_zone(lake, "3", gbfs="Europe/London", areas=True)  # configuration wins over both: UTC+2
    one_trip_zone(lake, "4", gbfs=None, areas=False)  # nothing: not known
    one_trip_zone(lake, "5", gbfs="Mars/Olympus_Mons", areas=True)  # not a time zone: geometry
    monkeypatch.setenv("FLEETLAKE_ZONE_TIMEZONES", "3:Europe/Helsinki")
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()

    timezones = query(warehouse, "select * from core.int_zone_timezones order by zone_id")
    assert timezones.rows() == [
        ("1", "Europe/Stockholm", "zone_geometry"),
        ("2", "Europe/London", "gbfs_system_information"),
        ("3", "Europe/Helsinki", "configuration"),
        ("4", None, None),
        ("5", "Europe/Stockholm", "zone_geometry"),
    ]
    trips = query(warehouse, "select zone_id, timezone, start_time_local, end_time_local from trips order by zone_id")
    naive = T0.replace(tzinfo=None)
    assert trips.rows() == [
        ("1", "Europe/Stockholm", naive + timedelta(hours=11), naive + timedelta(hours=11, minutes=10)),
        ("2", "Europe/London", naive + timedelta(hours=10), naive + timedelta(hours=10, minutes=10)),
        ("3", "Europe/Helsinki", naive + timedelta(hours=12), naive + timedelta(hours=12, minutes=10)),
        ("4", None, None, None),  # not UTC
        ("5", "Europe/Stockholm", naive + timedelta(hours=11), naive + timedelta(hours=11, minutes=10)),
    ]
    occupancy = query(
        warehouse,
        "select zone_id, min(hour_local) from occupancy_hourly where hour = $hour group by zone_id order by zone_id",
        {"hour": at(10)},
    )
    assert occupancy.rows() == [
        ("1", naive + timedelta(hours=11)),
        ("2", naive + timedelta(hours=10)),
        ("3", naive + timedelta(hours=12)),
        ("4", None),
        ("5", naive + timedelta(hours=11)),
    ]
    quality = query(
        warehouse, "select zone_id, any_value(timezone_source) from data_quality_hourly group by all order by zone_id"
    )
    assert quality.rows() == [
        ("1", "zone_geometry"),
        ("2", "gbfs_system_information"),
        ("3", "configuration"),
        ("4", None),
        ("5", "zone_geometry"),
    ]
    daily = query(
        warehouse,
        "select zone_id, local_date, trip_count from compliance_daily where rule = 'speeding' order by zone_id",
    )
    assert daily.rows()[3] == ("4", None, 1)  # the day is not known: one row, not a UTC day


def test_a_time_zone_arriving_later_relocalises_every_hour_on_the_next_build(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    one_trip_zone(lake, "1", gbfs=None, areas=False)
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    assert query(warehouse, "select start_time_local from trips").item() is None
    write_system_information(lake, "1", at(11, 30), "Europe/Stockholm")
    write_hours(lake, "1", [], [event("d/after", "d-1", at(11, 40), "trip_start", "on_trip")])
    warehouse.build(window=(at(11), at(12)))
    assert query(warehouse, "select start_time_local from trips").item() == T0.replace(tzinfo=None) + timedelta(
        hours=11
    )
    full = Warehouse(tmp_path / "full.duckdb", lake)
    full.build()
    orders = {"trips": "trip_id", "occupancy_hourly": "zone_id, area_type, hour, vehicle_state"}
    expected = tables(full, orders)
    for relation, frame in tables(warehouse, orders).items():
        assert_frame_equal(frame, expected[relation])


def test_the_configured_time_zones_are_read_strictly() -> None:
    assert parse_zone_timezones(" 1:Europe/Stockholm , 145:Europe/Berlin,") == {
        "1": "Europe/Stockholm",
        "145": "Europe/Berlin",
    }
    assert parse_zone_timezones("") == {}
    with pytest.raises(ValueError, match="'1=Europe/Stockholm' is not zone:Area/City"):
        parse_zone_timezones("1=Europe/Stockholm")
    with pytest.raises(ValueError, match="zone 9: 'Europe/Atlantis' is not an IANA time zone"):
        parse_zone_timezones("9:Europe/Atlantis")


def test_the_geometry_lookup_finds_each_city_offline() -> None:
    square = {
        "oslo": (59.91, 10.75),
        "berlin": (52.52, 13.40),
        "marseille": (43.30, 5.37),
        "new_york": (40.71, -74.0),
    }
    geometries = {
        name: [shapely.to_wkb(shapely.box(lng - 0.01, lat - 0.01, lng + 0.01, lat + 0.01))]
        for name, (lat, lng) in square.items()
    }
    found = zone_timezones(list(square), {}, {}, geometries)
    assert dict(found.select("zone_id", "timezone").iter_rows()) == {
        "oslo": "Europe/Oslo",
        "berlin": "Europe/Berlin",
        "marseille": "Europe/Paris",
        "new_york": "America/New_York",
    }
    assert set(found["timezone_source"]) == {"zone_geometry"}


# -- the report ---------------------------------------------------------------------------------------------------


def test_the_report_says_which_rules_could_not_be_judged_and_where_its_time_zone_came_from(
    tmp_path: Path, four_trips_built: Warehouse
) -> None:
    files = export_report(four_trips_built.path, "1", T0.date(), T0.date(), tmp_path / "reports", k=1)

    not_judged = pl.read_parquet(files.parquet["rules_not_judged"])
    assert not_judged.select("rule", "reason", "not_judged").rows() == [
        ("parking_in_forbidden_area", "no_zone_areas", 4),
        ("parking_outside_operations", "no_zone_areas", 4),
        ("start_not_allowed", "no_geofencing", 4),
    ]
    by_rule = pl.read_parquet(files.parquet["compliance_by_rule"])
    outside = by_rule.filter(pl.col("rule") == "parking_outside_operations").row(0, named=True)
    assert (outside["violation_count"], outside["trips_ended"], outside["not_judged"]) == (0, 4, 4)
    figures = pl.read_parquet(files.parquet["key_figures"])
    rates = dict(
        figures.filter(pl.col("figure").str.starts_with("violations_per_100_trips."))
        .select("figure", "value")
        .iter_rows()
    )
    assert rates["violations_per_100_trips.parking_outside_operations"] is None  # not 0: nothing was judged
    assert rates["violations_per_100_trips.speeding"] == 25.0  # 1 of the 4 trips, whose limit is known
    page = files.html.read_text()
    assert "Some rules could not be judged." in page
    assert "no zone areas (zone API) known for the zone" in page
    assert "time zone from GBFS system_information" in page
    about = pl.read_csv(files.csv["rules_not_judged"])
    assert about.height == 3


def test_no_report_in_utc_passed_off_as_local_time(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    one_trip_zone(lake, "4", gbfs=None, areas=False)
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    with pytest.raises(UnknownTimezone, match="set FLEETLAKE_ZONE_TIMEZONES=4:<Area/City>"):
        export_report(warehouse.path, "4", T0.date(), T0.date(), tmp_path / "reports")
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


# -- the simulated city, no snapshot taken --------------------------------------------------------------------------


def hourly_datasets_of(lake: Path, into: Path) -> None:
    """The hourly datasets of `lake` (records, quarantine, superseded records, raw responses) copied into `into`:
    the lake an ingest of the same hours writes without a single snapshot."""
    for name in HOURLY_DATASETS:
        for folder in (lake / name, lake / QUARANTINE / f"dataset={name}", lake / SUPERSEDED / name, lake / RAW / name):
            if folder.exists():
                shutil.copytree(folder, into / folder.relative_to(lake))


@pytest.fixture(scope="module")
def city_without_snapshots(built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The shared city's hours, without a single zone, GBFS or vehicles snapshot; zone 1's time zone configured,
    zone 145's unknown."""
    root = tmp_path_factory.mktemp("no-snapshots")
    hourly_datasets_of(built_warehouse.lake, root / "lake")
    assert not any((root / "lake").glob("gbfs_*")) and (root / "lake" / "mds_trips").is_dir()
    configured = Settings(zone_timezones={"1": "Europe/Stockholm"})
    warehouse = Warehouse(root / "warehouse.duckdb", root / "lake", settings=configured)
    warehouse.build()
    return warehouse


@pytest.mark.integration
def test_without_snapshots_the_marts_still_equal_the_truth_and_nothing_unknown_is_a_violation(
    built_warehouse: BuiltWarehouse, city_without_snapshots: Warehouse
) -> None:
    provider = built_warehouse.provider
    warehouse = city_without_snapshots
    truth = truth_frames(provider)
    true_trips = truth["trips"].sort("trip_id")
    trips = query(warehouse, "select * from trips order by trip_id")
    assert trips["trip_id"].cast(pl.String).to_list() == true_trips["trip_id"].cast(pl.String).to_list()
    assert (trips["duration_s"] - true_trips["duration_s"].cast(pl.Float64)).abs().max() < 1.0  # type: ignore[operator]
    # Zone 1's local times are Stockholm's (configured); zone 145's are not known: null, not UTC.
    stockholm = trips.filter(pl.col("zone_id") == "1")
    expected = true_trips.filter(pl.col("zone_id") == "1")["start_time"].dt.convert_time_zone("Europe/Stockholm")
    assert (
        stockholm["start_time_local"].to_list()
        == expected.dt.replace_time_zone(None)
        .dt.cast_time_unit(
            stockholm["start_time_local"].dtype.time_unit  # type: ignore[attr-defined]
        )
        .to_list()
    )
    berlin = trips.filter(pl.col("zone_id") == "145")
    assert berlin.height > 0 and berlin["start_time_local"].null_count() == berlin.height
    assert berlin["timezone"].null_count() == berlin.height

    intervals = query(warehouse, "select device_id, started_at, vehicle_state from vehicle_state_intervals")
    true_states = truth["vehicle_states"]
    joined = true_states.join(
        intervals.with_columns(pl.col("device_id").cast(pl.String), pl.col("started_at").dt.cast_time_unit("ms")),
        left_on=[pl.col("device_id").cast(pl.String), "start_time"],
        right_on=["device_id", "started_at"],
    )
    assert intervals.height == true_states.height == joined.height
    assert (joined["vehicle_state"] == joined["vehicle_state_right"]).all()

    # No rule that needs a snapshot reports a violation; each is counted as not judged, trip by trip.
    judged = query(warehouse, "select distinct rule from compliance_violations")
    assert set(judged["rule"]) <= {"idle_too_long", "time_in_state_exceeded"}
    unjudged = query(warehouse, "select zone_id, rule, reason, count(*) as n from compliance_unjudged group by all")
    per_zone = dict(true_trips.group_by("zone_id").len().iter_rows())
    expected_rows = {
        (zone, rule, reason): n
        for zone, n in per_zone.items()
        for rule, reason in (
            ("parking_in_forbidden_area", "no_zone_areas"),
            ("parking_outside_operations", "no_zone_areas"),
            ("parking_outside_spot", "no_parking_mode"),
            ("start_not_allowed", "no_geofencing"),
            ("speeding", "no_speed_limit"),
        )
    }
    assert {(z, r, why): n for z, r, why, n in unjudged.iter_rows()} == expected_rows
    quality = query(
        warehouse,
        "select zone_id, sum(trips_not_judged)::bigint, sum(trips_without_zone_areas)::bigint, "
        "any_value(timezone_source) from data_quality_hourly group by zone_id order by zone_id",
    )
    assert quality.rows() == [
        ("1", per_zone["1"], per_zone["1"], "configuration"),
        ("145", per_zone["145"], per_zone["145"], None),
    ]
