"""The simulated fleet: one deterministic timeline per vehicle, from which every endpoint is served.

Each vehicle walks the MDS 2.0 micromobility state machine: riders reserve and ride it with a demand that
follows the local time of day, its battery drains with distance, and the operator swaps batteries, repairs,
rebalances and removes vehicles left where they must not be. Every state change is one MDS event and one
interval of the true state timeline; trips, vehicle status, GBFS and parking occupancy are all read from
those same intervals, so the endpoints can never disagree with each other or with the ground truth.
"""

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from fleetlake_provider.city import METRES_PER_DEGREE, VEHICLE_TYPES, City
from fleetlake_provider.ids import uuid_batch

STATES = ("available", "reserved", "on_trip", "non_operational", "removed")
AVAILABLE, RESERVED, ON_TRIP, NON_OPERATIONAL, REMOVED = range(len(STATES))
IN_PUBLIC_RIGHT_OF_WAY = (AVAILABLE, RESERVED, NON_OPERATIONAL)

# Rentals per available vehicle per hour, by local hour of day: a night lull and two rush hours.
HOURLY_DEMAND = (
    0.10, 0.06, 0.04, 0.03, 0.03, 0.06, 0.20, 0.55, 0.85, 0.60, 0.45, 0.50,
    0.60, 0.60, 0.60, 0.65, 0.80, 0.95, 0.90, 0.70, 0.55, 0.40, 0.28, 0.18,
)  # fmt: skip
WEEKEND_DEMAND = 0.85
DEMAND_SCALE = 0.5
BATTERY_LOW = 15.0
BREAKDOWNS_PER_HOUR = 1 / 300
RESERVATION_SHARE = 0.2
RESERVATION_CANCEL_SHARE = 0.15


@dataclass(frozen=True)
class SimulationConfig:
    """What a simulated city run is made of; equal configs give identical cities."""

    vehicles: int
    start: datetime
    days: int
    seed: int
    parked_days: float = 0.0
    """0: the fleet is deployed at `start`. Above 0: each vehicle was dropped off at a random time in the
    `parked_days` days before `start` and stayed parked until then, so its last event precedes the window."""

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * 86_400_000


@dataclass(frozen=True)
class Fleet:
    """The ground truth of one zone over the simulated window, as columnar tables.

    - `vehicles`: one row per device.
    - `trips`: one row per trip, sorted by end time (the MDS trips endpoint pages by end hour).
    - `events`: one row per state change, sorted by timestamp.
    - `intervals`: one row per device and contiguous state, sorted by device then start; `end_ms` of a
      device's last interval is the window end.
    """

    city: City
    config: SimulationConfig
    vehicles: pl.DataFrame
    trips: pl.DataFrame
    events: pl.DataFrame
    intervals: pl.DataFrame


def default_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days - 1` days ago: the window then covers yesterday(s) and the whole of today."""
    now = now or datetime.now(UTC)
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=days - 1)


def _demand_by_hour(city: City, config: SimulationConfig) -> list[float]:
    tz = ZoneInfo(city.spec.timezone)
    rates = []
    for h in range(config.days * 24 + 24):
        local = (config.start + timedelta(hours=h)).astimezone(tz)
        weekend = WEEKEND_DEMAND if local.weekday() >= 5 else 1.0
        rates.append(HOURLY_DEMAND[local.hour] * weekend * DEMAND_SCALE)
    return rates


class _SpotIndex:
    """Nearest parking spot to a point, by a coarse grid over spot centres (fast inside the hot loop)."""

    CELL = 400.0

    def __init__(self, centres: list[tuple[float, float]]) -> None:
        self.centres = centres
        self.cells: dict[tuple[int, int], list[int]] = {}
        for i, (x, y) in enumerate(centres):
            self.cells.setdefault((int(x // self.CELL), int(y // self.CELL)), []).append(i)

    def nearest(self, x: float, y: float) -> int:
        cx, cy = int(x // self.CELL), int(y // self.CELL)
        best, best_d = -1, math.inf
        for ring in range(30):
            for ix in range(cx - ring, cx + ring + 1):
                for iy in range(cy - ring, cy + ring + 1):
                    if max(abs(ix - cx), abs(iy - cy)) != ring:
                        continue
                    for i in self.cells.get((ix, iy), ()):
                        sx, sy = self.centres[i]
                        d = (sx - x) ** 2 + (sy - y) ** 2
                        if d < best_d:
                            best, best_d = i, d
            if best >= 0:
                return best
        return 0


class _Columns:
    """Append-only columns: plain lists are the fastest thing to grow in the hot loop."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self.data: dict[str, list[float | int | str]] = {name: [] for name in names}

    def frame(self, schema: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame({name: self.data[name] for name in self.names}, schema=schema)


class _Simulator:
    """Walks one vehicle at a time through the window; all randomness comes from one seeded stream."""

    def __init__(self, city: City, config: SimulationConfig) -> None:
        self.city = city
        self.rng = random.Random(f"fleet:{config.seed}:{city.zone_id}")
        self.radius = city.spec.radius_m
        self.demand = _demand_by_hour(city, config)
        self.lam_max = max(self.demand)
        self.horizon = config.days * 86_400.0
        self.parked_s = config.parked_days * 86_400.0
        self.spot_centres = self._centres("parking-spot")
        self.spots = _SpotIndex(self.spot_centres) if self.spot_centres else None
        self.no_parking = self._centres("no-parking")
        self.no_riding = self._centres("no-riding")
        self.events = _Columns("dev", "t", "event_type", "state", "x", "y", "battery", "trip")
        self.intervals = _Columns("dev", "state", "t", "x", "y", "battery", "trips_done", "trip")
        self.trips = _Columns("dev", "start", "end", "x0", "y0", "x1", "y1", "distance")
        # Per-vehicle state, reset by run_vehicle.
        self.dev = 0
        self.x = self.y = self.battery = self.last_t = 0.0
        self.state = REMOVED
        self.trips_done = 0
        self.vtype = 0
        self.operator_at, self.operator_event = math.inf, ""

    def _centres(self, area_type: str) -> list[tuple[float, float]]:
        out = []
        for area in self.city.of_type(area_type):  # type: ignore[arg-type]
            c = area.geometry.centroid
            out.append(self.city.to_xy(c.x, c.y))
        return out

    def street_point(self, spread: float) -> tuple[float, float]:
        """Where the operator leaves a vehicle: inside a spot in a parking-spot city, else near the centre."""
        rng = self.rng
        if self.spot_centres:
            sx, sy = self.spot_centres[rng.randrange(len(self.spot_centres))]
            return sx + rng.uniform(-4, 4), sy + rng.uniform(-4, 4)
        r = spread * self.radius * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        return r * math.cos(a), r * math.sin(a)

    def next_demand(self, t: float) -> float:
        """The next rental request after `t`: a non-homogeneous Poisson process, by thinning."""
        rng, lam_max, demand = self.rng, self.lam_max, self.demand
        while True:
            t += rng.expovariate(lam_max / 3600.0)
            if t >= self.horizon:
                return math.inf
            if rng.random() * lam_max < demand[int(t // 3600)]:
                return t

    def change(self, t: float, event_type: str, new_state: int, trip: int = -1) -> float:
        """Record one state change (an MDS event and the start of a true interval); returns its time."""
        t = max(t, self.last_t + 0.001)
        self.last_t = t
        battery = max(1, min(100, round(self.battery)))
        ev = self.events.data
        ev["dev"].append(self.dev)
        ev["t"].append(t)
        ev["event_type"].append(event_type)
        ev["state"].append(new_state)
        ev["x"].append(self.x)
        ev["y"].append(self.y)
        ev["battery"].append(battery)
        ev["trip"].append(trip)
        iv = self.intervals.data
        iv["dev"].append(self.dev)
        iv["state"].append(new_state)
        iv["t"].append(t)
        iv["x"].append(self.x)
        iv["y"].append(self.y)
        iv["battery"].append(battery)
        iv["trips_done"].append(self.trips_done)
        iv["trip"].append(trip)
        self.state = new_state
        return t

    def destination(self) -> tuple[float, float, bool]:
        """Where a rider leaves the vehicle, and whether the operator will see it as misplaced."""
        rng, R = self.rng, self.radius
        roll = rng.random()
        if roll < 0.02:  # beyond the operations area
            a = math.atan2(self.y, self.x) + rng.gauss(0, 0.3)
            r = R * rng.uniform(1.3, 1.5)
            return r * math.cos(a), r * math.sin(a), True
        if roll < 0.03 and self.no_riding:
            cx, cy = self.no_riding[rng.randrange(len(self.no_riding))]
            return cx + rng.uniform(-30, 30), cy + rng.uniform(-30, 30), True
        if roll < 0.06 and self.no_parking:
            cx, cy = self.no_parking[rng.randrange(len(self.no_parking))]
            return cx + rng.uniform(-30, 30), cy + rng.uniform(-30, 30), False
        # An ordinary ride: a few hundred metres to a few kilometres, drifting back towards the centre.
        d = rng.lognormvariate(math.log(1500), 0.6)
        from_centre = math.hypot(self.x, self.y)
        if from_centre > 0.55 * R:
            a = math.atan2(-self.y, -self.x) + rng.gauss(0, 0.9)
        else:
            a = rng.uniform(0, 2 * math.pi)
        x1, y1 = self.x + d * math.cos(a), self.y + d * math.sin(a)
        if self.spots is not None and roll < 0.88:
            sx, sy = self.spot_centres[self.spots.nearest(x1, y1)]
            return sx + rng.uniform(-4, 4), sy + rng.uniform(-4, 4), False
        return x1, y1, self.spots is not None and rng.random() < 0.5

    def ride(self, t: float) -> float:
        """One rider trip from the current place; returns the time the vehicle is next free to act."""
        rng = self.rng
        vtype = VEHICLE_TYPES[self.vtype]
        x0, y0 = self.x, self.y
        x1, y1, misplaced = self.destination()
        straight = math.hypot(x1 - x0, y1 - y0)
        distance = straight * rng.uniform(1.2, 1.45)
        speed = min(max(rng.gauss(vtype.mean_speed_kph, 3.0), 5.0), vtype.max_speed_kph + 6) / 3.6
        duration = max(distance / speed, 60.0)
        roll = rng.random()
        if roll < 0.004:  # a false start: unlocked and locked again on the spot
            x1, y1, misplaced, distance, duration = x0, y0, False, rng.uniform(0, 4), rng.uniform(2, 9)
        elif roll < 0.0055:  # a rental left running for hours
            duration = rng.uniform(5.2, 8) * 3600
        elif roll < 0.0075:  # an odometer glitch: a distance no scooter can cover in the time
            distance = rng.uniform(30_000, 80_000)
        trip = len(self.trips.data["dev"])
        start = self.change(t, "trip_start", ON_TRIP, trip)
        self.x, self.y = x1, y1
        self.battery -= 100.0 * distance / vtype.max_range_m
        # GBFS ids rotate after every trip: the vehicle is back on the street under a new id.
        self.trips_done += 1
        end = self.change(start + duration, "trip_end", AVAILABLE, trip)
        tr = self.trips.data
        tr["dev"].append(self.dev)
        tr["start"].append(start)
        tr["end"].append(end)
        tr["x0"].append(x0)
        tr["y0"].append(y0)
        tr["x1"].append(x1)
        tr["y1"].append(y1)
        tr["distance"].append(round(distance))
        t = end
        if self.battery < BATTERY_LOW:
            t = self.change(t + rng.uniform(30, 120), "battery_low", NON_OPERATIONAL)
            if rng.random() < 0.65:  # a battery swap on the street
                self.battery = rng.uniform(92, 100)
                t = self.change(t + rng.uniform(3600, 6 * 3600), "battery_charged", AVAILABLE)
            else:
                t = self.change(t + rng.uniform(3600, 6 * 3600), "maintenance_pick_up", REMOVED)
                self.x, self.y = self.street_point(0.6)
                self.battery = 100.0
                t = self.change(t + rng.uniform(3 * 3600, 8 * 3600), "provider_drop_off", AVAILABLE)
            return t
        if misplaced and rng.random() < 0.7:
            self.operator_at, self.operator_event = t + rng.uniform(1800, 4 * 3600), "compliance_pick_up"
        elif math.hypot(self.x, self.y) > 0.65 * self.radius and rng.random() < 0.5:
            self.operator_at, self.operator_event = t + rng.uniform(3 * 3600, 12 * 3600), "rebalance_pick_up"
        return t

    def run_vehicle(self, dev: int, vtype: int) -> None:
        rng = self.rng
        self.dev, self.vtype = dev, vtype
        self.x, self.y = self.street_point(0.8)
        self.battery = rng.uniform(30, 100)
        self.trips_done = 0
        self.operator_at, self.operator_event = math.inf, ""
        # The fleet is deployed at the start of the window, so every vehicle's state is known from an event; or,
        # with parked_days, some time before it: the vehicle stands parked, silent, until the window begins.
        deployed = -rng.uniform(0.0, self.parked_s) if self.parked_s else 0.0
        self.last_t = deployed - 1.0
        t = max(self.change(deployed, "provider_drop_off", AVAILABLE), 0.0)
        while t < self.horizon:
            if self.state != AVAILABLE:
                raise AssertionError("every branch below returns the vehicle to the street")
            t_rent = self.next_demand(t)
            t_break = t + rng.expovariate(BREAKDOWNS_PER_HOUR / 3600.0)
            t_next = min(t_rent, t_break, self.operator_at)
            if t_next >= self.horizon:
                return
            self.battery -= 0.2 * (t_next - t) / 3600.0
            t = t_next
            if t == self.operator_at:
                t = self.change(t, self.operator_event, REMOVED)
                self.operator_at = math.inf
                self.x, self.y = self.street_point(0.6)
                t = self.change(t + rng.uniform(1800, 3 * 3600), "provider_drop_off", AVAILABLE)
                continue
            self.operator_at = math.inf  # a rental or a breakdown supersedes a planned pick-up
            if t == t_break:
                t = self.change(t, "maintenance", NON_OPERATIONAL)
                if rng.random() < 0.3:
                    t = self.change(t + rng.uniform(1800, 3 * 3600), "maintenance", AVAILABLE)
                else:
                    t = self.change(t + rng.uniform(2 * 3600, 12 * 3600), "maintenance_pick_up", REMOVED)
                    self.x, self.y = self.street_point(0.6)
                    self.battery = rng.uniform(95, 100)
                    t = self.change(t + rng.uniform(6 * 3600, 24 * 3600), "provider_drop_off", AVAILABLE)
                continue
            if rng.random() < RESERVATION_SHARE:
                t = self.change(t, "reservation_start", RESERVED)
                t += rng.uniform(60, 600)
                if rng.random() < RESERVATION_CANCEL_SHARE:
                    t = self.change(t, "reservation_cancel", AVAILABLE)
                    continue
            t = self.ride(t)


def _to_lnglat(city: City, x: pl.Expr, y: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    cos_lat = math.cos(math.radians(city.spec.lat))
    lng = (pl.lit(city.spec.lng) + x / (METRES_PER_DEGREE * cos_lat)).round(6)
    lat = (pl.lit(city.spec.lat) + y / METRES_PER_DEGREE).round(6)
    return lng, lat


def _epoch_ms(config: SimulationConfig, col: str) -> pl.Expr:
    """Simulation seconds to epoch milliseconds."""
    return pl.lit(config.start_ms, pl.Int64) + (pl.col(col) * 1000).floor().cast(pl.Int64)


def _state_names(col: str) -> pl.Expr:
    return pl.col(col).replace_strict(dict(enumerate(STATES)), return_dtype=pl.String)


def simulate(city: City, config: SimulationConfig) -> Fleet:
    """Run every vehicle of `city` through the window; deterministic in (city, config)."""
    sim = _Simulator(city, config)
    type_of = [0 if sim.rng.random() < VEHICLE_TYPES[0].share else 1 for _ in range(config.vehicles)]
    for dev in range(config.vehicles):
        sim.run_vehicle(dev, type_of[dev])
    trip_ids = uuid_batch(len(sim.trips.data["dev"]), "trip", config.seed, city.zone_id)
    return Fleet(
        city,
        config,
        vehicles=_vehicles_frame(city, config, type_of),
        trips=_trips_frame(city, config, sim.trips, trip_ids),
        events=_events_frame(city, config, sim.events, trip_ids),
        intervals=_intervals_frame(city, config, sim.intervals),
    )


def _vehicles_frame(city: City, config: SimulationConfig, type_of: list[int]) -> pl.DataFrame:
    """One row per device: its ids (MDS device id, the short id riders see) and its vehicle type."""
    n = config.vehicles
    device_ids = uuid_batch(n, "device", config.seed, city.zone_id)
    short_ids = uuid_batch(n, "short", config.seed, city.zone_id)
    return pl.DataFrame(
        {
            "device_idx": np.arange(n, dtype=np.int32),
            "device_id": device_ids,
            "vehicle_id": [s[:4] for s in short_ids],
            "vehicle_type_id": [VEHICLE_TYPES[k].vehicle_type_id for k in type_of],
            "vehicle_type": [VEHICLE_TYPES[k].mds_vehicle_type for k in type_of],
            "propulsion_type": [VEHICLE_TYPES[k].propulsion_type for k in type_of],
            "max_speed_kph": [VEHICLE_TYPES[k].max_speed_kph for k in type_of],
            "max_range_m": [VEHICLE_TYPES[k].max_range_m for k in type_of],
            "pricing_plan_id": [VEHICLE_TYPES[k].pricing_plan_id for k in type_of],
        }
    )


def _events_frame(city: City, config: SimulationConfig, columns: _Columns, trip_ids: list[str]) -> pl.DataFrame:
    """One row per state change inside the window, sorted by time, with ids, places and the trip it belongs to."""
    ev = columns.frame(
        {
            "dev": pl.Int32,
            "t": pl.Float64,
            "event_type": pl.String,
            "state": pl.Int8,
            "x": pl.Float64,
            "y": pl.Float64,
            "battery": pl.Int16,
            "trip": pl.Int64,
        }
    )
    lng, lat = _to_lnglat(city, pl.col("x"), pl.col("y"))
    return (
        ev.with_columns(
            timestamp_ms=_epoch_ms(config, "t"),
            lng=lng,
            lat=lat,
            event_id=pl.Series(uuid_batch(ev.height, "event", config.seed, city.zone_id)),
        )
        .with_columns(
            device_idx=pl.col("dev"),
            vehicle_state=_state_names("state"),
            trip_id=pl.when(pl.col("trip") >= 0).then(
                pl.col("trip").replace_strict(dict(enumerate(trip_ids)), default=None)
            ),
        )
        .select(
            "event_id",
            "device_idx",
            "timestamp_ms",
            "event_type",
            "vehicle_state",
            "lat",
            "lng",
            "battery",
            "trip_id",
        )
        .sort("timestamp_ms", "device_idx")
        .filter(pl.col("timestamp_ms") < config.end_ms)
    )


def _intervals_frame(city: City, config: SimulationConfig, columns: _Columns) -> pl.DataFrame:
    """One row per device and contiguous state, clipped to the window, with the vehicle's GBFS id (which rotates
    after every trip) and the parking spot it stands in."""
    iv = columns.frame(
        {
            "dev": pl.Int32,
            "state": pl.Int8,
            "t": pl.Float64,
            "x": pl.Float64,
            "y": pl.Float64,
            "battery": pl.Int16,
            "trips_done": pl.Int32,
            "trip": pl.Int64,
        }
    )
    end_ms = config.end_ms
    lng, lat = _to_lnglat(city, pl.col("x"), pl.col("y"))
    intervals = (
        iv.with_columns(start_ms=_epoch_ms(config, "t"), lng=lng, lat=lat)
        .with_columns(end_ms=pl.col("start_ms").shift(-1).over("dev").fill_null(end_ms))
        .filter(pl.col("start_ms") < end_ms)
        .with_columns(pl.col("end_ms").clip(upper_bound=end_ms))
    )
    gbfs_ids = uuid_batch(intervals.height, "gbfs", config.seed, city.zone_id)
    # GBFS ids rotate after every trip: one id per (device, trips completed so far).
    rotation = intervals.select("dev", "trips_done").unique(maintain_order=True).with_row_index("rot")
    spot_idx = city.spot_index_of(intervals["lng"].to_numpy(), intervals["lat"].to_numpy())
    spot_ids = [a.area_id for a in city.parking_spots]
    return (
        intervals.join(rotation, on=["dev", "trips_done"], how="left")
        .with_columns(
            device_idx=pl.col("dev"),
            vehicle_state=_state_names("state"),
            gbfs_vehicle_id=pl.col("rot").map_elements(lambda r: gbfs_ids[r], return_dtype=pl.String),
            spot_id=pl.Series(
                [
                    spot_ids[i] if i >= 0 and s != ON_TRIP else None
                    for i, s in zip(spot_idx, intervals["state"], strict=True)
                ],
                dtype=pl.String,
            ),
        )
        .select(
            "device_idx",
            "vehicle_state",
            "start_ms",
            "end_ms",
            "lat",
            "lng",
            "battery",
            "gbfs_vehicle_id",
            "spot_id",
            "trips_done",
        )
        .sort("device_idx", "start_ms")
    )


def _trips_frame(city: City, config: SimulationConfig, columns: _Columns, trip_ids: list[str]) -> pl.DataFrame:
    """One row per trip that ended inside the window, sorted by end time, with its places, duration and distance."""
    tr = columns.frame(
        {
            "dev": pl.Int32,
            "start": pl.Float64,
            "end": pl.Float64,
            "x0": pl.Float64,
            "y0": pl.Float64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "distance": pl.Int64,
        }
    )
    lng0, lat0 = _to_lnglat(city, pl.col("x0"), pl.col("y0"))
    lng1, lat1 = _to_lnglat(city, pl.col("x1"), pl.col("y1"))
    return (
        tr.with_columns(
            trip_id=pl.Series(trip_ids, dtype=pl.String),
            device_idx=pl.col("dev"),
            start_ms=_epoch_ms(config, "start"),
            end_ms=_epoch_ms(config, "end"),
            start_lat=lat0,
            start_lng=lng0,
            end_lat=lat1,
            end_lng=lng1,
        )
        .with_columns(
            duration_s=((pl.col("end_ms") - pl.col("start_ms")) / 1000).round().cast(pl.Int64),
            distance_m=pl.col("distance"),
        )
        .select(
            "trip_id",
            "device_idx",
            "start_ms",
            "end_ms",
            "start_lat",
            "start_lng",
            "end_lat",
            "end_lng",
            "duration_s",
            "distance_m",
        )
        .filter(pl.col("end_ms") < config.end_ms)
        .sort("end_ms", "device_idx")
    )


def round_times(fleet: Fleet, bin_s: int) -> Fleet:
    """The fleet as a feed that rounds its times down to `bin_s` seconds (1: whole seconds; 900: the 15 minutes of
    published open data): event timestamps, trip start and end times and the true state timeline alike, so the
    truth still agrees with every feed. Reported trip durations stay exact, as such feeds report them. A bin
    divides the hour, so every time stays in its hour; rounding down keeps every table in its order, and events
    that come to share a time keep the order they happened in (a consumer must not rely on it)."""
    if bin_s == 0:
        return fleet
    if bin_s < 0 or 3600 % bin_s:
        raise ValueError(f"timestamp rounding must divide an hour (1 to 3600 seconds), not {bin_s}")
    bin_ms = bin_s * 1000

    def down(*columns: str) -> list[pl.Expr]:
        return [(pl.col(c) // bin_ms * bin_ms).alias(c) for c in columns]

    return Fleet(
        fleet.city,
        fleet.config,
        fleet.vehicles,
        fleet.trips.with_columns(down("start_ms", "end_ms")),
        fleet.events.with_columns(down("timestamp_ms")),
        fleet.intervals.with_columns(down("start_ms", "end_ms")),
    )
