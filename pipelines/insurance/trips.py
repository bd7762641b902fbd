"""What an insurance trip is: the seed's record typed and checked, and its columns in the insurance lake.

The record is the seed's "Insurance providers" trip (an MDS 2.0 trip without distance, with the city, the vehicle's
licence plate and short id, the ride type and the rider's ride count). The times, places and their plausibility
are judged as an MDS trip's are (pipelines/lake/plausibility.py). A field the seed lists but a delivery leaves out
is null, not known; a ride type beyond the seed's examples is kept as sent (the seed gives examples, not a list).

`INSURANCE_TRIPS` is a `Dataset` like the city's but deliberately not one of `DATASETS`: everything that walks
DATASETS (the city's ingestion, lake views, assets and checks) never sees it.
"""

from typing import Any

import polars as pl
from msgspec import Struct

from pipelines.lake import plausibility
from pipelines.lake import records as r
from pipelines.lake.datasets import STRINGS, UTC_MS, Dataset

NAME = "insurance_trips"
PERSONAL_FIELDS = ("license_plate", "license_plate_id", "user_ride_count", "ride_type", "is_group_ride")
"""The fields only insurers receive: none of them, under any name, may reach what a city sees."""


class InsuranceTrip(Struct, kw_only=True):
    provider_id: r.Uuid
    device_id: r.Uuid
    trip_id: r.Uuid
    start_time: r.MdsEpochMs
    end_time: r.MdsEpochMs
    start_location: r.Location
    end_location: r.Location
    duration: r.NonNegative
    city: str | None = None
    country: str | None = None
    license_plate: r.Id | None = None
    license_plate_id: r.Id | None = None
    vehicle_short_id: r.Id | None = None
    ride_type: r.Id | None = None
    is_group_ride: bool | None = None
    user_ride_count: r.Count | None = None
    trip_type: list[str] | None = None
    accessibility_attributes: list[str] | None = None


def _row(t: InsuranceTrip) -> dict[str, Any]:
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
        "city": t.city,
        "country": t.country,
        "license_plate": t.license_plate,
        "license_plate_id": t.license_plate_id,
        "vehicle_short_id": t.vehicle_short_id,
        "ride_type": t.ride_type,
        "is_group_ride": t.is_group_ride,
        "user_ride_count": t.user_ride_count,
        "trip_type": t.trip_type,
        "accessibility_attributes": t.accessibility_attributes,
    }


INSURANCE_TRIPS = Dataset(
    NAME,
    "hourly",
    ("trips",),
    InsuranceTrip,
    _row,
    {
        "trip_id": pl.String, "device_id": pl.String, "provider_id": pl.String, "start_time": UTC_MS,
        "end_time": UTC_MS, "start_lat": pl.Float64, "start_lng": pl.Float64, "end_lat": pl.Float64,
        "end_lng": pl.Float64, "duration_s": pl.Float64, "city": pl.String, "country": pl.String,
        "license_plate": pl.String, "license_plate_id": pl.String, "vehicle_short_id": pl.String,
        "ride_type": pl.String, "is_group_ride": pl.Boolean, "user_ride_count": pl.Int64, "trip_type": STRINGS,
        "accessibility_attributes": STRINGS,
    },
    key=("trip_id",),
    window_column="end_time",
    check=plausibility.trip,
)  # fmt: skip
"""The insurance trips of one zone and UTC hour (by end time), as the city's MDS trips are partitioned."""
