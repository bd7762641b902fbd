"""Readable names for the codes the marts use, in one place for the page, the charts and the workbook."""

from pipelines.reports.privacy import SUPPRESSED_SUFFIX

RULES = {
    "parking_in_forbidden_area": "Trip ended in a no-parking or no-riding area",
    "parking_outside_operations": "Trip ended outside the operations area",
    "parking_outside_spot": "Trip ended outside a parking spot",
    "start_not_allowed": "Trip started where starts are not allowed",
    "speeding": "Trip faster than the speed limit",
    "idle_too_long": "Vehicle idle beyond the limit",
    "time_in_state_exceeded": "Vehicle too long in a state (broken, on a trip)",
    "parked_in_forbidden_area": "Vehicle listed in a no-parking area",
    "fleet_cap_exceeded": "Fleet above the cap",
    "fleet_below_minimum": "Fleet below the minimum",
}

AREA_TYPES = {
    "operations": "Operations area",
    "free-floating": "Free-floating area",
    "no-parking": "No parking",
    "no-riding": "No riding",
    "slow-zone": "Slow zone",
    "parking-spot": "Parking spot",
    "incentive": "Incentive area",
    "outside": "Outside every area",
}

VEHICLE_TYPES = {
    "scooter_standing": "E-scooter",
    "scooter_seated": "Seated scooter",
    "bicycle": "E-bike",
    "cargo_bicycle": "Cargo bike",
    "moped": "Moped",
    "car": "Car",
    "unknown": "Unknown type",
}


def rule(code: str) -> str:
    return RULES.get(code, code.replace("_", " "))


def area_type(code: str) -> str:
    return AREA_TYPES.get(code, code.replace("-", " "))


def vehicle_type(code: str) -> str:
    return VEHICLE_TYPES.get(code, code.replace("_", " "))


COLUMNS = {
    "local_date": "Day",
    "hour_local": "Hour (local)",
    "utc_offset": "UTC offset",
    "hours_in_day": "Hours in day",
    "hours_with_data": "Hours with data",
    "trips": "Trips",
    "vehicles_with_trips": "Vehicles with trips",
    "vehicles_in_service": "Vehicles in service",
    "deployed_fleet_avg": "Deployed fleet (avg)",
    "deployed_fleet_min": "Deployed fleet (fewest)",
    "deployed_fleet_max": "Deployed fleet (most)",
    "available_avg": "Available (avg)",
    "trips_per_vehicle": "Trips per vehicle",
    "idle_percent": "Idle time %",
    "violations": "Violations",
    "violations_per_100_trips": "Violations per 100 trips",
    "data_coverage_percent": "Data coverage %",
    "coverage_percent": "Coverage %",
    "vehicle_type": "Vehicle type",
    "rule": "Rule",
    "violation_count": "Violations",
    "trips_ended": "Trips ended",
    "area_name": "Area",
    "area_type": "Area type",
    "main_rule": "Most frequent rule",
    "share_percent": "Share %",
    "cell_lat": "Cell centre latitude",
    "cell_lng": "Cell centre longitude",
    "capacity": "Capacity",
    "avg_vehicles": "Vehicles parked (avg)",
    "occupancy_percent": "Occupancy %",
    "peak_vehicles": "Vehicles parked (most)",
    "hours_full": "Hours full",
    "hours": "Hours",
    "partitions_present": "Deliveries present",
    "partitions_missing": "Deliveries missing",
    "quarantined_records": "Records quarantined",
    "duplicate_records": "Duplicate records",
    "late_events": "Late events",
    "unmatched_records": "Unmatched records",
    "conflicting_records": "Conflicting records",
    "data_completeness": "Data",
    "vehicle_days": "Vehicle-days",
    "not_judged": "Not judged",
    "reason": "Reason",
    "why": "Why",
    "warm_up_hours": "Warm-up hours",
    "warm_up": "Warm-up hour",
    "figure": "Figure",
    "label": "Label",
    "value": "Value",
    "unit": "Unit",
    "description": "Description",
    "field": "Field",
    "not_judged_reason": "Reason",
}

TIMEZONE_SOURCES = {
    "configuration": "set in the configuration",
    "gbfs_system_information": "from GBFS system_information",
    "zone_geometry": "from the zone's geometry",
}


def timezone_source(code: str | None) -> str:
    return TIMEZONE_SOURCES.get(code or "", "source unknown")


def column(name: str) -> str:
    """A column's title for readers; a suppression flag reads as its count's title followed by "suppressed"."""
    if name.endswith(SUPPRESSED_SUFFIX):
        return f"{column(name.removesuffix(SUPPRESSED_SUFFIX))} suppressed"
    return COLUMNS.get(name, name.replace("_", " ").capitalize())


def titles(names: list[str]) -> dict[str, str]:
    """Readable titles of a table's columns, each unique (two columns of one title get their names added)."""
    found = {name: column(name) for name in names}
    counts: dict[str, int] = {}
    for title in found.values():
        counts[title] = counts.get(title, 0) + 1
    return {name: title if counts[title] == 1 else f"{title} ({name})" for name, title in found.items()}
