"""The order of a vehicle's events that share a timestamp: core.int_event_order.

Real feeds round their times (to the second; published open data to 15 minutes), so a trip's start and end, or one
trip's end and the next one's start, can carry the same timestamp. Ordered by their random ids, a trip_end would
come before its trip_start half the time and leave the vehicle on_trip for good. Here the events of one vehicle at
one instant are put in an order that is a path of the MDS 2.0 state machine (state_machine.py):

- each event's vehicle_state must be one its successor can start from (a trip_start needs available or reserved);
- a trip's trip_start comes before its other events of the instant, its trip_end or trip_cancel after them, and
  no trip starts while another is open (one that began before the instant is open until it ends);
- among the orders that satisfy both, the first in a fixed preference: events of a trip already under way, events
  no other event of the instant can lead to, an event where the previous one left the vehicle (a parked vehicle is
  reserved and starts its next trip where the last ended; the first event is not where a trip of the instant
  ends), then the precedence of the state they leave the vehicle in (it leaves `available` before returning),
  then trip and event ids.

The order depends on the instant's events alone, so a window build and a full build agree, and it is the same at
every build. An instant whose events admit no such path (a lost event, an impossible state) keeps the preference
order, still deterministic; so does an instant of more than MAX_SEARCHED_EVENTS events (by precedence and ids).
Only instants with two or more events of one vehicle are stored.

What the instant alone cannot tell is the state the vehicle was in before it. When its events make a round trip
(repaired and broken again, a reservation cancelled and another made, picked up and dropped off around a ride, all
within one bin), the path kept starts where the preference says, which may be another turn of the same round than
the one that happened: valid within the instant, not always from the state before it. On the embedded provider's
city (seed 11, 2 zones x 150 vehicles, 2 days) that happens with times rounded to the hour (4 vehicles; 22 of 383
zone x hour x state occupancy rows differ from the truth), never with 15-minute or one-second bins
(benchmarks/rounded_times_truth.py). Taking the state before the instant into account would make an instant's order
depend on the instants before it, which a window build would then have to rebuild in chains.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.warehouse.frames import registered
from pipelines.warehouse.state_machine import TRIP_CLOSING, from_states, precedence
from pipelines.warehouse.window import FULL_WINDOW, Window

# A search that explores more orders than this gives up and keeps the preference order (an instant of a few
# dozen events without a path); real instants find their path in a few steps.
MAX_STEPS = 20_000
# A vehicle makes a few transitions in a bin of even an hour; an instant of more events is a feed that stamps them
# all alike (a date for a time, say). It is not searched, nor a recursion as deep as it is long: its events keep
# the precedence order, then trip and event ids.
MAX_SEARCHED_EVENTS = 100

TIED_EVENTS = """
with events as (
    select zone_id, device_id, event_time, event_id, event_types, vehicle_state, trip_ids, lat, lng,
    from staging.stg_mds__events
    where event_time >= $window_start and event_time < $window_end
),

tied as (
    select zone_id, device_id, event_time from events group by all having count(*) > 1
)

select
    events.zone_id,
    cast(events.device_id as varchar) as device_id,
    epoch_us(events.event_time) as event_us,
    cast(events.event_id as varchar) as event_id,
    events.event_types,
    events.vehicle_state,
    cast(events.trip_ids as varchar[]) as trip_ids,
    events.lat,
    events.lng,
from events
semi join tied
    on events.zone_id = tied.zone_id and events.device_id = tied.device_id and events.event_time = tied.event_time
order by events.zone_id, events.device_id, events.event_time, events.event_id
"""
TABLE = """
create or replace table core.int_event_order as
select
    zone_id,
    cast(device_id as uuid) as device_id,
    timestamptz '1970-01-01 00:00:00+00' + to_microseconds(event_us) as event_time,
    cast(event_id as uuid) as event_id,
    cast(position as integer) as position,
from ordered_events
order by event_time
"""
INSERT = """
insert into core.int_event_order
select
    zone_id,
    cast(device_id as uuid),
    timestamptz '1970-01-01 00:00:00+00' + to_microseconds(event_us) as event_time,
    cast(event_id as uuid),
    cast(position as integer),
from ordered_events
order by event_time
"""
COLUMNS = ("zone_id", "device_id", "event_time", "event_id", "position")
"""The table's columns: an older table without them is built whole again."""
# The rows as Python computes them; the event's time in epoch microseconds (exact, and no time zone to convert).
SCHEMA: dict[str, pl.DataType] = {
    "zone_id": pl.String(),
    "device_id": pl.String(),
    "event_us": pl.Int64(),
    "event_id": pl.String(),
    "position": pl.Int32(),
}


@dataclass(frozen=True)
class TiedEvent:
    """One event of an instant, as much of it as its place in the order depends on."""

    event_id: str
    event_types: tuple[str, ...]
    vehicle_state: str
    trip_ids: tuple[str, ...] = ()
    lat: float | None = None
    lng: float | None = None

    @property
    def place(self) -> tuple[float, float] | None:
        return None if self.lat is None or self.lng is None else (self.lat, self.lng)


def order_instant(events: Sequence[TiedEvent]) -> list[TiedEvent]:
    """The events of one vehicle at one instant in the order they happened, as far as the state machine and the
    trips they name can tell (see the module's docstring)."""
    rank = precedence()
    count = len(events)
    last = max(rank.values())
    if count > MAX_SEARCHED_EVENTS:
        return sorted(events, key=lambda e: (rank.get(e.vehicle_state, last), min(e.trip_ids, default=""), e.event_id))
    sources_of = [from_states(e.event_types, e.vehicle_state) for e in events]
    trips = [frozenset(e.trip_ids) for e in events]
    opens = ["trip_start" in e.event_types for e in events]
    closes = [bool(TRIP_CLOSING & set(e.event_types)) for e in events]
    started = {trip for i in range(count) if opens[i] for trip in trips[i]}
    # A trip the instant names but does not start began before it: it is open when the instant begins.
    under_way = frozenset(trip for i in range(count) for trip in trips[i] if trip not in started)
    # What must come first: a trip's start before its other events, its end after them.
    needs = [
        {
            j
            for j in range(count)
            if j != i and trips[i] & trips[j] and ((opens[j] and not opens[i]) or (closes[i] and not closes[j]))
        }
        for i in range(count)
    ]
    trip_ends = {e.place for e, close in zip(events, closes, strict=True) if close}
    fixed = [
        (
            not (trips[i] & under_way),
            # An event no other event of the instant can lead to can only come first.
            any(j != i and events[j].vehicle_state in sources_of[i] for j in range(count)),
        )
        for i in range(count)
    ]
    tail = [(rank.get(e.vehicle_state, last), min(e.trip_ids, default=""), e.event_id) for e in events]

    def preference(i: int, place: tuple[float, float] | None) -> tuple[object, ...]:
        here = events[i].place == place if place is not None else events[i].place not in trip_ends
        return (*fixed[i], not here, *tail[i])

    def allowed(i: int, state: str | None, open_trips: frozenset[str], placed: set[int]) -> bool:
        if state is not None and state not in sources_of[i]:
            return False
        if not needs[i] <= placed:
            return False
        return not (opens[i] and open_trips - trips[i])

    def after(i: int, open_trips: frozenset[str]) -> frozenset[str]:
        if opens[i]:
            open_trips |= trips[i]
        if closes[i]:
            open_trips -= trips[i]
        return open_trips

    steps = 0

    def search(
        path: list[int],
        placed: set[int],
        state: str | None,
        place: tuple[float, float] | None,
        open_trips: frozenset[str],
    ) -> list[int] | None:
        nonlocal steps
        if len(path) == count:
            return path
        candidates = sorted(
            (i for i in range(count) if i not in placed and allowed(i, state, open_trips, placed)),
            key=lambda i: preference(i, place),
        )
        for i in candidates:
            steps += 1
            if steps > MAX_STEPS:
                return None
            e = events[i]
            found = search([*path, i], placed | {i}, e.vehicle_state, e.place, after(i, open_trips))
            if found is not None:
                return found
        return None

    found = search([], set(), None, None, under_way)
    order = found if found is not None else sorted(range(count), key=lambda i: preference(i, None))
    return [events[i] for i in order]


def build_event_order(con: duckdb.DuckDBPyConnection, window: Window | None, add: bool) -> int:
    """core.int_event_order for the window's instants (every instant when not `add`): one row per event that
    shares its vehicle and timestamp with another, with its 1-based position among them."""
    start, end = window if window is not None and add else FULL_WINDOW
    # Plain tuples: an instant is a handful of rows, and a frame per instant would cost more than ordering it.
    tied = con.execute(TIED_EVENTS, {"window_start": start, "window_end": end}).fetchall()
    rows: dict[str, list[object]] = {name: [] for name in SCHEMA}
    for (zone_id, device_id, event_us), instant in itertools.groupby(tied, key=lambda row: (row[0], row[1], row[2])):
        events = [
            TiedEvent(event_id, tuple(types or ()), state, tuple(t for t in (trips or ()) if t is not None), lat, lng)
            for _, _, _, event_id, types, state, trips, lat, lng in instant
        ]
        for position, e in enumerate(order_instant(events), start=1):
            rows["zone_id"].append(zone_id)
            rows["device_id"].append(device_id)
            rows["event_us"].append(event_us)
            rows["event_id"].append(e.event_id)
            rows["position"].append(position)
    ordered = pl.DataFrame(rows, schema=SCHEMA)
    with registered(con, "ordered_events", ordered):
        if add:
            con.execute(
                "delete from core.int_event_order where event_time >= $window_start and event_time < $window_end",
                {"window_start": start, "window_end": end},
            )
            con.execute(INSERT)
        else:
            con.execute(TABLE)
    return ordered.height
