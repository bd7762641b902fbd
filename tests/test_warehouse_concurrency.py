"""Readers and builders of one warehouse at once, in separate processes, as analysts, schedules and backfills are:
a reader's open transaction never fails a build nor sees it land; a build killed with SIGKILL at any moment
leaves readers on the previous complete build, and the rerun completes it; overlapping backfills both land.

Each test starts from a published warehouse that lacks the rows of some hours in two marts (as one whose builds of
those hours have not run yet); building those hours restores exactly the shared city's full build."""

import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.publish import working_files
from pipelines.warehouse.sqltext import identifier, sql_text
from tests.build_processes import STARTED, BuildProcess
from tests.conftest import START, BuiltWarehouse

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
# Two windows of six hours, on either side of the EU's switch to summer time.
FIRST = (START + timedelta(hours=18), START + timedelta(hours=24))
SECOND = (START + timedelta(hours=30), START + timedelta(hours=36))
# Marts whose rows of an hour the tests remove (and a build of the hour puts back), with their time column.
EMPTIED = {"occupancy_hourly": "hour", "trips": "end_time"}

READER = """
import sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("begin transaction")
def seen():
    return " ".join(str(con.execute(f"select count(*) from {name}").fetchall()[0][0]) for name in sys.argv[2:])
print(seen(), flush=True)
sys.stdin.readline()
print(seen(), flush=True)
"""


def marts(path: Path) -> dict[str, tuple[int, int]]:
    """Every mart's row count and the sum of its rows' hashes: equal for two warehouses whose marts hold the same
    rows, in any order. Doubles are rounded to 6 decimals first (as tests/comparable_rows.py does): a sum's last bits
    depend on the order DuckDB's parallel aggregation adds in, which differs from build to build of the same data.
    Summed in DuckDB, not compared row by row in Python, as the tests compare the marts after every build."""
    with duckdb.connect(str(path), read_only=True) as con:
        doubles: dict[str, list[str]] = {}
        for name, column, data_type in con.execute(
            "select t.table_name, c.column_name, c.data_type from duckdb_tables() t left join duckdb_columns() c "
            "using (database_name, schema_name, table_name) where t.schema_name = 'main' order by all"
        ).fetchall():
            doubles.setdefault(name, [])
            if data_type in ("DOUBLE", "FLOAT"):
                doubles[name].append(column)
        found = {}
        for name, columns in doubles.items():
            # + 0.0: a -0.0 (a tiny negative, rounded) hashes as 0.0 does, as the two compare equal.
            rounded = ", ".join(f"round({identifier(c)}, 6) + 0.0 as {identifier(c)}" for c in columns)
            replace = f" replace ({rounded})" if rounded else ""
            rows = f"select *{replace} from {identifier(name)}"
            count, hashes = con.execute(f"select count(*), coalesce(sum(hash(r)), 0) from ({rows}) r").fetchall()[0]
            found[name] = (count, int(hashes))
        return found


def counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            name: con.execute(sql_text("select count(*) from {name}", name=name)).fetchall()[0][0] for name in EMPTIED
        }


def without(built: BuiltWarehouse, path: Path, *windows: tuple[datetime, datetime]) -> dict[str, int]:
    """The shared city's warehouse at `path`, less the marts' rows of `windows`; returns how many each lost."""
    shutil.copyfile(built.warehouse.path, path)
    lost = dict.fromkeys(EMPTIED, 0)
    with duckdb.connect(str(path)) as con:
        for start, end in windows:
            for name, column in EMPTIED.items():
                deleted = sql_text(
                    "delete from {name} where {column} >= $start and {column} < $end", name=name, column=column
                )
                lost[name] += con.execute(deleted, {"start": start, "end": end}).fetchall()[0][0]
    assert all(lost.values()), lost  # each window held rows of each mart
    return lost


@pytest.fixture(scope="module")
def clean(built_warehouse: BuiltWarehouse) -> dict[str, tuple[int, int]]:
    return marts(built_warehouse.warehouse.path)


@pytest.mark.slow
def test_a_reader_in_a_long_transaction_neither_blocks_builds_nor_sees_them_land(
    built_warehouse: BuiltWarehouse, tmp_path: Path, clean: dict[str, tuple[int, int]]
) -> None:
    published = tmp_path / "warehouse.duckdb"
    lost = without(built_warehouse, published, FIRST)
    before = counts(published)
    command = [sys.executable, "-c", READER, str(published), *EMPTIED]
    with subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as reader:
        assert reader.stdin is not None and reader.stdout is not None
        first_look = reader.stdout.readline().split()
        warehouse = Warehouse(published, built_warehouse.lake)
        warehouse.build(FIRST)  # a window build, while the reader holds its transaction (and the file) open
        assert counts(published) == {name: before[name] + lost[name] for name in EMPTIED}
        warehouse.build()  # and a full build
        reader.stdin.write("\n")
        reader.stdin.flush()
        second_look = reader.stdout.readline().split()
    assert first_look == second_look == [str(before[name]) for name in EMPTIED]
    assert marts(published) == clean  # a new reader sees the last build, complete
    assert working_files(published) == []


@pytest.mark.slow
def test_builds_killed_at_random_moments_leave_the_previous_build_and_the_rerun_completes_it(
    built_warehouse: BuiltWarehouse, tmp_path: Path, clean: dict[str, tuple[int, int]]
) -> None:
    published = tmp_path / "warehouse.duckdb"
    without(built_warehouse, published, FIRST)
    previous = marts(published)
    assert previous != clean
    draw = random.Random(13)
    outcomes = []
    for window in (FIRST, None, FIRST):
        build = BuildProcess(published, built_warehouse.lake, window)
        assert build.started() == STARTED
        time.sleep(draw.uniform(0.0, 3.0))  # somewhere in the copy, the models or the publishing
        outcomes.append("killed" if build.kill() == -signal.SIGKILL else "finished")
        state = marts(published)
        assert state in (previous, clean), f"after a build {outcomes[-1]}, readers see half a build"
        if state == clean:  # it had published before the signal: the next kill interrupts a build of that
            previous = clean
    assert "killed" in outcomes
    BuildProcess(published, built_warehouse.lake, FIRST).finish()  # the rerun
    assert marts(published) == clean
    assert working_files(published) == []


@pytest.mark.slow
def test_two_overlapping_backfills_both_succeed_and_the_marts_equal_a_clean_build(
    built_warehouse: BuiltWarehouse, tmp_path: Path, clean: dict[str, tuple[int, int]]
) -> None:
    published = tmp_path / "warehouse.duckdb"
    lost = without(built_warehouse, published, FIRST, SECOND)
    before = counts(published)
    first = BuildProcess(published, built_warehouse.lake, FIRST)
    second = BuildProcess(published, built_warehouse.lake, SECOND)
    first.finish()
    second.finish()
    assert counts(published) == {name: before[name] + lost[name] for name in EMPTIED}
    assert marts(published) == clean
