"""The provider's ground truth as Parquet, so the warehouse can be checked against what really happened."""

from pathlib import Path

import polars as pl

from fleetlake_provider.insurance import insurance_truth
from fleetlake_provider.service import SimulatedProvider

TRUTH_TABLES = ("vehicles", "trips", "events", "vehicle_states")
UTC_MS = pl.Datetime("ms", "UTC")
"""The truth's times: UTC at millisecond precision, the precision of MDS times (epoch milliseconds)."""

_UTC_NAMES = {"start_ms": "start_time", "end_ms": "end_time", "timestamp_ms": "timestamp"}


def _utc(*columns: str) -> list[pl.Expr]:
    """Epoch-millisecond columns as UTC datetimes, named as MDS names them (`start_ms` → `start_time`)."""
    return [
        pl.from_epoch(pl.col(c), time_unit="ms").dt.replace_time_zone("UTC").cast(UTC_MS).alias(_UTC_NAMES[c])
        for c in columns
    ]


def truth_frames(provider: SimulatedProvider) -> dict[str, pl.DataFrame]:
    """One frame per truth table, all zones stacked, with device ids and UTC timestamps."""
    frames: dict[str, list[pl.DataFrame]] = {name: [] for name in TRUTH_TABLES}
    for zone_id, z in provider.zones.items():
        fleet = z.fleet
        devices = fleet.vehicles.select("device_idx", "device_id", "vehicle_type", "vehicle_type_id")
        zone = pl.lit(zone_id).alias("zone_id")
        frames["vehicles"].append(fleet.vehicles.select(zone, pl.all()).drop("device_idx"))
        frames["trips"].append(
            fleet.trips.join(devices, on="device_idx")
            .select(
                zone,
                "trip_id",
                "device_id",
                "vehicle_type",
                *_utc("start_ms", "end_ms"),
                "start_lat",
                "start_lng",
                "end_lat",
                "end_lng",
                "duration_s",
                "distance_m",
            )
            .sort("end_time", "trip_id")
        )
        frames["events"].append(
            fleet.events.join(devices.select("device_idx", "device_id"), on="device_idx")
            .select(
                zone,
                "event_id",
                "device_id",
                *_utc("timestamp_ms"),
                "event_type",
                "vehicle_state",
                "lat",
                "lng",
                "battery",
                "trip_id",
            )
            .sort("timestamp", "event_id")
        )
        frames["vehicle_states"].append(
            fleet.intervals.join(devices.select("device_idx", "device_id", "vehicle_type_id"), on="device_idx")
            .select(
                zone,
                "device_id",
                "vehicle_type_id",
                "vehicle_state",
                *_utc("start_ms", "end_ms"),
                "lat",
                "lng",
                "battery",
                "gbfs_vehicle_id",
                pl.col("spot_id").alias("parking_spot_id"),
            )
            # Stable: intervals that rounded times made simultaneous keep the order they happened in.
            .sort("device_id", "start_time", maintain_order=True)
        )
    return {name: pl.concat(parts) for name, parts in frames.items()}


def write_truth(provider: SimulatedProvider, out: Path) -> dict[str, Path]:
    """The truth tables, and the insurance trips' (`insurance_trips.parquet`: personal data of simulated riders)."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in {**truth_frames(provider), "insurance_trips": insurance_truth(provider)}.items():
        path = out / f"{name}.parquet"
        frame.write_parquet(path)
        written[name] = path
    return written
