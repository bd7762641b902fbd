"""A warehouse several machines share (pipelines/warehouse/shared.py): a machine that pulled the published build
from the catalog answers every view as the machine that built it does, with nothing of the builder's folder.

Postgres is started by the test (Debian's package); outside CI the test skips when it is not installed, under
CI=true it fails, since `.ci/run` installs it.
"""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines.config import Settings
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.connection import connect
from tests.loopback_servers import postgres, postgres_program
from tests.scenario import trip, write_system_information, write_trips, write_vehicles
from tests.test_warehouse_location import counts

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ZONE = "1"
DAY = datetime(2026, 4, 1, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def _postgres_or_skip() -> None:
    if postgres_program("initdb") and postgres_program("pg_ctl"):
        return
    message = "the shared catalog's test needs Postgres (Debian: apt-get install postgresql)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must run it; .ci/run installs it)")
    pytest.skip(message)


def test_a_machine_that_pulled_the_build_answers_every_view(tmp_path: Path) -> None:
    """Each machine has a folder of its own beside the one lake (`../lake` from both). The lake has trips (one
    hour of them written by an older version, without a column: its view pads the column), snapshots, and no file
    at all of most GBFS datasets, the quarantine or the superseded records: their views must answer, empty, on
    the machine that pulled the build as on the one that built it."""
    _postgres_or_skip()
    lake = tmp_path / "lake"
    write_system_information(lake, ZONE, DAY)
    write_vehicles(lake, ZONE, DAY, ["scooter-a", "scooter-b"])
    first = DAY + 10 * H
    for n, hour in enumerate((first, first + H)):
        write_trips(lake, ZONE, hour, [trip(f"trip-{n}", "scooter-a", hour + 5 * M, hour + 15 * M)])
    (older,) = (lake / "mds_trips").glob("zone_id=1/date=2026-04-01/hour=10/*.parquet")
    pl.read_parquet(older, hive_partitioning=False).drop("distance_m").write_parquet(older)

    with postgres() as url:
        settings = Settings.from_env().model_copy(update={"warehouse_catalog": url})
        builder = Warehouse(tmp_path / "builder" / "warehouse.duckdb", lake, settings=settings)
        builder.build()
        builder.build(window=(first + H, first + 2 * H))  # a window build published after the full one
        with connect(builder.path) as con:
            built = counts(con)
            trips = con.execute("select trip_id, distance_m is null from trips order by end_time").fetchall()

        reader = Warehouse(tmp_path / "reader" / "warehouse.duckdb", lake, settings=settings)
        with reader.connect(read_only=True) as con:
            pulled = counts(con)
            assert con.execute("select trip_id, distance_m is null from trips order by end_time").fetchall() == trips

    assert pulled == built
    assert pulled["lake.mds_trips"] == 2
    assert [padded for _, padded in trips] == [True, False]  # the older file's trip has no distance
    empty = {"lake.gbfs_vehicle_status", "lake.gbfs_geofencing_zones", "lake.quarantine", "lake.superseded_mds_trips"}
    assert {name: pulled[name] for name in empty} == dict.fromkeys(empty, 0)
    # Nothing but the build and what says which build it is: no file the views would need from the builder.
    assert sorted(p.name for p in reader.path.parent.iterdir()) == [
        "warehouse.duckdb",
        "warehouse.duckdb.build",
        "warehouse.duckdb.lock",
    ]
