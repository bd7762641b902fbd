"""DuckDB query results as polars frames, for the models computed in Python."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from pipelines.warehouse.sqltext import sql_text


def query_frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    # execute(), not sql(): a relation with bound parameters is fetched row by row, ten times slower here.
    return pl.DataFrame(pl.from_arrow(con.execute(sql, params or {}).to_arrow_table()))


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """`frame` visible to SQL as `name` for the block. Registered as Arrow: DuckDB scans it without calling back
    into Python (a registered polars frame deadlocked a multi-threaded insert at 4 million rows)."""
    con.register(name, frame.to_arrow())
    try:
        yield
    finally:
        con.unregister(name)


def store_captures(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, captured: tuple[datetime, datetime] | None
) -> None:
    """`frame` as `core.<table>`: the whole table on a full build (`captured` None), else in place of the rows
    captured in [start, end), the snapshots a window build placed again."""
    with registered(con, "captures", frame):
        if captured is None:
            con.execute(sql_text("create or replace table core.{table} as select * from captures", table=table))
            return
        con.execute(
            sql_text("delete from core.{table} where captured_at >= $start and captured_at < $end", table=table),
            {"start": captured[0], "end": captured[1]},
        )
        con.execute(sql_text("insert into core.{table} by name select * from captures", table=table))
