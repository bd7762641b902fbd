"""README.md's "Example queries" answer on a built city: each returns rows."""

import re
from pathlib import Path

import pytest

from pipelines.warehouse.connection import connect
from tests.conftest import BuiltWarehouse

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = re.compile(r"^### Example queries\n(?P<body>.*?)(?=^#)", re.MULTILINE | re.DOTALL)
SQL_BLOCK = re.compile(r"^```sql\n(?P<sql>.*?)^```", re.MULTILINE | re.DOTALL)


def examples() -> list[str]:
    """The statements of the section's SQL blocks, each with the comment line that says what it answers."""
    section = SECTION.search(README.read_text())
    assert section is not None, "README.md has no 'Example queries' section"
    statements = [
        statement.strip()
        for block in SQL_BLOCK.finditer(section.group("body"))
        for statement in block.group("sql").split(";\n")
    ]
    return [s for s in statements if s]


def test_the_readme_has_an_example_for_each_ready_made_view() -> None:
    text = "\n".join(examples())
    for view in ("fleet_by_weekday_hour", "trips_by_weekday_hour", "top_areas", "parking_spots_full"):
        assert f"from {view}" in text


@pytest.mark.integration
def test_every_readme_example_returns_rows(built_warehouse: BuiltWarehouse) -> None:
    with connect(built_warehouse.warehouse.path) as con:
        empty = [sql.splitlines()[0] for sql in examples() if not con.execute(sql).fetchall()]
    assert empty == []
