"""A window build's checkpoint compacts the tables only once a table holds a row group's worth of deleted rows."""

from pathlib import Path

import duckdb

from pipelines.warehouse.compaction import ROW_GROUP_ROWS, compaction_due, skip_compaction

ROWS = 3 * ROW_GROUP_ROWS


def _table(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create table core_rows as select range as id, range % 7 as value from range($rows)", {"rows": ROWS})
    con.execute("checkpoint")
    return con


def _live(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("select count(*) from core_rows").fetchall()[0][0])


def test_deleted_rows_count_until_a_checkpoint_compacts_them(tmp_path: Path) -> None:
    """DuckDB's physical row count (what compaction_due compares with the rows a build counted) keeps the deleted
    rows when the checkpoint skips compaction (every other row deleted: every row group thinned by half, none
    emptied, which a checkpoint drops in any case), and a later checkpoint that compacts, with a change of its own
    (as each window build has), merges the thinned row groups."""
    con = _table(tmp_path / "w.duckdb")
    con.execute("delete from core_rows where id % 2 = 0")
    skip_compaction(con)
    con.execute("checkpoint")
    assert _live(con) == ROWS // 2
    assert compaction_due(con, [("main.core_rows", _live(con))])
    con.execute("reset max_vacuum_tasks")
    con.execute("delete from core_rows where id = 1")
    con.execute("checkpoint")
    assert not compaction_due(con, [("main.core_rows", _live(con))])
    assert con.execute("select count(*), sum(id % 2) from core_rows").fetchall() == [(ROWS // 2 - 1, ROWS // 2 - 1)]


def test_fewer_deleted_rows_than_a_row_group_wait(tmp_path: Path) -> None:
    con = _table(tmp_path / "w.duckdb")
    con.execute("delete from core_rows where id % 1000 = 0")  # 369 rows, spread over every row group
    con.execute("insert into core_rows select range, 0 from range(5)")
    assert not compaction_due(con, [("main.core_rows", _live(con))])
    con.execute("delete from core_rows where id < $cut", {"cut": ROW_GROUP_ROWS})
    assert compaction_due(con, [("main.core_rows", _live(con))])
    assert not compaction_due(con, [("main.other_rows", 0)])  # a relation it does not hold: nothing to compact
