"""Data faults of records, decided per record from the seed so every read agrees: when a record is published (late
or not), whether it is sent twice, followed by a corrupted or an implausible copy, first served with a preliminary
distance, or contradicts its own state; and the damaged copies themselves, each kind a member of an Enum."""

from enum import IntEnum
from typing import Any, Literal

import msgspec
import numpy as np

from fleetlake_provider.clock import HOUR_MS
from fleetlake_provider.faults import Faults
from fleetlake_provider.ids import seed_from, uuid_from

Record = dict[str, Any]
"""One MDS record as served (a trip or an event)."""
Entity = Literal["event", "trip"]


class Malformation(IntEnum):
    """How a corrupted copy (`Faults.malformed_rate`) is damaged; a schema rejects it. The values are the seed's
    draws, so a seed keeps damaging the same records the same way."""

    WRONG_TYPE = 1
    """A time as a string (`"1774857600000Z"`): an event's `timestamp`, a trip's `end_time`."""
    MISSING_FIELD = 2
    """No `device_id`."""
    IMPOSSIBLE_COORDINATES = 3
    """Latitude 123.4567: an event's `location`, a trip's `end_location`."""


class EventImplausibility(IntEnum):
    """How an implausible copy of an event (`Faults.implausible_rate`) is wrong while well typed."""

    PUBLICATION_IN_SECONDS = 1
    """`publication_time` in seconds where MDS says milliseconds."""
    UNKNOWN_STATE = 2
    """`vehicle_state` "parked", which MDS does not know."""
    PLACEHOLDER_LOCATION = 3
    """`location` (0, 0)."""
    ID_WITH_NEWLINE = 4
    """An `event_id` that is a UUID followed by a newline."""
    NAN = 5
    """`battery_percent` NaN: the page is no longer strict JSON."""
    UNKNOWN_EVENT_TYPE = 6
    """`event_types` ["teleported"]."""
    PUBLISHED_NEXT_YEAR = 7
    """`publication_time` 400 days after the event."""


class TripImplausibility(IntEnum):
    """How an implausible copy of a trip (`Faults.implausible_rate`) is wrong while well typed."""

    START_IN_SECONDS = 1
    """`start_time` in seconds where MDS says milliseconds."""
    ENDS_BEFORE_START = 2
    """`start_time` a minute after `end_time`."""
    PLACEHOLDER_START = 3
    """`start_location` (0, 0)."""
    ID_WITH_NEWLINE = 4
    """A `trip_id` that is a UUID followed by a newline."""
    NAN = 5
    """`duration` NaN: the page is no longer strict JSON."""
    TEN_YEAR_TRIP = 6
    """`start_time` ten years before `end_time`."""
    PLACEHOLDER_END = 7
    """`end_location` (0, 0)."""


IMPLAUSIBILITIES: dict[Entity, type[EventImplausibility] | type[TripImplausibility]] = {
    "event": EventImplausibility,
    "trip": TripImplausibility,
}


class RecordFaults:
    """Per-record publication times and data faults of one kind of record, fixed by the seed so every read agrees.

    `malformed` and `implausible` hold, per record, the value of the copy's `Malformation` and
    `EventImplausibility`/`TripImplausibility`, or 0 for none."""

    def __init__(
        self, times_ms: np.ndarray, seed_key: str, faults: Faults, ready_delay_s: float, entity: Entity
    ) -> None:
        self.entity: Entity = entity
        count = len(times_ms)
        rng = np.random.default_rng(seed_from(seed_key))
        self.lag_ms = rng.uniform(1_000, min(60_000, max(ready_delay_s, 2) * 500), count).astype(np.int64)
        late = rng.random(count) < faults.late_rate
        # A late record appears 5 minutes to `late_max_s` after its hour was first served (never before).
        after_served = rng.uniform(300, max(faults.late_max_s, 600), count) * 1000
        served_ms = (times_ms // HOUR_MS + 1) * HOUR_MS + int(ready_delay_s * 1000)
        late_lag = served_ms - times_ms + after_served.astype(np.int64)
        # Lateness delays when a record becomes visible, not what it says: a late record, once it arrives,
        # is identical to the one a fault-free provider would have served.
        self.visible_lag_ms = np.where(late, late_lag, self.lag_ms)
        self.duplicate = rng.random(count) < faults.duplicate_rate
        malformed = rng.random(count) < faults.malformed_rate
        self.malformed = np.where(malformed, rng.integers(1, len(Malformation) + 1, count), 0)
        # Drawn after the others, so turning corrections on leaves every other fault as it was.
        corrected = rng.random(count) < faults.correction_rate
        self.preliminary_factor = np.where(corrected, rng.uniform(1.1, 1.6, count), 1.0)
        after_first = rng.uniform(300, max(faults.correction_max_s, 600), count) * 1000
        # Served preliminary until this instant, the truth from then on (records that are never corrected: never).
        self.corrected_from_ms = np.where(
            corrected, np.maximum(served_ms, times_ms + self.visible_lag_ms) + after_first.astype(np.int64), 0
        )
        # Drawn apart, so turning these on leaves every other fault where it was.
        extra = np.random.default_rng(seed_from(seed_key + "/implausible"))
        implausible = extra.random(count) < faults.implausible_rate
        kinds = len(IMPLAUSIBILITIES[entity])
        self.implausible = np.where(implausible, extra.integers(1, kinds + 1, count), 0)
        self.contradicting = extra.random(count) < faults.contradicting_rate

    def apply(self, rows: list[Record], idx: np.ndarray) -> list[Record]:
        """The records as served: each one (an event contradicting its state if so drawn), then its duplicate,
        corrupted and implausible copies, as drawn for the record at the same position of `idx`."""
        out: list[Record] = []
        for row, i in zip(rows, idx, strict=True):
            if self.contradicting[i] and self.entity == "event":
                contradict(row)
            out.append(row)
            if self.duplicate[i]:
                out.append(dict(row))
            if self.malformed[i]:
                out.append(corrupt(row, Malformation(int(self.malformed[i])), self.entity))
            if self.implausible[i]:
                kind = int(self.implausible[i])
                if self.entity == "event":
                    out.append(implausible_event(row, EventImplausibility(kind)))
                else:
                    out.append(implausible_trip(row, TripImplausibility(kind)))
        return out


def corrupt(record: Record, kind: Malformation, entity: Entity) -> Record:
    """A corrupted copy of `record`: the kinds of damage real feeds show."""
    bad = dict(record)
    match kind:
        case Malformation.WRONG_TYPE:
            key = "timestamp" if entity == "event" else "end_time"
            bad[key] = str(bad[key]) + "Z"
        case Malformation.MISSING_FIELD:
            bad.pop("device_id")
        case Malformation.IMPOSSIBLE_COORDINATES:
            key = "location" if entity == "event" else "end_location"
            bad[key] = {"lat": 123.4567, "lng": bad[key]["lng"]}
    return bad


def _implausible_copy(record: Record, key: str, kind: IntEnum) -> Record:
    """A copy of `record` under its own id, derived from the original's and the kind."""
    return {**record, key: uuid_from(f"{record[key]}/implausible/{kind.value}")}


def implausible_event(record: Record, kind: EventImplausibility) -> Record:
    """A copy of the event under its own id, well typed but implausible in one of the ways real feeds are."""
    bad = _implausible_copy(record, "event_id", kind)
    match kind:
        case EventImplausibility.PUBLICATION_IN_SECONDS:
            bad["publication_time"] = bad["publication_time"] // 1000
        case EventImplausibility.UNKNOWN_STATE:
            bad["vehicle_state"] = "parked"
        case EventImplausibility.PLACEHOLDER_LOCATION:
            bad["location"] = {"lat": 0.0, "lng": 0.0}
        case EventImplausibility.ID_WITH_NEWLINE:
            bad["event_id"] += "\n"
        case EventImplausibility.NAN:
            bad["battery_percent"] = msgspec.Raw(b"NaN")
        case EventImplausibility.UNKNOWN_EVENT_TYPE:
            bad["event_types"] = ["teleported"]
        case EventImplausibility.PUBLISHED_NEXT_YEAR:
            bad["publication_time"] = bad["timestamp"] + 400 * 86_400_000
    return bad


def implausible_trip(record: Record, kind: TripImplausibility) -> Record:
    """A copy of the trip under its own id, well typed but implausible in one of the ways real feeds are."""
    bad = _implausible_copy(record, "trip_id", kind)
    match kind:
        case TripImplausibility.START_IN_SECONDS:
            bad["start_time"] = bad["start_time"] // 1000
        case TripImplausibility.ENDS_BEFORE_START:
            bad["start_time"] = bad["end_time"] + 60_000
        case TripImplausibility.PLACEHOLDER_START:
            bad["start_location"] = {"lat": 0.0, "lng": 0.0}
        case TripImplausibility.ID_WITH_NEWLINE:
            bad["trip_id"] += "\n"
        case TripImplausibility.NAN:
            bad["duration"] = msgspec.Raw(b"NaN")
        case TripImplausibility.TEN_YEAR_TRIP:
            bad["start_time"] = bad["end_time"] - 3653 * 86_400_000
        case TripImplausibility.PLACEHOLDER_END:
            bad["end_location"] = {"lat": 0.0, "lng": 0.0}
    return bad


STATE_ARRIVED_BY = {"available": ["battery_low"]}
"""An event type that cannot leave a vehicle in the state (battery_low leaves it non_operational)."""
TRIP_EVENTS = ("trip_start", "trip_end", "trip_cancel", "trip_enter_jurisdiction", "trip_leave_jurisdiction")


def contradict(record: Record) -> None:
    """Give a non-trip event an event type its delivered state does not follow from (in place)."""
    if any(t in TRIP_EVENTS for t in record["event_types"]):
        return
    record["event_types"] = STATE_ARRIVED_BY.get(record["vehicle_state"], ["battery_charged"])
