"""The MDS 2.0 micromobility vehicle state machine, as data: which event types move a vehicle from which states to
which (`shared/specs/mds/2.0/docs/modes/micromobility.md`, "Vehicle State Events").

One definition serves the warehouse, which orders events that share a timestamp along it (event_order.py), and the
tests, which check that the state timeline it builds is a path of it.
"""

from dataclasses import dataclass
from functools import cache

STATES = (
    "available",
    "elsewhere",
    "missing",
    "non_contactable",
    "non_operational",
    "on_trip",
    "removed",
    "reserved",
)
EVERY_STATE = frozenset(STATES)
# "Vehicles can enter the non_contactable state [from] any other state" and "missing can go to any state".
_BUT_MISSING = ("available", "elsewhere", "non_operational", "on_trip", "removed", "reserved")


@dataclass(frozen=True)
class Transition:
    from_states: frozenset[str]
    to_state: str
    event_type: str


def _rows(from_states: tuple[str, ...], to_states: tuple[str, ...], *event_types: str) -> list[Transition]:
    return [Transition(frozenset(from_states), to, event) for to in to_states for event in event_types]


# The spec's table, row by row, then the two sentences above it (comms_restored/unspecified out of
# non_contactable, located/unspecified out of missing, to any state).
TRANSITIONS: tuple[Transition, ...] = (
    *_rows(("available",), ("non_operational",), "battery_low", "maintenance", "off_hours", "system_suspend"),
    *_rows(("available",), ("reserved",), "reservation_start"),
    *_rows(_BUT_MISSING, ("non_contactable",), "comms_lost", "unspecified"),
    *_rows(("available", "non_contactable", "missing"), ("non_operational",), "unspecified"),
    *_rows(
        ("available", "non_operational", "elsewhere"),
        ("removed",),
        "compliance_pick_up",
        "maintenance_pick_up",
        "rebalance_pick_up",
    ),
    *_rows(
        ("available", "non_operational", "elsewhere", "non_contactable", "missing"),
        ("removed",),
        "agency_pick_up",
        "decommissioned",
    ),
    *_rows(("available", "reserved"), ("on_trip",), "trip_start"),
    *_rows(("elsewhere",), ("on_trip",), "trip_enter_jurisdiction"),
    *_rows(("missing",), _BUT_MISSING, "located"),
    *_rows(("non_contactable",), _BUT_MISSING, "comms_restored"),
    *_rows(("non_contactable",), ("missing",), "not_located", "unspecified"),
    *_rows(("non_contactable", "missing"), ("elsewhere", "on_trip", "reserved"), "unspecified"),
    *_rows(("non_contactable", "missing", "non_operational", "available", "elsewhere"), ("removed",), "unspecified"),
    *_rows(("non_operational",), ("available",), "battery_charged", "maintenance", "on_hours", "system_resume"),
    *_rows(("non_operational", "non_contactable", "missing"), ("available",), "unspecified"),
    *_rows(("on_trip",), ("on_trip",), "changed_geographies"),
    *_rows(("on_trip",), ("available",), "trip_cancel", "trip_end"),
    *_rows(("on_trip",), ("elsewhere",), "trip_leave_jurisdiction"),
    *_rows(("removed", "non_contactable", "missing"), ("available",), "agency_drop_off", "provider_drop_off"),
    *_rows(("reserved",), ("available",), "reservation_cancel"),
    *_rows(("non_contactable",), STATES, "comms_restored", "unspecified"),
    *_rows(("missing",), STATES, "located", "unspecified"),
)
TRIP_CLOSING = frozenset({"trip_end", "trip_cancel"})


@cache
def _from_states() -> dict[tuple[str, str], frozenset[str]]:
    merged: dict[tuple[str, str], set[str]] = {}
    for t in TRANSITIONS:
        merged.setdefault((t.event_type, t.to_state), set()).update(t.from_states)
    return {key: frozenset(value) for key, value in merged.items()}


@cache
def _from_states_of_type() -> dict[str, frozenset[str]]:
    merged: dict[str, set[str]] = {}
    for t in TRANSITIONS:
        merged.setdefault(t.event_type, set()).update(t.from_states)
    return {key: frozenset(value) for key, value in merged.items()}


def from_states(event_types: tuple[str, ...], vehicle_state: str) -> frozenset[str]:
    """The states a vehicle can be in before an event with these types that leaves it in `vehicle_state`.

    An event with several ordered types passes through discarded intermediate states (MDS 2.0), so only its first
    type says where it can come from. A pair the table does not know (a type of another mode, a typo) is not
    judged: any state."""
    if not event_types:
        return EVERY_STATE
    if len(event_types) == 1:
        return _from_states().get((event_types[0], vehicle_state), EVERY_STATE)
    return _from_states_of_type().get(event_types[0], EVERY_STATE)


def is_transition(before: str, event_types: tuple[str, ...], vehicle_state: str) -> bool:
    """Whether an event with these types may take a vehicle from state `before` to `vehicle_state`."""
    return before in from_states(event_types, vehicle_state)


@cache
def precedence() -> dict[str, int]:
    """Each state's place on the way out of `available` and back: the most transitions a vehicle can make from
    `available` to reach it without returning to `available` (reserved 1, on_trip 2 through a reservation,
    elsewhere 3, ...). The recovery transitions out of non_contactable and missing (to any state) are left out,
    and states only they reach come after the others. Events that leave a vehicle `available` close the way,
    and come last.

    Among the orders of simultaneous events that are all valid paths, the one with the smallest precedence first is
    kept: a vehicle leaves `available` before it returns to it, and is reserved before its trip starts."""
    recovery = {"non_contactable", "missing"}
    onward = [t for t in TRANSITIONS if t.to_state != "available" and not t.from_states & recovery]
    depth: dict[str, int] = {}

    def walk(state: str, steps: int, seen: frozenset[str]) -> None:
        for t in onward:
            if state in t.from_states and t.to_state not in seen:
                depth[t.to_state] = max(depth.get(t.to_state, 0), steps + 1)
                walk(t.to_state, steps + 1, seen | {t.to_state})

    walk("available", 0, frozenset({"available"}))
    unreached = max(depth.values()) + 1
    return {state: (unreached + 1 if state == "available" else depth.get(state, unreached)) for state in STATES}
