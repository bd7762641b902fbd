"""The simulated Voi API as plain Python queries: every payload the HTTP layer serves is built here.

Payload shapes follow the seed documents (`shared/seeds/002_*`, `001_*`); where those are silent, MDS 2.0 and
GBFS 3.0. The seed's own deviations from the MDS 2.0 schema (nested `last_updated`/`ttl`, `links: {}`) are
served by default, because real feeds follow the seed; `quirks=False` serves the schema's shapes instead.
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import polars as pl

from fleetlake_provider.city import CATALOG, DEFAULT_ZONES, VEHICLE_TYPES, Area, City, build_city
from fleetlake_provider.clock import Clock, WallClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.ids import seed_from, uuid_from
from fleetlake_provider.simulation import Fleet, SimulationConfig, default_start, round_times, simulate

MDS_VERSION = "2.0.0"
GBFS_VERSION = "3.0"
HOUR_MS = 3_600_000
RECENT_EVENTS_MAX_AGE_MS = 14 * 24 * HOUR_MS
GBFS_FEEDS = (
    "gbfs",
    "gbfs_versions",
    "system_information",
    "vehicle_types",
    "station_information",
    "station_status",
    "vehicle_status",
    "system_regions",
    "system_pricing_plans",
    "system_alerts",
    "geofencing_zones",
)

Json = dict[str, Any]


class ProviderError(Exception):
    """An answer other than 200, with its HTTP status."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ProviderError):
    status = 400


class NotFound(ProviderError):
    status = 404


class NotReady(ProviderError):
    """The hour has ended but the provider has not finished compiling it (HTTP 202)."""

    status = 202


@dataclass(frozen=True)
class ProviderOptions:
    zones: tuple[str, ...] = DEFAULT_ZONES
    vehicles: int = 300
    start: datetime | None = None
    days: int = 2
    seed: int = 7
    ready_delay_s: float = 600.0
    page_size: int = 2000
    quirks: bool = True
    faults: Faults = field(default_factory=Faults)
    parked_days: float = 0.0
    """Vehicles parked long before the first hour: each vehicle's drop-off lies up to this many days before
    `start` (its last event then precedes the window); 0 deploys the fleet at `start`."""
    timestamp_rounding_s: int = 0
    """Round every time the city's feeds serve down to this many seconds (0: milliseconds, as simulated; 1: whole
    seconds; 900: the 15 minutes of published open data), the truth included."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(text: str, language: str = "en") -> list[Json]:
    return [{"text": text, "language": language}]


def _geojson(area: Area) -> Json:
    return {
        "type": "MultiPolygon",
        "coordinates": [
            [
                [list(pt) for pt in poly.exterior.coords],
                *[[list(pt) for pt in r.coords] for r in poly.interiors],
            ]
            for poly in area.geometry.geoms
        ],
    }


class _RecordFaults:
    """Per-record publication times and data faults, fixed by the seed so every read agrees."""

    def __init__(self, times_ms: np.ndarray, seed_key: str, faults: Faults, ready_delay_s: float) -> None:
        count = len(times_ms)
        rng = np.random.default_rng(seed_from(seed_key))
        self.lag_ms = rng.uniform(1_000, min(60_000, max(ready_delay_s, 2) * 500), count).astype(np.int64)
        late = rng.random(count) < faults.late_rate
        # A late record appears 5 minutes to `late_max_s` after its hour was first served (never before).
        after_served = rng.uniform(300, max(faults.late_max_s, 600), count) * 1000
        served_ms = (times_ms // HOUR_MS + 1) * HOUR_MS + int(ready_delay_s * 1000)
        late_lag = served_ms - times_ms + after_served.astype(np.int64)
        # Lateness delays when a record becomes visible, not what it says: a late record, once it arrives,
        # is identical to the one a fault-free provider would have served.
        self.visible_lag_ms = np.where(late, late_lag, self.lag_ms)
        self.duplicate = rng.random(count) < faults.duplicate_rate
        self.malformed = np.where(rng.random(count) < faults.malformed_rate, rng.integers(1, 4, count), 0)
        # Drawn after the others, so turning corrections on leaves every other fault as it was.
        corrected = rng.random(count) < faults.correction_rate
        self.preliminary_factor = np.where(corrected, rng.uniform(1.1, 1.6, count), 1.0)
        after_first = rng.uniform(300, max(faults.correction_max_s, 600), count) * 1000
        # Served preliminary until this instant, the truth from then on (records that are never corrected: never).
        self.corrected_from_ms = np.where(
            corrected, np.maximum(served_ms, times_ms + self.visible_lag_ms) + after_first.astype(np.int64), 0
        )
        # Drawn apart, so turning these on leaves every other fault where it was.
        extra = np.random.default_rng(seed_from(seed_key + "/implausible"))
        self.implausible = np.where(extra.random(count) < faults.implausible_rate, extra.integers(1, 8, count), 0)
        self.contradicting = extra.random(count) < faults.contradicting_rate


@dataclass
class _Zone:
    """A zone's fleet, with the arrays and lookups the endpoints slice by time."""

    fleet: Fleet
    device_ids: list[str]
    vehicle_rows: list[Json]
    event_ts: np.ndarray
    event_faults: _RecordFaults
    trip_end: np.ndarray
    trip_faults: _RecordFaults
    interval_start: np.ndarray
    interval_end: np.ndarray

    @property
    def city(self) -> City:
        return self.fleet.city

    @property
    def events(self) -> pl.DataFrame:
        return self.fleet.events

    @property
    def trips(self) -> pl.DataFrame:
        return self.fleet.trips


class SimulatedProvider:
    """Answers the Voi partner API for the simulated cities at the clock's current time."""

    def __init__(self, options: ProviderOptions | None = None, clock: Clock | None = None) -> None:
        self.options = options or ProviderOptions()
        self.clock: Clock = clock or WallClock()
        opts = self.options
        start = opts.start or default_start(opts.days)
        config = SimulationConfig(
            vehicles=opts.vehicles, start=start, days=opts.days, seed=opts.seed, parked_days=opts.parked_days
        )
        self.config = config
        self.zones: dict[str, _Zone] = {}
        for zone_id in opts.zones:
            if zone_id not in CATALOG:
                raise ValueError(f"unknown zone {zone_id!r}; the simulated cities are {sorted(CATALOG)}")
            city = build_city(CATALOG[zone_id], opts.vehicles, opts.seed)
            self.zones[zone_id] = self._index(round_times(simulate(city, config), opts.timestamp_rounding_s))

    def _index(self, fleet: Fleet) -> _Zone:
        key = f"{self.options.seed}:{fleet.city.zone_id}"
        vehicles = fleet.vehicles
        with_next = fleet.intervals.with_columns(
            next_lat=pl.col("lat").shift(-1).over("device_idx"),
            next_lng=pl.col("lng").shift(-1).over("device_idx"),
        )
        return _Zone(
            fleet=replace(fleet, intervals=with_next),
            device_ids=vehicles["device_id"].to_list(),
            vehicle_rows=vehicles.to_dicts(),
            event_ts=fleet.events["timestamp_ms"].to_numpy(),
            event_faults=_RecordFaults(
                fleet.events["timestamp_ms"].to_numpy(),
                f"events:{key}",
                self.options.faults,
                self.options.ready_delay_s,
            ),
            trip_end=fleet.trips["end_ms"].to_numpy(),
            trip_faults=_RecordFaults(
                fleet.trips["end_ms"].to_numpy(), f"trips:{key}", self.options.faults, self.options.ready_delay_s
            ),
            interval_start=with_next["start_ms"].to_numpy(),
            interval_end=with_next["end_ms"].to_numpy(),
        )

    # -- time -----------------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def _state_time(self) -> int:
        """The instant current-state endpoints describe: now, held at the end of the simulated window."""
        return min(self.now_ms(), self.config.end_ms - 1)

    def zone(self, zone_id: str) -> _Zone:
        try:
            return self.zones[zone_id]
        except KeyError:
            raise NotFound(f"zone {zone_id} not found") from None

    def _check_hour(self, hour_ms: int) -> None:
        now = self.now_ms()
        # MDS 2.0: "for hours that are not yet in the past the API shall return a 404", the current one too.
        if hour_ms + HOUR_MS > now or hour_ms >= self.config.end_ms:
            raise NotFound("the requested hour is in the future")
        if now < hour_ms + HOUR_MS + self.options.ready_delay_s * 1000:
            raise NotReady("the requested hour is not ready yet, try again later")

    @staticmethod
    def parse_hour(value: str | None, name: str) -> int:
        if not value:
            raise BadRequest(f"query parameter {name} is required (YYYY-MM-DDTHH)")
        try:
            hour = datetime.strptime(value, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        except ValueError:
            raise BadRequest(f"{name} must be YYYY-MM-DDTHH, a UTC hour between 00 and 23") from None
        return int(hour.timestamp() * 1000)

    # -- envelopes ------------------------------------------------------------------------------------

    def _mds(self, key: str, records: list[Json], links: Json | None = None, status: bool = True) -> Json:
        body: Json = {"version": MDS_VERSION}
        if status:
            now = self.now_ms()
            if self.options.quirks:
                body["last_updated"] = {"last_updated": now}
                body["ttl"] = {"ttl": 0}
            else:
                body["last_updated"] = now
                body["ttl"] = 0
        body[key] = records
        if links is not None:
            body["links"] = links if links or not self.options.quirks else {}
            if not self.options.quirks and "next" not in body["links"]:
                body["links"] = {"next": None}
        return body

    def _page(self, records: list[Json], cursor: int, next_url: str | None) -> tuple[list[Json], Json]:
        size = self.options.page_size
        page = records[cursor : cursor + size]
        links: Json = {}
        if cursor + size < len(records) and next_url is not None:
            links["next"] = next_url.replace("{cursor}", str(cursor + size))
        return page, links

    # -- MDS records ----------------------------------------------------------------------------------

    def _faulted(self, rows: list[Json], faults: _RecordFaults, idx: np.ndarray, kind: str) -> list[Json]:
        out: list[Json] = []
        for row, i in zip(rows, idx, strict=True):
            if faults.contradicting[i] and kind == "event":
                _contradict(row)
            out.append(row)
            if faults.duplicate[i]:
                out.append(dict(row))
            bad = int(faults.malformed[i])
            if bad:
                out.append(_corrupt(row, bad, kind))
            implausible = int(faults.implausible[i])
            if implausible:
                out.append(_implausible(row, implausible, kind))
        return out

    def _event_json(self, z: _Zone, row: Json, publication_ms: int) -> Json:
        record: Json = {
            "battery_percent": row["battery"],
            "device_id": z.device_ids[row["device_idx"]],
            "event_id": row["event_id"],
            "event_types": [row["event_type"]],
            "location": {"lat": row["lat"], "lng": row["lng"]},
            "provider_id": z.city.provider_id,
            "timestamp": row["timestamp_ms"],
            "publication_time": publication_ms,
            "trip_ids": [row["trip_id"]] if row["trip_id"] is not None else [],
            "vehicle_state": row["vehicle_state"],
        }
        return record

    def _events_between(self, z: _Zone, start_ms: int, end_ms: int) -> list[Json]:
        lo, hi = np.searchsorted(z.event_ts, [start_ms, end_ms], side="left")
        idx = np.arange(lo, hi)
        published = z.event_ts[lo:hi] + z.event_faults.visible_lag_ms[lo:hi] <= self.now_ms()
        idx = idx[published]
        if len(idx) == 0:
            return []
        rows = z.events[idx].to_dicts()
        records = [
            self._event_json(z, row, int(z.event_ts[i] + z.event_faults.lag_ms[i]))
            for row, i in zip(rows, idx, strict=True)
        ]
        return self._faulted(records, z.event_faults, idx, "event")

    def trips(self, zone_id: str, end_time: str | None) -> Json:
        z = self.zone(zone_id)
        hour = self.parse_hour(end_time, "end_time")
        self._check_hour(hour)
        lo, hi = np.searchsorted(z.trip_end, [hour, hour + HOUR_MS], side="left")
        idx = np.arange(lo, hi)
        idx = idx[z.trip_end[lo:hi] + z.trip_faults.visible_lag_ms[lo:hi] <= self.now_ms()]
        now = self.now_ms()
        factor = np.where(z.trip_faults.corrected_from_ms[idx] > now, z.trip_faults.preliminary_factor[idx], 1.0)
        records = [
            {
                "accessibility_attributes": [],
                "device_id": z.device_ids[row["device_idx"]],
                "distance": row["distance_m"] if scale == 1.0 else round(row["distance_m"] * scale, 1),
                "duration": row["duration_s"],
                "end_location": {"lat": row["end_lat"], "lng": row["end_lng"]},
                "end_time": row["end_ms"],
                "provider_id": z.city.provider_id,
                "start_location": {"lat": row["start_lat"], "lng": row["start_lng"]},
                "start_time": row["start_ms"],
                "trip_id": row["trip_id"],
                "trip_type": ["rider"],
            }
            for row, scale in zip(z.trips[idx].to_dicts() if len(idx) else [], factor.tolist(), strict=True)
        ]
        return self._mds("trips", self._faulted(records, z.trip_faults, idx, "trip"))

    def events_historical(self, zone_id: str, event_time: str | None, cursor: int, next_url: str | None) -> Json:
        z = self.zone(zone_id)
        hour = self.parse_hour(event_time, "event_time")
        self._check_hour(hour)
        page, links = self._page(self._events_between(z, hour, hour + HOUR_MS), cursor, next_url)
        return self._mds("events", page, links)

    def events_recent(
        self, zone_id: str, start_time: str | None, end_time: str | None, cursor: int, next_url: str | None
    ) -> Json:
        z = self.zone(zone_id)
        try:
            start_ms, end_ms = int(start_time or ""), int(end_time or "")
        except ValueError:
            raise BadRequest("start_time and end_time are required, in integer milliseconds since the epoch") from None
        now = self.now_ms()
        if end_ms <= start_ms:
            raise BadRequest("end_time must be after start_time")
        if start_ms < now - RECENT_EVENTS_MAX_AGE_MS:
            raise BadRequest("start_time is older than two weeks; use /events/historical")
        page, links = self._page(self._events_between(z, start_ms, min(end_ms, now)), cursor, next_url)
        return self._mds("events", page, links)

    def _vehicle_json(self, z: _Zone, row: Json) -> Json:
        return {
            "device_id": row["device_id"],
            "maximum_speed": row["max_speed_kph"],
            "propulsion_types": [row["propulsion_type"]],
            "provider_id": z.city.provider_id,
            "vehicle_id": row["vehicle_id"],
            "vehicle_type": row["vehicle_type"],
        }

    def vehicles(self, zone_id: str, device_id: str | None, cursor: int, next_url: str | None) -> Json:
        z = self.zone(zone_id)
        rows = z.vehicle_rows
        if device_id is not None:
            rows = [r for r in rows if r["device_id"] == device_id]
            if not rows:
                raise NotFound(f"device {device_id} not found")
        page, links = self._page([self._vehicle_json(z, r) for r in rows], cursor, next_url)
        # The seed's /vehicles response has no last_updated/ttl; the MDS 2.0 schema requires both.
        return self._mds("vehicles", page, links, status=not self.options.quirks)

    def vehicles_status(self, zone_id: str, device_id: str | None, cursor: int, next_url: str | None) -> Json:
        z = self.zone(zone_id)
        at = self._state_time()
        hi = int(np.searchsorted(z.event_ts, at, side="right"))
        last = z.events[:hi].group_by("device_idx", maintain_order=True).last()
        if device_id is not None:
            if device_id not in z.device_ids:
                raise NotFound(f"device {device_id} not found")
            last = last.filter(pl.col("device_idx") == z.device_ids.index(device_id))
        positions = self._positions(z, at)
        records = []
        for row in last.sort("device_idx").to_dicts():
            dev = row["device_idx"]
            lat, lng, trip_id = positions.get(dev, (row["lat"], row["lng"], None))
            event = self._event_json(z, row, row["timestamp_ms"])
            event.pop("publication_time")
            records.append(
                {
                    "device_id": z.device_ids[dev],
                    "provider_id": z.city.provider_id,
                    "last_event": event,
                    "last_telemetry": {
                        "battery_percent": row["battery"],
                        "device_id": z.device_ids[dev],
                        "journey_id": None,
                        "location": {"lat": lat, "lng": lng},
                        "provider_id": z.city.provider_id,
                        "telemetry_id": uuid_from("telemetry", self.options.seed, zone_id, dev, at // 1000),
                        "timestamp": at,
                        "trip_ids": [trip_id] if trip_id else None,
                    },
                }
            )
        page, links = self._page(records, cursor, next_url)
        return self._mds("vehicles_status", page, links)

    def _positions(self, z: _Zone, at: int) -> dict[int, tuple[float, float, str | None]]:
        """Where each vehicle is at `at`: its parked place, or interpolated along its trip."""
        now = self.intervals_at(z, at)
        out: dict[int, tuple[float, float, str | None]] = {}
        trips_by_device = self._open_trips(z, at)
        for row in now.iter_rows(named=True):
            lat, lng = row["lat"], row["lng"]
            trip_id = None
            if row["vehicle_state"] == "on_trip" and row["next_lat"] is not None:
                span = max(row["end_ms"] - row["start_ms"], 1)
                f = (at - row["start_ms"]) / span
                lat = round(lat + (row["next_lat"] - lat) * f, 6)
                lng = round(lng + (row["next_lng"] - lng) * f, 6)
                trip_id = trips_by_device.get(row["device_idx"])
            out[row["device_idx"]] = (lat, lng, trip_id)
        return out

    def _open_trips(self, z: _Zone, at: int) -> dict[int, str]:
        hi = int(np.searchsorted(z.event_ts, at, side="right"))
        starts = z.events[:hi].filter(pl.col("event_type") == "trip_start")
        last = starts.group_by("device_idx", maintain_order=True).last()
        return dict(zip(last["device_idx"].to_list(), last["trip_id"].to_list(), strict=True))

    @staticmethod
    def intervals_at(z: _Zone, at: int) -> pl.DataFrame:
        """The true state of every vehicle at `at` (one row per device that exists then)."""
        mask = (z.interval_start <= at) & (z.interval_end > at)
        return z.fleet.intervals.filter(pl.Series(mask))

    # -- GBFS 3.0 -------------------------------------------------------------------------------------

    def gbfs(self, zone_id: str, feed: str, base_url: str) -> Json:
        z = self.zone(zone_id)
        if feed not in GBFS_FEEDS:
            raise NotFound(f"feed {feed} not found")
        at = self._state_time()
        ttl, data = getattr(self, f"_gbfs_{feed}")(z, at, base_url)
        return {"data": data, "last_updated": _iso(self.now_ms()), "ttl": ttl, "version": GBFS_VERSION}

    def _gbfs_gbfs(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
        feeds = [f for f in GBFS_FEEDS if f != "gbfs"]
        return 3600, {"feeds": [{"name": f, "url": f"{base_url}/{f}.json"} for f in feeds]}

    def _gbfs_gbfs_versions(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
        return 3600, {"versions": [{"version": GBFS_VERSION, "url": f"{base_url}/gbfs.json"}]}

    def _gbfs_system_information(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
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

    def _gbfs_vehicle_types(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
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

    def _gbfs_vehicle_status(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
        parked = self.intervals_at(z, at).filter(
            pl.col("vehicle_state").is_in(["available", "reserved", "non_operational"])
        )
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

    def _gbfs_station_information(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
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
                    "station_area": _geojson(spot),
                    "station_id": spot.area_id,
                }
            )
        return 3600, {"stations": stations}

    def spot_counts(self, z: _Zone, at: int, states: tuple[str, ...]) -> pl.DataFrame:
        """Vehicles per parking spot and vehicle type at `at`, among vehicles in `states`."""
        return (
            self.intervals_at(z, at)
            .filter(pl.col("spot_id").is_not_null() & pl.col("vehicle_state").is_in(states))
            .join(z.fleet.vehicles.select("device_idx", "vehicle_type_id"), on="device_idx")
            .group_by("spot_id", "vehicle_type_id")
            .len()
        )

    def _gbfs_station_status(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
        counts: dict[tuple[str, str], int] = {
            (r["spot_id"], r["vehicle_type_id"]): r["len"]
            for r in self.spot_counts(z, at, ("available",)).iter_rows(named=True)
        }
        disabled = self.spot_counts(z, at, ("non_operational",)).group_by("spot_id").agg(pl.col("len").sum())
        disabled_by_spot = dict(zip(disabled["spot_id"].to_list(), disabled["len"].to_list(), strict=True))
        stations = []
        for spot in z.city.parking_spots:
            type_counts = [counts.get((spot.area_id, t.vehicle_type_id), 0) for t in VEHICLE_TYPES]
            by_type = [
                {"count": n, "vehicle_type_id": t.vehicle_type_id}
                for n, t in zip(type_counts, VEHICLE_TYPES, strict=True)
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

    def _gbfs_system_regions(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
        return 3600, {"regions": []}

    def _gbfs_system_alerts(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
        return 0, {"alerts": []}

    def _gbfs_system_pricing_plans(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
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

    def _gbfs_geofencing_zones(self, z: _Zone, at: int, base_url: str) -> tuple[int, Json]:
        return 3600, geofencing(z.city)

    # -- Zone API (deep integration) ------------------------------------------------------------------

    def zone_info(self) -> Json:
        zones = []
        for z in self.zones.values():
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
                "id": uuid_from("partner", self.options.seed),
                "type": "zone",
                "attributes": {"zones": zones},
            }
        }

    def zone_areas(self, zone_id: str, version: int) -> Json:
        z = self.zone(zone_id)
        areas = [
            {
                "id": a.area_id,
                "type": "area",
                "area_type": a.area_type,
                "name": a.name,
                "geometry": _geojson(a),
            }
            for a in z.city.areas
            if version >= 2 or a.area_type != "free-floating"
        ]
        return {"data": {"id": zone_id, "type": "area", "attributes": {"areas": areas}}}

    def areas_occupancy(self, zone_id: str) -> Json:
        z = self.zone(zone_id)
        counts = self.spot_counts(z, self._state_time(), ("available", "reserved", "non_operational"))
        by_spot = counts.group_by("spot_id").agg(pl.col("len").sum())
        occupancy = dict(zip(by_spot["spot_id"].to_list(), by_spot["len"].to_list(), strict=True))
        return {
            "data": [
                {"id": s.area_id, "occupancy": occupancy.get(s.area_id, 0), "capacity": s.capacity}
                for s in z.city.parking_spots
            ]
        }


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
            "geometry": _geojson(area),
            "properties": {"name": _text(area.name), "rules": [rules_by_type[area.area_type]]},
        }
        for area_type in order
        for area in city.of_type(area_type)  # type: ignore[arg-type]
    ]
    return {
        "geofencing_zones": {"type": "FeatureCollection", "features": features},
        "global_rules": [rule(False, False, True, speed=spec.max_speed_kph, station=parking_city)],
    }


def _implausible(record: Json, kind: int, entity: str) -> Json:
    """A copy of `record` under its own id, well typed but implausible in one of the ways real feeds are."""
    key = "event_id" if entity == "event" else "trip_id"
    bad = {**record, key: uuid_from(f"{record[key]}/implausible/{kind}")}
    if kind == 1:  # seconds where MDS says milliseconds
        time_key = "publication_time" if entity == "event" else "start_time"
        bad[time_key] = bad[time_key] // 1000
    elif kind == 2:  # an unknown vehicle state; a trip ending before it started
        if entity == "event":
            bad["vehicle_state"] = "parked"
        else:
            bad["start_time"] = bad["end_time"] + 60_000
    elif kind == 3:  # a placeholder location
        bad["location" if entity == "event" else "start_location"] = {"lat": 0.0, "lng": 0.0}
    elif kind == 4:  # an id that is a UUID followed by a newline
        bad[key] += "\n"
    elif kind == 5:  # a NaN: the page is no longer strict JSON
        bad["battery_percent" if entity == "event" else "duration"] = msgspec.Raw(b"NaN")
    elif kind == 6:  # an unknown event type; a ten-year trip
        if entity == "event":
            bad["event_types"] = ["teleported"]
        else:
            bad["start_time"] = bad["end_time"] - 3653 * 86_400_000
    elif entity == "event":  # published a year from now
        bad["publication_time"] = bad["timestamp"] + 400 * 86_400_000
    else:  # a placeholder end location
        bad["end_location"] = {"lat": 0.0, "lng": 0.0}
    return bad


STATE_ARRIVED_BY = {"available": ["battery_low"]}
"""An event type that cannot leave a vehicle in the state (battery_low leaves it non_operational)."""
TRIP_EVENTS = ("trip_start", "trip_end", "trip_cancel", "trip_enter_jurisdiction", "trip_leave_jurisdiction")


def _contradict(record: Json) -> None:
    """Give a non-trip event an event type its delivered state does not follow from (in place)."""
    if any(t in TRIP_EVENTS for t in record["event_types"]):
        return
    record["event_types"] = STATE_ARRIVED_BY.get(record["vehicle_state"], ["battery_charged"])


def _corrupt(record: Json, kind: int, entity: str) -> Json:
    """A corrupted copy of `record`: the kinds of damage real feeds show."""
    bad = dict(record)
    if kind == 1:  # a wrong type
        key = "timestamp" if entity == "event" else "end_time"
        bad[key] = str(bad[key]) + "Z"
    elif kind == 2:  # a missing required field
        bad.pop("device_id")
    else:  # impossible coordinates
        key = "location" if entity == "event" else "end_location"
        bad[key] = {"lat": 123.4567, "lng": bad[key]["lng"]}
    return bad
