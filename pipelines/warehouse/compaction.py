"""When a window build's checkpoint compacts the tables: only once their deleted rows add up to a row group.

A window build deletes the stored rows it replaces and appends their new versions. DuckDB keeps a deleted row in
its row group, marked, until a checkpoint's vacuum merges thinned row groups into fewer; that merge rewrites every
row group it touches, at every checkpoint, in every table the build changed. At a month of a 10,000-vehicle city it
was most of an hour's checkpoint: core.int_mds_deliveries alone 0.30 s of CPU for the newest hour and 1.19 s for
an hour in the middle of the history, 0.05 s and 0.12 s without it.

So a window build compacts only when some table holds at least a row group's worth of deleted rows (DuckDB's
physical row count, `estimated_size`, less the rows the build counted in it): the rows the builds since the last
compaction replaced stay on disk, at most about a row group per table, and are skipped by every read. A full build
of every model starts from an empty file and has none.
"""

from collections.abc import Iterable

import duckdb

ROW_GROUP_ROWS = 122_880
"""DuckDB's rows per row group: fewer deleted rows than this in a table free no row group of it."""


def compaction_due(con: duckdb.DuckDBPyConnection, counted: Iterable[tuple[str, int]]) -> bool:
    """Whether a table of `counted` ("schema.table" and its rows as the build counted them after its last write)
    holds at least a row group's worth of deleted rows."""
    stored = {
        f"{schema}.{name}": physical
        for schema, name, physical in con.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() "
            "where database_name = current_database()"
        ).fetchall()
    }
    return any(stored.get(relation, rows) - rows >= ROW_GROUP_ROWS for relation, rows in counted)


def skip_compaction(con: duckdb.DuckDBPyConnection) -> None:
    """The connection's next checkpoints write the deletes without merging the row groups they thin."""
    con.execute("set max_vacuum_tasks = 0")


__all__ = ["ROW_GROUP_ROWS", "compaction_due", "skip_compaction"]
