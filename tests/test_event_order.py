"""Events that share a timestamp: ordered along the MDS 2.0 state machine, the same in every build.

Real feeds round times (to the second; published open data to 15 minutes), so a trip's start and end can carry one
timestamp. Ordered by their random ids, a trip_end came before its trip_start half the time and the vehicle stayed
on_trip for good."""

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.event_order import TiedEvent, order_instant
from pipelines.warehouse.state_machine import TRANSITIONS, from_states, is_transition, precedence
from tests.conftest import SPECS
from tests.scenario import event, table, tables, trip, uid, write_hours, write_system_information, write_vehicles
from tests.scenario import query as run

ZONE = "1"
T0 = datetime(2026, 3, 10, 8, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
L0, L1, L2 = (59.3293, 18.0686), (59.3321, 18.0612), (59.3255, 18.0801)


def tied(
    name: str, event_type: str, state: str, trips: tuple[str, ...] = (), at: tuple[float, float] = L0
) -> TiedEvent:
    return TiedEvent(uid(name), (event_type,), state, tuple(uid(t) for t in trips), at[0], at[1])


def types_in(order: list[TiedEvent]) -> list[str]:
    return [e.event_types[0] + ("@" + e.trip_ids[0][:4] if e.trip_ids else "") for e in order]


def assert_order(expected: list[TiedEvent]) -> None:
    """Every arrival order of the events gives `expected`: the order depends on the events alone."""
    for arrival in itertools.permutations(expected):
        assert order_instant(list(arrival)) == expected


# -- the state machine, from the spec -------------------------------------------------------------------------


def test_the_transition_table_is_the_specs() -> None:
    text = (SPECS / "mds/2.0/docs/modes/micromobility.md").read_text()
    rows = re.findall(r"^\| (`[^|]+`)\s*\| `(\w+)\s*`\s*\| `(\w+)`", text, re.MULTILINE)
    assert len(rows) == 45
    for sources, to_state, event_type in rows:
        for source in re.findall(r"`(\w+)`", sources):
            assert is_transition(source, (event_type,), to_state), (source, event_type, to_state)
    # Nothing beyond the table and the two sentences above it (to and from non_contactable, out of missing).
    extra = {
        (source, t.event_type, t.to_state)
        for t in TRANSITIONS
        for source in t.from_states
        if source not in ("non_contactable", "missing") and t.to_state != "non_contactable"
    }
    listed = {
        (source, event_type, to_state)
        for sources, to_state, event_type in rows
        for source in re.findall(r"`(\w+)`", sources)
    }
    assert extra <= listed
    assert not is_transition("available", ("trip_end",), "available")
    assert from_states(("trip_start",), "on_trip") == {"available", "reserved"}
    # [trip_end, battery_low]: from on_trip through available to non_operational; its first type says where from.
    assert is_transition("on_trip", ("trip_end", "battery_low"), "non_operational")


def test_precedence_leaves_available_before_returning_to_it() -> None:
    rank = precedence()
    assert rank["reserved"] < rank["on_trip"] < rank["elsewhere"] < rank["available"]
    assert rank["non_operational"] < rank["removed"] < rank["available"]
    assert max(rank.values()) == rank["available"]


# -- one instant ------------------------------------------------------------------------------------------------


def test_a_trip_starts_before_it_ends_whatever_its_ids() -> None:
    start = tied("x/start", "trip_start", "on_trip", ("x",))
    end = tied("x/end", "trip_end", "available", ("x",), at=L1)
    assert uid("x/end") < uid("x/start")  # ordered by id, the end would come first
    assert_order([start, end])


def test_a_trip_under_way_ends_before_the_next_starts_and_the_battery_runs_low() -> None:
    # The vehicle is on trip a (started earlier); at this instant a ends, b starts where a ended, and ends later.
    end_a = tied("a/end", "trip_end", "available", ("a",), at=L1)
    start_b = tied("b/start", "trip_start", "on_trip", ("b",), at=L1)
    assert_order([end_a, start_b])
    low = tied("low", "battery_low", "non_operational", at=L1)
    assert_order([end_a, low])


def test_a_reservation_its_trip_and_the_next_reservation() -> None:
    # Parked at L0: reserved, ridden to L1, reserved again at L1 within the same quarter hour.
    reserve = tied("r1", "reservation_start", "reserved")
    start = tied("t/start", "trip_start", "on_trip", ("t",))
    end = tied("t/end", "trip_end", "available", ("t",), at=L1)
    again = tied("r2", "reservation_start", "reserved", at=L1)
    assert_order([reserve, start, end, again])
    cancel = tied("r2/cancel", "reservation_cancel", "available", at=L1)
    assert_order([reserve, start, end, again, cancel])


def test_two_whole_trips_in_one_instant_follow_the_vehicle() -> None:
    # a from L0 to L1, then b from L1 to L2: b starts where a ended, so a comes first, and the vehicle is left at L2.
    trips = [
        tied("a/start", "trip_start", "on_trip", ("a",), at=L0),
        tied("a/end", "trip_end", "available", ("a",), at=L1),
        tied("b/start", "trip_start", "on_trip", ("b",), at=L1),
        tied("b/end", "trip_end", "available", ("b",), at=L2),
    ]
    assert_order(trips)
    # Told apart by place alone: with the trips' ids swapped the order is the same.
    swapped = [
        tied("b/start", "trip_start", "on_trip", ("b",), at=L0),
        tied("b/end", "trip_end", "available", ("b",), at=L1),
        tied("a/start", "trip_start", "on_trip", ("a",), at=L1),
        tied("a/end", "trip_end", "available", ("a",), at=L2),
    ]
    assert_order(swapped)


def test_a_pick_up_after_a_trip_and_a_drop_off() -> None:
    ride = [
        tied("p/start", "trip_start", "on_trip", ("p",)),
        tied("p/end", "trip_end", "available", ("p",), at=L1),
        tied("pick", "compliance_pick_up", "removed", at=L1),
        tied("drop", "provider_drop_off", "available", at=L2),
    ]
    assert_order(ride)


def test_events_that_admit_no_path_keep_a_fixed_order() -> None:
    # Two trip_ends of one trip under way: no path ends both; the preference order, whatever the arrival order.
    first = tied("y/end-1", "trip_end", "available", ("y",))
    second = tied("y/end-2", "trip_end", "available", ("y",))
    orders = {tuple(e.event_id for e in order_instant(list(p))) for p in itertools.permutations([first, second])}
    assert orders == {tuple(sorted([first.event_id, second.event_id]))}


# -- the warehouse ----------------------------------------------------------------------------------------------


def quarter_hour_city(lake: Path) -> None:
    """One scooter's morning as a feed that rounds its times to 15 minutes.

    08:00 dropped off at L0.  08:15 reserved, trip 1 L0 -> L1 (7 min), trip 2 starts at L1.  08:45 trip 2 ends at L2,
    battery low.  09:30 battery swapped.  Every event of an instant has an id that sorts it out of place."""
    at = {"08:00": T0, "08:15": T0 + 15 * M, "08:45": T0 + 45 * M, "09:30": T0 + H + 30 * M}
    device = "scooter-a"
    events = [
        event("drop", device, at["08:00"], "provider_drop_off", "available", location=L0),
        event("z-reserve", device, at["08:15"], "reservation_start", "reserved", location=L0),
        event("y-t1/start", device, at["08:15"], "trip_start", "on_trip", trips=["t1"], location=L0),
        event("a-t1/end", device, at["08:15"], "trip_end", "available", trips=["t1"], location=L1),
        event("b-t2/start", device, at["08:15"], "trip_start", "on_trip", trips=["t2"], location=L1),
        event("z-t2/end", device, at["08:45"], "trip_end", "available", trips=["t2"], location=L2),
        event("a-low", device, at["08:45"], "battery_low", "non_operational", location=L2),
        event("charged", device, at["09:30"], "battery_charged", "available", location=L2),
    ]
    trips = [
        trip("t1", device, at["08:15"], at["08:15"], start_at=L0, end_at=L1) | {"duration": 420},
        trip("t2", device, at["08:15"], at["08:45"], start_at=L1, end_at=L2) | {"duration": 1_500},
    ]
    write_system_information(lake, ZONE, T0)
    write_vehicles(lake, ZONE, T0, [device])
    write_hours(lake, ZONE, trips, events)


INTERVALS = "zone_id, device_id, started_at, position_in_instant"


@pytest.fixture(scope="module")
def quarter_hour_built(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """`quarter_hour_city` built in full, once for the module: its tests read it and build the lake elsewhere."""
    root = tmp_path_factory.mktemp("quarter-hour")
    quarter_hour_city(root / "lake")
    warehouse = Warehouse(root / "warehouse.duckdb", root / "lake")
    warehouse.build()
    return warehouse


def test_tied_events_make_a_valid_timeline_and_exact_occupancy(quarter_hour_built: Warehouse) -> None:
    warehouse = quarter_hour_built
    intervals = table(warehouse, "vehicle_state_intervals", INTERVALS)
    assert intervals.select("vehicle_state", "started_by", "position_in_instant", "duration_s").rows() == [
        ("available", "provider_drop_off", 1, 900.0),
        ("reserved", "reservation_start", 1, 0.0),
        ("on_trip", "trip_start", 2, 0.0),
        ("available", "trip_end", 3, 0.0),
        ("on_trip", "trip_start", 4, 1_800.0),
        ("available", "trip_end", 1, 0.0),
        ("non_operational", "battery_low", 2, 2_700.0),
        ("available", "battery_charged", 1, None),
    ]
    states = intervals["vehicle_state"].to_list()
    assert all(
        is_transition(before, (by,), after)
        for before, by, after in zip(states, intervals["started_by"][1:], states[1:], strict=False)
    )
    # By hand, zone-wide, the horizon being 10:00 (the last delivered hour): 08:00-08:15 available, 08:15-08:45
    # on trip 2, 08:45-09:30 non_operational, then available.
    occupancy = run(
        warehouse,
        "select hour, vehicle_state, avg_vehicles, max_vehicles from occupancy_hourly "
        "where area_type = 'zone' and vehicle_state in ('available', 'on_trip', 'non_operational', 'reserved') "
        "order by hour, vehicle_state",
    )
    assert occupancy.rows() == [
        (T0, "available", 0.25, 1),
        (T0, "non_operational", 0.25, 1),
        (T0, "on_trip", 0.5, 1),
        (T0, "reserved", 0.0, 0),
        (T0 + H, "available", 0.5, 1),
        (T0 + H, "non_operational", 0.5, 1),
        (T0 + H, "on_trip", 0.0, 0),
        (T0 + H, "reserved", 0.0, 0),
    ]


@pytest.mark.slow
def test_tied_events_order_the_same_in_window_and_full_builds(tmp_path: Path, quarter_hour_built: Warehouse) -> None:
    full = quarter_hour_built
    hourly = Warehouse(tmp_path / "hourly.duckdb", full.lake_dir)
    hourly.build(window=(T0, T0 + H))
    hourly.build(window=(T0 + H, T0 + 2 * H))
    hourly.build(window=(T0, T0 + H))  # an old hour again: its instants' order is rebuilt the same
    orders = {
        "vehicle_state_intervals": INTERVALS,
        "core.int_event_order": "event_time, position",
        "occupancy_hourly": "zone_id, area_type, area_id, hour, vehicle_state",
    }
    expected = tables(full, orders)
    for relation, frame in tables(hourly, orders).items():
        assert_frame_equal(frame, expected[relation], check_row_order=True)
    assert expected["core.int_event_order"].height == 6


@pytest.mark.parametrize("arrival", ["as happened", "reversed"])
def test_delivery_order_does_not_change_the_order(tmp_path: Path, arrival: str) -> None:
    lake = tmp_path / "lake"
    at = T0 + 15 * M
    events = [
        event("start", "scooter-a", at, "trip_start", "on_trip", trips=["t"], location=L0),
        event("end", "scooter-a", at, "trip_end", "available", trips=["t"], location=L1),
    ]
    write_hours(lake, ZONE, [], events if arrival == "as happened" else events[::-1])
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lake)
    warehouse.build()
    intervals = table(warehouse, "vehicle_state_intervals", INTERVALS)
    assert intervals.select("vehicle_state", "position_in_instant").rows() == [("on_trip", 1), ("available", 2)]


def test_an_instant_of_hundreds_of_events_is_ordered_without_a_search() -> None:
    # A feed that stamps a day's events with its date: 300 events of one vehicle at one instant.
    day = [tied(f"trip-{n}/start", "trip_start", "on_trip", (f"trip-{n}",)) for n in range(150)] + [
        tied(f"trip-{n}/end", "trip_end", "available", (f"trip-{n}",)) for n in range(150)
    ]
    order = order_instant(day)
    assert order == order_instant(day[::-1])
    # By precedence: every start (on_trip) before every end (available).
    assert {e.event_types[0] for e in order[:150]} == {"trip_start"}
