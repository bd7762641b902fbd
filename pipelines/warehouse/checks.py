"""Checks that guard the marts after a build: each grain holds (no key twice) and the numbers agree with each other.

Each check counts the rows that break it among the rows of the window just built (every row after a full build),
so an hourly run checks its hour without reading the whole history.
"""

from dataclasses import dataclass
from datetime import datetime

import duckdb

from pipelines.warehouse.sqltext import sql_text


@dataclass(frozen=True)
class ModelCheck:
    model: str
    name: str
    description: str
    sql: str
    """Counts the failing rows; may read $window_start and $window_end."""


@dataclass(frozen=True)
class CheckOutcome:
    check: ModelCheck
    failures: int

    @property
    def passed(self) -> bool:
        return self.failures == 0


def _unique(model: str, key: tuple[str, ...], column: str) -> ModelCheck:
    """No key appears twice among the keys of the window's rows (wherever the other copy lies).

    A key holding the window's column has all its copies in the window; another key is looked up in the whole table.
    """
    names = {"model": model, "column": column}
    if column in key:
        rows = sql_text(
            "select {key} from main.{model} where {column} >= $window_start and {column} < $window_end",
            key=key,
            **names,
        )
    else:
        (single,) = key
        rows = sql_text(
            "select {single} from main.{model} where {single} in "
            "(select {single} from main.{model} where {column} >= $window_start and {column} < $window_end)",
            single=single,
            **names,
        )
    return ModelCheck(
        model,
        f"unique_{key[0]}" if len(key) == 1 else "unique_grain",
        f"One row per {', '.join(key)}: the grain holds.",
        sql_text("select count(*) from ({body} group by all having count(*) > 1)", body=rows),
    )


MODEL_CHECKS = (
    _unique("trips", ("trip_id",), "end_time"),
    _unique("vehicle_state_intervals", ("event_id",), "started_at"),
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
    _unique("occupancy_hourly", ("zone_id", "scope", "area_id", "hour", "vehicle_state"), "hour"),
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
    _unique("compliance_violations", ("violation_key",), "evidence_at"),
    _unique("data_quality_hourly", ("zone_id", "hour_start"), "hour_start"),
    ModelCheck(
        "fleet_utilization_daily",
        "active_within_deployed",
        "No day counts more active vehicles than deployed ones.",
        "select count(*) from main.fleet_utilization_daily "
        "where day_start >= $window_start - interval 1 day and day_start < $window_end "
        "and active_vehicles > deployed_vehicles",
    ),
    _unique("trips_hourly", ("zone_id", "vehicle_type", "start_hour_utc"), "start_hour_utc"),
    _unique("gbfs_occupancy_hourly", ("zone_id", "scope", "area_id", "hour", "vehicle_state"), "hour"),
    _unique("area_trips_hourly", ("zone_id", "hour", "location", "scope", "area_id"), "hour"),
    _unique("events_hourly", ("zone_id", "hour", "event_type", "scope", "area_id"), "hour"),
)


def run_checks(
    con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime], models: set[str] | None = None
) -> list[CheckOutcome]:
    """Every check of the given models (all by default) over the rows of `window`."""
    outcomes = []
    for check in MODEL_CHECKS:
        if models is not None and check.model not in models:
            continue
        found = con.execute(check.sql, {"window_start": window[0], "window_end": window[1]}).fetchall()
        outcomes.append(CheckOutcome(check, int(found[0][0])))
    return outcomes
