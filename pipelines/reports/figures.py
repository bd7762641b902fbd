"""The key figures: the period's headline numbers, one row each, with their unit and what they count."""

from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines.reports import labels
from pipelines.reports.period import ReportPeriod
from pipelines.reports.privacy import SUPPRESSED_SUFFIX

SCHEMA = {
    "figure": pl.String,
    "label": pl.String,
    "value": pl.Float64,
    "unit": pl.String,
    "value_suppressed": pl.Boolean,
    "description": pl.String,
}


@dataclass(frozen=True)
class Figure:
    name: str
    label: str
    unit: str
    description: str
    basis: tuple[str, ...] = ()
    """The counts the figure is computed from: it is suppressed when any of them is."""


FIGURES = (
    Figure("trips", "Trips", "trips", "Trips started in the period, anomalies included.", ("trips",)),
    Figure(
        "unique_vehicles",
        "Unique vehicles",
        "vehicles",
        "Distinct vehicles available, reserved, non-operational or on a trip at any time in the period.",
    ),
    Figure(
        "vehicles_with_trips",
        "Vehicles with trips",
        "vehicles",
        "Distinct vehicles that started at least one trip in the period.",
        ("vehicles_with_trips",),
    ),
    Figure(
        "deployed_fleet_avg",
        "Deployed fleet, average",
        "vehicles",
        "Time-weighted average of vehicles in the public right of way: available, reserved, non-operational "
        "or on a trip (MDS dockless.deployed.avg).",
    ),
    Figure("deployed_fleet_min", "Deployed fleet, fewest", "vehicles", "Fewest deployed vehicles at any moment."),
    Figure("deployed_fleet_max", "Deployed fleet, most", "vehicles", "Most deployed vehicles at any moment."),
    Figure(
        "trips_per_vehicle_per_day",
        "Trips per vehicle per day",
        "trips",
        "Trips over vehicle-days in the public right of way (the deployed fleet, vehicles on a trip included), "
        "as the daily table counts them: its trips summed over its vehicle-days summed.",
        ("trips",),
    ),
    Figure(
        "trip_duration_median_min",
        "Median trip duration",
        "min",
        "Median duration of the trips, anomalies (under 10 s, over 5 h, impossible speed) left out.",
        ("trips",),
    ),
    Figure(
        "trip_distance_median_km",
        "Median trip distance",
        "km",
        "Median reported distance of the trips, anomalies left out.",
        ("trips",),
    ),
    Figure("violations", "Violations", "violations", "Breaches of every rule in the period.", ("violations",)),
    Figure(
        "violations_per_100_trips",
        "Violations per 100 trips",
        "per 100 trips",
        "Violations of every rule per 100 trips ended in the period.",
        ("violations", "trips_ended"),
    ),
    Figure(
        "parking_occupancy_percent",
        "Parking-spot occupancy",
        "%",
        "Vehicles parked in parking spots as a share of their capacity, averaged over spots and hours.",
    ),
    Figure(
        "data_coverage_percent",
        "Data coverage",
        "%",
        "Share of the expected hourly MDS deliveries (trips, events) present, over every hour of the period.",
    ),
    Figure(
        "hours_with_data",
        "Hours with data",
        "hours",
        "Hours of the period with an MDS delivery (trips or events), of the hours in the period.",
    ),
    Figure(
        "warm_up_hours",
        "Warm-up hours",
        "hours",
        "Hours at the start of the data (or after a gap) when vehicles parked since before it may be missing: "
        "fleet counts in them are lower bounds.",
    ),
)


def _hidden(value: Any, k: int) -> bool:
    return value is not None and 0 < value < k


def key_figures(wide: dict[str, Any], by_rule: pl.DataFrame, period: ReportPeriod, k: int) -> pl.DataFrame:
    """One row per figure; then one per rule (its violations per 100 trips, from compliance_by_rule)."""
    rows = []
    for figure in FIGURES:
        suppressed = any(_hidden(wide.get(count), k) for count in figure.basis)
        value = None if suppressed or wide.get(figure.name) is None else float(wide[figure.name])
        rows.append((figure.name, figure.label, value, figure.unit, suppressed, figure.description))
    rows.append(
        (
            "hours_in_period",
            "Hours in the period",
            float(period.hours),
            "hours",
            False,
            "Hours of the city's local days in the period (23 or 25 on days the clocks change).",
        )
    )
    for rule in by_rule.iter_rows(named=True):
        suppressed = bool(rule["violation_count" + SUPPRESSED_SUFFIX] or rule["trips_ended" + SUPPRESSED_SUFFIX])
        rate = rule["violations_per_100_trips"]
        if rule.get("not_judged") and rule["trips_ended"] and rule["not_judged"] >= rule["trips_ended"]:
            rate = None  # no trip of the period was judged: the rate is not known (see rules_not_judged), not 0
        rows.append(
            (
                f"violations_per_100_trips.{rule['rule']}",
                f"Compliance: {labels.rule(rule['rule'])}",
                None if suppressed or rate is None else float(rate),
                "per 100 trips",
                suppressed,
                f"Violations of the rule {rule['rule']} per 100 trips ended in the period.",
            )
        )
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")
