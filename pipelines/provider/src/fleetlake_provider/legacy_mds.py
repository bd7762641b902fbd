"""The simulated city in MDS 1.2 and 0.4, as the seed's "MDS 1.2 and 0.4" section documents them.

Its own host in the seed (`mds.voiapp.io`: `POST /token`, `GET /en/{zoneID}/trips?end_time=`,
`status_changes?event_time=`, `events?start_time=&end_time=`, `vehicles`), asked for with
`Accept: application/vnd.mds+json;version=1.2` or `application/vnd.mds.provider+json;version=0.4`; here the same
server as every other API, with the same tokens, rate limit and transport faults. Every record is the MDS 2.0
record the same city serves at the same instant (its publication, lateness, duplicates and corrupted copies
included), said in the older version's words, so the truth is one for every version:

- 1.2 has the 2.0 states and event types the city uses; its records wrap the data in `data`, name times
  `event_time`, places GeoJSON points, batteries fractions, and give trips a `route`, `trip_duration` and
  `trip_distance`. Standing e-scooters are 1.x `scooter`s.
- 0.4 has no `on_trip` state and no reservation that is not a ride: a trip's start is `reserved`/`user_pick_up` and
  its end `available`/`user_drop_off` (with the trip in `associated_trip`, which 0.4 requires for both), and a hold
  without a ride is not served at all (the vehicle stays `available` in this feed). 0.4 has no reason for a vehicle
  made available again on the street (battery swapped, repaired there), so this feed says `maintenance_drop_off`,
  as such feeds do; a drop-off after a rebalancing or compliance pick-up is a `rebalance_drop_off`, the first one
  of a vehicle a `service_start`.

`/trips` and `/status_changes` are not paged (0.4.1: "must not use pagination"); `/events` and `/vehicles` are,
`links.next` null on the last page. An hour not yet ended answers 404, one not yet compiled 202, as 2.0's do.
"""

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import polars as pl
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlake_provider import mds
from fleetlake_provider.clock import HOUR_MS
from fleetlake_provider.index import ZoneIndex
from fleetlake_provider.service import Json, ProviderError, SimulatedProvider

if TYPE_CHECKING:
    from fleetlake_provider.app import ProviderApp

VERSIONS = {"1.2": "1.2.0", "0.4": "0.4.1"}
"""The versions served, and the full version each payload says."""
MEDIA_TYPES = {
    "1.2": "application/vnd.mds+json;version=1.2",
    "0.4": "application/vnd.mds.provider+json;version=0.4",
}
LEGACY_ACCEPT = re.compile(
    r"application/vnd\.mds(?:\.provider)?\+json\s*;\s*version\s*=\s*\"?([0-9]+\.[0-9]+)(?:\.[0-9]+)?\"?",
    re.IGNORECASE,
)
PROVIDER_NAME = "Voi"
ROUTE_ACCURACY_M = 5
REMOVED_LISTED_MS = 90 * 60_000
"""1.2 /vehicles: vehicles `removed` (or `elsewhere`) stay listed 90 minutes, then leave the feed."""
LEGACY_VEHICLE_TYPES = {"scooter_standing": "scooter", "scooter_seated": "moped"}
"""2.0 vehicle types 1.x names otherwise; the others are the same word."""
RESERVATION_EVENTS = frozenset({"reservation_start", "reservation_cancel"})

# 2.0 event type (with the state it leaves the vehicle in, where one event type has two meanings) -> 0.4's
# (event_type, event_type_reason). provider_drop_off depends on what came before it (`_drop_off_reason`).
EVENTS_TO_0_4: dict[str | tuple[str, str], tuple[str, str]] = {
    "trip_start": ("reserved", "user_pick_up"),
    "trip_end": ("available", "user_drop_off"),
    "trip_cancel": ("available", "user_drop_off"),
    "battery_low": ("unavailable", "low_battery"),
    ("maintenance", "non_operational"): ("unavailable", "maintenance"),
    ("maintenance", "available"): ("available", "maintenance_drop_off"),
    "battery_charged": ("available", "maintenance_drop_off"),
    "maintenance_pick_up": ("removed", "maintenance_pick_up"),
    "rebalance_pick_up": ("removed", "rebalance_pick_up"),
    "compliance_pick_up": ("removed", "rebalance_pick_up"),
    "agency_pick_up": ("removed", "agency_pick_up"),
    "agency_drop_off": ("available", "agency_drop_off"),
}
STATES_0_4 = {"available": "available", "non_operational": "unavailable", "reserved": "reserved"}
"""The states 0.4 /vehicles lists (the public right of way), by their 2.0 names; on_trip is 0.4's `reserved`."""


class NotAcceptable(ProviderError):
    status = 406


def negotiate(accept: str) -> str:
    """The legacy version an Accept header asks for, or 406."""
    match = LEGACY_ACCEPT.search(accept)
    if match is None or match.group(1) not in VERSIONS:
        raise NotAcceptable(
            "Not Acceptable: this host serves application/vnd.mds+json;version=1.2 and "
            "application/vnd.mds.provider+json;version=0.4"
        )
    return match.group(1)


def _point(location: Any, timestamp: Any) -> Json | None:
    if not isinstance(location, dict):
        return None
    return {
        "type": "Feature",
        "properties": {"timestamp": timestamp},
        "geometry": {"type": "Point", "coordinates": [location.get("lng"), location.get("lat")]},
    }


def _fraction(battery: Any) -> Any:
    """2.0's battery percentage as 1.x's fraction (a value that is not a number passes through as it came)."""
    return round(battery / 100, 4) if isinstance(battery, int | float) else battery


def _put(record: Json, key: str, value: Any) -> None:
    if value is not None:
        record[key] = value


class LegacyMds:
    """Answers the legacy host's MDS endpoints from the 2.0 records of a SimulatedProvider."""

    def __init__(self, provider: SimulatedProvider) -> None:
        self.provider = provider
        self._devices: dict[str, dict[str, Json]] = {}
        self._drop_off_reasons: dict[str, dict[str, str]] = {}

    # -- what every record says about its vehicle --------------------------------------------------------------

    def _vehicle(self, zone_id: str, z: ZoneIndex, device_id: Any, version: str) -> Json:
        if zone_id not in self._devices:
            self._devices[zone_id] = {row["device_id"]: row for row in z.vehicle_rows}
        row = self._devices[zone_id].get(device_id) if isinstance(device_id, str) else None
        if row is None:
            return {}
        propulsion = "propulsion_types" if version == "1.2" else "propulsion_type"
        return {
            "provider_id": z.city.provider_id,
            "provider_name": PROVIDER_NAME,
            "device_id": device_id,
            "vehicle_id": row["vehicle_id"],
            "vehicle_type": LEGACY_VEHICLE_TYPES.get(row["vehicle_type"], row["vehicle_type"]),
            propulsion: [row["propulsion_type"]],
        }

    def _drop_off_reason(self, zone_id: str, z: ZoneIndex, event_id: Any) -> str:
        """0.4's reason for a provider drop-off: after a maintenance pick-up, after a rebalancing or compliance one,
        or a vehicle's first."""
        if zone_id not in self._drop_off_reasons:
            previous = z.events.select(
                "event_id", pl.col("event_type").shift(1).over("device_idx").alias("before")
            ).filter(pl.col("before").is_not_null())
            self._drop_off_reasons[zone_id] = dict(zip(previous["event_id"], previous["before"], strict=True))
        before = self._drop_off_reasons[zone_id].get(event_id) if isinstance(event_id, str) else None
        if before is None:
            return "service_start"
        return "maintenance_drop_off" if before == "maintenance_pick_up" else "rebalance_drop_off"

    # -- records -------------------------------------------------------------------------------------------------

    def _status_change(self, zone_id: str, z: ZoneIndex, e: Json, version: str) -> Json | None:
        """A 2.0 event as a 1.2 or 0.4 status change; None for an event 0.4 cannot say (a reservation)."""
        record: Json = {"provider_id": e.get("provider_id"), **self._vehicle(zone_id, z, e.get("device_id"), version)}
        if "device_id" not in e:
            record.pop("device_id", None)
        types = e.get("event_types") or []
        trip_ids = e.get("trip_ids") or []
        if version == "1.2":
            record["vehicle_state"] = e.get("vehicle_state")
            record["event_types"] = types
        else:
            if any(t in RESERVATION_EVENTS for t in types):
                return None
            last = types[-1] if types else None
            pair: tuple[str, str] | None
            if last == "provider_drop_off":
                pair = ("available", self._drop_off_reason(zone_id, z, e.get("event_id")))
            else:
                state = str(e.get("vehicle_state"))
                pair = EVENTS_TO_0_4.get((str(last), state)) or EVENTS_TO_0_4.get(str(last))
            # A state or event no version knows (an implausible copy) is served as it came, for the client to refuse.
            record["event_type"], record["event_type_reason"] = pair or (e.get("vehicle_state"), last)
        record["event_time"] = e.get("timestamp")
        _put(record, "publication_time", e.get("publication_time"))
        _put(record, "event_location", _point(e.get("location"), e.get("timestamp")))
        _put(record, "battery_pct", _fraction(e.get("battery_percent")))
        if trip_ids:
            record["trip_id" if version == "1.2" else "associated_trip"] = trip_ids[0]
        return record

    def _trip(self, zone_id: str, z: ZoneIndex, t: Json, version: str) -> Json:
        record: Json = {"provider_id": t.get("provider_id"), **self._vehicle(zone_id, z, t.get("device_id"), version)}
        if "device_id" not in t:
            record.pop("device_id", None)
        duration, distance = t.get("duration"), t.get("distance")
        record |= {
            "trip_id": t.get("trip_id"),
            "trip_duration": round(duration) if isinstance(duration, int | float) else duration,
            "trip_distance": round(distance) if isinstance(distance, int | float) else distance,
            "route": {
                "type": "FeatureCollection",
                "features": [
                    _point(t.get("start_location"), t.get("start_time")),
                    _point(t.get("end_location"), t.get("end_time")),
                ],
            },
            "accuracy": ROUTE_ACCURACY_M,
            "start_time": t.get("start_time"),
            "end_time": t.get("end_time"),
        }
        return record

    def _envelope(self, version: str, key: str, records: list[Json], links: Json | None = None) -> Json:
        body: Json = {"version": VERSIONS[version], "data": {key: records}}
        if links is not None:
            body["links"] = {"next": links.get("next")}
        return body

    def _status_changes(self, zone_id: str, z: ZoneIndex, events: list[Json], version: str) -> list[Json]:
        changes = (self._status_change(zone_id, z, e, version) for e in events)
        return [c for c in changes if c is not None]

    # -- endpoints -----------------------------------------------------------------------------------------------

    def trips(self, zone_id: str, version: str, end_time: str | None) -> Json:
        served = mds.trips(self.provider, zone_id, end_time)  # the hour's checks, publication and faults, as 2.0's
        z = self.provider.zone(zone_id)
        return self._envelope(version, "trips", [self._trip(zone_id, z, t, version) for t in served["trips"]])

    def status_changes(self, zone_id: str, version: str, event_time: str | None) -> Json:
        z = self.provider.zone(zone_id)
        hour = self.provider.parse_hour(event_time, "event_time")
        self.provider.check_hour(hour)
        events = mds._events_between(self.provider, z, hour, hour + HOUR_MS)
        return self._envelope(version, "status_changes", self._status_changes(zone_id, z, events, version))

    def events(
        self, zone_id: str, version: str, start_time: str | None, end_time: str | None, cursor: int, next_url: str
    ) -> Json:
        served = mds.events_recent(self.provider, zone_id, start_time, end_time, cursor, next_url)
        z = self.provider.zone(zone_id)
        changes = self._status_changes(zone_id, z, served["events"], version)
        return self._envelope(version, "status_changes", changes, served.get("links") or {})

    def vehicles(self, zone_id: str, version: str, cursor: int, next_url: str) -> Json:
        """Each vehicle's last status change as the version says it: 1.2 lists every state (removed and elsewhere
        for 90 minutes), 0.4 the vehicles in the public right of way (available, unavailable, reserved)."""
        provider = self.provider
        z = provider.zone(zone_id)
        at = provider.state_time()
        hi = int(np.searchsorted(z.event_ts, at, side="right"))
        seen = z.events[:hi]
        if version == "0.4":
            seen = seen.filter(~pl.col("event_type").is_in(list(RESERVATION_EVENTS)))
        last = seen.group_by("device_idx", maintain_order=True).last().sort("device_idx")
        records = []
        for row in last.to_dicts():
            event = mds._event_json(z, row, row["timestamp_ms"])
            change = self._status_change(zone_id, z, event, version)
            if change is None:
                continue
            state = row["vehicle_state"]
            if version == "0.4" and change["event_type"] not in STATES_0_4.values():
                continue
            if version == "1.2" and state in ("removed", "elsewhere") and at - row["timestamp_ms"] > REMOVED_LISTED_MS:
                continue
            vehicle = self._vehicle(zone_id, z, event["device_id"], version)
            vehicle["last_event_time"] = change["event_time"]
            if version == "1.2":
                vehicle["last_vehicle_state"] = change["vehicle_state"]
                vehicle["last_event_types"] = change["event_types"]
            else:
                vehicle["last_event_type"] = change["event_type"]
                vehicle["last_event_type_reason"] = change["event_type_reason"]
            vehicle["last_event_location"] = change["event_location"]
            _put(vehicle, "battery_pct", change.get("battery_pct"))
            records.append(vehicle)
        page, links = mds.page(provider, records, cursor, next_url)
        body = self._envelope(version, "vehicles", page, links)
        body["last_updated"] = at  # the instant the list describes
        body["ttl"] = 0
        return body


def routes(app: "ProviderApp") -> list[Route]:
    """The legacy host's paths, through the app's common path (rate limit, transport faults, bearer tokens)."""
    legacy = LegacyMds(app.provider)

    def endpoint(answer: Callable[[Request, str], Json]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            version = negotiate(request.headers.get("accept", ""))
            body = answer(request, version)
            return Response(msgspec.json.encode(body), 200, media_type=MEDIA_TYPES[version])

        return app._endpoint(handler, auth="bearer")

    def trips(request: Request, version: str) -> Json:
        return legacy.trips(request.path_params["zone"], version, request.query_params.get("end_time"))

    def status_changes(request: Request, version: str) -> Json:
        return legacy.status_changes(request.path_params["zone"], version, request.query_params.get("event_time"))

    def events(request: Request, version: str) -> Json:
        cursor, next_url = app._cursor(request)
        q = request.query_params
        zone = request.path_params["zone"]
        return legacy.events(zone, version, q.get("start_time"), q.get("end_time"), cursor, next_url)

    def vehicles(request: Request, version: str) -> Json:
        cursor, next_url = app._cursor(request)
        return legacy.vehicles(request.path_params["zone"], version, cursor, next_url)

    return [
        Route("/token", app._endpoint(app.token, auth=None), methods=["POST"]),
        Route("/en/{zone}/trips", endpoint(trips)),
        Route("/en/{zone}/status_changes", endpoint(status_changes)),
        # The seed heads the events request `POST`, its example sends a GET: both are answered.
        Route("/en/{zone}/events", endpoint(events), methods=["GET", "POST"]),
        Route("/en/{zone}/vehicles", endpoint(vehicles)),
    ]
