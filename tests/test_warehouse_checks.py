"""The checks that guard the marts: they pass on the shared city and catch a broken grain or inconsistent counts."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cli.app import app
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.checks import MODEL_CHECKS, run_checks
from pipelines.warehouse.window import FULL_WINDOW
from tests.conftest import BuiltWarehouse

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


@pytest.mark.slow
def test_a_full_build_from_the_command_line_prints_the_checks(
    built_warehouse: BuiltWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", str(built_warehouse.lake))
    monkeypatch.setenv("FLEETLAKE_WAREHOUSE", str(tmp_path / "cli.duckdb"))
    result = CliRunner().invoke(app, ["build"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert all(check.name in result.output for check in MODEL_CHECKS)


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
