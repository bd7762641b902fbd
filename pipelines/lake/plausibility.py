"""What a well-typed record may still not say: the checks beyond types, each deciding quarantine or flag.

A record is quarantined (kept aside with its reason, out of every table) when it cannot describe what happened:
its times or place are placeholders or impossible, or a value is outside the MDS 2.0 vocabulary. It is kept and
flagged (a column of staging, counted in data_quality_hourly) when it is believable yet disagrees with something
else. Flags are computed in staging (sql/staging), where the other half of the disagreement is; DECISIONS lists
both kinds, and docs/data_dictionary.md prints it.

Checks read the row a dataset's `row` function made (times in epoch milliseconds) and the ingest clock: the moment
the response was received (or the snapshot captured), so a re-parse judges "in the future" as ingestion did.
"""

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

# MDS 2.0 vocabulary (the `vehicle_state` and `event_type` enums of the official schema, every mode: a provider
# may use a value of another mode's list, as `service_start`; a value in none of them is unknown).
VEHICLE_STATES = frozenset(
    ("removed", "available", "non_operational", "reserved", "on_trip", "stopped", "non_contactable", "missing",
     "elsewhere")
)  # fmt: skip
EVENT_TYPES = frozenset(
    (
        "agency_drop_off", "agency_pick_up", "battery_charged", "battery_low", "changed_geographies",
        "charging_end", "charging_start", "comms_lost", "comms_restored", "compliance_pick_up",
        "customer_cancellation", "decommissioned", "driver_cancellation", "fueling_end", "fueling_start",
        "located", "maintenance", "maintenance_end", "maintenance_pick_up", "not_located", "off_hours", "on_hours",
        "order_drop_off", "order_pick_up", "passenger_cancellation", "provider_cancellation", "provider_drop_off",
        "rebalance_pick_up", "recommission", "remote_end", "remote_start", "reservation_cancel",
        "reservation_start", "reservation_stop", "service_end", "service_start", "system_resume", "system_suspend",
        "trip_cancel", "trip_end", "trip_enter_jurisdiction", "trip_leave_jurisdiction", "trip_pause",
        "trip_resume", "trip_start", "trip_stop", "unspecified",
    )
)  # fmt: skip
FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far past the ingest clock a time may lie (clocks of provider and ingestion disagree by seconds, not more)."""
MAX_TRIP = timedelta(hours=24)
"""The longest trip believed. Longer ones would stretch every window build that reaches back to a trip's start
(local-time offsets, utilization days) over their whole length; 5 to 24 hours are kept and flagged by `trips`."""

Outcome = Literal["quarantine", "flag"]


@dataclass(frozen=True)
class Decision:
    datasets: str
    kind: str
    outcome: Outcome
    field: str
    why: str


DECISIONS: tuple[Decision, ...] = (
    Decision("every dataset", "a value strict JSON cannot carry: NaN, Infinity, a number beyond a double "
             "(1e400), a lone surrogate, bytes that are not UTF-8", "quarantine", "the value's place, e.g. "
             "`$.start_location.lat`", "no column can hold it; the rest of the response is read as usual"),
    Decision("every dataset", "a missing required field, a wrong type, a latitude beyond ±90 or longitude beyond "
             "±180, a negative duration, distance or count", "quarantine", "the field", "the record's meaning is "
             "unknown"),
    Decision("MDS", "an id that is not a whole UUID (white space around it, a final newline, anything else)",
             "quarantine", "the id", "ids join records; a padded id matches nothing, and the warehouse keeps ids "
             "as UUIDs"),
    Decision("every dataset", "an id or code with white space around it or a control character", "quarantine",
             "the field", "`\" available\"` is not `\"available\"`: it would be counted apart, silently"),
    Decision("MDS", "a time before 2000-01-01 (seconds sent as milliseconds, or a placeholder)", "quarantine",
             "the time", "read as milliseconds it lies in January 1970"),
    Decision("mds_trips", "`end_time` before `start_time`", "quarantine", "end_time", "no duration or speed can "
             "be measured; which time is wrong is unknown"),
    Decision("mds_trips", "a trip longer than 24 hours", "quarantine", "end_time",
             "no rental lasts that long; it would stretch window builds over its whole span (5-24 h: kept, "
             "flagged `is_over_5h` in trips)"),
    Decision("MDS, GBFS", "a time more than 5 minutes after the ingest clock", "quarantine", "the time", "it has "
             "not happened yet; a clock that wrong makes the record's other times doubtful too"),
    Decision("MDS, GBFS", "a location at exactly (0, 0)", "quarantine", "the location", "a placeholder for an "
             "unknown place (the Gulf of Guinea), not a position; counting it as outside the zone would invent "
             "a violation"),
    Decision("mds_events, mds_vehicle_status", "a `vehicle_state` or `event_types` value outside the MDS 2.0 "
             "schema's lists (every mode's)", "quarantine", "vehicle_state / event_types",
             "what the vehicle did is unknown; occupancy would count a state no table knows"),
    Decision("mds_events", "a `vehicle_state` the micromobility state machine does not reach by the last of "
             "`event_types` (e.g. `trip_start` leaving the vehicle `available`; types of other modes are not "
             "judged)", "flag", "state_contradicts_event (stg_mds__events)", "MDS does not enforce transitions "
             "at ingest, and either field may be the wrong one; the state drives occupancy as delivered, and the "
             "contradiction is counted (data_quality_hourly.events_contradicting_state)"),
    Decision("gbfs_system_information", "a `timezone` that is not an IANA time zone", "quarantine", "timezone",
             "every local time of the zone is computed in it: an unknown one would stop every build (staging also "
             "skips such a snapshot, and the latest valid one holds)"),
    Decision("mds_trips, mds_events", "a location more than 50 km beyond the box of every area the zone API gave "
             "the zone (e.g. latitude and longitude swapped)", "flag", "trips.is_far_from_zone; "
             "data_quality_hourly.trips_far_from_zone, events_far_from_zone", "a GPS glitch or a vehicle truly "
             "carried away: the record is otherwise sound and already counts as outside every area; judged in the "
             "warehouse, which knows the zone's areas (core.int_zone_extents)"),
)  # fmt: skip


FUTURE_TOLERANCE_MS = FUTURE_TOLERANCE // timedelta(milliseconds=1)
MAX_TRIP_MS = MAX_TRIP // timedelta(milliseconds=1)
FAR_FUTURE = 2**63


def _future(row: dict[str, Any], columns: tuple[tuple[str, str], ...], clock_ms: int | None) -> str | None:
    """The first of `columns` (row column, the record's field) later than the clock and its tolerance."""
    if clock_ms is None:
        return None
    limit = clock_ms + FUTURE_TOLERANCE_MS
    for column, name in columns:
        value = row[column]
        if value is not None and value > limit:
            return f"`{name}` {value} is more than 5 minutes after the ingest clock ({clock_ms})"
    return None


def _null_island(row: dict[str, Any], pairs: tuple[tuple[str, str, str], ...]) -> str | None:
    for name, lat, lng in pairs:
        if row[lat] == 0 and row[lng] == 0:
            return f"`{name}` is (0, 0), a placeholder for an unknown position"
    return None


def _vocabulary(row: dict[str, Any], prefix: str = "") -> str | None:
    if row["vehicle_state"] not in VEHICLE_STATES:
        return f"`{prefix}vehicle_state` {row['vehicle_state']!r} is not an MDS 2.0 vehicle state"
    if unknown := [t for t in row["event_types"] if t not in EVENT_TYPES]:
        return f"`{prefix}event_types` {unknown} are not MDS 2.0 event types"
    return None


def trip(row: dict[str, Any], clock_ms: int | None) -> str | None:
    start, end = row["start_time"], row["end_time"]
    limit = FAR_FUTURE if clock_ms is None else clock_ms + FUTURE_TOLERANCE_MS
    # The hot path (every trip): plain comparisons; the messages are made only for a record that fails.
    if (
        start <= end <= limit
        and end - start <= MAX_TRIP_MS
        and (row["start_lat"] != 0 or row["start_lng"] != 0)
        and (row["end_lat"] != 0 or row["end_lng"] != 0)
    ):
        return None
    if end < start:
        return f"`end_time` {end} is before `start_time` {start}"
    if end - start > MAX_TRIP_MS:
        return f"`end_time` is more than 24 hours after `start_time` ({start} to {end})"
    return _future(row, (("start_time", "start_time"), ("end_time", "end_time")), clock_ms) or _null_island(
        row, (("start_location", "start_lat", "start_lng"), ("end_location", "end_lat", "end_lng"))
    )


def event(row: dict[str, Any], clock_ms: int | None) -> str | None:
    limit = FAR_FUTURE if clock_ms is None else clock_ms + FUTURE_TOLERANCE_MS
    published = row["publication_time"]
    if (  # the hot path (every event), as in trip()
        row["vehicle_state"] in VEHICLE_STATES
        and EVENT_TYPES.issuperset(row["event_types"])
        and row["timestamp"] <= limit
        and (published is None or published <= limit)
        and (row["lat"] != 0 or row["lng"] != 0)
    ):
        return None
    return (
        _vocabulary(row)
        or _future(row, (("timestamp", "timestamp"), ("publication_time", "publication_time")), clock_ms)
        or _null_island(row, (("location", "lat", "lng"),))
    )


def vehicle_status(row: dict[str, Any], clock_ms: int | None) -> str | None:
    return (
        _vocabulary(row, "last_event.")
        or _future(
            row, (("event_time", "last_event.timestamp"), ("telemetry_time", "last_telemetry.timestamp")), clock_ms
        )
        or _null_island(row, (("last_event.location", "event_lat", "event_lng"),
                              ("last_telemetry.location", "telemetry_lat", "telemetry_lng")))
    )  # fmt: skip


def gbfs_vehicle(row: dict[str, Any], clock_ms: int | None) -> str | None:
    return _future(row, (("last_reported", "last_reported"),), clock_ms) or _null_island(
        row, (("lat/lon", "lat", "lon"),)
    )


def gbfs_station_status(row: dict[str, Any], clock_ms: int | None) -> str | None:
    return _future(row, (("last_reported", "last_reported"),), clock_ms)


def gbfs_station_information(row: dict[str, Any], clock_ms: int | None) -> str | None:
    return _null_island(row, (("lat/lon", "lat", "lon"),))


@functools.cache
def _time_zones() -> frozenset[str]:
    # `localtime` is the host's zone, not a place: DuckDB does not know it either.
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


def gbfs_system_information(row: dict[str, Any], clock_ms: int | None) -> str | None:
    known = _time_zones()
    # Without a time zone database (no tzdata on the host) nothing is judged here; staging still skips a zone
    # DuckDB does not know.
    if not known or row["timezone"] in known:
        return None
    return f"`timezone` {row['timezone']!r} is not an IANA time zone"
