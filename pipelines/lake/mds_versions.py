"""How MDS 1.2 and 0.4 records say what MDS 2.0 says: the mapping of states, event types and vehicle types, as data.

The lake keeps every delivery's raw response as it came and its records in the one MDS 2.0 shape the staging models
read, each row saying the version it was delivered in (`mds_version`). This module is the one place that knows how
an older version's words become 2.0's; `docs/mds_versions.md` prints the same tables and says why.

Derived from the state and event tables of the specification texts in `shared/specs/mds/`:
- 0.4.1 (`provider/README.md`, "Event Types"): an `event_type` (the state: available, reserved, unavailable, removed)
  and an `event_type_reason`. 0.4 has no `on_trip` state: a rider's pick-up is `reserved`/`user_pick_up` with the
  trip in `associated_trip` (the spec leaves "reserved" ambiguous between a hold and possession; with a trip it is
  possession). A pick-up without a trip is read as a hold (`reserved`/`reservation_start`), a drop-off without one as
  its end (`reservation_cancel`).
- 1.2 (`provider/status_changes.json`, the state and event pairs): the 2.0 names already, but for the state
  `unknown` (2.0 splits it into `non_contactable` and `missing`) and the event `missing` (2.0: `not_located`).
- 2.0 (`docs/modes/micromobility.md`, "Vehicle State Events"): every mapped pair is one of its (to-state, event
  type) rows, so a mapped event never contradicts the state machine by itself.
"""

from dataclasses import dataclass
from typing import Final, Literal

MdsVersion = Literal["2.0", "1.2", "0.4"]
MDS_VERSIONS: Final[tuple[MdsVersion, ...]] = ("2.0", "1.2", "0.4")

MEDIA_TYPES: Final[dict[MdsVersion, str]] = {
    "2.0": "application/vnd.mds+json;version=2.0",
    "1.2": "application/vnd.mds+json;version=1.2",
    "0.4": "application/vnd.mds.provider+json;version=0.4",
}
"""The `Accept` header each version is asked for with (the seed's "Versioning" tables)."""

# -- 0.4 -----------------------------------------------------------------------------------------------------------

EVENTS_0_4: Final[dict[tuple[str, str], tuple[str, str]]] = {
    # (0.4 event_type, event_type_reason): (2.0 vehicle_state, 2.0 event type), for a record with a trip where the
    # reason is a rider's (user_pick_up, user_drop_off).
    ("available", "service_start"): ("available", "provider_drop_off"),
    ("available", "user_drop_off"): ("available", "trip_end"),
    ("available", "rebalance_drop_off"): ("available", "provider_drop_off"),
    ("available", "maintenance_drop_off"): ("available", "provider_drop_off"),
    ("available", "agency_drop_off"): ("available", "agency_drop_off"),
    ("reserved", "user_pick_up"): ("on_trip", "trip_start"),
    ("unavailable", "maintenance"): ("non_operational", "maintenance"),
    ("unavailable", "low_battery"): ("non_operational", "battery_low"),
    ("removed", "service_end"): ("removed", "unspecified"),
    ("removed", "rebalance_pick_up"): ("removed", "rebalance_pick_up"),
    ("removed", "maintenance_pick_up"): ("removed", "maintenance_pick_up"),
    ("removed", "agency_pick_up"): ("removed", "agency_pick_up"),
}
EVENTS_0_4_WITHOUT_TRIP: Final[dict[tuple[str, str], tuple[str, str]]] = {
    # A rider's pick-up or drop-off with no trip: a hold, not a ride (the 0.4 schema asks for associated_trip on both;
    # a feed that leaves it out means a reservation).
    ("reserved", "user_pick_up"): ("reserved", "reservation_start"),
    ("available", "user_drop_off"): ("available", "reservation_cancel"),
}

# -- 1.2 -----------------------------------------------------------------------------------------------------------

STATES_1_2: Final[dict[str, str]] = {
    "available": "available",
    "elsewhere": "elsewhere",
    "non_operational": "non_operational",
    "on_trip": "on_trip",
    "removed": "removed",
    "reserved": "reserved",
    "unknown": "non_contactable",  # `missing` when the event says so (MISSING_1_2)
}
EVENTS_1_2: Final[dict[str, str]] = {
    **{
        name: name
        for name in (
            "agency_drop_off",
            "agency_pick_up",
            "battery_charged",
            "battery_low",
            "comms_lost",
            "comms_restored",
            "compliance_pick_up",
            "decommissioned",
            "located",
            "maintenance",
            "maintenance_pick_up",
            "off_hours",
            "on_hours",
            "provider_drop_off",
            "rebalance_pick_up",
            "reservation_cancel",
            "reservation_start",
            "system_resume",
            "system_suspend",
            "trip_cancel",
            "trip_end",
            "trip_enter_jurisdiction",
            "trip_leave_jurisdiction",
            "trip_start",
            "unspecified",
        )
    },
    "missing": "not_located",
}
MISSING_1_2: Final = ("unknown", "missing")
"""1.2's (state, event) for a vehicle whose place is lost for good: 2.0's `missing` state."""

# -- vehicle types ---------------------------------------------------------------------------------------------------

VEHICLE_TYPES_LEGACY: Final[dict[str, str]] = {
    # 1.2 and 0.4 `vehicle_type` to 2.0's: 2.0 split the standing e-scooter (1.x `scooter`) from the seated one.
    "bicycle": "bicycle",
    "cargo_bicycle": "cargo_bicycle",
    "car": "car",
    "scooter": "scooter_standing",
    "moped": "moped",
    "other": "other",
}


@dataclass(frozen=True)
class Gap:
    """Something a version cannot say, where it shows and what the warehouse holds instead (never a guess)."""

    versions: tuple[MdsVersion, ...]
    columns: str
    holds: str


GAPS: Final[tuple[Gap, ...]] = (
    Gap(("1.2", "0.4"), "`trips.trip_type`", "null: neither version has trip types."),
    Gap(("1.2", "0.4"), "`lake.mds_trips.accessibility_attributes`", "null: neither version has them."),
    Gap(
        ("2.0",),
        "`lake.mds_trips.vehicle_type`",
        "null: 2.0 says a vehicle's type in /vehicles only (`trips.vehicle_type` comes from there; for 1.2 and 0.4 "
        "from the vehicles snapshot, else the trip's own record).",
    ),
    Gap(
        ("1.2", "0.4"),
        "`lake.mds_events.event_id` (`event_id` of the marts)",
        "derived: status changes have no id; a UUID of what the record says (device, time, state and events, trip), "
        "so a record delivered twice is one record.",
    ),
    Gap(
        ("0.4",),
        "`vehicle_state_intervals.vehicle_state`, `occupancy_hourly` (state `reserved`)",
        "0.4 has no hold that is not a ride (its `reserved` is a rider's pick-up, read as `on_trip`): a feed that "
        "serves no holds shows the vehicle `available` throughout; `reserved` is not known for such a zone.",
    ),
    Gap(
        ("0.4",),
        "`events_hourly.event_type`, `vehicle_state_intervals.started_by`",
        "0.4's reasons, mapped (docs/mds_versions.md): a drop-off of any kind is `provider_drop_off` (a vehicle made "
        "available again on the street, `maintenance_drop_off` in 0.4, included), a compliance pick-up is not told "
        "from a rebalancing one, the end of service is `unspecified`.",
    ),
    Gap(("1.2", "0.4"), "`lake.mds_vehicle_status.telemetry_*`", "null: /vehicles has no telemetry."),
    Gap(("1.2", "0.4"), "`lake.mds_vehicles.maximum_speed_kph`", "null: neither version has it."),
)


class UnmappedEvent(ValueError):
    """A legacy state or event the mapping has no 2.0 meaning for: the record is quarantined with this reason."""


def event_from_0_4(event_type: str, reason: str, has_trip: bool) -> tuple[str, list[str]]:
    """The 2.0 (vehicle_state, event_types) of a 0.4 status change."""
    key = (event_type, reason)
    if not has_trip and key in EVENTS_0_4_WITHOUT_TRIP:
        state, event = EVENTS_0_4_WITHOUT_TRIP[key]
        return state, [event]
    if key not in EVENTS_0_4:
        raise UnmappedEvent(f"({event_type!r}, {reason!r}) is not an MDS 0.4 event_type and event_type_reason pair")
    state, event = EVENTS_0_4[key]
    return state, [event]


def event_from_1_2(vehicle_state: str, event_types: list[str]) -> tuple[str, list[str]]:
    """The 2.0 (vehicle_state, event_types) of a 1.2 status change."""
    if vehicle_state not in STATES_1_2:
        raise UnmappedEvent(f"vehicle_state {vehicle_state!r} is not an MDS 1.2 state")
    unknown = [e for e in event_types if e not in EVENTS_1_2]
    if unknown or not event_types:
        raise UnmappedEvent(f"event_types {event_types!r} are not MDS 1.2 vehicle events")
    state = STATES_1_2[vehicle_state]
    if (vehicle_state, event_types[-1]) == MISSING_1_2:
        state = "missing"
    return state, [EVENTS_1_2[e] for e in event_types]


def vehicle_type_from_legacy(vehicle_type: str) -> str:
    if vehicle_type not in VEHICLE_TYPES_LEGACY:
        raise UnmappedEvent(f"vehicle_type {vehicle_type!r} is not an MDS 1.2 or 0.4 vehicle type")
    return VEHICLE_TYPES_LEGACY[vehicle_type]
