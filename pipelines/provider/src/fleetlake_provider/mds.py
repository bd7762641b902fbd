"""MDS 2.0 as the simulated provider serves it: trips and events per hour, recent events, vehicles and their status.

The seed's own deviations from the MDS 2.0 schema (nested `last_updated`/`ttl`, `links: {}`) are served by
default, because real feeds follow the seed; `ProviderOptions.quirks=False` serves the schema's shapes instead.
"""

import numpy as np
import polars as pl

from fleetlake_provider.clock import HOUR_MS
from fleetlake_provider.ids import uuid_from
from fleetlake_provider.index import ZoneIndex
from fleetlake_provider.service import BadRequest, Json, NotFound, SimulatedProvider

MDS_VERSION = "2.0.0"
RECENT_EVENTS_MAX_AGE_MS = 14 * 24 * HOUR_MS


def envelope(
    provider: SimulatedProvider, key: str, records: list[Json], links: Json | None, status: bool = True
) -> Json:
    """The MDS body around `records`: version, `last_updated` and `ttl` (if `status`), and `links` (if paged)."""
    body: Json = {"version": MDS_VERSION}
    quirks = provider.options.quirks
    if status:
        now = provider.now_ms()
        if quirks:
            body["last_updated"] = {"last_updated": now}
            body["ttl"] = {"ttl": 0}
        else:
            body["last_updated"] = now
            body["ttl"] = 0
    body[key] = records
    if links is not None:
        body["links"] = links if links or not quirks else {}
        if not quirks and "next" not in body["links"]:
            body["links"] = {"next": None}
    return body


def page(
    provider: SimulatedProvider, records: list[Json], cursor: int, next_url: str | None
) -> tuple[list[Json], Json]:
    """The page of `records` at `cursor`, and its links (`next` unless it is the last page; `{cursor}` in
    `next_url` is replaced by the next page's cursor)."""
    size = provider.options.page_size
    records_page = records[cursor : cursor + size]
    links: Json = {}
    if cursor + size < len(records) and next_url is not None:
        links["next"] = next_url.replace("{cursor}", str(cursor + size))
    return records_page, links


def _event_json(z: ZoneIndex, row: Json, publication_ms: int) -> Json:
    return {
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


def _events_between(provider: SimulatedProvider, z: ZoneIndex, start_ms: int, end_ms: int) -> list[Json]:
    """The events of [start_ms, end_ms) published by now, with their record faults."""
    lo, hi = np.searchsorted(z.event_ts, [start_ms, end_ms], side="left")
    idx = np.arange(lo, hi)
    published = z.event_ts[lo:hi] + z.event_faults.visible_lag_ms[lo:hi] <= provider.now_ms()
    idx = idx[published]
    if len(idx) == 0:
        return []
    rows = z.events[idx].to_dicts()
    records = [
        _event_json(z, row, int(z.event_ts[i] + z.event_faults.lag_ms[i])) for row, i in zip(rows, idx, strict=True)
    ]
    return z.event_faults.apply(records, idx)


def trips(provider: SimulatedProvider, zone_id: str, end_time: str | None) -> Json:
    """/trips?end_time=YYYY-MM-DDTHH: the trips that ended in the hour, published by now."""
    z = provider.zone(zone_id)
    hour = provider.parse_hour(end_time, "end_time")
    provider.check_hour(hour)
    lo, hi = np.searchsorted(z.trip_end, [hour, hour + HOUR_MS], side="left")
    idx = np.arange(lo, hi)
    idx = idx[z.trip_end[lo:hi] + z.trip_faults.visible_lag_ms[lo:hi] <= provider.now_ms()]
    now = provider.now_ms()
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
    return envelope(provider, "trips", z.trip_faults.apply(records, idx), None)


def events_historical(
    provider: SimulatedProvider, zone_id: str, event_time: str | None, cursor: int, next_url: str | None
) -> Json:
    """/events/historical?event_time=YYYY-MM-DDTHH: the hour's events published by now, paged."""
    z = provider.zone(zone_id)
    hour = provider.parse_hour(event_time, "event_time")
    provider.check_hour(hour)
    records, links = page(provider, _events_between(provider, z, hour, hour + HOUR_MS), cursor, next_url)
    return envelope(provider, "events", records, links)


def events_recent(
    provider: SimulatedProvider,
    zone_id: str,
    start_time: str | None,
    end_time: str | None,
    cursor: int,
    next_url: str | None,
) -> Json:
    """/events/recent?start_time=&end_time= (epoch milliseconds, at most two weeks back): events so far, paged."""
    z = provider.zone(zone_id)
    try:
        start_ms, end_ms = int(start_time or ""), int(end_time or "")
    except ValueError:
        raise BadRequest("start_time and end_time are required, in integer milliseconds since the epoch") from None
    now = provider.now_ms()
    if end_ms <= start_ms:
        raise BadRequest("end_time must be after start_time")
    if start_ms < now - RECENT_EVENTS_MAX_AGE_MS:
        raise BadRequest("start_time is older than two weeks; use /events/historical")
    records, links = page(provider, _events_between(provider, z, start_ms, min(end_ms, now)), cursor, next_url)
    return envelope(provider, "events", records, links)


def _vehicle_json(z: ZoneIndex, row: Json) -> Json:
    return {
        "device_id": row["device_id"],
        "maximum_speed": row["max_speed_kph"],
        "propulsion_types": [row["propulsion_type"]],
        "provider_id": z.city.provider_id,
        "vehicle_id": row["vehicle_id"],
        "vehicle_type": row["vehicle_type"],
    }


def vehicles(
    provider: SimulatedProvider, zone_id: str, device_id: str | None, cursor: int, next_url: str | None
) -> Json:
    """/vehicles[/{device_id}]: the fleet's devices, paged."""
    z = provider.zone(zone_id)
    rows = z.vehicle_rows
    if device_id is not None:
        rows = [r for r in rows if r["device_id"] == device_id]
        if not rows:
            raise NotFound(f"device {device_id} not found")
    records, links = page(provider, [_vehicle_json(z, r) for r in rows], cursor, next_url)
    # The seed's /vehicles response has no last_updated/ttl; the MDS 2.0 schema requires both.
    return envelope(provider, "vehicles", records, links, status=not provider.options.quirks)


def vehicles_status(
    provider: SimulatedProvider, zone_id: str, device_id: str | None, cursor: int, next_url: str | None
) -> Json:
    """/vehicles/status[/{device_id}]: each vehicle's last event and where it is now, paged."""
    z = provider.zone(zone_id)
    at = provider.state_time()
    hi = int(np.searchsorted(z.event_ts, at, side="right"))
    last = z.events[:hi].group_by("device_idx", maintain_order=True).last()
    if device_id is not None:
        if device_id not in z.device_ids:
            raise NotFound(f"device {device_id} not found")
        last = last.filter(pl.col("device_idx") == z.device_ids.index(device_id))
    positions = _positions(z, at)
    records = []
    for row in last.sort("device_idx").to_dicts():
        dev = row["device_idx"]
        lat, lng, trip_id = positions.get(dev, (row["lat"], row["lng"], None))
        event = _event_json(z, row, row["timestamp_ms"])
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
                    "telemetry_id": uuid_from("telemetry", provider.options.seed, zone_id, dev, at // 1000),
                    "timestamp": at,
                    "trip_ids": [trip_id] if trip_id else None,
                },
            }
        )
    records_page, links = page(provider, records, cursor, next_url)
    return envelope(provider, "vehicles_status", records_page, links)


def _positions(z: ZoneIndex, at: int) -> dict[int, tuple[float, float, str | None]]:
    """Where each vehicle is at `at`: its parked place, or interpolated along its trip."""
    now = z.intervals_at(at)
    out: dict[int, tuple[float, float, str | None]] = {}
    trips_by_device = _open_trips(z, at)
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


def _open_trips(z: ZoneIndex, at: int) -> dict[int, str]:
    """The trip each vehicle last started by `at`."""
    hi = int(np.searchsorted(z.event_ts, at, side="right"))
    starts = z.events[:hi].filter(pl.col("event_type") == "trip_start")
    last = starts.group_by("device_idx", maintain_order=True).last()
    return dict(zip(last["device_idx"].to_list(), last["trip_id"].to_list(), strict=True))
