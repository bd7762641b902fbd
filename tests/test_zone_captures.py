"""A build reads the zones' snapshot datasets at each zone's newest or oldest capture (zone_captures.py): its
answers are those the whole history gives, read through views over every file as the models read the lake."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.lake.listing import LakeListing
from pipelines.warehouse.models import SQL_DIR, discover
from pipelines.warehouse.timezones import latest_area_geometries
from pipelines.warehouse.zone_captures import read_zone_captures
from tests.scenario import area, write_system_information, write_zone_areas, write_zone_info

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
OPS = area("ops", "operations", (59.30, 18.00), (59.36, 18.12))
OPS_LATER = area("ops-later", "operations", (59.31, 18.01), (59.35, 18.11))
NO_PARKING = area("np", "no-parking", (59.330, 18.070), (59.332, 18.074))
# The whole history, through views over every file (as the lake and staging views read it).
WHOLE = {
    "zones": "select zone_id from lake.gbfs_system_information union select zone_id from lake.zone_areas "
    "union select zone_id from lake.zone_info",
    "gbfs": "select zone_id, timezone from staging.stg_gbfs__system_information where timezone is not null",
    "first": "select zone_id, min(captured_at) from lake.zone_areas group by zone_id",
    "latest": """
        with latest as (select zone_id, max(valid_from) as valid_from from staging.stg_zone__areas group by zone_id),
        areas as (
            select areas.zone_id, areas.area_type, areas.geometry from staging.stg_zone__areas as areas
            semi join latest on areas.zone_id = latest.zone_id and areas.valid_from = latest.valid_from
            where areas.geometry is not null
        )
        select zone_id, geometry from areas
        qualify area_type = 'operations'
            or count(*) filter (where area_type = 'operations') over (partition by zone_id) = 0
    """,
}


def whole_history(lake: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema lake; create schema staging")
    for name in ("gbfs_system_information", "zone_areas", "zone_info"):
        files = f"{(lake / name).resolve()}/zone_id=*/date=*/hour=*/*.parquet"
        con.execute(
            f"create view lake.{name} as select * from read_parquet('{files}', hive_partitioning = true, "
            "union_by_name = true, hive_types = {'zone_id': 'VARCHAR', 'date': 'DATE', 'hour': 'INTEGER'})"
        )
    models = discover(SQL_DIR)
    for name in ("stg_gbfs__system_information", "stg_zone__areas"):
        con.execute(f"create view staging.{name} as {models[name].sql}")
    return con


def test_each_zones_edge_captures_answer_as_its_whole_history(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    # Zone 1: its newest GBFS capture names no time zone DuckDB knows (the one before holds); its first areas
    # capture and its newest two (the same hour) are empty (the capture between them holds the latest areas).
    write_system_information(lake, "1", T0, "Europe/Stockholm")
    write_system_information(lake, "1", T0 + D, "Europe/Berlin")
    write_system_information(lake, "1", T0 + 2 * D, "Mars/Olympus_Mons")
    write_zone_areas(lake, "1", T0, [])
    write_zone_areas(lake, "1", T0 + H, [OPS])
    write_zone_areas(lake, "1", T0 + D, [OPS_LATER, NO_PARKING])
    write_zone_areas(lake, "1", T0 + 2 * D, [])
    write_zone_areas(lake, "1", T0 + 2 * D + 10 * timedelta(minutes=1), [])
    # Zone 2: zone info only. Zone 3: two GBFS captures in one hour; areas with no operations area.
    write_zone_info(lake, "2", T0)
    write_system_information(lake, "3", T0, "Europe/Oslo")
    write_system_information(lake, "3", T0 + 30 * timedelta(minutes=1), "Europe/Helsinki")
    write_zone_areas(lake, "3", T0, [OPS])
    write_zone_areas(lake, "3", T0 + 3 * D, [NO_PARKING])
    # Zone 4: empty areas captures only, which leave no row.
    write_zone_areas(lake, "4", T0, [])
    write_zone_areas(lake, "4", T0 + D, [])

    con = whole_history(lake)
    captures = read_zone_captures(con, LakeListing(), lake)

    assert captures.zones == sorted(z for (z,) in con.execute(WHOLE["zones"]).fetchall()) == ["1", "2", "3"]
    assert captures.gbfs_timezones == dict(con.execute(WHOLE["gbfs"]).fetchall())
    assert captures.gbfs_timezones == {"1": "Europe/Berlin", "3": "Europe/Helsinki"}
    assert captures.first_areas == dict(con.execute(WHOLE["first"]).fetchall())
    assert captures.first_areas == {"1": T0 + H, "3": T0}
    latest = latest_area_geometries(captures.latest_areas).sort("zone_id", "geometry")
    truth = pl.DataFrame(con.execute(WHOLE["latest"]).fetchall(), schema=["zone_id", "geometry"], orient="row")
    assert latest.rows() == truth.sort("zone_id", "geometry").rows()
    assert latest["zone_id"].to_list() == ["1", "3"]  # zone 1's operations area only; zone 3's every area
