"""DuckDB query results as polars frames, for the models computed in Python."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import polars as pl


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
