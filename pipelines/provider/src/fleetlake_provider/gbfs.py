"""GBFS 3.0 as the simulated provider serves it: a table from each feed's name to the function that builds it."""

from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl

from fleetlake_provider.city import VEHICLE_TYPES, City
from fleetlake_provider.index import ZoneIndex
from fleetlake_provider.service import Json, NotFound, SimulatedProvider

GBFS_VERSION = "3.0"
FeedBuilder = Callable[[ZoneIndex, int, str], tuple[int, Json]]
"""A feed of a zone at an instant (epoch ms), given the feeds' base URL: its `ttl` in seconds and its `data`."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(text: str, language: str = "en") -> list[Json]:
    return [{"text": text, "language": language}]


def feed(provider: SimulatedProvider, zone_id: str, name: str, base_url: str) -> Json:
    """/gbfs/{zone}/{name}.json: the feed as of now (current state held at the end of the simulated window)."""
    z = provider.zone(zone_id)
    build = FEEDS.get(name)
    if build is None:
        raise NotFound(f"feed {name} not found")
    ttl, data = build(z, provider.state_time(), base_url)
    return {"data": data, "last_updated": _iso(provider.now_ms()), "ttl": ttl, "version": GBFS_VERSION}


def _gbfs(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    feeds = [f for f in FEEDS if f != "gbfs"]
    return 3600, {"feeds": [{"name": f, "url": f"{base_url}/{f}.json"} for f in feeds]}


def _gbfs_versions(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    return 3600, {"versions": [{"version": GBFS_VERSION, "url": f"{base_url}/gbfs.json"}]}


def _system_information(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    spec = z.city.spec
    return 3600, {
        "attribution_organization_name": _text("VOI Technology AB"),
        "attribution_url": "https://www.voi.com",
        "email": "support@voiapp.io",
        "feed_contact_email": "support@voiapp.io",
        "languages": ["en"],
        "name": _text("VOI"),
        "opening_hours": "24/7",
        "operator": _text("VOI Technology AB"),
        "rental_apps": {
            "android": {
                "discovery_uri": "voiapp://open",
                "store_uri": "https://play.google.com/store/apps/details?id=io.voiapp.voi",
            },
            "ios": {
                "discovery_uri": "voiapp://",
                "store_uri": "https://apps.apple.com/us/app/voi-e-scooter-e-bike-hire/id1395921017",
            },
        },
        "system_id": f"voi_{spec.name}",
        "timezone": spec.timezone,
    }


def _vehicle_types(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    types = [
        {
            "color": "coral",
            "default_pricing_plan_id": t.pricing_plan_id,
            "default_reserve_time": 10,
            "description": [],
            "eco_labels": [],
            "form_factor": t.form_factor,
            "make": _text(t.make),
            "max_permitted_speed": t.max_speed_kph,
            "max_range_meters": t.max_range_m,
            "model": _text(t.model),
            "name": _text(t.name),
            "pricing_plan_ids": [t.pricing_plan_id],
            "propulsion_type": t.propulsion_type,
            "rated_power": 250,
            "return_constraint": "hybrid",
            "rider_capacity": 1,
            "vehicle_assets": {
                "icon_last_modified": "2024-01-01",
                "icon_url": "https://docs.voi.com/assets/images/icons/scooter.svg",
            },
            "vehicle_type_id": t.vehicle_type_id,
            "wheel_count": 2,
        }
        for t in VEHICLE_TYPES
    ]
    return 30, {"vehicle_types": types}


def _vehicle_status(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    parked = z.intervals_at(at).filter(pl.col("vehicle_state").is_in(["available", "reserved", "non_operational"]))
    vehicles = []
    for row in parked.sort("gbfs_vehicle_id").iter_rows(named=True):
        v = z.vehicle_rows[row["device_idx"]]
        record: Json = {
            "current_fuel_percent": row["battery"] / 100,
            "current_range_meters": round(v["max_range_m"] * row["battery"] / 100),
            "is_disabled": row["vehicle_state"] == "non_operational",
            "is_reserved": row["vehicle_state"] == "reserved",
            "last_reported": _iso(row["start_ms"]),
            "lat": row["lat"],
            "lon": row["lng"],
            "pricing_plan_id": v["pricing_plan_id"],
            "rental_uris": {
                "android": f"https://voi.com/deeplink?company=voiapp.io&vehicle_qr_code={v['vehicle_id']}",
                "ios": f"https://voi.com/deeplink?company=voiapp.io&vehicle_qr_code={v['vehicle_id']}",
            },
            "vehicle_id": row["gbfs_vehicle_id"],
            "vehicle_type_id": v["vehicle_type_id"],
        }
        if row["spot_id"] is not None:
            record["station_id"] = row["spot_id"]
        vehicles.append(record)
    return 30, {"vehicles": vehicles}


def _station_information(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    stations = []
    for spot in z.city.parking_spots:
        c = spot.geometry.centroid
        stations.append(
            {
                "capacity": spot.capacity,
                "is_virtual_station": True,
                "lat": round(c.y, 6),
                "lon": round(c.x, 6),
                "name": _text(spot.name),
                "station_area": spot.geojson(),
                "station_id": spot.area_id,
            }
        )
    return 3600, {"stations": stations}


def _station_status(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    counts: dict[tuple[str, str], int] = {
        (r["spot_id"], r["vehicle_type_id"]): r["len"] for r in z.spot_counts(at, ("available",)).iter_rows(named=True)
    }
    disabled = z.spot_counts(at, ("non_operational",)).group_by("spot_id").agg(pl.col("len").sum())
    disabled_by_spot = dict(zip(disabled["spot_id"].to_list(), disabled["len"].to_list(), strict=True))
    stations = []
    for spot in z.city.parking_spots:
        type_counts = [counts.get((spot.area_id, t.vehicle_type_id), 0) for t in VEHICLE_TYPES]
        by_type = [
            {"count": n, "vehicle_type_id": t.vehicle_type_id} for n, t in zip(type_counts, VEHICLE_TYPES, strict=True)
        ]
        stations.append(
            {
                "is_installed": True,
                "is_renting": True,
                "is_returning": True,
                "last_reported": _iso(at),
                "num_vehicles_available": sum(type_counts),
                "num_vehicles_disabled": disabled_by_spot.get(spot.area_id, 0),
                "station_id": spot.area_id,
                "vehicle_types_available": by_type,
            }
        )
    return 30, {"stations": stations}


def _system_regions(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    return 3600, {"regions": []}


def _system_alerts(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    return 0, {"alerts": []}


def _system_pricing_plans(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    currency = z.city.spec.currency
    unlock, per_min = {"SEK": (10, 3.0), "NOK": (10, 3.5), "EUR": (1, 0.25)}[currency]
    plans = [
        {
            "currency": currency,
            "description": _text(f"Pay as you go: unlock fee and per-minute price for the {t.name}"),
            "is_taxable": False,
            "name": _text("Pay as you go"),
            "per_min_pricing": [
                {"interval": 1, "rate": per_min * (1.2 if t.form_factor == "bicycle" else 1), "start": 0}
            ],
            "plan_id": t.pricing_plan_id,
            "price": unlock,
            "surge_pricing": False,
        }
        for t in VEHICLE_TYPES
    ]
    return 3600, {"plans": plans}


def _geofencing_zones(z: ZoneIndex, at: int, base_url: str) -> tuple[int, Json]:
    return 3600, geofencing(z.city)


FEEDS: dict[str, FeedBuilder] = {
    "gbfs": _gbfs,
    "gbfs_versions": _gbfs_versions,
    "system_information": _system_information,
    "vehicle_types": _vehicle_types,
    "station_information": _station_information,
    "station_status": _station_status,
    "vehicle_status": _vehicle_status,
    "system_regions": _system_regions,
    "system_pricing_plans": _system_pricing_plans,
    "system_alerts": _system_alerts,
    "geofencing_zones": _geofencing_zones,
}
"""Every feed the provider serves, in gbfs.json's order, with the function that builds it."""


def geofencing(city: City) -> Json:
    """GBFS 3.0 geofencing: the zone areas with their rules; earlier features take precedence."""
    spec = city.spec
    types = [t.vehicle_type_id for t in VEHICLE_TYPES]
    parking_city = spec.parking_mode == "parking-spot"

    def rule(start: bool, end: bool, through: bool, speed: int | None = None, station: bool | None = None) -> Json:
        r: Json = {
            "vehicle_type_ids": types,
            "ride_start_allowed": start,
            "ride_end_allowed": end,
            "ride_through_allowed": through,
        }
        if speed is not None:
            r["maximum_speed_kph"] = speed
        if station is not None:
            r["station_parking"] = station
        return r

    rules_by_type: dict[str, Json] = {
        "no-riding": rule(False, False, False, speed=0),
        "no-parking": rule(False, False, True),
        "parking-spot": rule(True, True, True, station=True),
        "slow-zone": rule(True, not parking_city, True, speed=spec.slow_zone_speed_kph),
        "incentive": rule(True, True, True),
        "operations": rule(True, not parking_city, True, speed=spec.max_speed_kph, station=parking_city),
    }
    order = ("no-riding", "no-parking", "parking-spot", "slow-zone", "incentive", "operations")
    features = [
        {
            "type": "Feature",
            "geometry": area.geojson(),
            "properties": {"name": _text(area.name), "rules": [rules_by_type[area.area_type]]},
        }
        for area_type in order
        for area in city.of_type(area_type)  # type: ignore[arg-type]
    ]
    return {
        "geofencing_zones": {"type": "FeatureCollection", "features": features},
        "global_rules": [rule(False, False, True, speed=spec.max_speed_kph, station=parking_city)],
    }
