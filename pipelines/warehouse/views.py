"""Which model views a build keeps as they are: those the warehouse holds exactly as their SQL defines them now.

Recreating a view drops its comments, which the build then writes again, one statement a column (a tenth of a
tiny window build's time). A view is bound anew at every query (its relations' columns as they are then), so a
view whose definition is unchanged reads the tables a build wrote exactly as a recreated one would.

DuckDB keeps a view's definition as its own rendering of the parsed query (`duckdb_views().sql`), not as written;
the same rendering of a model's SQL, through its parser's JSON form, tells whether the two are the same query. A
DuckDB whose rendering differs only makes the build recreate the view, as it did before.
"""

from collections.abc import Iterable

import duckdb

from pipelines.warehouse.models import Model

# The parser's rendering of each view model's SQL, by its text: the same in every build of a process.
_RENDERED: dict[str, str] = {}
RENDER = (
    "select sql, json_deserialize_sql(json_serialize_sql(sql)) "
    "from (select unnest($sqls) as sql) where not json_extract(json_serialize_sql(sql), '$.error')"
)


def _rendered(con: duckdb.DuckDBPyConnection, sqls: list[str]) -> dict[str, str]:
    """Each SQL text as DuckDB renders its parsed query (those it cannot render are left out)."""
    unrendered = [sql for sql in dict.fromkeys(sqls) if sql not in _RENDERED]
    if unrendered:
        _RENDERED.update(con.execute(RENDER, {"sqls": unrendered}).fetchall())
    return {sql: _RENDERED[sql] for sql in sqls if sql in _RENDERED}


def definition(model: Model, rendered: str) -> str:
    """The definition DuckDB keeps of `model`'s view: the main schema's relations are named without it."""
    name = model.name if model.schema == "main" else f"{model.schema}.{model.name}"
    return f"CREATE VIEW {name} AS {rendered};"


def unchanged_views(
    con: duckdb.DuckDBPyConnection, models: Iterable[Model], stored: dict[tuple[str, str], str]
) -> set[str]:
    """The view models whose view in the warehouse (`stored`: each view's definition by schema and name) is
    their SQL's query as it is now."""
    views = [m for m in models if m.materialized == "view" and (m.schema, m.name) in stored]
    rendered = _rendered(con, [m.sql for m in views]) if views else {}
    return {m.name for m in views if m.sql in rendered and stored[m.schema, m.name] == definition(m, rendered[m.sql])}


__all__ = ["definition", "unchanged_views"]
