"""A model's header is a promise the runner checks: its inputs are what its SQL reads, its grain's columns hold no
value twice, and an empty value stays empty."""

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.checks import MODEL_CHECKS, run_checks, unique_check
from pipelines.warehouse.lineage import LineageError, PythonModelReads, relations_named
from pipelines.warehouse.models import build_order, discover, parse_model
from tests.conftest import BuiltWarehouse


def write_model(sql_dir: Path, layer: str, name: str, header: str, body: str = "select 1 as x") -> Path:
    path = sql_dir / layer / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"-- {name}, for a test.\n{header.strip()}\n{body}\n")
    return path


def test_an_empty_inputs_line_stays_empty_and_leaves_the_next_line_alone(tmp_path: Path) -> None:
    # `\s*` after the colon ran on over the newline: inputs became "-- materialized: view", and the model had no
    # materialization at all.
    path = write_model(tmp_path, "core", "constants", "-- grain: (x) one row\n-- inputs:\n-- materialized: view")
    model = parse_model(path)
    assert model.inputs == ()
    assert model.materialized == "view"
    assert model.grain_columns == ("x",)


def test_a_header_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path, "core", "twice", "-- grain: (x)\n-- inputs:\n-- materialized: view\n-- grain: (y)")
    with pytest.raises(ValueError, match=r"twice.sql: header gives \['grain'\] more than once"):
        parse_model(path)


def test_the_grain_names_its_columns_in_parentheses(tmp_path: Path) -> None:
    prose = write_model(tmp_path, "core", "prose", "-- grain: one row per x\n-- inputs:\n-- materialized: view")
    with pytest.raises(ValueError, match=r"prose.sql: grain must begin with its columns in parentheses"):
        parse_model(prose)
    keyed = write_model(
        tmp_path,
        "core",
        "keyed",
        "-- grain: (zone_id, hour) one row per zone and hour\n-- inputs:\n-- materialized: table",
    )
    assert parse_model(keyed).grain_columns == ("zone_id", "hour")
    assert parse_model(keyed).grain == "(zone_id, hour) one row per zone and hour"
    unkeyed = write_model(
        tmp_path, "core", "unkeyed", "-- grain: () rows of the lake\n-- inputs:\n-- materialized: view"
    )
    assert parse_model(unkeyed).grain_columns == ()


def test_whole_when_grows_names_inputs_of_an_incremental_model(tmp_path: Path) -> None:
    grain = "-- grain: (hour) one row per hour\n-- inputs: int_series, int_hours\n"
    rebuilt = write_model(
        tmp_path, "marts", "rebuilt", grain + "-- materialized: incremental(hour)\n-- whole_when_grows: int_series"
    )
    assert parse_model(rebuilt).whole_when_grows == ("int_series",)
    unread = write_model(
        tmp_path, "marts", "unread", grain + "-- materialized: incremental(hour)\n-- whole_when_grows: int_other"
    )
    with pytest.raises(ValueError, match=r"unread.sql: `whole_when_grows` is for incremental models"):
        parse_model(unread)
    table = write_model(tmp_path, "marts", "whole", grain + "-- materialized: table\n-- whole_when_grows: int_series")
    with pytest.raises(ValueError, match=r"whole.sql: `whole_when_grows` is for incremental models"):
        parse_model(table)


def test_reaches_names_a_column_of_an_incremental_model_with_a_unique_key(tmp_path: Path) -> None:
    grain = "-- grain: (event_id) one row per event\n-- inputs:\n-- materialized: incremental(started_at)\n"
    keyed = grain + "-- unique_key: event_id\n-- reaches: ended_at\n"
    spans = write_model(tmp_path, "marts", "spans", keyed, body="select * from unnest($reaching)")
    assert parse_model(spans).reaches == "ended_at"
    # Such a model returns the rows before a window whose end the window withdrew, which the build binds.
    unbound = write_model(tmp_path, "marts", "unbound", keyed)
    with pytest.raises(ValueError, match=r"unbound.sql: a model with `reaches` returns the rows bound as `\$reaching`"):
        parse_model(unbound)
    assert parse_model(write_model(tmp_path, "marts", "points", grain)).reaches is None
    unkeyed = write_model(tmp_path, "marts", "unkeyed", grain + "-- reaches: ended_at")
    with pytest.raises(ValueError, match=r"unkeyed.sql: `reaches: <column>` is for incremental models"):
        parse_model(unkeyed)


HEADER = "-- grain: (x)\n-- inputs: {inputs}\n-- materialized: table"


def lineage_error(sql_dir: Path) -> str:
    with pytest.raises(LineageError) as raised:
        discover(sql_dir)
    return str(raised.value)


def test_inputs_must_be_what_the_sql_reads(tmp_path: Path) -> None:
    write_model(tmp_path, "staging", "stg_a", HEADER.format(inputs="lake.a"), "select x from lake_window.a")
    # The CTE `recent` is no input; the table a subquery in the WHERE reads is; a table function is not.
    write_model(
        tmp_path,
        "core",
        "int_b",
        HEADER.format(inputs="stg_a, lake.zone_info"),
        "with recent as (select * from staging.stg_a)\n"
        "select x from recent, range(3) where x in (select 1 from lake.zone_info)",
    )
    write_model(tmp_path, "marts", "c", HEADER.format(inputs="int_b"), "select * from core.int_b")
    assert {name: m.inputs for name, m in discover(tmp_path).items()} == {
        "stg_a": ("lake.a",),
        "int_b": ("stg_a", "lake.zone_info"),
        "c": ("int_b",),
    }
    # A table read but not declared: the model and the table are named.
    write_model(tmp_path, "marts", "c", HEADER.format(inputs="int_b"), "select * from core.int_b, staging.stg_a")
    assert lineage_error(tmp_path).endswith("c.sql: model c reads stg_a without declaring it in `-- inputs:`")
    # Declared but not read.
    write_model(tmp_path, "marts", "c", HEADER.format(inputs="int_b, stg_a"), "select * from core.int_b")
    assert lineage_error(tmp_path).endswith("c.sql: model c declares stg_a in `-- inputs:` but does not read it")


def test_a_relation_must_be_named_with_the_schema_its_model_is_built_in(tmp_path: Path) -> None:
    write_model(tmp_path, "staging", "stg_a", HEADER.format(inputs="lake.a"), "select x from lake.a")
    write_model(tmp_path, "marts", "c", HEADER.format(inputs="stg_a"), "select * from stg_a")
    assert "model c reads stg_a without a schema" in lineage_error(tmp_path)
    write_model(tmp_path, "marts", "c", HEADER.format(inputs="stg_a"), "select * from core.stg_a")
    assert "model c reads core.stg_a, but stg_a is built in staging" in lineage_error(tmp_path)
    write_model(tmp_path, "marts", "c", HEADER.format(inputs="stg_b"), "select * from staging.stg_b")
    assert "model c reads staging.stg_b, which no model builds" in lineage_error(tmp_path)


def test_every_model_of_the_project_declares_what_it_reads() -> None:
    models = discover()
    assert models["trips_hourly"].inputs == ("trips",)
    # Read through the window's view of the lake, declared as the lake's dataset.
    assert set(models["int_mds_deliveries"].inputs) == {
        "lake.mds_trips",
        "lake.mds_events",
        "lake.superseded_mds_trips",
        "lake.superseded_mds_events",
    }


def test_relations_named_in_any_statement() -> None:
    sql = (
        "insert into core.int_x by name select a.zone_id, 'core.not_a_table' from lake_window.mds_events as a "
        'join "staging".stg_y using (zone_id) -- main.nor_this'
    )
    assert relations_named(sql) == {("core", "int_x"), ("lake_window", "mds_events"), ("staging", "stg_y")}


def test_the_marts_grain_checks_are_the_ones_written_out_before() -> None:
    """Generated from the headers, the checks keep their names, and each reads the window by the same column."""
    checks = {(c.model, c.name): c.sql for c in MODEL_CHECKS}
    for model, name, column in [
        ("trips", "unique_trip_id", "end_time"),
        ("vehicle_state_intervals", "unique_event_id", "started_at"),
        ("occupancy_hourly", "unique_grain", "hour"),
        ("compliance_violations", "unique_violation_key", "evidence_at"),
        ("data_quality_hourly", "unique_grain", "hour"),
        ("trips_hourly", "unique_grain", "hour"),
        ("gbfs_occupancy_hourly", "unique_grain", "hour"),
        ("area_trips_hourly", "unique_grain", "hour"),
        ("events_hourly", "unique_grain", "hour"),
    ]:
        assert f"where {column} >= $window_start and {column} < $window_end" in checks[(model, name)]
    # New: every other mart's grain is checked too.
    assert {("fleet_utilization_daily", "unique_grain"), ("compliance_daily", "unique_grain")} <= set(checks)


def test_a_generated_check_counts_repeated_grains_in_the_window_only(tmp_path: Path) -> None:
    header = (
        "-- grain: (zone_id, local_date) one row per zone and day\n-- inputs:\n-- materialized: incremental(day_start)"
    )
    model = parse_model(write_model(tmp_path, "marts", "daily", header))
    check = unique_check(model)
    assert check.name == "unique_grain"
    with duckdb.connect() as con:
        con.execute("create table main.daily (zone_id varchar, local_date date, day_start timestamptz)")
        # Zone 1's 28 March twice (the copy stamped a day later), zone 2's once, zone 1's 27 March twice.
        con.execute(
            "insert into main.daily values ('1', '2026-03-28', '2026-03-28 00:00:00+00'), "
            "('1', '2026-03-28', '2026-03-29 00:00:00+00'), ('2', '2026-03-28', '2026-03-28 00:00:00+00'), "
            "('1', '2026-03-27', '2026-03-27 00:00:00+00'), ('1', '2026-03-27', '2026-03-27 00:00:00+00')"
        )
        day = (datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 29, tzinfo=UTC))
        # The 28th's window sees its repeated key, though the copy lies outside it; not the 27th's.
        assert [o.failures for o in run_checks(con, day, checks=(check,))] == [1]
        everything = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
        assert [o.failures for o in run_checks(con, everything, checks=(check,))] == [2]


@pytest.mark.integration
def test_every_models_grain_holds_on_the_shared_city(built_warehouse: BuiltWarehouse) -> None:
    """Not only the marts': every SQL model's grain columns exist and hold no value twice after a full build."""
    with built_warehouse.warehouse.connect(read_only=True) as con:
        for model in discover().values():
            if not model.grain_columns:
                continue
            key = ", ".join(model.grain_columns)
            repeated = con.execute(
                f"select count(*) from (select {key} from {model.relation} group by all having count(*) > 1)"
            ).fetchall()[0][0]
            assert repeated == 0, f"{model.relation}: {repeated} values of ({key}) repeat"


def test_a_python_model_may_read_only_its_declared_inputs() -> None:
    with duckdb.connect() as con:
        for statement in ("create schema core", "create schema staging", "create schema lake"):
            con.execute(statement)
        con.execute("create table staging.stg_a as select 1 as x")
        con.execute("create table lake.zone_info as select 1 as x")
        reads = PythonModelReads(con, "int_b", ("stg_a",))
        reads.execute("create table core.int_b as select x from staging.stg_a")
        assert reads.execute("select count(*) from core.int_b").fetchall() == [(1,)]
        with pytest.raises(LineageError, match=r"^Python model int_b reads lake.zone_info without declaring it"):
            reads.execute("insert into core.int_b select x from lake.zone_info")
        assert con.execute("select count(*) from core.int_b").fetchall() == [(1,)]  # refused before it ran


def test_a_python_models_unknown_input_is_refused(tmp_path: Path) -> None:
    write_model(tmp_path, "staging", "stg_a", HEADER.format(inputs="lake.a"), "select x from lake.a")
    models = discover(tmp_path)
    assert build_order(models, {"int_b": ("stg_a",)}) == ["stg_a", "int_b"]
    with pytest.raises(ValueError, match=r"^Python model int_b: unknown inputs \['stg_typo'\]"):
        build_order(models, {"int_b": ("stg_typo",)})
