"""The lake's datasets: where each one's records sit in a response, how they are typed, and their columns.

Parsing is record by record: a record that fails validation (its type, then its plausibility) is quarantined with
its reason and raw text, and the good records of the same response are kept. An id the response carries twice is
kept once, its later occurrence winning: the same content again is a duplicate, different content a conflict; both
are counted, and the copies that lost are kept (`Parsed.repeats`) so the lake holds what was sent. A page is split
into its records by msgspec; a body msgspec refuses as a whole (one NaN, one lone surrogate) is split again by the
lenient reader, and only the records holding such a value are refused.

A page is first decoded whole into its typed records (one msgspec call, validating as it goes); only a page with a
record that fails (its type, its plausibility, the window) is read again record by record, so the quarantine keeps
each bad record's exact reason and raw text while the clean pages, nearly all of them, cost one decode.
"""

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
import polars as pl
import pyarrow as pa
import shapely

from pipelines import lenient_json
from pipelines.lake import plausibility
from pipelines.lake import records as r

Row = dict[str, Any]
UTC_MS = pl.Datetime("ms", "UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PayloadError(ValueError):
    """A response whose envelope is not what the endpoint documents (no record list where one belongs)."""


class _NotStrictJson(ValueError):
    """A body msgspec refuses as a whole: cut short, or holding a value strict JSON forbids."""


@dataclass(frozen=True)
class Quarantined:
    index: int
    reason: str
    raw: str


@dataclass(frozen=True)
class Repeat:
    """A copy of a record that lost to a later occurrence of its id in the same response."""

    row: Row
    conflict: bool
    """Whether its content differed from the copy that won (else it was an exact duplicate)."""


@dataclass
class Parsed:
    table: pa.Table
    """The kept records, typed with the dataset's columns (Arrow: the hourly write path needs no Polars)."""
    received: int
    quarantined: list[Quarantined] = field(default_factory=list)
    duplicates: int = 0
    """Repeats of an id with the same content as the copy kept."""
    conflicts: int = 0
    """Repeats of an id with other content than the copy kept (the later occurrence is kept)."""
    repeats: list[Repeat] = field(default_factory=list)

    @property
    def frame(self) -> pl.DataFrame:
        """The kept records as a Polars frame."""
        return pl.DataFrame(pl.from_arrow(self.table))


@dataclass(frozen=True)
class Dataset:
    """One entity of the lake."""

    name: str
    kind: Literal["hourly", "snapshot"]
    path: tuple[str, ...]
    """Keys leading from the response to its list of records."""
    record_type: type[msgspec.Struct]
    row: Callable[[Any], Row]
    schema: dict[str, Any]
    key: tuple[str, ...]
    window_column: str | None = None
    """Hourly datasets: the column that must fall inside the requested hour."""
    alternative_paths: tuple[tuple[str, ...], ...] = ()
    companion: tuple[tuple[str, ...], Callable[[msgspec.Raw], msgspec.Raw]] | None = None
    """A second place in the response that contributes one more record (GBFS global geofencing rules)."""
    check: Callable[[Row, int | None], str | None] | None = None
    """Plausibility beyond types (pipelines/lake/plausibility.py): the row and the ingest clock (epoch ms) in,
    the reason to quarantine out (None: kept)."""
    single_record: bool = False
    """`path` may lead to one object instead of a list: the response's only record (GBFS system_information
    describes one system)."""
    zone_column: str | None = None
    """A response that answers for every zone at once (the zone API's zone list): the column naming each row's
    zone, so that each zone's partition keeps its own rows."""


def _ms(value: int | str | None, *, seconds: bool = False, column: str = "timestamp") -> int | None:
    """Epoch milliseconds from MDS ms, GBFS 2.x POSIX seconds or GBFS 3.0 RFC 3339 text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"`{column}` {value!r} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"`{column}` {value!r} has no UTC offset (RFC 3339 requires one)")
        # Exact integer arithmetic: float seconds * 1000 is off by one ms for some instants.
        return (moment - EPOCH) // timedelta(milliseconds=1)
    return value * 1000 if seconds else value


def _text(value: r.Text | None) -> str | None:
    """The English (else first) text of a GBFS 3.0 localized list, or a GBFS 2.x plain string."""
    if value is None or isinstance(value, str):
        return value
    for item in value:
        if item.language.lower().startswith("en"):
            return item.text
    return value[0].text if value else None


def _wkb(geometry: dict[str, Any] | None, column: str = "geometry") -> bytes | None:
    if geometry is None:
        return None
    try:
        wkb: bytes = shapely.to_wkb(shapely.from_geojson(msgspec.json.encode(geometry)))
    except shapely.errors.ShapelyError as e:
        raise ValueError(f"invalid GeoJSON in `{column}`: {e}") from None
    return wkb


def _trip(t: r.Trip) -> Row:
    return {
        "trip_id": t.trip_id.lower(),
        "device_id": t.device_id.lower(),
        "provider_id": t.provider_id,
        "start_time": t.start_time,
        "end_time": t.end_time,
        "start_lat": t.start_location.lat,
        "start_lng": t.start_location.lng,
        "end_lat": t.end_location.lat,
        "end_lng": t.end_location.lng,
        "duration_s": float(t.duration),
        "distance_m": float(t.distance),
        "trip_type": t.trip_type,
        "accessibility_attributes": t.accessibility_attributes,
        "vehicle_type": None,  # MDS 2.0 says it in /vehicles, not on the trip
        "mds_version": "2.0",
    }


def _event(e: r.Event) -> Row:
    return {
        "event_id": e.event_id.lower(),
        "device_id": e.device_id.lower(),
        "provider_id": e.provider_id,
        "timestamp": e.timestamp,
        "publication_time": e.publication_time,
        "event_types": e.event_types,
        "vehicle_state": e.vehicle_state,
        "lat": e.location.lat if e.location else None,
        "lng": e.location.lng if e.location else None,
        "battery_percent": e.battery_percent,
        "trip_ids": [t.lower() for t in e.trip_ids] if e.trip_ids else [],
        "mds_version": "2.0",
    }


def _vehicle(v: r.Vehicle) -> Row:
    return {
        "device_id": v.device_id.lower(),
        "provider_id": v.provider_id,
        "vehicle_id": v.vehicle_id,
        "vehicle_type": v.vehicle_type,
        "propulsion_types": v.propulsion_types,
        "maximum_speed_kph": v.maximum_speed,
    }


def _vehicle_status(s: r.VehicleStatus) -> Row:
    e, t = s.last_event, s.last_telemetry
    return {
        "device_id": s.device_id.lower(),
        "provider_id": s.provider_id,
        "event_id": e.event_id.lower(),
        "event_types": e.event_types,
        "vehicle_state": e.vehicle_state,
        "event_time": e.timestamp,
        "event_lat": e.location.lat if e.location else None,
        "event_lng": e.location.lng if e.location else None,
        "battery_percent": e.battery_percent,
        "telemetry_time": t.timestamp if t else None,
        "telemetry_lat": t.location.lat if t else None,
        "telemetry_lng": t.location.lng if t else None,
        "trip_ids": [x.lower() for x in t.trip_ids] if t and t.trip_ids else [],
    }


def _gbfs_vehicle(v: r.GbfsVehicle) -> Row:
    vehicle_id = v.vehicle_id or v.bike_id
    if vehicle_id is None:
        raise msgspec.ValidationError("Object missing required field `vehicle_id` (or GBFS 2.x `bike_id`)")
    if (v.lat is None or v.lon is None) and v.station_id is None:
        raise msgspec.ValidationError("a vehicle needs lat/lon or a station_id")
    return {
        "vehicle_id": vehicle_id,
        "lat": v.lat,
        "lon": v.lon,
        "is_reserved": bool(v.is_reserved),
        "is_disabled": bool(v.is_disabled),
        "vehicle_type_id": v.vehicle_type_id,
        "last_reported": _ms(v.last_reported, seconds=True, column="last_reported"),
        "current_range_meters": None if v.current_range_meters is None else float(v.current_range_meters),
        "current_fuel_percent": v.current_fuel_percent,
        "station_id": v.station_id,
        "pricing_plan_id": v.pricing_plan_id,
    }


def _station_status(s: r.GbfsStationStatus) -> Row:
    available = s.num_vehicles_available if s.num_vehicles_available is not None else s.num_bikes_available
    if available is None:
        raise msgspec.ValidationError("Object missing required field `num_vehicles_available`")
    return {
        "station_id": s.station_id,
        "num_vehicles_available": available,
        "num_vehicles_disabled": s.num_vehicles_disabled,
        "num_docks_available": s.num_docks_available,
        "is_installed": bool(s.is_installed),
        "is_renting": bool(s.is_renting),
        "is_returning": bool(s.is_returning),
        "last_reported": _ms(s.last_reported, seconds=True, column="last_reported"),
        "vehicle_types_available": [
            {"vehicle_type_id": x.vehicle_type_id, "count": x.count} for x in s.vehicle_types_available or []
        ],
    }


def _station_information(s: r.GbfsStationInformation) -> Row:
    return {
        "station_id": s.station_id,
        "name": _text(s.name),
        "lat": s.lat,
        "lon": s.lon,
        "capacity": s.capacity,
        "is_virtual_station": s.is_virtual_station,
        "station_area": _wkb(s.station_area, "station_area"),
    }


def _rules(rules: Sequence[r.GbfsRule] | None) -> list[Row]:
    out = []
    for rule in rules or []:
        start = rule.ride_start_allowed if rule.ride_start_allowed is not None else rule.ride_allowed
        end = rule.ride_end_allowed if rule.ride_end_allowed is not None else rule.ride_allowed
        out.append(
            {
                "vehicle_type_ids": rule.vehicle_type_ids or rule.vehicle_type_id or [],
                "ride_start_allowed": start,
                "ride_end_allowed": end,
                "ride_through_allowed": rule.ride_through_allowed,
                "maximum_speed_kph": None if rule.maximum_speed_kph is None else float(rule.maximum_speed_kph),
                "station_parking": rule.station_parking,
            }
        )
    return out


GLOBAL_RULES = "GlobalRules"


def _global_rules_record(rules: msgspec.Raw) -> msgspec.Raw:
    """GBFS 3.0 `global_rules` (what applies outside every zone) as one more, geometry-less feature row."""
    return msgspec.Raw(b'{"type":"%s","geometry":null,"properties":{"rules":%s}}' % (GLOBAL_RULES.encode(), rules))


def _geofencing_feature(f: r.GbfsGeofencingFeature) -> Row:
    p = f.properties
    return {
        "scope": "global" if f.type == GLOBAL_RULES else "zone",
        "name": _text(p.name),
        "geometry": _wkb(f.geometry),
        "rules": _rules(p.rules),
        "starts_at": _ms(p.start, seconds=True, column="properties.start"),
        "ends_at": _ms(p.end, seconds=True, column="properties.end"),
    }


def _region(region: r.GbfsRegion) -> Row:
    return {"region_id": str(region.region_id), "name": region.name}


def _vehicle_type(t: r.GbfsVehicleType) -> Row:
    return {
        "vehicle_type_id": t.vehicle_type_id,
        "form_factor": t.form_factor,
        "propulsion_type": t.propulsion_type,
        "name": _text(t.name),
        "max_range_meters": None if t.max_range_meters is None else float(t.max_range_meters),
        "max_permitted_speed_kph": None if t.max_permitted_speed is None else float(t.max_permitted_speed),
        "rider_capacity": t.rider_capacity,
        "default_pricing_plan_id": t.default_pricing_plan_id,
    }


def _system_information(s: r.GbfsSystemInformation) -> Row:
    return {
        "system_id": s.system_id,
        "name": _text(s.name),
        "timezone": s.timezone,
        "languages": s.languages or ([s.language] if s.language else []),
        "operator": _text(s.operator),
        "email": s.email or s.feed_contact_email,
    }


def _pricing_plan(p: r.GbfsPricingPlan) -> Row:
    def segments(items: list[r.PricingSegment] | None) -> list[Row]:
        return [
            {
                "start": float(s.start),
                "rate": s.rate,
                "interval": float(s.interval),
                "end": None if s.end is None else float(s.end),
            }
            for s in items or []
        ]

    return {
        "plan_id": p.plan_id,
        "name": _text(p.name),
        "currency": p.currency,
        "price": float(p.price),
        "is_taxable": bool(p.is_taxable),
        "description": _text(p.description),
        "per_min_pricing": segments(p.per_min_pricing),
        "per_km_pricing": segments(p.per_km_pricing),
        "surge_pricing": p.surge_pricing,
    }


def _zone_info(z: r.ZoneInfo) -> Row:
    s = z.speedConfig
    return {
        "zone_name": z.zoneName,
        "parking_mode": z.parkingMode,
        "licence_verification_required": z.licenceVerificationRequired,
        "max_speed": None if s is None or s.maxSpeed is None else float(s.maxSpeed),
        "reduced_speed": None if s is None or s.reducedSpeed is None else float(s.reducedSpeed),
        "min_required_rides": None if s is None else s.minRequiredRides,
        "speed_unit": None if s is None else s.speedUnit,
        "is_sleeping": z.isSleeping,
        "source_zone_id": str(z.zoneId),
    }


def _zone_area(a: r.ZoneArea) -> Row:
    if a.area_type not in r.AREA_TYPES:
        raise msgspec.ValidationError(f"unknown area_type {a.area_type!r}; expected one of {r.AREA_TYPES}")
    return {"area_id": a.id, "area_type": a.area_type, "name": a.name, "geometry": _wkb(a.geometry)}


def _occupancy(o: r.AreaOccupancy) -> Row:
    return {"area_id": o.id, "occupancy": o.occupancy, "capacity": o.capacity}


RULE = pl.Struct(
    {
        "vehicle_type_ids": pl.List(pl.String),
        "ride_start_allowed": pl.Boolean,
        "ride_end_allowed": pl.Boolean,
        "ride_through_allowed": pl.Boolean,
        "maximum_speed_kph": pl.Float64,
        "station_parking": pl.Boolean,
    }
)
SEGMENT = pl.Struct({"start": pl.Float64, "rate": pl.Float64, "interval": pl.Float64, "end": pl.Float64})
STRINGS = pl.List(pl.String)

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "mds_trips", "hourly", ("trips",), r.Trip, _trip,
            {"trip_id": pl.String, "device_id": pl.String, "provider_id": pl.String, "start_time": UTC_MS,
             "end_time": UTC_MS, "start_lat": pl.Float64, "start_lng": pl.Float64, "end_lat": pl.Float64,
             "end_lng": pl.Float64, "duration_s": pl.Float64, "distance_m": pl.Float64, "trip_type": STRINGS,
             "accessibility_attributes": STRINGS, "vehicle_type": pl.String, "mds_version": pl.String},
            key=("trip_id",), window_column="end_time", check=plausibility.trip,
        ),
        Dataset(
            "mds_events", "hourly", ("events",), r.Event, _event,
            {"event_id": pl.String, "device_id": pl.String, "provider_id": pl.String, "timestamp": UTC_MS,
             "publication_time": UTC_MS, "event_types": STRINGS, "vehicle_state": pl.String, "lat": pl.Float64,
             "lng": pl.Float64, "battery_percent": pl.Float64, "trip_ids": STRINGS, "mds_version": pl.String},
            key=("event_id",), window_column="timestamp", check=plausibility.event,
        ),
        Dataset(
            "mds_vehicles", "snapshot", ("vehicles",), r.Vehicle, _vehicle,
            {"device_id": pl.String, "provider_id": pl.String, "vehicle_id": pl.String, "vehicle_type": pl.String,
             "propulsion_types": STRINGS, "maximum_speed_kph": pl.Float64},
            key=("device_id",),
        ),
        Dataset(
            "mds_vehicle_status", "snapshot", ("vehicles_status",), r.VehicleStatus, _vehicle_status,
            {"device_id": pl.String, "provider_id": pl.String, "event_id": pl.String, "event_types": STRINGS,
             "vehicle_state": pl.String, "event_time": UTC_MS, "event_lat": pl.Float64, "event_lng": pl.Float64,
             "battery_percent": pl.Float64, "telemetry_time": UTC_MS, "telemetry_lat": pl.Float64,
             "telemetry_lng": pl.Float64, "trip_ids": STRINGS},
            key=("device_id",), check=plausibility.vehicle_status,
        ),
        Dataset(
            "gbfs_vehicle_status", "snapshot", ("data", "vehicles"), r.GbfsVehicle, _gbfs_vehicle,
            {"vehicle_id": pl.String, "lat": pl.Float64, "lon": pl.Float64, "is_reserved": pl.Boolean,
             "is_disabled": pl.Boolean, "vehicle_type_id": pl.String, "last_reported": UTC_MS,
             "current_range_meters": pl.Float64, "current_fuel_percent": pl.Float64, "station_id": pl.String,
             "pricing_plan_id": pl.String},
            key=("vehicle_id",), alternative_paths=(("data", "bikes"),), check=plausibility.gbfs_vehicle,
        ),
        Dataset(
            "gbfs_station_status", "snapshot", ("data", "stations"), r.GbfsStationStatus, _station_status,
            {"station_id": pl.String, "num_vehicles_available": pl.Int64, "num_vehicles_disabled": pl.Int64,
             "num_docks_available": pl.Int64, "is_installed": pl.Boolean, "is_renting": pl.Boolean,
             "is_returning": pl.Boolean, "last_reported": UTC_MS,
             "vehicle_types_available": pl.List(pl.Struct({"vehicle_type_id": pl.String, "count": pl.Int64}))},
            key=("station_id",), check=plausibility.gbfs_station_status,
        ),
        Dataset(
            "gbfs_station_information", "snapshot", ("data", "stations"), r.GbfsStationInformation,
            _station_information,
            {"station_id": pl.String, "name": pl.String, "lat": pl.Float64, "lon": pl.Float64,
             "capacity": pl.Int64, "is_virtual_station": pl.Boolean, "station_area": pl.Binary},
            key=("station_id",), check=plausibility.gbfs_station_information,
        ),
        Dataset(
            "gbfs_geofencing_zones", "snapshot", ("data", "geofencing_zones", "features"), r.GbfsGeofencingFeature,
            _geofencing_feature,
            {"scope": pl.String, "name": pl.String, "geometry": pl.Binary, "rules": pl.List(RULE), "starts_at": UTC_MS,
             "ends_at": UTC_MS},
            key=(), companion=(("data", "global_rules"), _global_rules_record),
        ),
        Dataset(
            "gbfs_vehicle_types", "snapshot", ("data", "vehicle_types"), r.GbfsVehicleType, _vehicle_type,
            {"vehicle_type_id": pl.String, "form_factor": pl.String, "propulsion_type": pl.String, "name": pl.String,
             "max_range_meters": pl.Float64, "max_permitted_speed_kph": pl.Float64, "rider_capacity": pl.Int64,
             "default_pricing_plan_id": pl.String},
            key=("vehicle_type_id",),
        ),
        Dataset(
            "gbfs_system_information", "snapshot", ("data",), r.GbfsSystemInformation, _system_information,
            {"system_id": pl.String, "name": pl.String, "timezone": pl.String, "languages": STRINGS,
             "operator": pl.String, "email": pl.String},
            key=("system_id",), check=plausibility.gbfs_system_information, single_record=True,
        ),
        Dataset(
            "gbfs_pricing_plans", "snapshot", ("data", "plans"), r.GbfsPricingPlan, _pricing_plan,
            {"plan_id": pl.String, "name": pl.String, "currency": pl.String, "price": pl.Float64,
             "is_taxable": pl.Boolean, "description": pl.String, "per_min_pricing": pl.List(SEGMENT),
             "per_km_pricing": pl.List(SEGMENT), "surge_pricing": pl.Boolean},
            key=("plan_id",),
        ),
        # GBFS 2.3, account-wide (pipelines/gbfs_v2.py): one partition for every zone the account sees.
        Dataset(
            "gbfs_v2_free_bike_status", "snapshot", ("data", "bikes"), r.GbfsVehicle, _gbfs_vehicle,
            {"vehicle_id": pl.String, "lat": pl.Float64, "lon": pl.Float64, "is_reserved": pl.Boolean,
             "is_disabled": pl.Boolean, "vehicle_type_id": pl.String, "last_reported": UTC_MS,
             "current_range_meters": pl.Float64, "current_fuel_percent": pl.Float64, "station_id": pl.String,
             "pricing_plan_id": pl.String},
            key=("vehicle_id",), check=plausibility.gbfs_vehicle,
        ),
        Dataset(
            "gbfs_v2_system_regions", "snapshot", ("data", "regions"), r.GbfsRegion, _region,
            {"region_id": pl.String, "name": pl.String},
            key=("region_id",),
        ),
        Dataset(
            "zone_info", "snapshot", ("data", "attributes", "zones"), r.ZoneInfo, _zone_info,
            {"zone_name": pl.String, "parking_mode": pl.String, "licence_verification_required": pl.Boolean,
             "max_speed": pl.Float64, "reduced_speed": pl.Float64, "min_required_rides": pl.Int64,
             "speed_unit": pl.String, "is_sleeping": pl.Boolean, "source_zone_id": pl.String},
            key=("source_zone_id",), zone_column="source_zone_id",
        ),
        Dataset(
            "zone_areas", "snapshot", ("data", "attributes", "areas"), r.ZoneArea, _zone_area,
            {"area_id": pl.String, "area_type": pl.String, "name": pl.String, "geometry": pl.Binary},
            key=("area_id",),
        ),
        Dataset(
            "zone_area_occupancy", "snapshot", ("data",), r.AreaOccupancy, _occupancy,
            {"area_id": pl.String, "occupancy": pl.Int64, "capacity": pl.Int64},
            key=("area_id",),
        ),
    )
}  # fmt: skip
HOURLY_DATASETS = tuple(name for name, dataset in DATASETS.items() if dataset.kind == "hourly")
"""The datasets delivered per zone and UTC hour (MDS trips and events), each hour a partition its deliveries
replace; every other dataset is a snapshot stamped with its capture time."""


def _at(body: bytes | msgspec.Raw, path: Sequence[str]) -> msgspec.Raw | None:
    node: bytes | msgspec.Raw = body
    for key in path:
        try:
            mapping = msgspec.json.decode(node, type=dict[str, msgspec.Raw])
        except msgspec.ValidationError:
            return None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
            raise _NotStrictJson(str(e)) from None
        if key not in mapping:
            return None
        node = mapping[key]
    return node if isinstance(node, msgspec.Raw) else msgspec.Raw(node)


def raw_records(dataset: Dataset, body: bytes) -> list[msgspec.Raw | lenient_json.Unreadable]:
    """The raw records of one response body; single-object datasets give a one-element list.

    Records strict JSON cannot carry come as `Unreadable` (only when msgspec refuses the body as a whole)."""
    try:
        return list(_strict_records(dataset, body))
    except _NotStrictJson as strict_error:
        try:
            document = lenient_json.loads(body)
        except (ValueError, RecursionError):
            raise PayloadError(f"{dataset.name}: the response is not complete JSON: {strict_error}") from None
        return _lenient_records(dataset, document)


def _strict_records(dataset: Dataset, body: bytes) -> list[msgspec.Raw]:
    for path in (dataset.path, *dataset.alternative_paths):
        node = _at(body, path)
        if node is None:
            continue
        try:
            records = msgspec.json.decode(node, type=list[msgspec.Raw])
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
            raise _NotStrictJson(str(e)) from None
        except msgspec.ValidationError:
            if dataset.single_record:
                return [node]
            raise PayloadError(f"{dataset.name}: `{'.'.join(path)}` is not a list") from None
        if dataset.companion is not None:
            companion_path, wrap = dataset.companion
            extra = _at(body, companion_path)
            if extra is not None:
                records.append(wrap(extra))
        return records
    raise PayloadError(f"{dataset.name}: the response has no `{'.'.join(dataset.path)}`")


def _lenient_record(value: Any) -> msgspec.Raw | lenient_json.Unreadable:
    if found := lenient_json.problems(value):
        return lenient_json.Unreadable("; ".join(found), lenient_json.dumps(value))
    return msgspec.Raw(msgspec.json.encode(value))


def _lenient_records(dataset: Dataset, document: Any) -> list[msgspec.Raw | lenient_json.Unreadable]:
    """`raw_records` of a body read by the lenient reader: the same places, each record judged on its own."""

    def at(path: Sequence[str]) -> Any:
        node = document
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    for path in (dataset.path, *dataset.alternative_paths):
        node = at(path)
        if node is None:
            continue
        if not isinstance(node, list):
            if dataset.single_record and isinstance(node, dict):
                return [_lenient_record(node)]
            raise PayloadError(f"{dataset.name}: `{'.'.join(path)}` is not a list")
        records = [_lenient_record(value) for value in node]
        if dataset.companion is not None:
            companion_path, wrap = dataset.companion
            extra = at(companion_path)
            if extra is not None:
                found = lenient_json.problems(extra, "$.properties.rules")
                records.append(
                    lenient_json.Unreadable("; ".join(found), lenient_json.dumps(extra))
                    if found
                    else wrap(msgspec.Raw(msgspec.json.encode(extra)))
                )
        return records
    raise PayloadError(f"{dataset.name}: the response has no `{'.'.join(dataset.path)}`")


_PATTERN_MEANINGS = {
    f"`str` matching regex {r.UUID_PATTERN!r}": "a whole UUID as text (nothing around it, no final newline)",
    f"`str` matching regex {r.ID_PATTERN!r}": "an id as text, without white space around it or control characters",
}


def _reason(error: Exception, raw: msgspec.Raw) -> str:
    """The error's text; for a record strict JSON refuses, the place of each value at fault."""
    text = str(error)
    # msgspec.ValidationError is a DecodeError too: only a refusal of the JSON itself is explained again.
    strict_refusal = not isinstance(error, msgspec.ValidationError) and isinstance(error, msgspec.DecodeError)
    if strict_refusal or isinstance(error, UnicodeDecodeError) or "out of range" in text:
        return lenient_json.explain(bytes(raw)) or text
    for pattern, meaning in _PATTERN_MEANINGS.items():
        text = text.replace(pattern, meaning)
    return text


_PAGE_TYPES: dict[str, type[msgspec.Struct] | None] = {}


def _page_type(dataset: Dataset) -> type[msgspec.Struct] | None:
    """The whole page as one typed value: the envelope of `dataset.path` around a list of its records. None for a
    dataset whose records may sit elsewhere too (alternative paths, a companion record, a single object)."""
    if dataset.name in _PAGE_TYPES:
        return _PAGE_TYPES[dataset.name]
    page_type: type[msgspec.Struct] | None = None
    if not (dataset.alternative_paths or dataset.companion or dataset.single_record):
        inner: Any = list[dataset.record_type]  # type: ignore[name-defined]
        for depth, key in enumerate(reversed(dataset.path)):
            inner = msgspec.defstruct(f"{dataset.name}_page_{depth}", [("records", inner)], rename={"records": key})
        page_type = inner
    _PAGE_TYPES[dataset.name] = page_type
    return page_type


def _typed_page(dataset: Dataset, body: bytes) -> list[Any] | None:
    """Every record of a page decoded and validated in one call; None when any record (or the envelope) fails, or
    the dataset has no page type: the page is then read record by record."""
    page_type = _page_type(dataset)
    if page_type is None:
        return None
    try:
        node: Any = msgspec.json.decode(body, type=page_type)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # a ValidationError is a DecodeError
        return None
    for _ in dataset.path:
        node = node.records
    records: list[Any] = node
    return records


def _clean_rows(
    dataset: Dataset, records: list[Any], clock_ms: int, window: tuple[int, int] | None
) -> list[Row] | None:
    """The rows of typed records when every one of them is kept (its row made, plausible, inside the window);
    None as soon as one is not, so that the page is read again record by record with exact reasons."""
    rows = []
    check, column = dataset.check, dataset.window_column
    try:
        for record in records:
            row = dataset.row(record)
            if check is not None and check(row, clock_ms) is not None:
                return None
            if window is not None and column is not None and not window[0] <= row[column] < window[1]:
                return None
            rows.append(row)
    except (msgspec.ValidationError, ValueError, shapely.errors.ShapelyError):
        return None
    return rows


def parse(
    dataset: Dataset,
    bodies: Sequence[bytes],
    window: tuple[datetime, datetime] | None = None,
    clock: datetime | None = None,
) -> Parsed:
    """Validate and type every record of `bodies` (the pages of one response).

    `clock` is when the response was received (default now): a record's time beyond it (and a tolerance) is
    quarantined."""
    clock_ms = ((clock or datetime.now(UTC)) - EPOCH) // timedelta(milliseconds=1)
    columns: dict[str, list[Any]] = {name: [] for name in dataset.schema}
    quarantined: list[Quarantined] = []
    position: dict[Any, int] = {}
    repeats: list[Repeat] = []
    received = kept = 0
    lo = hi = 0
    if window is not None:
        lo, hi = (int(t.timestamp() * 1000) for t in window)

    key_of = operator.itemgetter(*dataset.key) if dataset.key else None

    def keep(row: Row) -> None:
        nonlocal kept
        if key_of is not None:
            key = key_of(row)
            if key in position:
                # The later occurrence wins: a provider that lists a record twice sent the second copy later.
                at = position[key]
                earlier = {name: values[at] for name, values in columns.items()}
                repeats.append(Repeat(earlier, conflict=earlier != {name: row[name] for name in columns}))
                for name, values in columns.items():
                    values[at] = row[name]
                return
            position[key] = kept
        kept += 1
        for name, values in columns.items():  # columnar: one Series per column, not one per row
            values.append(row[name])

    for body in bodies:
        typed = _typed_page(dataset, body)
        rows = None if typed is None else _clean_rows(dataset, typed, clock_ms, (lo, hi) if window else None)
        if rows is not None:
            received += len(rows)
            keys = [key_of(row) for row in rows] if key_of is not None else None
            if keys is None or (len(set(keys)) == len(keys) and position.keys().isdisjoint(keys)):
                # No id repeated: the page's columns in one pass each.
                if keys is not None:
                    position.update(zip(keys, range(kept, kept + len(rows)), strict=True))
                kept += len(rows)
                for name, values in columns.items():
                    values.extend([row[name] for row in rows])
            else:
                for row in rows:
                    keep(row)
            continue
        for raw in raw_records(dataset, body):
            index = received
            received += 1
            if isinstance(raw, lenient_json.Unreadable):
                quarantined.append(Quarantined(index, raw.reason, raw.raw))
                continue
            try:
                row = dataset.row(msgspec.json.decode(raw, type=dataset.record_type))
            except (
                msgspec.ValidationError,
                msgspec.DecodeError,
                ValueError,
                shapely.errors.ShapelyError,
            ) as e:
                quarantined.append(Quarantined(index, _reason(e, raw), bytes(raw).decode("utf-8", "replace")))
                continue
            if dataset.check is not None and (implausible := dataset.check(row, clock_ms)) is not None:
                quarantined.append(Quarantined(index, implausible, bytes(raw).decode("utf-8", "replace")))
                continue
            if window is not None and dataset.window_column is not None:
                t = row[dataset.window_column]
                if not lo <= t < hi:
                    reason = f"{dataset.window_column} {t} is outside the requested window [{lo}, {hi})"
                    quarantined.append(Quarantined(index, reason, bytes(raw).decode("utf-8", "replace")))
                    continue
            keep(row)
    # pyarrow builds typed columns (nested lists, epoch-ms timestamps) from Python lists in C++;
    # polars would build one Series per nested row.
    table = pa.Table.from_pydict(columns, schema=_arrow_schema(dataset))
    conflicts = sum(r.conflict for r in repeats)
    return Parsed(table, received, quarantined, len(repeats) - conflicts, conflicts, repeats)


def table_of(dataset: Dataset, rows: Sequence[Row]) -> pa.Table:
    """Rows as `parse` makes them (epoch-ms times, plain lists), typed with the dataset's columns."""
    columns = {name: [row[name] for row in rows] for name in dataset.schema}
    return pa.Table.from_pydict(columns, schema=_arrow_schema(dataset))


def frame_of(dataset: Dataset, rows: Sequence[Row]) -> pl.DataFrame:
    """`table_of` as a Polars frame."""
    return pl.DataFrame(pl.from_arrow(table_of(dataset, rows)))


_ARROW_SCHEMAS: dict[str, pa.Schema] = {}


def _arrow_schema(dataset: Dataset) -> pa.Schema:
    """The dataset's columns as Arrow types, made once per dataset name (a dataset need not be in DATASETS: the
    insurance trips are kept out of it, and so out of the city's lake and warehouse)."""
    schema = _ARROW_SCHEMAS.get(dataset.name)
    if schema is None:
        schema = _ARROW_SCHEMAS[dataset.name] = pl.DataFrame(schema=dataset.schema).to_arrow().schema
    return schema
