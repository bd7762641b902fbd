"""docs/data_dictionary.md: generated from the built warehouse, committed, and kept up to date."""

from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.dictionary import Mart, column_comments, describe, render, summary, write_dictionary
from pipelines.warehouse.models import discover
from tests.conftest import BuiltWarehouse

DICTIONARY = Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md"
MARTS = sorted(name for name, model in discover().items() if model.schema == "main")


@pytest.fixture(scope="module")
def described(built_warehouse: BuiltWarehouse) -> list[Mart]:
    """The shared warehouse's marts as `describe` gives them, read once: the tests below only read the list."""
    return describe(built_warehouse.warehouse.path)


def test_column_comments_come_from_the_final_select() -> None:
    sql = """-- What it is.
-- grain: one row per x
with source as (
    select a as kept,  -- not the final select: ignored
),

final as (
    select
        source.kept,  -- Kept as is.
        -- A whole-line comment describes nothing.
        count(*) as n,  -- How many (with a | pipe).
        2
        - source.kept as rest,  -- What is left.
        source.other,
    from source
)

select * from final
"""
    assert column_comments(sql) == {"kept": "Kept as is.", "n": "How many (with a | pipe).", "rest": "What is left."}
    assert summary(sql) == "What it is."


@pytest.mark.integration
def test_the_committed_dictionary_is_up_to_date(built_warehouse: BuiltWarehouse, tmp_path: Path) -> None:
    generated = write_dictionary(built_warehouse.warehouse.path, tmp_path / "data_dictionary.md")
    assert DICTIONARY.read_text() == generated.read_text(), (
        "docs/data_dictionary.md is stale: regenerate it with pipelines.warehouse.dictionary.write_dictionary"
    )


@pytest.mark.integration
def test_the_dictionary_covers_every_mart(described: list[Mart]) -> None:
    documented = {mart.name for mart in described}
    assert documented >= set(MARTS)
    rendered = render(described)
    assert all(f"## {name}\n" in rendered for name in MARTS)


@pytest.mark.integration
@pytest.mark.parametrize("mart", MARTS)
def test_every_mart_column_is_described(described: list[Mart], mart: str) -> None:
    (found,) = [m for m in described if m.name == mart]
    assert found.grain and found.summary
    assert [f"{mart}.{c.name}" for c in found.columns if not c.description] == []


@pytest.mark.integration
def test_the_warehouse_carries_the_dictionary_as_comments(
    built_warehouse: BuiltWarehouse, described: list[Mart]
) -> None:
    """What `describe`, duckdb_columns(), DBeaver and Dagster show is the dictionary, word for word."""
    with duckdb.connect(str(built_warehouse.warehouse.path), read_only=True) as con:
        tables = dict(
            con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'main' "
                "union all select view_name, comment from duckdb_views() where schema_name = 'main' and not internal"
            ).fetchall()
        )
        columns = {
            (table, column): comment
            for table, column, comment in con.execute(
                "select table_name, column_name, comment from duckdb_columns() where schema_name = 'main'"
            ).fetchall()
        }
    marts = [mart for mart in described if mart.name in MARTS]
    assert {mart.name for mart in marts} == set(MARTS)
    for mart in marts:
        assert mart.summary.endswith("."), f"{mart.name}'s summary stops mid-sentence: {mart.summary!r}"
        assert tables[mart.name] == mart.summary
        for column in mart.columns:
            assert columns[(mart.name, column.name)] == column.description, f"{mart.name}.{column.name}"


def test_a_summary_runs_over_several_lines_up_to_the_header() -> None:
    sql = "-- Trips counted per\n-- zone and hour.\n-- grain: (zone_id) one row per zone\n-- A note.\nselect 1\n"
    assert summary(sql) == "Trips counted per zone and hour."
