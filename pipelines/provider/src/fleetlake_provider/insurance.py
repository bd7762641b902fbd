"""The simulated city's trips as the seed's "Insurance providers" section documents them, with their ground truth.

`GET /v1/partner-apis/insurance/{zoneID}/trips?end_time=YYYY-MM-DDTHH`, asked for with
`Accept: application/vnd.insurance+json;version=2.0` (anything else: 406), with the same bearer token, rate limit
and transport faults as MDS. The body is the seed's: `last_updated` (epoch ms), `version` "2.0.0" and `trips`, not
paged. Every trip is the MDS 2.0 trip the same city serves for the same hour at the same instant (its publication,
lateness, duplicates and damaged copies included), with what an insurer is given besides: the city and its
country, the vehicle's licence plate and its id, its short id, the ride type and the rider's ride count. The
duration is in whole seconds, as the seed's example has it (31 for a trip of 31.3 s), and there is no distance.

Riders are not part of the MDS story, so they are drawn here, from the seed: each trip's rider is one of a pool
(four riders a vehicle), whose ride count starts at a number of rides taken before the simulated window and grows
by one with each of their trips, in order of start. `ProviderOptions.insurance_group_share` of the trips are group
rides (half of them the group's host, half a guest), as real feeds have them; 0 by default, every ride `solo`.
`insurance_truth` is what every served trip should say.
"""

import functools
import hashlib
import weakref
import zoneinfo
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fleetlake_provider import mds
from fleetlake_provider.ids import seed_from, uuid_batch
from fleetlake_provider.index import ZoneIndex
from fleetlake_provider.service import Json, ProviderError, SimulatedProvider

MEDIA_TYPE = "application/vnd.insurance+json;version=2.0"
VERSION = "2.0.0"
PATH = "/v1/partner-apis/insurance/{zone}/trips"
RIDERS_PER_VEHICLE = 4
PLATE_COLOURS = ("grün", "blau", "schwarz")
"""German insurance plates change colour every year; the seed's example is a green one."""
TRIP_TYPE = ["rider", "voi"]
RIDER_COLUMNS = {
    "trip_id": pl.String,
    "license_plate": pl.String,
    "license_plate_id": pl.String,
    "vehicle_short_id": pl.String,
    "ride_type": pl.String,
    "is_group_ride": pl.Boolean,
    "user_ride_count": pl.Int64,
}


class NotAcceptable(ProviderError):
    status = 406


def negotiate(accept: str) -> None:
    """406 unless the Accept header asks for the insurance media type, version 2.0."""
    wanted = accept.replace(" ", "").lower()
    if MEDIA_TYPE not in wanted and f"{MEDIA_TYPE}.0" not in wanted:
        raise NotAcceptable(f"Not Acceptable: this endpoint serves {MEDIA_TYPE}")


@functools.cache
def country_of(timezone: str) -> str | None:
    """The ISO 3166 country of an IANA time zone, from the system's tz database (`zone.tab`); None if not known."""
    for folder in zoneinfo.TZPATH:
        table = Path(folder) / "zone.tab"
        if not table.is_file():
            continue
        for line in table.read_text().splitlines():
            if line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) >= 3 and fields[2] == timezone:
                return fields[0]
    return None


def _plate(seed: int, zone_id: str, device: int, year: int) -> str:
    """A readable plate in the seed's form (`2025-grün2-625bxi`), the same for a vehicle at every call."""
    digest = hashlib.blake2b(f"plate:{seed}:{zone_id}:{device}".encode(), digest_size=8).digest()
    colour = PLATE_COLOURS[year % len(PLATE_COLOURS)]
    letters = "".join(chr(ord("a") + b % 26) for b in digest[3:6])
    return f"{year}-{colour}{digest[0] % 9 + 1}-{int.from_bytes(digest[1:3]) % 900 + 100}{letters}"


_RIDERS: "weakref.WeakKeyDictionary[SimulatedProvider, dict[str, pl.DataFrame]]" = weakref.WeakKeyDictionary()


def riders(provider: SimulatedProvider, zone_id: str) -> pl.DataFrame:
    """What the insurance feed adds to each trip of the zone (RIDER_COLUMNS), one row per trip; drawn once per
    provider and zone."""
    cached = _RIDERS.setdefault(provider, {})
    if zone_id not in cached:
        cached[zone_id] = _drawriders(provider, zone_id)
    return cached[zone_id]


def _drawriders(provider: SimulatedProvider, zone_id: str) -> pl.DataFrame:
    z = provider.zone(zone_id)
    seed = provider.options.seed
    trips = z.trips.select("trip_id", "device_idx", "start_ms").sort("start_ms", "trip_id")
    n, vehicles = trips.height, z.fleet.vehicles.height
    rng = np.random.default_rng(seed_from("insurance", seed, zone_id))
    pool = max(1, vehicles * RIDERS_PER_VEHICLE)
    earlier_rides = rng.geometric(1 / 40, size=pool) - 1
    rider = rng.integers(0, pool, size=n)
    group = rng.random(n) < provider.options.insurance_group_share
    host = rng.random(n) < 0.5
    year = provider.config.start.year
    devices = z.fleet.vehicles.sort("device_idx")
    plate_ids = uuid_batch(vehicles, "license-plate", seed, zone_id)
    plates = [_plate(seed, zone_id, d, year) for d in range(vehicles)]
    frame = trips.with_columns(rider=pl.Series(rider, dtype=pl.Int64))
    nth_ride = frame.select(pl.int_range(1, pl.len() + 1).over("rider").alias("nth"))["nth"].to_numpy()
    device = trips["device_idx"].to_numpy()
    return pl.DataFrame(
        {
            "trip_id": trips["trip_id"],
            "license_plate": [plates[d] for d in device],
            "license_plate_id": [plate_ids[d] for d in device],
            "vehicle_short_id": devices["vehicle_id"].gather(device),
            "ride_type": np.where(group, np.where(host, "group-host", "group-guest"), "solo"),
            "is_group_ride": group,
            "user_ride_count": earlier_rides[rider] + nth_ride,
        },
        schema=RIDER_COLUMNS,
    )


def _record(z: ZoneIndex, trip: Json, rider: dict[str, Any] | None, country: str | None) -> Json:
    """An MDS 2.0 trip as the insurance feed says it; a damaged copy keeps its damage (the client must refuse it)."""
    duration = trip.get("duration")
    record: Json = {
        "accessibility_attributes": trip.get("accessibility_attributes", []),
        "city": z.city.spec.name,
        "country": country,
        "device_id": trip.get("device_id"),
        "duration": round(duration) if isinstance(duration, int | float) else duration,
        "start_location": trip.get("start_location"),
        "start_time": trip.get("start_time"),
        "end_location": trip.get("end_location"),
        "end_time": trip.get("end_time"),
        "provider_id": trip.get("provider_id"),
        "trip_id": trip.get("trip_id"),
        "trip_type": TRIP_TYPE,
    }
    if "device_id" not in trip:
        record.pop("device_id")
    if rider is not None:
        record |= {k: v for k, v in rider.items() if k != "trip_id"}
    return dict(sorted(record.items()))


def trips(provider: SimulatedProvider, zone_id: str, end_time: str | None) -> Json:
    """The insurance trips that ended in the hour, published by now (as MDS 2.0's `/trips` of the same hour)."""
    served = mds.trips(provider, zone_id, end_time)
    z = provider.zone(zone_id)
    table = riders(provider, zone_id)
    ids = [t.get("trip_id") for t in served["trips"]]
    wanted = {i.strip().lower() for i in ids if isinstance(i, str)}
    by_id = {row["trip_id"]: row for row in table.filter(pl.col("trip_id").is_in(list(wanted))).to_dicts()}
    country = country_of(z.city.spec.timezone)
    records = [
        _record(z, t, by_id.get(i.strip().lower()) if isinstance(i, str) else None, country)
        for t, i in zip(served["trips"], ids, strict=True)
    ]
    return {"last_updated": provider.now_ms(), "version": VERSION, "trips": records}


def insurance_truth(provider: SimulatedProvider) -> pl.DataFrame:
    """Every trip of every zone as the insurance feed should say it: the MDS truth's trip with the rider's fields."""
    frames = []
    for zone_id, z in provider.zones.items():
        devices = z.fleet.vehicles.select("device_idx", "device_id")
        frames.append(
            z.trips.join(devices, on="device_idx")
            .join(riders(provider, zone_id), on="trip_id")
            .select(
                pl.lit(zone_id).alias("zone_id"),
                "trip_id",
                "device_id",
                pl.lit(z.city.spec.name).alias("city"),
                pl.lit(country_of(z.city.spec.timezone)).alias("country"),
                pl.from_epoch("start_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("start_time"),
                pl.from_epoch("end_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("end_time"),
                "start_lat",
                "start_lng",
                "end_lat",
                "end_lng",
                pl.col("duration_s"),
                *(c for c in RIDER_COLUMNS if c != "trip_id"),
            )
        )
    return pl.concat(frames).sort("end_time", "trip_id")
