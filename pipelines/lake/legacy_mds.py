"""MDS 1.2 and 0.4 deliveries into the lake's MDS 2.0 datasets: their records typed, validated and mapped.

A legacy zone's hours land in the same `mds_trips` and `mds_events` partitions as a 2.0 zone's, and its vehicle
snapshots in `mds_vehicles` and `mds_vehicle_status`: the raw response is kept as delivered (what the provider
said, in its own words), the rows are 2.0-shaped with the version in `mds_version`, so every staging model and mart
reads one shape. The words are mapped by `pipelines.lake.mds_versions` (states, event types, vehicle types); a
record whose words have no 2.0 meaning is quarantined with its reason, like any other invalid record.

What a version says differently:
- trips: the start and end points are the first and last points of the `route`; `trip_duration` and
  `trip_distance` are the duration and distance; the vehicle type rides on each trip (2.0 keeps it in /vehicles);
  trip types and accessibility attributes are not carried (null).
- status changes: `event_time`, `event_location` (a GeoJSON point, longitude first), `battery_pct` (0 to 1, made
  a percentage), one trip id (1.2 `trip_id`, 0.4 `associated_trip`). They have no id: `event_id` is a UUID derived
  from what the record says (device, time, state and events, trip), so a repeated record is the same record.
- vehicles: one list that says both what each vehicle is and its last status change; no telemetry.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from pipelines.lake import mds_versions as v
from pipelines.lake import plausibility
from pipelines.lake.datasets import DATASETS, Dataset, Row
from pipelines.lake.records import Code, Id, MdsEpochMs, NonNegative, Uuid

EVENT_ID_NAMESPACE = uuid.UUID("2b0c6f64-5a43-4c39-9f0e-8a3e1f4b7d21")
Fraction = Annotated[float, Meta(ge=0, le=1)]


class PointGeometry(Struct):
    type: str
    coordinates: Annotated[list[float], Meta(min_length=2)]


class PointFeature(Struct):
    geometry: PointGeometry
    properties: dict[str, Any] | None = None


class Route(Struct):
    features: Annotated[list[PointFeature], Meta(min_length=2)]


class _Legacy(Struct, kw_only=True):
    provider_id: Uuid
    device_id: Uuid
    vehicle_id: Id | None = None
    vehicle_type: Code


class LegacyTrip(_Legacy, kw_only=True):
    trip_id: Uuid
    trip_duration: NonNegative
    trip_distance: NonNegative
    route: Route
    start_time: MdsEpochMs
    end_time: MdsEpochMs
    publication_time: MdsEpochMs | None = None


class StatusChange12(_Legacy, kw_only=True):
    vehicle_state: Code
    event_types: Annotated[list[Code], Meta(min_length=1)]
    event_time: MdsEpochMs
    publication_time: MdsEpochMs | None = None
    event_location: PointFeature | None = None
    battery_pct: Fraction | None = None
    trip_id: Uuid | None = None


class StatusChange04(_Legacy, kw_only=True):
    event_type: Code
    event_type_reason: Code
    event_time: MdsEpochMs
    publication_time: MdsEpochMs | None = None
    event_location: PointFeature
    battery_pct: Fraction | None = None
    associated_trip: Uuid | None = None


class Vehicle12(_Legacy, kw_only=True):
    propulsion_types: list[Id]
    last_event_time: MdsEpochMs
    last_vehicle_state: Code
    last_event_types: Annotated[list[Code], Meta(min_length=1)]
    last_event_location: PointFeature
    current_location: PointFeature | None = None
    battery_pct: Fraction | None = None


class Vehicle04(_Legacy, kw_only=True):
    propulsion_type: list[Id]
    last_event_time: MdsEpochMs
    last_event_type: Code
    last_event_type_reason: Code
    last_event_location: PointFeature
    current_location: PointFeature | None = None
    battery_pct: Fraction | None = None


def _lat_lng(feature: PointFeature | None, field: str) -> tuple[float | None, float | None]:
    """(lat, lng) of a GeoJSON point feature (coordinates are longitude first), checked as 2.0's Location is."""
    if feature is None:
        return None, None
    lng, lat = feature.geometry.coordinates[0], feature.geometry.coordinates[1]
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ValueError(f"`{field}` coordinates [{lng}, {lat}] are not a longitude and a latitude")
    return lat, lng


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction * 100, 6)


def derived_event_id(device_id: str, event_time: int, said: Sequence[str], trip_id: str | None) -> str:
    """The id of a status change, which has none of its own: the same record, delivered again, gets the same id."""
    name = "|".join((device_id.lower(), str(event_time), *said, (trip_id or "").lower()))
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def _trip(version: v.MdsVersion) -> Callable[[LegacyTrip], Row]:
    def row(t: LegacyTrip) -> Row:
        start_lat, start_lng = _lat_lng(t.route.features[0], "route.features[0]")
        end_lat, end_lng = _lat_lng(t.route.features[-1], "route.features[-1]")
        return {
            "trip_id": t.trip_id.lower(),
            "device_id": t.device_id.lower(),
            "provider_id": t.provider_id,
            "start_time": t.start_time,
            "end_time": t.end_time,
            "start_lat": start_lat,
            "start_lng": start_lng,
            "end_lat": end_lat,
            "end_lng": end_lng,
            "duration_s": float(t.trip_duration),
            "distance_m": float(t.trip_distance),
            "trip_type": None,
            "accessibility_attributes": None,
            "vehicle_type": v.vehicle_type_from_legacy(t.vehicle_type),
            "mds_version": version,
        }

    return row


def _event_row(
    device_id: str,
    provider_id: str,
    event_time: int,
    publication_time: int | None,
    said: Sequence[str],
    mapped: tuple[str, list[str]],
    location: PointFeature | None,
    battery_pct: float | None,
    trip_id: str | None,
    version: v.MdsVersion,
) -> Row:
    lat, lng = _lat_lng(location, "event_location")
    state, event_types = mapped
    return {
        "event_id": derived_event_id(device_id, event_time, said, trip_id),
        "device_id": device_id.lower(),
        "provider_id": provider_id,
        "timestamp": event_time,
        "publication_time": publication_time,
        "event_types": event_types,
        "vehicle_state": state,
        "lat": lat,
        "lng": lng,
        "battery_percent": _percent(battery_pct),
        "trip_ids": [trip_id.lower()] if trip_id else [],
        "mds_version": version,
    }


def _status_change_12(s: StatusChange12) -> Row:
    mapped = v.event_from_1_2(s.vehicle_state, s.event_types)
    said = (s.vehicle_state, *s.event_types)
    return _event_row(
        s.device_id, s.provider_id, s.event_time, s.publication_time, said, mapped, s.event_location,
        s.battery_pct, s.trip_id, "1.2",
    )  # fmt: skip


def _status_change_04(s: StatusChange04) -> Row:
    mapped = v.event_from_0_4(s.event_type, s.event_type_reason, s.associated_trip is not None)
    said = (s.event_type, s.event_type_reason)
    return _event_row(
        s.device_id, s.provider_id, s.event_time, s.publication_time, said, mapped, s.event_location,
        s.battery_pct, s.associated_trip, "0.4",
    )  # fmt: skip


def _vehicle(propulsion: Callable[[Any], list[str]]) -> Callable[[Any], Row]:
    def row(x: Vehicle12 | Vehicle04) -> Row:
        return {
            "device_id": x.device_id.lower(),
            "provider_id": x.provider_id,
            "vehicle_id": x.vehicle_id,
            "vehicle_type": v.vehicle_type_from_legacy(x.vehicle_type),
            "propulsion_types": propulsion(x),
            "maximum_speed_kph": None,
        }

    return row


def _vehicle_status_12(x: Vehicle12) -> Row:
    state, events = v.event_from_1_2(x.last_vehicle_state, x.last_event_types)
    return _vehicle_status(x, state, events, (x.last_vehicle_state, *x.last_event_types))


def _vehicle_status_04(x: Vehicle04) -> Row:
    # The vehicles list carries no trip: a pick-up is read as a rider's, the only kind the feed can list.
    state, events = v.event_from_0_4(x.last_event_type, x.last_event_type_reason, has_trip=True)
    return _vehicle_status(x, state, events, (x.last_event_type, x.last_event_type_reason))


def _vehicle_status(x: Vehicle12 | Vehicle04, state: str, events: list[str], said: Sequence[str]) -> Row:
    lat, lng = _lat_lng(x.last_event_location, "last_event_location")
    return {
        "device_id": x.device_id.lower(),
        "provider_id": x.provider_id,
        "event_id": derived_event_id(x.device_id, x.last_event_time, said, None),
        "event_types": events,
        "vehicle_state": state,
        "event_time": x.last_event_time,
        "event_lat": lat,
        "event_lng": lng,
        "battery_percent": _percent(x.battery_pct),
        "telemetry_time": None,
        "telemetry_lat": None,
        "telemetry_lng": None,
        "trip_ids": [],
    }


def _legacy(name: str, path: tuple[str, ...], record_type: type[Struct], row: Callable[[Any], Row]) -> Dataset:
    """The 2.0 dataset `name`, reading a legacy response: its columns, key, window and plausibility stay 2.0's."""
    return replace(DATASETS[name], path=path, record_type=record_type, row=row, alternative_paths=())


LEGACY_DATASETS: dict[tuple[v.MdsVersion, str], Dataset] = {
    ("1.2", "mds_trips"): _legacy("mds_trips", ("data", "trips"), LegacyTrip, _trip("1.2")),
    ("0.4", "mds_trips"): _legacy("mds_trips", ("data", "trips"), LegacyTrip, _trip("0.4")),
    ("1.2", "mds_events"): _legacy("mds_events", ("data", "status_changes"), StatusChange12, _status_change_12),
    ("0.4", "mds_events"): _legacy("mds_events", ("data", "status_changes"), StatusChange04, _status_change_04),
    ("1.2", "mds_vehicles"): _legacy(
        "mds_vehicles", ("data", "vehicles"), Vehicle12, _vehicle(lambda x: x.propulsion_types)
    ),
    ("0.4", "mds_vehicles"): _legacy(
        "mds_vehicles", ("data", "vehicles"), Vehicle04, _vehicle(lambda x: x.propulsion_type)
    ),
    ("1.2", "mds_vehicle_status"): replace(
        _legacy("mds_vehicle_status", ("data", "vehicles"), Vehicle12, _vehicle_status_12),
        check=plausibility.vehicle_status,
    ),
    ("0.4", "mds_vehicle_status"): replace(
        _legacy("mds_vehicle_status", ("data", "vehicles"), Vehicle04, _vehicle_status_04),
        check=plausibility.vehicle_status,
    ),
}


class _Envelope(Struct):
    version: str | None = None


def delivered_version(pages: Sequence[bytes]) -> v.MdsVersion | None:
    """The MDS version a response says it is in (its top-level `version`), None when it says none we read."""
    if not pages:
        return None
    try:
        said = msgspec.json.decode(pages[0], type=_Envelope).version
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None
    for version in v.MDS_VERSIONS:
        if said is not None and (said == version or said.startswith(version + ".")):
            return version
    return None


def dataset_for(name: str, pages: Sequence[bytes], expected: v.MdsVersion = "2.0") -> Dataset:
    """The parser of a response of dataset `name`: the version the response says it is in, else the one the zone
    is read in. The kept raw response thus re-parses alike whatever the zone's setting has become since."""
    version = delivered_version(pages) or expected
    return LEGACY_DATASETS.get((version, name), DATASETS[name])
