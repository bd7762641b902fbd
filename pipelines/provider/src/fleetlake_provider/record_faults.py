"""Data faults of records, decided per record from the seed so every read agrees: when a record is published (late
or not), whether it is sent twice, followed by a corrupted or an implausible copy, first served with a preliminary
distance, or contradicts its own state; and the damaged copies themselves."""

from typing import Any

import msgspec
import numpy as np

from fleetlake_provider.clock import HOUR_MS
from fleetlake_provider.faults import Faults
from fleetlake_provider.ids import seed_from, uuid_from

Record = dict[str, Any]
"""One MDS record as served (a trip or an event)."""


class RecordFaults:
    """Per-record publication times and data faults, fixed by the seed so every read agrees."""

    def __init__(self, times_ms: np.ndarray, seed_key: str, faults: Faults, ready_delay_s: float) -> None:
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
        self.malformed = np.where(rng.random(count) < faults.malformed_rate, rng.integers(1, 4, count), 0)
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
        self.implausible = np.where(extra.random(count) < faults.implausible_rate, extra.integers(1, 8, count), 0)
        self.contradicting = extra.random(count) < faults.contradicting_rate

    def apply(self, rows: list[Record], idx: np.ndarray, kind: str) -> list[Record]:
        """The records as served: each one (contradicting its state if so drawn), then its duplicate, corrupted
        and implausible copies, as drawn for the record at the same position of `idx`."""
        out: list[Record] = []
        for row, i in zip(rows, idx, strict=True):
            if self.contradicting[i] and kind == "event":
                _contradict(row)
            out.append(row)
            if self.duplicate[i]:
                out.append(dict(row))
            bad = int(self.malformed[i])
            if bad:
                out.append(_corrupt(row, bad, kind))
            implausible = int(self.implausible[i])
            if implausible:
                out.append(_implausible(row, implausible, kind))
        return out


def _implausible(record: Record, kind: int, entity: str) -> Record:
    """A copy of `record` under its own id, well typed but implausible in one of the ways real feeds are."""
    key = "event_id" if entity == "event" else "trip_id"
    bad = {**record, key: uuid_from(f"{record[key]}/implausible/{kind}")}
    if kind == 1:  # seconds where MDS says milliseconds
        time_key = "publication_time" if entity == "event" else "start_time"
        bad[time_key] = bad[time_key] // 1000
    elif kind == 2:  # an unknown vehicle state; a trip ending before it started
        if entity == "event":
            bad["vehicle_state"] = "parked"
        else:
            bad["start_time"] = bad["end_time"] + 60_000
    elif kind == 3:  # a placeholder location
        bad["location" if entity == "event" else "start_location"] = {"lat": 0.0, "lng": 0.0}
    elif kind == 4:  # an id that is a UUID followed by a newline
        bad[key] += "\n"
    elif kind == 5:  # a NaN: the page is no longer strict JSON
        bad["battery_percent" if entity == "event" else "duration"] = msgspec.Raw(b"NaN")
    elif kind == 6:  # an unknown event type; a ten-year trip
        if entity == "event":
            bad["event_types"] = ["teleported"]
        else:
            bad["start_time"] = bad["end_time"] - 3653 * 86_400_000
    elif entity == "event":  # published a year from now
        bad["publication_time"] = bad["timestamp"] + 400 * 86_400_000
    else:  # a placeholder end location
        bad["end_location"] = {"lat": 0.0, "lng": 0.0}
    return bad


STATE_ARRIVED_BY = {"available": ["battery_low"]}
"""An event type that cannot leave a vehicle in the state (battery_low leaves it non_operational)."""
TRIP_EVENTS = ("trip_start", "trip_end", "trip_cancel", "trip_enter_jurisdiction", "trip_leave_jurisdiction")


def _contradict(record: Record) -> None:
    """Give a non-trip event an event type its delivered state does not follow from (in place)."""
    if any(t in TRIP_EVENTS for t in record["event_types"]):
        return
    record["event_types"] = STATE_ARRIVED_BY.get(record["vehicle_state"], ["battery_charged"])


def _corrupt(record: Record, kind: int, entity: str) -> Record:
    """A corrupted copy of `record`: the kinds of damage real feeds show."""
    bad = dict(record)
    if kind == 1:  # a wrong type
        key = "timestamp" if entity == "event" else "end_time"
        bad[key] = str(bad[key]) + "Z"
    elif kind == 2:  # a missing required field
        bad.pop("device_id")
    else:  # impossible coordinates
        key = "location" if entity == "event" else "end_location"
        bad[key] = {"lat": 123.4567, "lng": bad[key]["lng"]}
    return bad
