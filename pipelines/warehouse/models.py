"""The SQL models in `sql/`: one file a model, the file name its table, a header that says the rest.

    -- <what the model is>
    -- grain: one row per <what>
    -- inputs: <model or lake.<dataset> names, comma-separated>
    -- materialized: view | table | incremental(<timestamp column>) | accumulating
    -- unique_key: <columns>  (optional, incremental models: stored rows sharing these values with a returned row
                              are replaced, wherever they lie: a re-delivery into another window replaces the row)
    -- keep: latest           (optional, with unique_key: a row already stored with a later incremental value is
                              kept, so rebuilding an old window never undoes a newer delivery)
    -- keep: latest(<column>) (the same, newest by <column> first, then by the incremental value; a null is oldest)

An incremental model's SQL returns the rows of the window `$window_start`..`$window_end` (the whole history in a
full build; `$window_hour_from`..`$window_hour_to` narrow a read of the lake's hour folders, see
window.window_parameters). A window build deletes the stored rows whose incremental column falls in the window, and
with a unique_key also the rows whose key the SQL returned (they may lie outside the window: a trip re-delivered
into another hour, an interval the window's first event ends), then inserts what the SQL returned. Without a
unique_key only the returned rows inside the window are inserted.

An accumulating model is a set that only grows between full builds (the series a mart reports, say): a window
build inserts the rows its SQL returns for the window that the table lacks, and removes none.

`staging/` models land in the `staging` schema, `core/` in `core`, `marts/` in `main` (what analysts query).
"""

import re
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
LAYERS = {"staging": "staging", "core": "core", "marts": "main"}
HEADER = re.compile(r"^--\s*(grain|inputs|materialized|unique_key|keep):\s*(.+?)\s*$", re.MULTILINE)
INCREMENTAL = re.compile(r"^incremental\((\w+)\)$")
KEEP = re.compile(r"^latest(?:\((\w+)\))?$")


@dataclass(frozen=True)
class Model:
    name: str
    schema: str
    sql: str
    grain: str
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

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"


def parse_model(path: Path) -> Model:
    text = path.read_text()
    header = dict(HEADER.findall(text))
    missing = {"grain", "inputs", "materialized"} - set(header)
    if missing:
        raise ValueError(f"{path}: header lacks {sorted(missing)} (see pipelines/warehouse/models.py)")
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
    return Model(
        name=path.stem,
        schema=LAYERS[path.parent.name],
        sql=text,
        grain=header["grain"],
        inputs=tuple(i.strip() for i in header["inputs"].split(",") if i.strip()),
        materialized="incremental" if incremental else materialized,
        incremental_column=incremental.group(1) if incremental else None,
        unique_key=tuple(c.strip() for c in header.get("unique_key", "").split(",") if c.strip()),
        keep_latest="keep" in header,
        path=path,
        newest_by=keep.group(1) if "keep" in header else None,
    )


def discover(sql_dir: Path = SQL_DIR) -> dict[str, Model]:
    models = {}
    for layer in LAYERS:
        for path in sorted((sql_dir / layer).glob("*.sql")):
            model = parse_model(path)
            if model.name in models:
                raise ValueError(f"two models are called {model.name}")
            models[model.name] = model
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
    return list(TopologicalSorter(graph).static_order())
