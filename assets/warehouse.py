"""The DuckDB warehouse: every model in sql/ (and the Python ones) as an asset downstream of the lake.

The models are not partitioned themselves: a run that ingests a range of hours rebuilds the incremental models
for exactly that window (read from the run's partition tags), views and full tables whole, and a run without a
window rebuilds everything. Partitioning them like the lake would add one materialization event per model and
hour to every run: measured, about 4.5 ms each on the sqlite instance, over a minute for a 30-day backfill.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta

import dagster as dg
import duckdb

from assets.partition_keys import hourly_key, run_window
from assets.resources import LakeStore, WarehouseStore
from pipelines import progress
from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import SUPERSEDED
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.checks import MODEL_CHECKS, run_checks
from pipelines.warehouse.dictionary import summary
from pipelines.warehouse.models import discover
from pipelines.warehouse.window import FULL_WINDOW

GROUPS = {"staging": "staging", "core": "core", "main": "marts"}
BUILD_TAG = "fleetlake/warehouse_build"
"""A run's tag that says how its warehouse build chooses hours: `changed_hours` (the hourly schedule's) rebuilds
only the hours of the run's window whose lake partitions changed since they were built; without it, the whole
window (backfills, manual runs)."""
CHANGED_HOURS = "changed_hours"


def model_key(name: str, schema: str) -> dg.AssetKey:
    """Marts keep their plain table name (what analysts query); staging and core models are prefixed."""
    return dg.AssetKey(name) if schema == "main" else dg.AssetKey([schema, name])


def _specs() -> list[dg.AssetSpec]:
    models = discover()
    keys = {name: model_key(name, m.schema) for name, m in models.items()}
    python_models = Warehouse.PYTHON_MODEL_INPUTS
    keys.update({name: model_key(name, "core") for name in python_models})

    def dep(name: str) -> dg.AssetKey:
        if name.startswith("lake."):
            # The records an hourly delivery superseded are written by that dataset's own asset.
            dataset = name.removeprefix("lake.").removeprefix(SUPERSEDED + "_")
            return dg.AssetKey(dataset) if dataset in DATASETS else dg.AssetKey(["lake", dataset])
        return keys[name]

    specs = [
        dg.AssetSpec(
            keys[name],
            description=f"{summary(model.sql)} Grain: {model.grain}.",
            deps=list(dict.fromkeys(dep(i) for i in model.inputs if not i.startswith("lake.quarantine"))),
            kinds={"duckdb", "sql"},
            group_name=GROUPS[model.schema],
            metadata={"materialized": model.materialized, "relation": model.relation},
        )
        for name, model in models.items()
    ]
    specs += [
        dg.AssetSpec(
            keys[name],
            description=(getattr(Warehouse, method).__doc__ or name).strip(),
            deps=[dep(i) for i in inputs],
            kinds={"duckdb", "python"},
            group_name="core",
        )
        for name, (inputs, method) in Warehouse.PYTHON_MODELS.items()
    ]
    return specs


def column_schemas(con: duckdb.DuckDBPyConnection) -> dict[str, dg.TableSchema]:
    """Every relation's columns, their DuckDB types and comments (the dictionary's descriptions), by
    `schema.name`: the asset catalog's column schema of each model."""
    columns: dict[str, list[dg.TableColumn]] = {}
    for schema, name, column, data_type, comment in con.execute(
        "select schema_name, table_name, column_name, data_type, comment from duckdb_columns() "
        "where database_name = current_database() and schema_name in ('staging', 'core', 'main') "
        "order by schema_name, table_name, column_index"
    ).fetchall():
        columns.setdefault(f"{schema}.{name}", []).append(dg.TableColumn(column, data_type, description=comment))
    return {relation: dg.TableSchema(columns=found) for relation, found in columns.items()}


def _window_text(window: tuple[datetime, datetime] | None) -> str:
    return f"{window[0].isoformat()} to {window[1].isoformat()}" if window else "full build"


CHECK_SPECS = [
    dg.AssetCheckSpec(check.name, asset=model_key(check.model, check.schema), description=check.description)
    for check in MODEL_CHECKS
]


@dg.multi_asset(name="warehouse_models", specs=_specs(), check_specs=CHECK_SPECS, can_subset=True)
def warehouse_models(context: dg.AssetExecutionContext, lake: LakeStore, warehouse: WarehouseStore) -> Iterator[object]:
    """Build the selected models: for the run's window of hours if it has one, else all of them; then check the
    rows just built (see pipelines/warehouse/checks.py)."""
    window = run_window(context.run.tags)
    names = {key.path[-1] for key in context.selected_asset_keys}
    built = warehouse.warehouse(lake.lake().root)
    only_changed = context.run.tags.get(BUILD_TAG) == CHANGED_HOURS
    runs = built.build(window, select=names, only_changed=only_changed, on_progress=progress.report)
    if only_changed and not runs:  # no hour of the window changed: nothing built, every model as it was
        for key in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key, metadata={"mode": "unchanged", "window": _window_text(window)})
    schemas: dict[str, dg.TableSchema] = {}
    if runs:
        with built.connect(read_only=True) as con:
            schemas = column_schemas(con)
    for run in runs:
        key = model_key(run.name, run.relation.split(".")[0])
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                **({"dagster/row_count": run.rows} if run.rows is not None else {}),
                **({"dagster/column_schema": schemas[run.relation]} if run.relation in schemas else {}),
                "mode": run.mode,
                "seconds": round(run.seconds, 3),
                "relation": run.relation,
                "window": _window_text(window),
                # The last hourly partition of the lake this build covers (every one, after a full build).
                "last_partition_built": hourly_key(window[1] - timedelta(hours=1)) if window else "all",
            },
        )
    selected = {(key.asset_key.path[-1], key.name) for key in context.selected_asset_check_keys}
    with built.connect(read_only=True) as con:
        outcomes = run_checks(con, window or FULL_WINDOW, {model for model, _ in selected})
    for outcome in outcomes:
        if (outcome.check.model, outcome.check.name) in selected:
            yield dg.AssetCheckResult(
                asset_key=model_key(outcome.check.model, outcome.check.schema),
                check_name=outcome.check.name,
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"failing_rows": outcome.failures, "detail": outcome.check.description},
            )
