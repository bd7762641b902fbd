"""The DuckDB warehouse: every model in sql/ (and the Python ones) as an asset downstream of the lake.

Models share the lake's hourly partitions: a run over a range of hours rebuilds the incremental models for that
window only (views and full tables are rebuilt whole, as they must be), in one single run per backfill.
"""

from collections.abc import Iterator

import dagster as dg

from assets.partitions import hourly
from assets.resources import LakeStore, WarehouseStore
from pipelines.lake.datasets import DATASETS
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.models import discover

GROUPS = {"staging": "staging", "core": "core", "main": "marts"}


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
            dataset = name.removeprefix("lake.")
            return dg.AssetKey(dataset) if dataset in DATASETS else dg.AssetKey(["lake", dataset])
        return keys[name]

    specs = [
        dg.AssetSpec(
            keys[name],
            description=f"{model.sql.splitlines()[0].removeprefix('-- ')} Grain: {model.grain}.",
            deps=[dep(i) for i in model.inputs if not i.startswith("lake.quarantine")],
            kinds={"duckdb", "sql"},
            group_name=GROUPS[model.schema],
            metadata={"materialized": model.materialized, "relation": model.relation},
        )
        for name, model in models.items()
    ]
    specs += [
        dg.AssetSpec(
            keys[name],
            description="Which zone areas contain each trip start and end and each event location (shapely).",
            deps=[keys[i] for i in inputs],
            kinds={"duckdb", "python"},
            group_name="core",
        )
        for name, inputs in python_models.items()
    ]
    return specs


@dg.multi_asset(
    name="warehouse_models",
    specs=_specs(),
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
)
def warehouse_models(context: dg.AssetExecutionContext, lake: LakeStore, warehouse: WarehouseStore) -> Iterator[object]:
    """Build the selected models for the run's window of hours."""
    window = context.partition_time_window
    names = {key.path[-1] for key in context.selected_asset_keys}
    runs = Warehouse(warehouse.path(), lake.lake().root).build((window.start, window.end), select=names)
    for run in runs:
        key = model_key(run.name, run.relation.split(".")[0])
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "rows": run.rows,
                "mode": run.mode,
                "seconds": round(run.seconds, 3),
                "relation": run.relation,
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
            },
        )
