"""The embedded provider's damaged copies of records, one per kind of each Enum, on hand-built records."""

from typing import Any

import msgspec
import numpy as np
import pytest

from fleetlake_provider.faults import Faults
from fleetlake_provider.record_faults import (
    EventImplausibility,
    Malformation,
    RecordFaults,
    TripImplausibility,
    contradict,
    corrupt,
    implausible_event,
    implausible_trip,
)

T = 1_774_857_600_000  # 2026-03-30T08:00:00Z
EVENT: dict[str, Any] = {
    "battery_percent": 80,
    "device_id": "d-1",
    "event_id": "e-1",
    "event_types": ["maintenance"],
    "location": {"lat": 59.33, "lng": 18.06},
    "provider_id": "p",
    "timestamp": T,
    "publication_time": T + 5_000,
    "trip_ids": [],
    "vehicle_state": "available",
}
TRIP: dict[str, Any] = {
    "device_id": "d-1",
    "distance": 1200,
    "duration": 420,
    "end_location": {"lat": 59.34, "lng": 18.07},
    "end_time": T,
    "start_location": {"lat": 59.33, "lng": 18.06},
    "start_time": T - 420_000,
    "trip_id": "t-1",
}


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: after.get(k, "<missing>") for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


@pytest.mark.parametrize(
    ("kind", "record", "entity", "expected"),
    [
        (Malformation.WRONG_TYPE, EVENT, "event", {"timestamp": "1774857600000Z"}),
        (Malformation.WRONG_TYPE, TRIP, "trip", {"end_time": "1774857600000Z"}),
        (Malformation.MISSING_FIELD, EVENT, "event", {"device_id": "<missing>"}),
        (Malformation.IMPOSSIBLE_COORDINATES, EVENT, "event", {"location": {"lat": 123.4567, "lng": 18.06}}),
        (Malformation.IMPOSSIBLE_COORDINATES, TRIP, "trip", {"end_location": {"lat": 123.4567, "lng": 18.07}}),
    ],
)
def test_each_malformation_damages_one_field(
    kind: Malformation, record: dict[str, Any], entity: Any, expected: dict[str, Any]
) -> None:
    assert changed(record, corrupt(record, kind, entity)) == expected


EVENT_CHANGES = {
    EventImplausibility.PUBLICATION_IN_SECONDS: {"publication_time": 1_774_857_605},
    EventImplausibility.UNKNOWN_STATE: {"vehicle_state": "parked"},
    EventImplausibility.PLACEHOLDER_LOCATION: {"location": {"lat": 0.0, "lng": 0.0}},
    EventImplausibility.NAN: {"battery_percent": msgspec.Raw(b"NaN")},
    EventImplausibility.UNKNOWN_EVENT_TYPE: {"event_types": ["teleported"]},
    EventImplausibility.PUBLISHED_NEXT_YEAR: {"publication_time": T + 400 * 86_400_000},
}
TRIP_CHANGES = {
    TripImplausibility.START_IN_SECONDS: {"start_time": 1_774_857_180},
    TripImplausibility.ENDS_BEFORE_START: {"start_time": T + 60_000},
    TripImplausibility.PLACEHOLDER_START: {"start_location": {"lat": 0.0, "lng": 0.0}},
    TripImplausibility.NAN: {"duration": msgspec.Raw(b"NaN")},
    TripImplausibility.TEN_YEAR_TRIP: {"start_time": T - 3653 * 86_400_000},
    TripImplausibility.PLACEHOLDER_END: {"end_location": {"lat": 0.0, "lng": 0.0}},
}


@pytest.mark.parametrize("kind", list(EventImplausibility))
def test_each_event_implausibility_is_a_copy_under_its_own_id(kind: EventImplausibility) -> None:
    copy = implausible_event(EVENT, kind)
    diff = changed(EVENT, copy)
    new_id = diff.pop("event_id")
    assert new_id != "e-1" and new_id.rstrip("\n") != "e-1"
    if kind is EventImplausibility.ID_WITH_NEWLINE:
        assert new_id.endswith("\n") and len(new_id) == 37 and diff == {}
    else:
        assert len(new_id) == 36 and diff == EVENT_CHANGES[kind]
    # Deterministic: the same record and kind give the same copy, so every read of the hour agrees.
    assert implausible_event(EVENT, kind)["event_id"] == copy["event_id"]


@pytest.mark.parametrize("kind", list(TripImplausibility))
def test_each_trip_implausibility_is_a_copy_under_its_own_id(kind: TripImplausibility) -> None:
    copy = implausible_trip(TRIP, kind)
    diff = changed(TRIP, copy)
    new_id = diff.pop("trip_id")
    if kind is TripImplausibility.ID_WITH_NEWLINE:
        assert new_id.endswith("\n") and len(new_id) == 37 and diff == {}
    else:
        assert len(new_id) == 36 and diff == TRIP_CHANGES[kind]


def test_a_contradicting_event_gets_a_type_its_state_cannot_follow_from() -> None:
    event = dict(EVENT)
    contradict(event)
    assert event["event_types"] == ["battery_low"]  # battery_low leaves a vehicle non_operational, not available
    trip_start = {**EVENT, "event_types": ["trip_start"], "vehicle_state": "on_trip"}
    contradict(trip_start)
    assert trip_start["event_types"] == ["trip_start"]  # trip events are left as they are


@pytest.mark.parametrize(("entity", "kinds"), [("event", EventImplausibility), ("trip", TripImplausibility)])
def test_the_seed_draws_every_kind_and_apply_serves_the_copies_after_their_record(entity: Any, kinds: Any) -> None:
    times = np.arange(T, T + 2_000 * 1_000, 1_000, dtype=np.int64)
    faults = Faults(malformed_rate=1.0, implausible_rate=1.0)
    drawn = RecordFaults(times, f"{entity}s:7:1", faults, 600.0, entity)
    assert set(drawn.malformed.tolist()) == {m.value for m in Malformation}
    assert set(drawn.implausible.tolist()) == {k.value for k in kinds}
    record = EVENT if entity == "event" else TRIP
    served = drawn.apply([dict(record), dict(record)], np.array([0, 1]))
    assert len(served) == 6  # each record, its corrupted copy, its implausible copy
    assert served[0] == record and served[3] == record
    assert served[1] == corrupt(record, Malformation(int(drawn.malformed[0])), entity)
