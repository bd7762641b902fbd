"""What a model reads, found in its SQL, so that the inputs it declares are a promise checked rather than a comment.

The build order, the Dagster asset graph and the data dictionary all follow a model's declared inputs: a table it
reads but does not declare may be built after it (or not at all in a selected build), and one it declares but does
not read draws a false line in the lineage. DuckDB's own parser finds the tables a SQL model reads: it knows its
dialect exactly (macros, `$name` parameters, `union all by name`, `exclude`, trailing commas) and
`json_serialize_sql` gives the parsed tree, in which a table reference is a `BASE_TABLE` node and a CTE a name in a
`cte_map`. A Python model's statements (CREATE, INSERT, DELETE: the serialiser takes SELECT only) are read with
DuckDB's tokenizer instead: every `<schema>.<name>` outside strings and comments names a relation.

Every relation a model reads is named with its schema (`main.trips`, `core.policy_rules`, `lake.zone_info`);
`lake_window.<dataset>` is the window's part of `lake.<dataset>` (see Warehouse._window_views) and is declared as
the latter.
"""

import json
from typing import Any

import duckdb

LAKE = "lake"
# Schemas whose relations are inputs: the lake's (and its window's), and the models' layers.
SOURCE_SCHEMAS = {LAKE: LAKE, "lake_window": LAKE}
MODEL_SCHEMAS = ("staging", "core", "main")


class LineageError(ValueError):
    """A model reads a relation it does not declare, declares one it does not read, or names one oddly."""


def relations_read(con: duckdb.DuckDBPyConnection, sql: str) -> set[tuple[str, str]]:
    """The (schema, table) pairs a SELECT statement reads, CTEs left out; a table named without a schema that is
    not a CTE comes back with schema ''."""
    (serialised,) = con.execute("select json_serialize_sql($sql)", {"sql": sql}).fetchall()[0]
    found: set[tuple[str, str]] = set()
    ctes: set[str] = set()

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        # Called by the JSON parser for every object of the tree, innermost first: one pass, no walk of our own
        # (a recursive walk cost a third of a second per build for the models' few thousand nodes).
        if node.get("type") == "BASE_TABLE" and "table_name" in node:
            found.add((str(node.get("schema_name") or ""), str(node["table_name"])))
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            ctes.update(str(entry["key"]) for entry in cte_map.get("map", []))
        return node

    tree = json.loads(serialised, object_hook=visit)
    if tree.get("error"):
        raise LineageError(f"DuckDB cannot parse it: {tree.get('error_message')}")
    return {(schema, name) for schema, name in found if schema or name not in ctes}


def relations_named(sql: str) -> set[tuple[str, str]]:
    """The (schema, table) pairs any statement names as `<schema>.<name>`, for a schema of the lake or of a model
    layer (strings and comments left out, quoted identifiers unquoted)."""
    tokens = duckdb.tokenize(sql)
    texts = [
        (sql[start : tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)].strip(), kind)
        for i, (start, kind) in enumerate(tokens)
    ]
    identifier = duckdb.token_type.identifier
    known = set(SOURCE_SCHEMAS) | set(MODEL_SCHEMAS)
    named = set()
    for (schema, first), (dot, _), (name, last) in zip(texts, texts[1:], texts[2:], strict=False):
        schema, name = schema.strip('"'), name.strip('"')
        if first == identifier and last == identifier and dot == "." and schema in known:
            named.add((schema, name))
    return named


def input_name(schema: str, name: str, schemas: dict[str, str]) -> str:
    """The name a model declares among its inputs for a relation it reads: `lake.<dataset>` for the lake (and its
    window), the model's name for a model (`schemas`: each model's schema, so a model named in the wrong layer is
    an error rather than a silent miss)."""
    if schema in SOURCE_SCHEMAS:
        return f"{SOURCE_SCHEMAS[schema]}.{name}"
    if not schema:
        raise LineageError(f"reads {name} without a schema (name models and the lake as <schema>.<name>)")
    if name not in schemas:
        raise LineageError(f"reads {schema}.{name}, which no model builds")
    if schemas[name] != schema:
        raise LineageError(f"reads {schema}.{name}, but {name} is built in {schemas[name]}")
    return name


def compare(declared: tuple[str, ...], read: set[str]) -> str | None:
    """What is wrong with a model's declared inputs against those it reads, said plainly; None when they agree."""
    missing = sorted(read - set(declared))
    unused = sorted(set(declared) - read)
    problems = []
    if missing:
        problems.append(f"reads {', '.join(missing)} without declaring it in `-- inputs:`")
    if unused:
        problems.append(f"declares {', '.join(unused)} in `-- inputs:` but does not read it")
    return "; ".join(problems) or None


class PythonModelReads:
    """The connection a Python model builds through: every statement it runs may name only the model's declared
    inputs and its own table, or it fails naming the model and the relation.

    A Python model declares its inputs beside its builder (Warehouse.PYTHON_MODELS) and its SQL is assembled in
    code, so it is checked where it is complete: as each statement runs (tokenizing costs microseconds). Everything
    else is the wrapped connection's own.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, model: str, inputs: tuple[str, ...]) -> None:
        self._con = con
        self._model = model
        self._allowed = {*inputs, model}

    def _check(self, sql: str) -> None:
        named = {f"{SOURCE_SCHEMAS[s]}.{n}" if s in SOURCE_SCHEMAS else n for s, n in relations_named(sql)}
        undeclared = sorted(named - self._allowed)
        if undeclared:
            raise LineageError(
                f"Python model {self._model} reads {', '.join(undeclared)} without declaring it among its inputs "
                "(Warehouse.PYTHON_MODELS)"
            )

    def execute(self, query: str, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        self._check(query)
        return self._con.execute(query, *args, **kwargs)

    def sql(self, query: str, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyRelation:
        self._check(query)
        return self._con.sql(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)
