"""The checks that guard the models: they pass on the shared city and catch a broken grain (in staging, core or
the marts) or inconsistent counts."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cli.app import app
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.checks import MODEL_CHECKS, grain_checks, run_checks
from pipelines.warehouse.models import SQL_DIR, discover
from pipelines.warehouse.window import FULL_WINDOW
from tests.conftest import BuiltWarehouse
from tests.scenario import ride, trip, write_events, write_system_information, write_trips, write_vehicles

pytestmark = pytest.mark.integration


@pytest.fixture
def copy(built_warehouse: BuiltWarehouse, tmp_path: Path) -> Warehouse:
    """A copy of the shared warehouse, free to break."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(built_warehouse.warehouse.path, path)
    return Warehouse(path, built_warehouse.lake)


def failures(con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime] = FULL_WINDOW) -> dict[str, int]:
    return {f"{o.check.model}.{o.check.name}": o.failures for o in run_checks(con, window) if not o.passed}


def test_every_check_passes_on_the_shared_city(built_warehouse: BuiltWarehouse) -> None:
    with built_warehouse.warehouse.connect(read_only=True) as con:
        outcomes = run_checks(con, FULL_WINDOW)
    assert [(o.check.model, o.check.name) for o in outcomes] == [(c.model, c.name) for c in MODEL_CHECKS]
    assert all(o.passed for o in outcomes), [(o.check.name, o.failures) for o in outcomes if not o.passed]


def trip_in_two_zones(lake: Path) -> datetime:
    """A lake whose hour (returned) carries one trip in both zones' trips feeds (zone 145's ingested last), its
    events in zone 1's only, and a trip that stays in zone 1."""
    first = datetime(2026, 4, 1, tzinfo=UTC)
    for zone in ("1", "145"):
        write_system_information(lake, zone, first)
    write_vehicles(lake, "1", first, ["scooter-a", "scooter-b"])
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    minute = timedelta(minutes=1)
    crossing, events = ride("crossing", "scooter-a", hour + 10 * minute, hour + 30 * minute)
    write_trips(lake, "1", hour, [crossing, trip("stays", "scooter-b", hour + 5 * minute, hour + 20 * minute)])
    write_trips(lake, "145", hour, [crossing])
    write_events(lake, "1", hour, events)
    write_events(lake, "145", hour, [])
    return hour


def test_every_models_declared_grain_is_checked() -> None:
    """Staging and core as well as the marts: each stored SQL model whose grain names columns has its uniqueness
    check, and so has each mart view; staging's and core's views are left to the models that read them."""
    checked = {(check.schema, check.model) for check in MODEL_CHECKS if check.name.startswith("unique_")}
    models = discover().values()
    declared = {(m.schema, m.name) for m in models if m.grain_columns}
    views = {(m.schema, m.name) for m in models if m.materialized == "view" and m.schema != "main"}
    assert checked == declared - views
    assert ("staging", "stg_zone__areas") in views and ("main", "compliance_daily") in checked
    assert {("staging", "stg_mds__trips"), ("core", "int_trip_speed_limits"), ("main", "trips")} <= checked


def test_a_staging_model_that_stores_a_trip_twice_fails_its_grain_check(tmp_path: Path) -> None:
    """stg_mds__trips as it was before it kept a trip two zones delivered once (deduplicated per zone and trip):
    the first build of the hour, full or window, stores the trip twice, and the generated check of its own grain
    says so in staging, where the doubling starts, over the whole history and over the hour's window alike."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    staging = sql_dir / "staging" / "stg_mds__trips.sql"
    per_zone = staging.read_text().replace("partition by trip_id order by", "partition by zone_id, trip_id order by")
    assert per_zone != staging.read_text()
    staging.write_text(per_zone)
    checks = grain_checks(discover(sql_dir))
    lake = tmp_path / "lake"
    hour = trip_in_two_zones(lake)
    window = (hour, hour + timedelta(hours=1))
    for name, build_window, checked in [("full", None, FULL_WINDOW), ("window", window, window)]:
        warehouse = Warehouse(tmp_path / f"{name}.duckdb", lake, sql_dir=sql_dir)
        warehouse.build(window=build_window)
        with warehouse.connect(read_only=True) as con:
            failed = {
                (o.check.schema, o.check.model, o.check.name): o.failures
                for o in run_checks(con, checked, checks=checks)
                if not o.passed
            }
        assert failed[("staging", "stg_mds__trips", "unique_trip_id")] == 1, name
        assert failed[("main", "trips", "unique_trip_id")] == 1, name


def test_checks_catch_a_repeated_key_and_counts_out_of_order(copy: Warehouse) -> None:
    with copy.connect() as con:
        trip_end = con.execute("select end_time from trips order by end_time limit 1").fetchall()[0][0]
        con.execute("insert into trips select * from trips order by end_time limit 1")
        ((updated,),) = con.execute(
            "update occupancy_hourly set min_vehicles = max_vehicles + 1 "
            "where hour = (select max(hour) from occupancy_hourly) and area_type = 'zone' and max_vehicles > 0"
        ).fetchall()
        assert updated > 0
        assert failures(con) == {"trips.unique_trip_id": 1, "occupancy_hourly.min_avg_max_in_order": updated}
        # A window holding the repeated trip sees it; an hour holding neither breach sees nothing.
        assert "trips.unique_trip_id" in failures(con, (trip_end, trip_end + timedelta(seconds=1)))
        quiet = datetime(1999, 1, 1, tzinfo=UTC)
        assert failures(con, (quiet, quiet + timedelta(hours=1))) == {}


def test_a_full_build_from_the_command_line_prints_the_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check runs and is named after a full build, whatever the city's size: a small lake shows it."""
    lake = tmp_path / "lake"
    trip_in_two_zones(lake)
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", str(lake))
    monkeypatch.setenv("FLEETLAKE_WAREHOUSE", str(tmp_path / "cli.duckdb"))
    result = CliRunner().invoke(app, ["build"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert all(check.name in result.output for check in MODEL_CHECKS)


@pytest.mark.slow
def test_a_window_build_from_the_command_line_fails_on_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window build runs through Dagster, where a failed asset check leaves the run a success: the command
    still names the check and exits 1. The check here is a core model's grain (an accumulating series the window
    build adds to and never rebuilds), held twice by a row copied in after the full build."""
    lake = tmp_path / "lake"
    hour = trip_in_two_zones(lake)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lake)
    warehouse.build()
    with warehouse.connect() as con:
        con.execute("insert into core.int_occupancy_series select * from core.int_occupancy_series limit 1")
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", str(lake))
    monkeypatch.setenv("FLEETLAKE_WAREHOUSE", str(warehouse.path))
    window = ["--start", hour.isoformat(), "--end", (hour + timedelta(hours=1)).isoformat()]
    result = CliRunner().invoke(app, ["build", *window], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "Failed checks" in result.output and "core.int_occupancy_series" in result.output, result.output
    assert "unique_grain" in result.output


def test_checks_catch_deployed_or_scopes_that_do_not_add_up(copy: Warehouse) -> None:
    with copy.connect() as con:
        ((updated,),) = con.execute(
            "update occupancy_hourly set state_seconds = state_seconds + 100 "
            "where hour = (select max(hour) from occupancy_hourly) and scope = 'outside' and vehicle_state = 'deployed'"
        ).fetchall()
        assert updated == 2  # one outside row per zone
        # Outside's deployed is no longer its parked plus on_trip, nor the zone's deployed its parts.
        assert failures(con) == {
            "occupancy_hourly.deployed_is_parked_plus_on_trip": 2,
            "occupancy_hourly.scopes_add_up": 2,
        }
