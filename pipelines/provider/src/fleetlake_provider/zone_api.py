"""Voi's zone API (deep integration, `X-Auth-Token`) as the simulated provider serves it: the partner's zones,
each zone's areas, and the parking spots' occupancy now."""

import polars as pl

from fleetlake_provider.ids import uuid_from
from fleetlake_provider.service import Json, SimulatedProvider


def info(provider: SimulatedProvider) -> Json:
    """/v1/zone/info: the zones these credentials see, with their parking mode and speed configuration."""
    zones = []
    for z in provider.zones.values():
        spec = z.city.spec
        entry: Json = {
            "zoneId": spec.zone_id,
            "zoneName": spec.name,
            "parkingMode": spec.parking_mode,
            "licenceVerificationRequired": spec.licence_verification_required,
            "speedConfig": {
                "maxSpeed": spec.max_speed_kph,
                "minRequiredRides": 3,
                "reducedSpeed": spec.reduced_speed_kph,
                "speedUnit": "km/h",
            },
            "isSleeping": False,
        }
        zones.append(entry)
    return {
        "data": {
            "id": uuid_from("partner", provider.options.seed),
            "type": "zone",
            "attributes": {"zones": zones},
        }
    }


def areas(provider: SimulatedProvider, zone_id: str, version: int) -> Json:
    """/v{version}/zone/id/{zone}: the zone's areas; version 1 leaves out the free-floating area."""
    z = provider.zone(zone_id)
    served = [
        {
            "id": a.area_id,
            "type": "area",
            "area_type": a.area_type,
            "name": a.name,
            "geometry": a.geojson(),
        }
        for a in z.city.areas
        if version >= 2 or a.area_type != "free-floating"
    ]
    return {"data": {"id": zone_id, "type": "area", "attributes": {"areas": served}}}


def occupancy(provider: SimulatedProvider, zone_id: str) -> Json:
    """/v1/zone/id/{zone}/areasOccupancy: vehicles parked in each parking spot now, against its capacity."""
    z = provider.zone(zone_id)
    counts = z.spot_counts(provider.state_time(), ("available", "reserved", "non_operational"))
    by_spot = counts.group_by("spot_id").agg(pl.col("len").sum())
    parked = dict(zip(by_spot["spot_id"].to_list(), by_spot["len"].to_list(), strict=True))
    return {
        "data": [
            {"id": s.area_id, "occupancy": parked.get(s.area_id, 0), "capacity": s.capacity}
            for s in z.city.parking_spots
        ]
    }
