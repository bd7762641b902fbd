"""The simulated cities: zone metadata and deterministic zone geometry.

Geometry is drawn in a local metric plane around the city centre and projected to WGS 84, so areas have
realistic sizes (a parking spot is tens of metres across, the operations area several kilometres).
"""

import math
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from fleetlake_provider.ids import uuid_from

ParkingMode = Literal["free-floating", "parking-spot"]
AreaType = Literal["operations", "no-parking", "parking-spot", "slow-zone", "no-riding", "incentive", "free-floating"]
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class CitySpec:
    """What the zone API says about a city; the geometry is derived from it and the seed."""

    zone_id: str
    name: str
    parking_mode: ParkingMode
    lat: float
    lng: float
    radius_m: float
    timezone: str
    currency: str
    language: str
    max_speed_kph: int
    reduced_speed_kph: int
    slow_zone_speed_kph: int
    licence_verification_required: bool


CATALOG: dict[str, CitySpec] = {
    spec.zone_id: spec
    for spec in (
        CitySpec(
            "1",
            "Stockholm",
            "free-floating",
            59.3326,
            18.0649,
            4200,
            "Europe/Stockholm",
            "SEK",
            "sv",
            20,
            11,
            10,
            False,
        ),
        CitySpec(
            "145",
            "Berlin",
            "parking-spot",
            52.5200,
            13.4050,
            3800,
            "Europe/Berlin",
            "EUR",
            "de",
            20,
            12,
            10,
            True,
        ),
        CitySpec("9", "Oslo", "free-floating", 59.9133, 10.7389, 3500, "Europe/Oslo", "NOK", "nb", 20, 11, 8, False),
        CitySpec(
            "31",
            "Marseille",
            "free-floating",
            43.2965,
            5.3698,
            3600,
            "Europe/Paris",
            "EUR",
            "fr",
            20,
            12,
            10,
            False,
        ),
    )
}
DEFAULT_ZONES: tuple[str, ...] = ("1", "145")
BUILT_IN_ORDER: tuple[str, ...] = ("1", "145", "9", "31")
"""The built-in cities, in the order a count of zones takes them before generated ones."""
FIRST_GENERATED_ZONE = 1001
"""Generated zones have the ids 1001, 1002, ...: numeric like Voi's own, apart from every built-in one."""
SITES: tuple[tuple[str, float, float, str, str, str], ...] = (
    ("Gothenburg", 57.7089, 11.9746, "Europe/Stockholm", "SEK", "sv"),
    ("Hamburg", 53.5511, 9.9937, "Europe/Berlin", "EUR", "de"),
    ("Bergen", 60.3913, 5.3221, "Europe/Oslo", "NOK", "nb"),
    ("Lyon", 45.7640, 4.8357, "Europe/Paris", "EUR", "fr"),
    ("Helsinki", 60.1699, 24.9384, "Europe/Helsinki", "EUR", "fi"),
    ("Copenhagen", 55.6761, 12.5683, "Europe/Copenhagen", "DKK", "da"),
    ("Madrid", 40.4168, -3.7038, "Europe/Madrid", "EUR", "es"),
    ("Rome", 41.9028, 12.4964, "Europe/Rome", "EUR", "it"),
    ("Zurich", 47.3769, 8.5417, "Europe/Zurich", "CHF", "de"),
    ("Brussels", 50.8503, 4.3517, "Europe/Brussels", "EUR", "fr"),
    ("Vienna", 48.2082, 16.3738, "Europe/Vienna", "EUR", "de"),
    ("Birmingham", 52.4862, -1.8904, "Europe/London", "GBP", "en"),
)
"""Where generated zones lie: real cities' centres, time zones, currencies and languages, taken in turn; past the
last, the list starts again half a degree further south and east (its own city, named with a number)."""


def generated_spec(zone_id: str) -> CitySpec:
    """The city of a generated zone id (1001 upwards): the same id always gives the same city. Its radius, parking
    mode and speed limits are drawn like the built-in cities' (a third park in spots, like Berlin)."""
    number = int(zone_id) - FIRST_GENERATED_ZONE if zone_id.isdigit() else -1
    if number < 0 or str(number + FIRST_GENERATED_ZONE) != zone_id:
        raise ValueError(f"unknown zone {zone_id!r}; the simulated cities are {sorted(CATALOG)} and 1001 upwards")
    name, lat, lng, timezone, currency, language = SITES[number % len(SITES)]
    cycle = number // len(SITES)
    rng = random.Random(f"zone:{zone_id}")
    parking_spots = rng.random() < 1 / 3
    return CitySpec(
        zone_id,
        f"{name} {cycle + 1}" if cycle else name,
        "parking-spot" if parking_spots else "free-floating",
        round(lat - 0.5 * cycle, 4),
        round(lng + 0.5 * cycle, 4),
        float(rng.randrange(3000, 4600, 100)),
        timezone,
        currency,
        language,
        20,
        rng.choice((11, 12)),
        rng.choice((8, 10)),
        parking_spots,
    )


def spec_of(zone_id: str) -> CitySpec:
    """A built-in city, or a generated one (ValueError for any other id)."""
    return CATALOG[zone_id] if zone_id in CATALOG else generated_spec(zone_id)


def zone_ids(count: int) -> tuple[str, ...]:
    """`count` zones: the built-in cities first, then generated ones (1001, 1002, ...)."""
    if count < 1:
        raise ValueError(f"a count of zones is at least 1, not {count}")
    generated = (str(FIRST_GENERATED_ZONE + n) for n in range(max(count - len(BUILT_IN_ORDER), 0)))
    return (*BUILT_IN_ORDER[:count], *generated)


@dataclass(frozen=True)
class VehicleType:
    vehicle_type_id: str
    mds_vehicle_type: str
    form_factor: str
    propulsion_type: str
    name: str
    make: str
    model: str
    max_speed_kph: int
    max_range_m: int
    share: float
    mean_speed_kph: float
    pricing_plan_id: str


VEHICLE_TYPES: tuple[VehicleType, ...] = (
    VehicleType(
        "172ef7a6-ee84-4320-9337-86235f2f67ac",
        "scooter_standing",
        "scooter_standing",
        "electric",
        "Voiager 5",
        "Ninebot",
        "Voiager_5",
        20,
        45_000,
        0.8,
        12.0,
        "scooter-pricing-plan-1",
    ),
    VehicleType(
        "a71a53fa-ba78-4f7d-8406-840db031830e",
        "bicycle",
        "bicycle",
        "electric_assist",
        "Voi e-bike",
        "Voi",
        "Explorer",
        25,
        70_000,
        0.2,
        15.0,
        "bike-pricing-plan-1",
    ),
)


@dataclass(frozen=True)
class Area:
    area_id: str
    area_type: AreaType
    name: str
    geometry: MultiPolygon
    capacity: int | None = None
    max_speed_kph: int | None = None

    def geojson(self) -> dict[str, Any]:
        """The geometry as a GeoJSON MultiPolygon, as every feed serves it: exterior ring, then holes."""
        return {
            "type": "MultiPolygon",
            "coordinates": [
                [
                    [list(pt) for pt in poly.exterior.coords],
                    *[[list(pt) for pt in r.coords] for r in poly.interiors],
                ]
                for poly in self.geometry.geoms
            ],
        }


@dataclass(frozen=True)
class City:
    """A city's zone metadata and areas, with projections between WGS 84 and local metres."""

    spec: CitySpec
    areas: tuple[Area, ...]
    provider_id: str = field(default="1f129e3f-158f-4df5-af9c-a80de238e334")

    @property
    def zone_id(self) -> str:
        return self.spec.zone_id

    def of_type(self, area_type: AreaType) -> list[Area]:
        return [a for a in self.areas if a.area_type == area_type]

    @cached_property
    def operations(self) -> Area:
        return self.of_type("operations")[0]

    @cached_property
    def parking_spots(self) -> list[Area]:
        return self.of_type("parking-spot")

    @cached_property
    def spot_tree(self) -> shapely.STRtree:
        return shapely.STRtree([a.geometry for a in self.parking_spots])

    def spot_index_of(self, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into `parking_spots` of the spot containing each point, or -1."""
        result = np.full(len(lng), -1, dtype=np.int64)
        if not self.parking_spots or len(lng) == 0:
            return result
        points = shapely.points(lng, lat)
        point_idx, spot_idx = self.spot_tree.query(points, predicate="within")
        result[point_idx] = spot_idx
        return result

    def to_lnglat(self, x: float, y: float) -> tuple[float, float]:
        return to_lnglat(self.spec, x, y)

    def to_xy(self, lng: float, lat: float) -> tuple[float, float]:
        cos_lat = math.cos(math.radians(self.spec.lat))
        return (
            (lng - self.spec.lng) * METRES_PER_DEGREE * cos_lat,
            (lat - self.spec.lat) * METRES_PER_DEGREE,
        )


def to_lnglat(spec: CitySpec, x: float, y: float) -> tuple[float, float]:
    cos_lat = math.cos(math.radians(spec.lat))
    return (
        round(spec.lng + x / (METRES_PER_DEGREE * cos_lat), 7),
        round(spec.lat + y / METRES_PER_DEGREE, 7),
    )


def _blob(spec: CitySpec, rng: random.Random, cx: float, cy: float, radius: float, vertices: int) -> Polygon:
    """An irregular, star-shaped polygon around (cx, cy): smooth radius noise, never self-intersecting."""
    phases = [rng.uniform(0, 2 * math.pi) for _ in range(3)]
    amplitudes = [rng.uniform(0.0, 0.08) for _ in range(3)]
    ring = []
    for k in range(vertices):
        angle = 2 * math.pi * k / vertices
        wobble = sum(a * math.sin((i + 2) * angle + p) for i, (a, p) in enumerate(zip(amplitudes, phases, strict=True)))
        r = radius * (1.0 + wobble)
        ring.append(to_lnglat(spec, cx + r * math.cos(angle), cy + r * math.sin(angle)))
    ring.append(ring[0])
    return Polygon(ring)


def _random_point_in_disc(rng: random.Random, radius: float) -> tuple[float, float]:
    r = radius * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    return r * math.cos(angle), r * math.sin(angle)


def build_city(spec: CitySpec, vehicles: int, seed: int) -> City:
    """Lay out a city's areas; the same spec, fleet size and seed always give the same city."""
    rng = random.Random(f"city:{seed}:{spec.zone_id}")
    R = spec.radius_m
    areas: list[Area] = []

    def add(area_type: AreaType, name: str, polygon: Polygon, **extra: int) -> None:
        area_id = uuid_from("area", seed, spec.zone_id, len(areas))
        areas.append(Area(area_id, area_type, name, MultiPolygon([polygon]), **extra))

    ops = _blob(spec, rng, 0.0, 0.0, R, 48)
    add("operations", f"{spec.name} operations area", ops)
    if spec.parking_mode == "free-floating":
        add("free-floating", f"{spec.name} free-floating area", ops)

    def place(radius: float, within: float) -> tuple[float, float]:
        return _random_point_in_disc(rng, within * R - radius)

    for k in range(4):
        x, y = place(500, 0.7)
        add(
            "slow-zone",
            f"{spec.name} slow zone {k + 1}",
            _blob(spec, rng, x, y, rng.uniform(300, 500), 20),
            max_speed_kph=spec.slow_zone_speed_kph,
        )
    for k in range(3):
        x, y = place(300, 0.75)
        add(
            "no-riding",
            f"{spec.name} park {k + 1} (no riding)",
            _blob(spec, rng, x, y, rng.uniform(180, 300), 20),
        )

    if spec.parking_mode == "free-floating":
        for k in range(10):
            x, y = place(200, 0.7)
            add(
                "no-parking",
                f"{spec.name} no-parking {k + 1}",
                _blob(spec, rng, x, y, rng.uniform(90, 200), 16),
            )
        for k in range(3):
            x, y = place(150, 0.6)
            add(
                "incentive",
                f"{spec.name} incentive hub {k + 1}",
                _blob(spec, rng, x, y, rng.uniform(60, 120), 16),
            )
    else:
        spots = max(20, vehicles // 5)
        for k in range(spots):
            # Spots cluster towards the centre, like real parking infrastructure.
            x, y = _random_point_in_disc(rng, 0.85 * R * math.sqrt(rng.random()))
            add(
                "parking-spot",
                f"{spec.name} parking {k + 1}",
                _blob(spec, rng, x, y, rng.uniform(14, 24), 10),
                capacity=rng.randint(6, 15),
            )
    return City(spec, tuple(areas))
