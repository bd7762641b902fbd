"""DuckDB extensions load from their PyPI packages, with nothing downloaded (pipelines/duckdb_extensions.py)."""

from pathlib import Path

import duckdb
import pytest

from pipelines.duckdb_extensions import NO_DOWNLOADS, ExtensionMissing, extension_file, load_extensions
from pipelines.warehouse.sqltext import sql_text


def test_every_pinned_extension_loads_from_its_package_with_installing_off(tmp_path: Path) -> None:
    con = duckdb.connect(config=NO_DOWNLOADS)
    load_extensions(con, "ducklake", "sqlite", "httpfs", "postgres")
    loaded = con.execute(
        "select extension_name from duckdb_extensions() where loaded and extension_name in "
        "('ducklake', 'sqlite_scanner', 'httpfs', 'postgres_scanner') order by 1"
    ).fetchall()
    assert loaded == [("ducklake",), ("httpfs",), ("postgres_scanner",), ("sqlite_scanner",)]
    # The sqlite extension works (a DuckLake's local catalog is a SQLite file).
    con.execute(sql_text("attach {literal} as catalog (type sqlite)", literal=str(tmp_path / "c.sqlite")))
    con.execute("create table catalog.t as select 42 as answer")
    assert con.execute("select answer from catalog.t").fetchall() == [(42,)]


def test_an_extension_without_its_package_is_an_error_naming_the_package() -> None:
    with pytest.raises(ExtensionMissing, match=r"add duckdb-extension-spatial==\d"):
        extension_file("spatial")
