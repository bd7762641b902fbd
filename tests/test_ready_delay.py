"""The provider's ready delay has one home (pipelines/voi/publication.py): data_quality_hourly calls an event late
exactly when it was published after its hour was served, and the embedded provider serves hours after that delay."""

import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetlake_provider.cli import serve
from fleetlake_provider.service import ProviderOptions
from pipelines.voi.publication import READY_DELAY
from pipelines.warehouse.build import Warehouse
from tests.scenario import event, query, write_events, write_system_information, write_trips, write_vehicles

ZONE = "1"
HOUR = datetime(2026, 4, 2, 10, tzinfo=UTC)
SERVED = HOUR + timedelta(hours=1) + READY_DELAY
"""When the provider serves HOUR: from then on an ingest of the hour has every event published so far."""


def test_the_embedded_provider_serves_an_hour_after_the_ready_delay() -> None:
    assert ProviderOptions().ready_delay_s == READY_DELAY.total_seconds() == 600
    assert inspect.signature(serve).parameters["ready_delay"].default == READY_DELAY.total_seconds()


@pytest.mark.integration
def test_an_event_is_late_when_published_after_its_hour_was_served(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_system_information(lake, ZONE, HOUR - timedelta(days=1))
    write_vehicles(lake, ZONE, HOUR - timedelta(days=1), ["scooter-a", "scooter-b", "scooter-c", "scooter-d"])
    published = {
        "scooter-a": HOUR + timedelta(minutes=31),  # a minute after it happened
        "scooter-b": SERVED,  # the instant the hour is served: the first ingest has it
        "scooter-c": SERVED + timedelta(milliseconds=1),  # the first late instant
        "scooter-d": SERVED + timedelta(hours=5),  # brought in by a re-ingest of the hour
    }
    events = [
        event(f"{device}/low", device, HOUR + timedelta(minutes=30), "battery_low", "non_operational", published=at)
        for device, at in published.items()
    ]
    write_trips(lake, ZONE, HOUR, [])
    write_events(lake, ZONE, HOUR, events)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lake)
    warehouse.build()
    quality = query(
        warehouse,
        "select late_events from data_quality_hourly where zone_id = $zone and hour = $hour",
        {"zone": ZONE, "hour": HOUR},
    )
    assert quality["late_events"].to_list() == [2]
