"""A window build keeps the model views whose SQL is unchanged, comments and all, and recreates the others."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.build import Catalog, Warehouse
from pipelines.warehouse.models import SQL_DIR, discover
from pipelines.warehouse.views import unchanged_views
from tests.scenario import ride, write_events, write_trips

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ZONE = "1"
H = timedelta(hours=1)


def views(path: Path) -> dict[str, tuple[str, str | None]]:
    """Each view of the models' schemas: its definition and its comment."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select schema_name || '.' || view_name, sql, comment from duckdb_views() "
            "where schema_name in ('main', 'staging', 'core') and not internal"
        ).fetchall()
    return {name: (sql, comment) for name, sql, comment in rows}


def kept(path: Path, sql_dir: Path) -> set[str]:
    """The view models a build would keep as they are in the warehouse at `path`."""
    with duckdb.connect(str(path), read_only=True) as con:
        return unchanged_views(con, discover(sql_dir).values(), Catalog.read(con).views)


def column_comments(path: Path, relation: str) -> dict[str, str | None]:
    schema, name = relation.split(".")
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(
            con.execute(
                "select column_name, comment from duckdb_columns() where schema_name = $schema and table_name = $name",
                {"schema": schema, "name": name},
            ).fetchall()
        )


def test_a_window_build_keeps_unchanged_views_and_recreates_a_changed_one(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    start = datetime(2026, 4, 2, 6, tzinfo=UTC)
    trip, events = ride("ride-1", "a", start + 5 * timedelta(minutes=1), start + 20 * timedelta(minutes=1))
    write_trips(lake, ZONE, start, [trip])
    write_events(lake, ZONE, start, events)
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lake, sql_dir=sql_dir)
    warehouse.build()
    before = views(warehouse.path)
    view_models = {m.name: m.relation for m in discover(sql_dir).values() if m.materialized == "view"}
    assert set(before) == set(view_models.values())
    assert all(comment for _, comment in before.values())  # every view carries its model's summary
    # Every view is its model's SQL as DuckDB renders it, so the next build keeps them all.
    assert kept(warehouse.path, sql_dir) == set(view_models)

    # A view whose SQL changed is recreated, with the new definition and its new column described; the others are
    # kept as they were, definitions and comments.
    od_flows = sql_dir / "marts" / "od_flows.sql"
    text = od_flows.read_text()
    assert text.count("\n    from trips") == 1
    od_flows.write_text(
        text.replace("\n    from trips", "\n        1 as counted,  -- One, for a test.\n    from trips")
    )
    assert kept(warehouse.path, sql_dir) == set(view_models) - {"od_flows"}
    runs = warehouse.build(window=(start, start + H))
    assert {run.relation for run in runs if run.mode == "view"} == set(view_models.values())
    after = views(warehouse.path)
    assert "counted" in after["main.od_flows"][0] and after["main.od_flows"][1] == before["main.od_flows"][1]
    assert column_comments(warehouse.path, "main.od_flows")["counted"] == "One, for a test."
    assert {name: view for name, view in after.items() if name != "main.od_flows"} == {
        name: view for name, view in before.items() if name != "main.od_flows"
    }
