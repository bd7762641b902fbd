"""Typed records of every source, as msgspec structs: decoding one is also validating it.

Each struct accepts what real feeds send (MDS 2.0, GBFS 3.0 and 2.3, the Voi zone API), quirks included,
and rejects what no feed should (missing ids, wrong types, impossible coordinates) with a message that names
the field. Unknown fields are ignored: providers add fields freely.
"""

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

# Patterns match the whole string: `\A`/`\Z`, since `$` also matches before a final newline, and an id with one
# passes a `^...$` check only to fail every later cast (msgspec searches with the pattern, it does not fullmatch).
UUID_PATTERN = r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
Uuid = Annotated[str, Meta(pattern=UUID_PATTERN)]
# An id or code: printable, no control characters, no leading or trailing white space (`" available"` is not
# `"available"`, and a padded id never joins its unpadded twin).
ID_PATTERN = r"\A[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?\Z"
Id = Annotated[str, Meta(min_length=1, max_length=255, pattern=ID_PATTERN)]
# A value of a closed vocabulary, checked against it after decoding (pipelines/lake/plausibility.py): a padded
# value is not in it either, and the hot path of events is spared a regular expression per value.
Code = Annotated[str, Meta(min_length=1, max_length=255)]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
EpochMs = Annotated[int, Meta(ge=0, le=32_503_680_000_000)]  # before the year 3000
# MDS times are milliseconds; one before 2000-01-01 (946,684,800,000 ms) is seconds sent as milliseconds (1.7e9 s
# read as ms is January 1970), or a placeholder, never a record of this century's micromobility.
MdsEpochMs = Annotated[int, Meta(ge=946_684_800_000, le=32_503_680_000_000)]
Percent = Annotated[float, Meta(ge=0, le=100)]
NonNegative = Annotated[float, Meta(ge=0)]  # JSON integers are accepted too
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # bounded: an Int64 column must hold it


class Location(Struct):
    lat: Latitude
    lng: Longitude


class Trip(Struct, kw_only=True):
    provider_id: Uuid
    device_id: Uuid
    trip_id: Uuid
    start_time: MdsEpochMs
    end_time: MdsEpochMs
    start_location: Location
    end_location: Location
    duration: NonNegative
    distance: NonNegative
    trip_type: list[str] | None = None
    accessibility_attributes: list[str] | None = None


class Event(Struct, kw_only=True):
    provider_id: Uuid
    device_id: Uuid
    event_id: Uuid
    vehicle_state: Code
    event_types: Annotated[list[Code], Meta(min_length=1)]
    timestamp: MdsEpochMs
    publication_time: MdsEpochMs | None = None
    location: Location | None = None
    battery_percent: Percent | None = None
    trip_ids: list[Uuid] | None = None


class Vehicle(Struct, kw_only=True):
    provider_id: Uuid
    device_id: Uuid
    vehicle_id: Id
    vehicle_type: Id
    propulsion_types: list[Id]
    maximum_speed: NonNegative | None = None


class Telemetry(Struct, kw_only=True):
    timestamp: MdsEpochMs
    location: Location
    battery_percent: Percent | None = None
    trip_ids: list[Uuid] | None = None


class VehicleStatus(Struct, kw_only=True):
    provider_id: Uuid
    device_id: Uuid
    last_event: Event
    last_telemetry: Telemetry | None = None


class GbfsVehicle(Struct, kw_only=True):
    """GBFS 3.0 `vehicle_status` and 2.x `free_bike_status` (bike_id) in one shape."""

    vehicle_id: Id | None = None
    bike_id: Id | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    is_reserved: bool | int
    is_disabled: bool | int
    vehicle_type_id: Id | None = None
    last_reported: EpochMs | str | None = None
    current_range_meters: NonNegative | None = None
    current_fuel_percent: Annotated[float, Meta(ge=0, le=1)] | None = None
    station_id: Id | None = None
    home_station_id: Id | None = None
    pricing_plan_id: Id | None = None


class LocalizedText(Struct):
    text: str
    language: str


Text = list[LocalizedText] | str


class VehicleTypeAvailability(Struct):
    vehicle_type_id: Id
    count: Count


class GbfsStationStatus(Struct, kw_only=True):
    station_id: Id
    num_vehicles_available: Count | None = None
    num_bikes_available: Count | None = None
    num_vehicles_disabled: Count | None = None
    num_docks_available: Count | None = None
    is_installed: bool | int
    is_renting: bool | int
    is_returning: bool | int
    last_reported: EpochMs | str | None = None
    vehicle_types_available: list[VehicleTypeAvailability] | None = None


class GbfsStationInformation(Struct, kw_only=True):
    station_id: Id
    name: Text
    lat: Latitude
    lon: Longitude
    capacity: Count | None = None
    is_virtual_station: bool | None = None
    station_area: dict[str, Any] | None = None


class GbfsRule(Struct, kw_only=True):
    vehicle_type_ids: list[str] | None = None
    vehicle_type_id: list[str] | None = None  # GBFS 2.x spelling seen in Voi's documented example
    ride_allowed: bool | None = None  # GBFS 2.2
    ride_start_allowed: bool | None = None
    ride_end_allowed: bool | None = None
    ride_through_allowed: bool
    maximum_speed_kph: NonNegative | None = None
    station_parking: bool | None = None


class GbfsGeofencingProperties(Struct, kw_only=True):
    name: Text | None = None
    start: EpochMs | str | None = None
    end: EpochMs | str | None = None
    rules: list[GbfsRule] | None = None


class GbfsGeofencingFeature(Struct, kw_only=True):
    type: str
    geometry: dict[str, Any] | None  # null geometry is a known real-world quirk
    properties: GbfsGeofencingProperties


class GbfsVehicleType(Struct, kw_only=True):
    vehicle_type_id: Id
    form_factor: Id
    propulsion_type: Id
    name: Text | None = None
    max_range_meters: NonNegative | None = None
    max_permitted_speed: NonNegative | None = None
    rider_capacity: Count | None = None
    default_pricing_plan_id: str | None = None


class GbfsSystemInformation(Struct, kw_only=True):
    system_id: Id
    name: Text
    timezone: Id
    language: str | None = None
    languages: list[str] | None = None
    operator: Text | None = None
    email: str | None = None
    feed_contact_email: str | None = None


class PricingSegment(Struct, kw_only=True):
    start: NonNegative
    rate: float
    interval: NonNegative
    end: NonNegative | None = None


class GbfsPricingPlan(Struct, kw_only=True):
    plan_id: Id
    name: Text
    currency: Annotated[str, Meta(min_length=3, max_length=3)]
    price: float | str
    is_taxable: bool | int
    description: Text | None = None
    per_min_pricing: list[PricingSegment] | None = None
    per_km_pricing: list[PricingSegment] | None = None
    surge_pricing: bool | None = None


class GbfsRegion(Struct, kw_only=True):
    """GBFS 2.3 `system_regions`; Voi's seed calls `region_id` a Number, the schema a string: both are taken."""

    region_id: Id | int
    name: str


class SpeedConfig(Struct, kw_only=True):
    maxSpeed: NonNegative | None = None
    reducedSpeed: NonNegative | None = None
    minRequiredRides: Count | None = None
    speedUnit: str | None = None


class ZoneInfo(Struct, kw_only=True):
    zoneId: Id | int
    zoneName: str
    parkingMode: str | None = None
    licenceVerificationRequired: bool | None = None
    speedConfig: SpeedConfig | None = None
    isSleeping: bool | None = None


AREA_TYPES = (
    "operations",
    "no-parking",
    "parking-spot",
    "slow-zone",
    "no-riding",
    "incentive",
    "free-floating",
)


class ZoneArea(Struct, kw_only=True):
    id: Id
    area_type: Id
    geometry: dict[str, Any]
    name: str | None = None


class AreaOccupancy(Struct, kw_only=True):
    id: Id
    occupancy: Count
    capacity: Count


def decode_as(raw: msgspec.Raw, record_type: type[Struct]) -> Any:
    """Decode one raw JSON record into its struct; raises msgspec.ValidationError naming the bad field."""
    return msgspec.json.decode(raw, type=record_type)
