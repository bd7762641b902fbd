"""A warehouse copied with its lake to another folder (a laptop, another server) still answers every view."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.connection import connect, view_location
from pipelines.warehouse.sqltext import sql_text
from tests.conftest import BuiltWarehouse

EVERY_VIEW = (
    "select schema_name, view_name, sql from duckdb_views() "
    "where database_name = current_database() and not internal order by all"
)


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of every view of the warehouse (each query reads what the view reads: the lake, for `lake.*`)."""
    views = con.execute(EVERY_VIEW).fetchall()
    return {
        f"{schema}.{name}": con.execute(sql_text("select count(*) from {s}.{n}", s=schema, n=name)).fetchall()[0][0]
        for schema, name, _ in views
    }


@contextmanager
def moved_aside(folder: Path) -> Iterator[None]:
    """`folder` renamed away for the block, so nothing can still read it (then put back for the other tests)."""
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    try:
        yield
    finally:
        aside.rename(folder)


def test_view_locations_are_relative_to_the_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    assert view_location(str(tmp_path / "data/lake/mds_trips/zone_id=*/*.parquet"), warehouse) == (
        "lake/mds_trips/zone_id=*/*.parquet"
    )
    assert view_location(str(tmp_path / "elsewhere/lake/x.parquet"), warehouse) == "../elsewhere/lake/x.parquet"
    assert view_location("s3://bucket/lake/mds_trips/*.parquet", warehouse) == "s3://bucket/lake/mds_trips/*.parquet"


@pytest.mark.integration
def test_a_moved_warehouse_answers_every_view(built_warehouse: BuiltWarehouse, tmp_path: Path) -> None:
    root = built_warehouse.warehouse.path.parent
    assert built_warehouse.lake.parent == root
    with connect(built_warehouse.warehouse.path) as con:
        before = counts(con)
        definitions = con.execute(EVERY_VIEW).fetchall()
    assert {name for name in before if name.startswith("lake.")} >= {"lake.mds_trips", "lake.zone_areas"}
    assert before["lake.mds_trips"] > 0 and before["staging.stg_zone__areas"] > 0
    assert not [f"{s}.{n}" for s, n, sql in definitions if str(root.resolve()) in sql], "a view holds an absolute path"

    copy = tmp_path / "laptop" / "city"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("*.lock"))
    with moved_aside(root):
        cwd = Path.cwd()
        os.chdir(tmp_path)  # neither the old folder nor the new one: nothing resolves by chance
        try:
            with connect(copy / "warehouse.duckdb") as con:
                after = counts(con)
        finally:
            os.chdir(cwd)
    assert after == before


def test_a_warehouse_named_relatively_builds_a_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo names its warehouse `data/warehouse.duckdb`, relative to the current folder, while a connection
    resolves the lake views' relative names in the warehouse's folder: a path handed over as the caller named it
    would point at `data/data/...`. A window build over a lake with nothing in the window (its views then read the
    empty files beside the warehouse) must find every file."""
    from datetime import UTC, datetime

    from pipelines.warehouse.build import Warehouse

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "lake").mkdir(parents=True)
    warehouse = Warehouse(Path("data/warehouse.duckdb"), Path("data/lake"))
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    runs = warehouse.build((start, start.replace(hour=11)))
    assert runs, "the window build ran no model"
    with connect(tmp_path / "data" / "warehouse.duckdb") as con:
        assert counts(con)["lake.mds_trips"] == 0


def test_a_dataset_without_files_has_the_columns_its_files_would_have(tmp_path: Path) -> None:
    """A lake view over a dataset with no file yet names no file at all (`no_rows`: it answers wherever the
    warehouse is opened), with exactly the columns and types DuckDB reads from a file of the dataset."""
    import polars as pl

    from pipelines.warehouse.build import LAKE_VIEW, lake_schemas, no_rows

    def columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
        return [(c[0], str(c[1])) for c in con.execute(f"select * from {relation} limit 0").description or []]

    with duckdb.connect() as con:
        for name, (_, schema, _) in lake_schemas(tmp_path / "lake").items():
            folder = tmp_path / name / "zone_id=1" / "date=2026-04-01" / "hour=10"
            folder.mkdir(parents=True)
            pl.DataFrame(schema=schema).write_parquet(folder / "part-0.parquet")
            files = str(tmp_path / name / "zone_id=*/date=*/hour=*/*.parquet")
            con.execute(sql_text(LAKE_VIEW, literal=files, schema="main", name=name, union="false"))
            assert columns(con, f"({no_rows(schema)})") == columns(con, name), name
            assert con.execute(f"select count(*) from ({no_rows(schema)})").fetchall() == [(0,)]
