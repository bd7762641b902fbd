"""Hand-built lakes for edge-case tests: a few MDS trips and events, zone areas and GBFS snapshots, written
through the one write path (`pipelines.ingest.write_partition`) so they land exactly as an ingest would put them.

Ids are deterministic UUIDs made from short names (`uid("trip-1")`), so a test reads like its story.
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.ingest import PartitionResult, write_partition
from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import Lake, Partition, snapshot_stem
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.connection import connect

PROVIDER_ID = "c20e08cf-8488-46a6-a66c-5d8fb827f7e0"
NAMESPACE = uuid.UUID("6f1d4c52-2d0c-4d7b-9a39-0b0f3c1f0a11")
# A small square around central Stockholm; `area()` draws polygons inside it.
CENTER = (59.3293, 18.0686)

Record = dict[str, Any]


def uid(name: str) -> str:
    """A stable UUID for a readable name."""
    return str(uuid.uuid5(NAMESPACE, name))


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def trip(
    name: str,
    device: str,
    start: datetime,
    end: datetime,
    *,
    start_at: tuple[float, float] = CENTER,
    end_at: tuple[float, float] = CENTER,
    distance_m: float = 1_000.0,
) -> Record:
    """One MDS 2.0 trip record; `name` and `device` become UUIDs."""
    return {
        "provider_id": PROVIDER_ID,
        "device_id": uid(device),
        "trip_id": uid(name),
        "start_time": ms(start),
        "end_time": ms(end),
        "start_location": {"lat": start_at[0], "lng": start_at[1]},
        "end_location": {"lat": end_at[0], "lng": end_at[1]},
        "duration": (end - start).total_seconds(),
        "distance": distance_m,
        "trip_type": ["rider"],
    }


def event(
    name: str,
    device: str,
    at: datetime,
    event_type: str,
    vehicle_state: str,
    *,
    published: datetime | None = None,
    trips: Sequence[str] = (),
    location: tuple[float, float] | None = CENTER,
) -> Record:
    """One MDS 2.0 event record, published a minute after it happened unless `published` says otherwise."""
    return {
        "provider_id": PROVIDER_ID,
        "device_id": uid(device),
        "event_id": uid(name),
        "vehicle_state": vehicle_state,
        "event_types": [event_type],
        "timestamp": ms(at),
        "publication_time": ms(published or at + timedelta(minutes=1)),
        "location": None if location is None else {"lat": location[0], "lng": location[1]},
        "battery_percent": 80,
        "trip_ids": [uid(t) for t in trips],
    }


def ride(name: str, device: str, start: datetime, end: datetime, **kwargs: Any) -> tuple[Record, list[Record]]:
    """A trip with its trip_start and trip_end events (the vehicle available before and after)."""
    events = [
        event(f"{name}/start", device, start, "trip_start", "on_trip", trips=[name]),
        event(f"{name}/end", device, end, "trip_end", "available", trips=[name]),
    ]
    return trip(name, device, start, end, **kwargs), events


def _write_hour(lake_dir: Path, dataset: str, zone: str, hour: datetime, key: str, records: Sequence[Record]) -> Any:
    body = json.dumps({key: list(records)}).encode()
    return write_partition(
        Lake(lake_dir), DATASETS[dataset], Partition(dataset, zone, hour), [body], (hour, hour + timedelta(hours=1))
    )


def write_trips(lake_dir: Path, zone: str, hour: datetime, trips: Sequence[Record]) -> PartitionResult:
    """Replace the zone's mds_trips partition of `hour` (an empty list writes an empty partition)."""
    result: PartitionResult = _write_hour(lake_dir, "mds_trips", zone, hour, "trips", trips)
    return result


def write_events(lake_dir: Path, zone: str, hour: datetime, events: Sequence[Record]) -> PartitionResult:
    """Replace the zone's mds_events partition of `hour` (an empty list writes an empty partition)."""
    result: PartitionResult = _write_hour(lake_dir, "mds_events", zone, hour, "events", events)
    return result


def write_hours(lake_dir: Path, zone: str, trips: Sequence[Record], events: Sequence[Record]) -> None:
    """Write trips and events, each into the partition of its hour (trips by end time, events by time)."""
    by_hour: dict[datetime, tuple[list[Record], list[Record]]] = {}
    for t in trips:
        by_hour.setdefault(hour_of(datetime.fromtimestamp(t["end_time"] / 1000, UTC)), ([], []))[0].append(t)
    for e in events:
        by_hour.setdefault(hour_of(datetime.fromtimestamp(e["timestamp"] / 1000, UTC)), ([], []))[1].append(e)
    for hour, (hour_trips, hour_events) in by_hour.items():
        write_trips(lake_dir, zone, hour, hour_trips)
        write_events(lake_dir, zone, hour, hour_events)


def write_rides(
    lake_dir: Path, zone: str, rides: Sequence[tuple[Record, list[Record]]], events: Sequence[Record] = ()
) -> None:
    """Write rides (each a trip and its events, as `ride` makes them) and any other events, each into the partition
    of its hour (write_hours)."""
    write_hours(lake_dir, zone, [t for t, _ in rides], [e for _, es in rides for e in es] + list(events))


def _write_snapshot(lake_dir: Path, dataset: str, zone: str, captured_at: datetime, body: Any) -> PartitionResult:
    return write_partition(
        Lake(lake_dir),
        DATASETS[dataset],
        Partition(dataset, zone, hour_of(captured_at)),
        [json.dumps(body).encode()],
        (captured_at, captured_at),
        stem=snapshot_stem(captured_at),
        captured_at=captured_at,
    )


def write_system_information(
    lake_dir: Path, zone: str, captured_at: datetime, timezone: str = "Europe/Stockholm"
) -> PartitionResult:
    """A GBFS system_information snapshot: the zone's time zone for every local-time column."""
    body = {"data": {"system_id": f"voi_{zone}", "name": [{"text": "Voi", "language": "en"}], "timezone": timezone}}
    return _write_snapshot(lake_dir, "gbfs_system_information", zone, captured_at, body)


def area(name: str, area_type: str, south_west: tuple[float, float], north_east: tuple[float, float]) -> Record:
    """A rectangular zone area (lat, lng corners)."""
    (s, w), (n, e) = south_west, north_east
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {"id": name, "area_type": area_type, "name": name, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def write_zone_areas(lake_dir: Path, zone: str, captured_at: datetime, areas: Sequence[Record]) -> PartitionResult:
    """A zone API areas snapshot (an empty list: a zone with no areas at all)."""
    return _write_snapshot(lake_dir, "zone_areas", zone, captured_at, {"data": {"attributes": {"areas": list(areas)}}})


def write_vehicles(
    lake_dir: Path, zone: str, captured_at: datetime, devices: Sequence[str], vehicle_type: str = "scooter"
) -> PartitionResult:
    """An MDS vehicles snapshot describing `devices`."""
    vehicles = [
        {
            "provider_id": PROVIDER_ID,
            "device_id": uid(d),
            "vehicle_id": d,
            "vehicle_type": vehicle_type,
            "propulsion_types": ["electric"],
        }
        for d in devices
    ]
    return _write_snapshot(lake_dir, "mds_vehicles", zone, captured_at, {"vehicles": vehicles})


def _in_utc(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(pl.from_arrow(con.sql(sql, params=params or {}).to_arrow_table()))
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )


def query(warehouse: Warehouse, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    """A read-only query of a built warehouse; timezone-aware timestamps come back in UTC."""
    with connect(warehouse.path) as con:
        return _in_utc(con, sql, params)


def table(warehouse: Warehouse, relation: str, order_by: str) -> pl.DataFrame:
    """A whole model, sorted, for comparing two builds (`relation` and `order_by` come from the test itself)."""
    return query(warehouse, f"select * from {relation} order by {order_by}")


def tables(warehouse: Warehouse, orders: dict[str, str]) -> dict[str, pl.DataFrame]:
    """Whole models, each sorted by its `orders` entry, read through one connection (opening the warehouse costs
    more than reading a small model): for comparing two builds model by model."""
    with connect(warehouse.path) as con:
        return {
            relation: _in_utc(con, f"select * from {relation} order by {order}") for relation, order in orders.items()
        }


def write_zone_info(
    lake_dir: Path, zone: str, captured_at: datetime, *, parking_mode: str = "free-floating", max_speed: float = 20
) -> PartitionResult:
    """A zone API zone-list snapshot with this zone's parking mode and speed limit (km/h)."""
    zones = [
        {
            "zoneId": zone,
            "zoneName": f"zone {zone}",
            "parkingMode": parking_mode,
            "speedConfig": {"maxSpeed": max_speed, "speedUnit": "km/h"},
        }
    ]
    return _write_snapshot(lake_dir, "zone_info", zone, captured_at, {"data": {"attributes": {"zones": zones}}})


def geofence_rule(*, start: bool = True, end: bool = True, through: bool = True, speed: float | None = None) -> Record:
    """One GBFS 3.0 geofencing rule for every vehicle type."""
    rule: Record = {
        "vehicle_type_ids": [],
        "ride_start_allowed": start,
        "ride_end_allowed": end,
        "ride_through_allowed": through,
    }
    if speed is not None:
        rule["maximum_speed_kph"] = speed
    return rule


def write_geofencing(
    lake_dir: Path, zone: str, captured_at: datetime, features: Sequence[tuple[Record, Record]], global_rule: Record
) -> PartitionResult:
    """A GBFS geofencing_zones snapshot: (area, rule) features in precedence order, then the global rule."""
    body = {
        "data": {
            "geofencing_zones": {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": a["geometry"], "properties": {"name": a["name"], "rules": [r]}}
                    for a, r in features
                ],
            },
            "global_rules": [global_rule],
        }
    }
    return _write_snapshot(lake_dir, "gbfs_geofencing_zones", zone, captured_at, body)


def write_gbfs_vehicles(
    lake_dir: Path, zone: str, captured_at: datetime, vehicles: Sequence[tuple[str, tuple[float, float]]]
) -> PartitionResult:
    """A GBFS vehicle_status snapshot: (vehicle_id, (lat, lng)) of each parked vehicle."""
    records = [
        {"vehicle_id": v, "lat": lat, "lon": lng, "is_reserved": False, "is_disabled": False}
        for v, (lat, lng) in vehicles
    ]
    return _write_snapshot(lake_dir, "gbfs_vehicle_status", zone, captured_at, {"data": {"vehicles": records}})


def write_area_occupancy(
    lake_dir: Path, zone: str, captured_at: datetime, spots: Sequence[tuple[str, int, int]]
) -> PartitionResult:
    """A zone API area-occupancy snapshot: (area_id, occupancy, capacity) per parking spot."""
    body = {"data": [{"id": a, "occupancy": o, "capacity": c} for a, o, c in spots]}
    return _write_snapshot(lake_dir, "zone_area_occupancy", zone, captured_at, body)


def gbfs_vehicle(
    vehicle_id: str, at: tuple[float, float] = CENTER, *, reserved: bool = False, disabled: bool = False
) -> Record:
    """One GBFS 3.0 vehicle_status record at (lat, lng)."""
    return {"vehicle_id": vehicle_id, "lat": at[0], "lon": at[1], "is_reserved": reserved, "is_disabled": disabled}


def write_gbfs_snapshot(
    lake_dir: Path, zone: str, captured_at: datetime, vehicles: Sequence[Record]
) -> PartitionResult:
    """A GBFS vehicle_status snapshot listing `vehicles` built with `gbfs_vehicle` (reserved, disabled ones too)."""
    return _write_snapshot(lake_dir, "gbfs_vehicle_status", zone, captured_at, {"data": {"vehicles": list(vehicles)}})
