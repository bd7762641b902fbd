"""The SQL models in `sql/`: one file a model, the file name its table, a header that says the rest.

    -- <what the model is>
    -- grain: (<columns>) one row per <what>   (`()`: rows without a key of their own)
    -- inputs: <model or lake.<dataset> names, comma-separated; empty when it reads none>
    -- materialized: view | table | incremental(<timestamp column>) | accumulating
    -- window: <timestamp column>  (optional, views: the column that puts a row in a build's window, which the
                                    grain's check reads by; an incremental model's is its incremental column)
    -- unique_key: <columns>  (optional, incremental models: stored rows sharing these values with a returned row
                              are replaced, wherever they lie: a re-delivery into another window replaces the row)
    -- keep: latest           (optional, with unique_key: a row already stored with a later incremental value is
                              kept, so rebuilding an old window never undoes a newer delivery)
    -- keep: latest(<column>) (the same, newest by <column> first, then by the incremental value; a null is oldest)
    -- whole_when_grows: <inputs>  (optional, incremental models: a window build in which one of these, accumulating,
                              gained or lost rows, or was itself rebuilt whole, rebuilds the model whole, as every
                              window's rows depend on the whole set)
    -- reaches: <column>   (optional, incremental models with a unique_key: where a row's span ends, null while it
                              lasts; a window build that changes a row reaching past the window's end rebuilds
                              the models reading it for the hours it reached into; its SQL also returns the
                              rows bound as `$reaching`, those before the window whose end the window withdrew,
                              see spill.py)

An incremental model's SQL returns the rows of the window `$window_start`..`$window_end` (the whole history in a
full build; `$window_hour_from`..`$window_hour_to` narrow a read of the lake's hour folders, see
window.window_parameters). A window build deletes the stored rows whose incremental column falls in the window, and
with a unique_key also the rows whose key the SQL returned (they may lie outside the window: a trip re-delivered
into another hour, an interval the window's first event ends), then inserts what the SQL returned. Without a
unique_key only the returned rows inside the window are inserted.

An accumulating model is a set (the series a mart reports, say): a window build inserts the rows its SQL
returns for the window that the table lacks. A model whose every
window reads the whole set (a row, zeros included, for each series in each hour) names it in `whole_when_grows`:
a series first seen in a window then gains its rows in the hours built before, as a full build would give them.
A window build that withdraws the last input row of a member (a re-delivery without it) rebuilds the set whole,
which drops the member, and its `whole_when_grows` readers with it (shrinking.py). The set's columns that its input
also has must hold the input's values of those columns: shrinking.py looks for withdrawn members by them.

The header's promises are checked. The grain's columns (in parentheses, then what a row is in words) hold no
value twice: the uniqueness checks are generated from them (checks.py; every stored model's and mart view's). The
inputs are exactly the relations the SQL reads, which DuckDB's parser finds (lineage.py): a model that reads a
table it does not declare, or declares one it does not read, fails to load, naming the table.

`staging/` models land in the `staging` schema, `core/` in `core`, `marts/` in `main` (what analysts query).
"""

import re
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb

from pipelines.warehouse.lineage import LineageError, compare, input_name, relations_read

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
LAYERS = {"staging": "staging", "core": "core", "marts": "main"}
# One header line: its key, then its value up to the end of that line (spaces and tabs only: `\s` would let an
# empty value run on into the next line and take it for its own).
HEADER = re.compile(
    r"^--[ \t]*(grain|inputs|materialized|unique_key|keep|window|whole_when_grows|reaches)[ \t]*:[ \t]*(.*?)[ \t]*$",
    re.MULTILINE,
)
GRAIN = re.compile(r"^\(([^()]*)\)[ \t]*(.*)$")
COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
INCREMENTAL = re.compile(r"^incremental\((\w+)\)$")
KEEP = re.compile(r"^latest(?:\((\w+)\))?$")
# The parameter a model with `reaches` takes the rows before a window that the window stranded from (spill.py).
REACHING = re.compile(r"\$reaching\b")


@dataclass(frozen=True)
class Model:
    name: str
    schema: str
    sql: str
    grain: str
    """The header's grain: its columns in parentheses, then what a row is in words."""
    inputs: tuple[str, ...]
    materialized: str
    incremental_column: str | None
    unique_key: tuple[str, ...] = ()
    """Incremental models: a row re-delivered into another window replaces its old self (by this column)."""
    keep_latest: bool = False
    """With unique_key: a stored row with a later incremental value wins over the window's."""
    path: Path | None = None
    newest_by: str | None = None
    """With keep_latest: the column that says which row is newer, before the incremental value."""
    grain_columns: tuple[str, ...] = ()
    """The columns no two rows share all of: the grain's promise, which its uniqueness check tests (checks.py)."""
    window_column: str | None = None
    """The timestamp column that puts a row in a build's window: the incremental column, or a view's `window:`."""
    whole_when_grows: tuple[str, ...] = ()
    """Incremental models: the inputs whose growth (or whole rebuild) in a window build rebuilds the model whole."""
    reaches: str | None = None
    """Incremental models: the column where a row's span ends (null while it lasts), when it may end after the window
    that built it (see spill.py)."""

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"


def _columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def parse_header(path: Path, text: str) -> dict[str, str]:
    """The header's keys and values; a key given twice is an error, not a silent choice of one."""
    found = HEADER.findall(text)
    header = dict(found)
    repeated = sorted({key for key, _ in found if [k for k, _ in found].count(key) > 1})
    if repeated:
        raise ValueError(f"{path}: header gives {repeated} more than once")
    missing = {"grain", "inputs", "materialized"} - set(header)
    if missing:
        raise ValueError(f"{path}: header lacks {sorted(missing)} (see pipelines/warehouse/models.py)")
    return header


def parse_grain(path: Path, grain: str) -> tuple[str, ...]:
    """The grain's columns. `()` says a row has no key of its own (a row of the lake
    that cannot be identified, counted as evidence): no check can hold it to one."""
    found = GRAIN.match(grain)
    columns = _columns(found.group(1)) if found else ()
    if found is None or not all(COLUMN.match(c) for c in columns):
        raise ValueError(
            f"{path}: grain must begin with its columns in parentheses, as `-- grain: (zone_id, hour) one row per "
            f"...`, not {grain!r}"
        )
    return columns


def parse_model(path: Path) -> Model:
    text = path.read_text()
    header = parse_header(path, text)
    grain_columns = parse_grain(path, header["grain"])
    materialized = header["materialized"]
    incremental = INCREMENTAL.match(materialized)
    if materialized not in ("view", "table", "accumulating") and incremental is None:
        raise ValueError(
            f"{path}: materialized must be view, table, incremental(<column>) or accumulating, not {materialized!r}"
        )
    keep = KEEP.match(header.get("keep", "latest"))
    if keep is None or ("keep" in header and "unique_key" not in header):
        raise ValueError(
            f"{path}: `keep: latest` or `latest(<column>)` is the only keep rule, and it needs a unique_key"
        )
    if "window" in header and (materialized != "view" or not COLUMN.match(header["window"])):
        raise ValueError(f"{path}: `window: <column>` is for views (an incremental model's window is its column)")
    inputs = _columns(header["inputs"])
    whole_when_grows = _columns(header.get("whole_when_grows", ""))
    if whole_when_grows and (incremental is None or not set(whole_when_grows) <= set(inputs)):
        raise ValueError(f"{path}: `whole_when_grows` is for incremental models, and names some of their inputs")
    reaches = header.get("reaches")
    if reaches is not None and (incremental is None or "unique_key" not in header or not COLUMN.match(reaches)):
        raise ValueError(f"{path}: `reaches: <column>` is for incremental models with a unique_key")
    if reaches is not None and not REACHING.search(text):
        raise ValueError(f"{path}: a model with `reaches` returns the rows bound as `$reaching` too (see spill.py)")
    return Model(
        name=path.stem,
        schema=LAYERS[path.parent.name],
        sql=text,
        grain=header["grain"],
        inputs=inputs,
        materialized="incremental" if incremental else materialized,
        incremental_column=incremental.group(1) if incremental else None,
        unique_key=_columns(header.get("unique_key", "")),
        keep_latest="keep" in header,
        path=path,
        newest_by=keep.group(1) if "keep" in header else None,
        grain_columns=grain_columns,
        window_column=incremental.group(1) if incremental else header.get("window"),
        whole_when_grows=whole_when_grows,
        reaches=reaches,
    )


# What each model's SQL reads, by its text: the models are parsed at every build and every load of the assets.
_READS: dict[str, frozenset[tuple[str, str]]] = {}


def _relations_read(models: dict[str, Model]) -> dict[str, frozenset[tuple[str, str]]]:
    """What each model reads, parsed on one connection for those not parsed before (a connection costs more than
    a model's parse)."""
    unread = [model.sql for model in models.values() if model.sql not in _READS]
    if unread:
        with duckdb.connect() as con:
            for sql in unread:
                _READS[sql] = frozenset(relations_read(con, sql))
    return {name: _READS[model.sql] for name, model in models.items()}


def verify_inputs(models: dict[str, Model]) -> None:
    """Each model's declared inputs are exactly what its SQL reads, or loading fails naming the model and table.

    A relation of `core` that no SQL model builds is taken for a Python model (build_order refuses an unknown one).
    """
    schemas = {name: model.schema for name, model in models.items()}
    reads = _relations_read(models)
    for model in models.values():
        try:
            read = {
                name if schema == "core" and name not in schemas else input_name(schema, name, schemas)
                for schema, name in reads[model.name]
            }
        except LineageError as error:
            raise LineageError(f"{model.path or model.name}: model {model.name} {error}") from None
        problem = compare(model.inputs, read)
        if problem:
            raise LineageError(f"{model.path or model.name}: model {model.name} {problem}")


def discover(sql_dir: Path = SQL_DIR) -> dict[str, Model]:
    models = {}
    for layer in LAYERS:
        for path in sorted((sql_dir / layer).glob("*.sql")):
            model = parse_model(path)
            if model.name in models:
                raise ValueError(f"two models are called {model.name}")
            models[model.name] = model
    verify_inputs(models)
    return models


def build_order(models: dict[str, "Model"], python_models: dict[str, tuple[str, ...]]) -> list[str]:
    """Models (SQL and Python) in dependency order; inputs outside both (lake.* sources) are leaves."""
    graph: dict[str, set[str]] = {}
    known = set(models) | set(python_models)
    for name, model in models.items():
        graph[name] = {i for i in model.inputs if i in known}
        unknown = [i for i in model.inputs if i not in known and not i.startswith("lake.")]
        if unknown:
            raise ValueError(f"{name}: unknown inputs {unknown}")
    for name, inputs in python_models.items():
        graph[name] = {i for i in inputs if i in known}
        unknown = [i for i in inputs if i not in known and not i.startswith("lake.")]
        if unknown:
            raise ValueError(f"Python model {name}: unknown inputs {unknown}")
    return list(TopologicalSorter(graph).static_order())
