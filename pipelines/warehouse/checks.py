"""Checks that guard the models after a build: each grain holds (no key twice) and the numbers agree with each other.

The uniqueness checks are generated from the grains every model's header declares (`-- grain: (<columns>) ...`),
staging and core as well as the marts, so a model's promise and its check cannot drift apart, and a key doubled
upstream (a trip two zones delivered, say) is named where it first appears, not only in the marts it reaches; the
checks of how numbers agree are written out below.

Each check counts the rows that break it among the rows of the window just built (every row after a full build),
so an hourly run checks its hour without reading the whole history.
"""

from dataclasses import dataclass
from datetime import datetime

import duckdb

from pipelines.warehouse.models import Model, discover
from pipelines.warehouse.sqltext import sql_text


@dataclass(frozen=True)
class ModelCheck:
    model: str
    name: str
    description: str
    sql: str
    """Counts the failing rows; may read $window_start and $window_end."""
    schema: str = "main"
    """The model's schema (`staging`, `core` or `main`): which asset the check belongs to."""


@dataclass(frozen=True)
class CheckOutcome:
    check: ModelCheck
    failures: int

    @property
    def passed(self) -> bool:
        return self.failures == 0


def unique_check(model: Model) -> ModelCheck:
    """No grain appears twice among the grains of the window's rows (wherever the other copy lies).

    A grain holding the window's column has all its copies in the window; another is looked up in the whole table.
    A mart without a window column (a view of light aggregates) is checked whole.
    """
    key, column = model.grain_columns, model.window_column
    names = {"schema": model.schema, "model": model.name}
    if column is None:
        rows = sql_text("select {key} from {schema}.{model}", key=key, **names)
    elif column in key:
        rows = sql_text(
            "select {key} from {schema}.{model} where {column} >= $window_start and {column} < $window_end",
            key=key,
            column=column,
            **names,
        )
    else:
        rows = sql_text(
            "select {key} from {schema}.{model} where {key} in "
            "(select {key} from {schema}.{model} where {column} >= $window_start and {column} < $window_end)",
            key=key,
            column=column,
            **names,
        )
    return ModelCheck(
        model.name,
        f"unique_{key[0]}" if len(key) == 1 else "unique_grain",
        f"One row per {', '.join(key)}: the grain holds.",
        sql_text("select count(*) from ({body} group by all having count(*) > 1)", body=rows),
        model.schema,
    )


def grain_checks(models: dict[str, Model]) -> tuple[ModelCheck, ...]:
    """The uniqueness check of every model whose grain names its columns, from the grain in its header.

    Staging and core too: their keys are what the marts' keys are made of, and a model whose SQL stores its key
    twice is caught there, with its own name, whether or not a mart reads the doubled rows. Only their views are
    left out: they store nothing, and checking one computes it whole (reading the lake, for staging's) at every
    hourly build; the stored models reading them are checked."""
    return tuple(unique_check(model) for model in models.values() if model.grain_columns and grain_is_checked(model))


def grain_is_checked(model: Model) -> bool:
    """A model whose grain is checked: every stored one, and the marts' views (what analysts query)."""
    return model.materialized != "view" or model.schema == "main"


# The checks of what a grain cannot say: how a mart's numbers agree with each other.
CONSISTENCY_CHECKS = (
    ModelCheck(
        "vehicle_state_intervals",
        "ends_after_start",
        "Every interval ends at or after its start (its vehicle's next event).",
        "select count(*) from main.vehicle_state_intervals "
        "where started_at >= $window_start and started_at < $window_end and ended_at < started_at",
    ),
    ModelCheck(
        "occupancy_hourly",
        "min_avg_max_in_order",
        "0 <= min_vehicles <= avg_vehicles <= max_vehicles in every row.",
        "select count(*) from main.occupancy_hourly where hour >= $window_start and hour < $window_end "
        "and not (0 <= min_vehicles and min_vehicles <= avg_vehicles + 1e-9 and avg_vehicles <= max_vehicles + 1e-9)",
    ),
    ModelCheck(
        "occupancy_hourly",
        "deployed_is_parked_plus_on_trip",
        "In every zone, area and hour, deployed vehicle-seconds (MDS dockless.deployed) equal parked plus on_trip.",
        "select count(*) from (select zone_id, scope, area_id, hour, "
        "sum(state_seconds) filter (where vehicle_state = 'deployed') as deployed, "
        "sum(state_seconds) filter (where vehicle_state in ('parked', 'on_trip')) as parts "
        "from main.occupancy_hourly where hour >= $window_start and hour < $window_end "
        "and vehicle_state in ('deployed', 'parked', 'on_trip') group by all) "
        "where abs(deployed - coalesce(parts, 0)) > 1e-3",
    ),
    ModelCheck(
        "occupancy_hourly",
        "scopes_add_up",
        "In every zone, hour and state, the whole zone's vehicle-seconds equal those of its areas plus outside them.",
        "select count(*) from (select zone_id, hour, vehicle_state, "
        "sum(state_seconds) filter (where scope = 'zone') as whole, "
        "sum(state_seconds) filter (where scope != 'zone') as parts "
        "from main.occupancy_hourly where hour >= $window_start and hour < $window_end group by all) "
        "where abs(coalesce(whole, 0) - coalesce(parts, 0)) > 1e-3",
    ),
    ModelCheck(
        "fleet_utilization_daily",
        "active_within_deployed",
        "No day counts more active vehicles than deployed ones.",
        "select count(*) from main.fleet_utilization_daily "
        "where day_start_at >= $window_start - interval 1 day and day_start_at < $window_end "
        "and active_vehicles > deployed_vehicles",
    ),
)

MODEL_CHECKS = grain_checks(discover()) + CONSISTENCY_CHECKS


def run_checks(
    con: duckdb.DuckDBPyConnection,
    window: tuple[datetime, datetime],
    models: set[str] | None = None,
    checks: tuple[ModelCheck, ...] = MODEL_CHECKS,
) -> list[CheckOutcome]:
    """Every check (of MODEL_CHECKS by default) of the given models (all by default) over the rows of `window`."""
    outcomes = []
    for check in checks:
        if models is not None and check.model not in models:
            continue
        values = {"window_start": window[0], "window_end": window[1]}
        # DuckDB refuses a parameter the statement does not use (a view checked whole uses neither).
        found = con.execute(check.sql, {k: v for k, v in values.items() if f"${k}" in check.sql}).fetchall()
        outcomes.append(CheckOutcome(check, int(found[0][0])))
    return outcomes
