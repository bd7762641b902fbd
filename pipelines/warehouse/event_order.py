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
order, still deterministic. Only instants with two or more events of one vehicle are stored.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.warehouse.frames import query_frame, registered
from pipelines.warehouse.state_machine import TRIP_CLOSING, from_states, precedence
from pipelines.warehouse.window import FULL_WINDOW, Window

# A search that explores more orders than this gives up and keeps the preference order (an instant of a few
# dozen events without a path); real instants find their path in a few steps.
MAX_STEPS = 20_000

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
    events.event_time,
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
    event_time,
    cast(event_id as uuid) as event_id,
    cast(position as integer) as position,
from ordered_events
order by event_time
"""
INSERT = """
insert into core.int_event_order
select zone_id, cast(device_id as uuid), event_time, cast(event_id as uuid), cast(position as integer),
from ordered_events
order by event_time
"""
SCHEMA: dict[str, pl.DataType] = {
    "zone_id": pl.String(),
    "device_id": pl.String(),
    "event_time": pl.Datetime("us", "UTC"),
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
    starts = {trip: e for e in events if "trip_start" in e.event_types for trip in e.trip_ids}
    closes = {trip: e for e in events if TRIP_CLOSING & set(e.event_types) for trip in e.trip_ids}
    # A trip the instant names but does not start began before it: it is open when the instant begins.
    under_way = {trip for e in events for trip in e.trip_ids if trip not in starts}
    sources = {
        e.event_id
        for e in events
        if not any(o is not e and o.vehicle_state in from_states(e.event_types, e.vehicle_state) for o in events)
    }
    trip_ends = {e.place for e in events if TRIP_CLOSING & set(e.event_types)}

    def preference(e: TiedEvent, place: tuple[float, float] | None) -> tuple[object, ...]:
        here = e.place == place if place is not None else e.place not in trip_ends
        return (
            not (set(e.trip_ids) & under_way),
            e.event_id not in sources,
            not here,
            rank.get(e.vehicle_state, max(rank.values())),
            min(e.trip_ids, default=""),
            e.event_id,
        )

    def allowed(e: TiedEvent, state: str | None, open_trips: frozenset[str], placed: set[str]) -> bool:
        if state is not None and state not in from_states(e.event_types, e.vehicle_state):
            return False
        for trip in e.trip_ids:
            start = starts.get(trip)
            if start is not None and start is not e and start.event_id not in placed:
                return False
            close = closes.get(trip)
            if close is e and any(trip in o.trip_ids and o is not e and o.event_id not in placed for o in events):
                return False
        return not ("trip_start" in e.event_types and open_trips - set(e.trip_ids))

    def after(e: TiedEvent, open_trips: frozenset[str]) -> frozenset[str]:
        if "trip_start" in e.event_types:
            open_trips |= set(e.trip_ids)
        if TRIP_CLOSING & set(e.event_types):
            open_trips -= set(e.trip_ids)
        return open_trips

    steps = 0

    def search(
        path: list[TiedEvent], state: str | None, place: tuple[float, float] | None, open_trips: frozenset[str]
    ) -> list[TiedEvent] | None:
        nonlocal steps
        if len(path) == len(events):
            return path
        placed = {e.event_id for e in path}
        candidates = sorted(
            (e for e in events if e.event_id not in placed and allowed(e, state, open_trips, placed)),
            key=lambda e: preference(e, place),
        )
        for e in candidates:
            steps += 1
            if steps > MAX_STEPS:
                return None
            found = search([*path, e], e.vehicle_state, e.place, after(e, open_trips))
            if found is not None:
                return found
        return None

    found = search([], None, None, frozenset(under_way))
    return found if found is not None else sorted(events, key=lambda e: preference(e, None))


def build_event_order(con: duckdb.DuckDBPyConnection, window: Window | None, add: bool) -> int:
    """core.int_event_order for the window's instants (every instant when not `add`): one row per event that
    shares its vehicle and timestamp with another, with its 1-based position among them."""
    start, end = window if window is not None and add else FULL_WINDOW
    tied = query_frame(con, TIED_EVENTS, {"window_start": start, "window_end": end})
    rows: dict[str, list[object]] = {name: [] for name in SCHEMA}
    if not tied.is_empty():
        for (zone_id, device_id, event_time), instant in tied.group_by(
            "zone_id", "device_id", "event_time", maintain_order=True
        ):
            events = [
                TiedEvent(
                    r["event_id"],
                    tuple(r["event_types"] or ()),
                    r["vehicle_state"],
                    tuple(t for t in (r["trip_ids"] or ()) if t is not None),
                    r["lat"],
                    r["lng"],
                )
                for r in instant.iter_rows(named=True)
            ]
            for position, e in enumerate(order_instant(events), start=1):
                rows["zone_id"].append(zone_id)
                rows["device_id"].append(device_id)
                rows["event_time"].append(event_time)
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
