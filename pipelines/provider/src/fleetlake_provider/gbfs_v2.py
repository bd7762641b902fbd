"""GBFS 2.3 as the simulated provider serves it: Voi's account-wide feeds at `/gbfs/v2/{feed}.json`.

Unlike GBFS 3.0 (one feed set per zone), the seed's GBFS 2.3 answers for the whole account: `system_regions` names
the zones the credentials may see, and `free_bike_status` lists the parked vehicles of every one of them, with
nothing saying which zone a vehicle is in (a client places them by geometry). Times are POSIX seconds, texts plain
strings. The same story as GBFS 3.0 (`gbfs`): the same vehicles at the same instant, with the same rotating ids.

The seed's own examples of `gbfs.json` and `geofencing_zones.json` say `"version": "2.2"` and list the `gbfs` feed
at `/gbfs/gbfs.json`; with `ProviderOptions.quirks` (the default) the provider serves exactly that, and the other
path answers too. `quirks=False` serves what the GBFS 2.3 schemas require (`"2.3"` everywhere, `/gbfs/v2/gbfs.json`).
"""

from collections.abc import Callable

import polars as pl

from fleetlake_provider.city import VEHICLE_TYPES
from fleetlake_provider.gbfs import geofencing
from fleetlake_provider.ids import uuid_from
from fleetlake_provider.service import Json, NotFound, SimulatedProvider

GBFS_VERSION = "2.3"
SEED_EXAMPLE_VERSION = "2.2"
"""What the seed's examples of gbfs.json and geofencing_zones.json carry as `version`."""
SEED_VERSION_FEEDS = frozenset({"gbfs", "geofencing_zones"})
PREFIX = "/gbfs/v2"
SEED_DISCOVERY_PATH = "/gbfs/gbfs.json"
"""Where the seed's gbfs.json example says gbfs.json itself lives."""
SEED_LISTED = (
    "system_information",
    "vehicle_types",
    "gbfs_versions",
    "system_alerts",
    "system_pricing_plans",
    "system_regions",
    "free_bike_status",
)
"""The feeds the seed's gbfs.json example lists after itself, in its order (geofencing_zones is documented but not
listed)."""
PARKED = ("available", "reserved", "non_operational")
FeedBuilder = Callable[[SimulatedProvider, int, str], tuple[int, Json]]
"""A feed at an instant (epoch ms), given the server's base URL: its `ttl` in seconds and its `data`."""


def _posix(ms: int) -> int:
    return ms // 1000


def feed(provider: SimulatedProvider, name: str, base_url: str) -> Json:
    """/gbfs/v2/{name}.json: the feed as of now (current state held at the end of the simulated window)."""
    build = FEEDS.get(name)
    if build is None:
        raise NotFound(f"feed {name} not found")
    ttl, data = build(provider, provider.state_time(), base_url)
    quirky = provider.options.quirks and name in SEED_VERSION_FEEDS
    return {
        "last_updated": _posix(provider.now_ms()),
        "ttl": ttl,
        "version": SEED_EXAMPLE_VERSION if quirky else GBFS_VERSION,
        "data": data,
    }


def _gbfs(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    """The seed's list, in its order: the feeds a role may read."""
    listed = SEED_LISTED
    own = base_url + (SEED_DISCOVERY_PATH if provider.options.quirks else f"{PREFIX}/gbfs.json")
    feeds = [{"name": "gbfs", "url": own}] + [{"name": f, "url": f"{base_url}{PREFIX}/{f}.json"} for f in listed]
    return 0, {"en": {"feeds": feeds}}


def _gbfs_versions(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    return 3600, {"versions": [{"version": GBFS_VERSION, "url": f"{base_url}{PREFIX}/gbfs.json"}]}


def _system_information(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    """One system for the account: its time zone is the first zone's (a client takes a zone's from the zone API)."""
    first = next(iter(provider.zones.values())).city.spec
    return 3600, {
        "system_id": "voi",
        "language": "en",
        "name": "VOI",
        "operator": "VOI Technology AB",
        "timezone": first.timezone,
        "email": "support@voiapp.io",
        "url": "https://www.voi.com",
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
    }


def _vehicle_types(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    types = [
        {
            "vehicle_type_id": t.vehicle_type_id,
            "form_factor": t.form_factor,
            "propulsion_type": t.propulsion_type,
            "name": t.name,
            "max_range_meters": t.max_range_m,
        }
        for t in VEHICLE_TYPES
    ]
    return 30, {"vehicle_types": types}


def _system_pricing_plans(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    """One plan per vehicle type (the ids free_bike_status names), priced as GBFS 3.0 prices the first zone: an
    account-wide feed has one plan per id, whatever the zones' currencies."""
    currency = next(iter(provider.zones.values())).city.spec.currency
    unlock, per_min = {"SEK": (10, 3.0), "NOK": (10, 3.5), "EUR": (1, 0.25)}[currency]
    plans = [
        {
            "plan_id": t.pricing_plan_id,
            "name": "Pay as you go",
            "currency": currency,
            "price": unlock,
            "is_taxable": False,
            "description": f"Pay as you go: unlock fee and per-minute price for the {t.name}",
            "per_min_pricing": [
                {"start": 0, "rate": per_min * (1.2 if t.form_factor == "bicycle" else 1), "interval": 1}
            ],
        }
        for t in VEHICLE_TYPES
    ]
    return 3600, {"plans": plans}


def _system_regions(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    """The zones these credentials may see, by the zone API's id and name."""
    regions = [{"region_id": zone_id, "name": z.city.spec.name} for zone_id, z in provider.zones.items()]
    return 3600, {"regions": regions}


def _system_alerts(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    return 0, {"alerts": []}


def _free_bike_status(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    """Every parked vehicle of every zone, as GBFS 3.0's vehicle_status lists it per zone, without its zone."""
    bikes = []
    for z in provider.zones.values():
        parked = z.intervals_at(at).filter(pl.col("vehicle_state").is_in(PARKED))
        for row in parked.sort("gbfs_vehicle_id").iter_rows(named=True):
            v = z.vehicle_rows[row["device_idx"]]
            bikes.append(
                {
                    "bike_id": row["gbfs_vehicle_id"],
                    "last_reported": _posix(row["start_ms"]),
                    "lat": row["lat"],
                    "lon": row["lng"],
                    "is_reserved": row["vehicle_state"] == "reserved",
                    "is_disabled": row["vehicle_state"] == "non_operational",
                    "vehicle_type_id": v["vehicle_type_id"],
                    "current_range_meters": round(v["max_range_m"] * row["battery"] / 100),
                    "pricing_plan_id": v["pricing_plan_id"],
                    "rental_uris": {
                        "android": f"https://voi.com/deeplink?company=voiapp.io&vehicle_qr_code={v['vehicle_id']}",
                        "ios": f"https://voi.com/deeplink?company=voiapp.io&vehicle_qr_code={v['vehicle_id']}",
                    },
                }
            )
    return 0, {"bikes": bikes + _strays(provider, at)}


def _strays(provider: SimulatedProvider, at: int) -> list[Json]:
    """`ProviderOptions.gbfs_v2_strays` vehicles about 220 km north of the first city: in no zone."""
    first = next(iter(provider.zones.values())).city.spec
    kind = VEHICLE_TYPES[0]
    return [
        {
            "bike_id": uuid_from("gbfs-v2-stray", provider.options.seed, i),
            "last_reported": _posix(at),
            "lat": round(first.lat + 2.0 + 0.01 * i, 6),
            "lon": first.lng,
            "is_reserved": False,
            "is_disabled": False,
            "vehicle_type_id": kind.vehicle_type_id,
            "current_range_meters": kind.max_range_m,
            "pricing_plan_id": kind.pricing_plan_id,
        }
        for i in range(provider.options.gbfs_v2_strays)
    ]


def _geofencing_zones(provider: SimulatedProvider, at: int, base_url: str) -> tuple[int, Json]:
    """Every zone's areas, in GBFS 2.3's shape: plain-text names, `vehicle_type_id`, no global rules."""
    features = []
    for z in provider.zones.values():
        for f in geofencing(z.city)["geofencing_zones"]["features"]:
            rules = [_rule_v2(rule) for rule in f["properties"]["rules"]]
            name = f["properties"]["name"][0]["text"]
            features.append({**f, "properties": {"name": name, "rules": rules}})
    return 0, {"geofencing_zones": {"type": "FeatureCollection", "features": features}}


def _rule_v2(rule: Json) -> Json:
    out: Json = {
        "vehicle_type_id": rule["vehicle_type_ids"],
        "ride_allowed": rule["ride_start_allowed"] and rule["ride_end_allowed"],
        "ride_through_allowed": rule["ride_through_allowed"],
    }
    if "maximum_speed_kph" in rule:
        out["maximum_speed_kph"] = rule["maximum_speed_kph"]
    return out


FEEDS: dict[str, FeedBuilder] = {
    "gbfs": _gbfs,
    "gbfs_versions": _gbfs_versions,
    "system_information": _system_information,
    "vehicle_types": _vehicle_types,
    "system_pricing_plans": _system_pricing_plans,
    "system_regions": _system_regions,
    "system_alerts": _system_alerts,
    "free_bike_status": _free_bike_status,
    "geofencing_zones": _geofencing_zones,
}
"""Every GBFS 2.3 feed the provider serves, with the function that builds it."""
