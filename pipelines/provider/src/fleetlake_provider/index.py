"""A zone's simulated fleet indexed for serving: the arrays the endpoints slice by time, the record faults drawn for
its trips and events, and the true state of every vehicle at an instant (which GBFS and the zone API read)."""

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from fleetlake_provider.city import City
from fleetlake_provider.faults import Faults
from fleetlake_provider.record_faults import RecordFaults
from fleetlake_provider.simulation import Fleet


@dataclass
class ZoneIndex:
    """A zone's fleet, with the arrays and lookups the endpoints slice by time."""

    fleet: Fleet
    device_ids: list[str]
    vehicle_rows: list[dict[str, Any]]
    event_ts: np.ndarray
    event_faults: RecordFaults
    trip_end: np.ndarray
    trip_faults: RecordFaults
    interval_start: np.ndarray
    interval_end: np.ndarray

    @classmethod
    def build(cls, fleet: Fleet, seed: int, faults: Faults, ready_delay_s: float) -> "ZoneIndex":
        key = f"{seed}:{fleet.city.zone_id}"
        vehicles = fleet.vehicles
        with_next = fleet.intervals.with_columns(
            next_lat=pl.col("lat").shift(-1).over("device_idx"),
            next_lng=pl.col("lng").shift(-1).over("device_idx"),
        )
        return cls(
            fleet=replace(fleet, intervals=with_next),
            device_ids=vehicles["device_id"].to_list(),
            vehicle_rows=vehicles.to_dicts(),
            event_ts=fleet.events["timestamp_ms"].to_numpy(),
            event_faults=RecordFaults(
                fleet.events["timestamp_ms"].to_numpy(), f"events:{key}", faults, ready_delay_s, "event"
            ),
            trip_end=fleet.trips["end_ms"].to_numpy(),
            trip_faults=RecordFaults(fleet.trips["end_ms"].to_numpy(), f"trips:{key}", faults, ready_delay_s, "trip"),
            interval_start=with_next["start_ms"].to_numpy(),
            interval_end=with_next["end_ms"].to_numpy(),
        )

    @property
    def city(self) -> City:
        return self.fleet.city

    @property
    def events(self) -> pl.DataFrame:
        return self.fleet.events

    @property
    def trips(self) -> pl.DataFrame:
        return self.fleet.trips

    def intervals_at(self, at: int) -> pl.DataFrame:
        """The true state of every vehicle at `at` (one row per device that exists then)."""
        mask = (self.interval_start <= at) & (self.interval_end > at)
        return self.fleet.intervals.filter(pl.Series(mask))

    def spot_counts(self, at: int, states: tuple[str, ...]) -> pl.DataFrame:
        """Vehicles per parking spot and vehicle type at `at`, among vehicles in `states`."""
        return (
            self.intervals_at(at)
            .filter(pl.col("spot_id").is_not_null() & pl.col("vehicle_state").is_in(states))
            .join(self.fleet.vehicles.select("device_idx", "vehicle_type_id"), on="device_idx")
            .group_by("spot_id", "vehicle_type_id")
            .len()
        )
