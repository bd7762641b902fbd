"""The warehouse on hand-built lakes: DST changes, hour and midnight boundaries, late and repeated deliveries,
silent vehicles, empty and missing hours, zones without parking spots. Window builds must equal full builds."""

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.models import SQL_DIR
from pipelines.warehouse.spill import chunks
from pipelines.warehouse.window import window_parameters
from tests.scenario import (
    Record,
    area,
    event,
    ride,
    tables,
    trip,
    uid,
    write_events,
    write_gbfs_vehicles,
    write_hours,
    write_rides,
    write_system_information,
    write_trips,
    write_vehicles,
    write_zone_areas,
)
from tests.scenario import query as run

pytestmark = pytest.mark.integration

ZONE = "1"
H = timedelta(hours=1)
M = timedelta(minutes=1)
DAY = timedelta(days=1)
# Every model whose rows a window build may touch, with a total order for comparing builds.
COMPARED = {
    "trips": "trip_id",
    "vehicle_state_intervals": "zone_id, device_id, started_at",
    "occupancy_hourly": "zone_id, area_type, area_id, hour, vehicle_state",
    "data_quality_hourly": "zone_id, hour",
    "compliance_violations": "rule, observed_at, device_id, trip_id",
    "compliance_daily": "zone_id, local_date, rule",
    "trips_hourly": "zone_id, vehicle_type, hour",
    "fleet_utilization_daily": "zone_id, local_date",
    "staging.stg_mds__events": "event_id",
    "staging.stg_mds__trips": "trip_id",
    "core.int_gbfs_vehicle_positions": "captured_at, vehicle_id",
    "staging.stg_mds__vehicles": "zone_id, device_id",
    "gbfs_occupancy_hourly": "zone_id, area_type, area_id, hour, vehicle_state",
    "area_trips_hourly": "zone_id, hour, location, scope, area_id",
    "events_hourly": "zone_id, hour, event_type, scope, area_id",
    "core.int_metrics_vehicles": "zone_id, scope, area_id, provider_id, vehicle_type, vehicle_state, interval_start",
    "core.int_metrics_events": "zone_id, scope, area_id, provider_id, vehicle_type, event_type, interval_start",
    "core.int_metrics_trips": "zone_id, location, scope, area_id, provider_id, vehicle_type, interval_start",
    "core.int_metrics_activity": (
        "zone_id, scope, area_id, provider_id, vehicle_type, interval_duration, interval_start"
    ),
}


def stockholm(lake: Path, at: datetime) -> None:
    write_system_information(lake, ZONE, at)
    write_vehicles(lake, ZONE, at, ["scooter-a", "scooter-b", "scooter-c"])


def built(
    tmp_path: Path, lake: Path, name: str = "warehouse", window: tuple[datetime, datetime] | None = None
) -> Warehouse:
    warehouse = Warehouse(tmp_path / f"{name}.duckdb", lake)
    warehouse.build(window=window)
    return warehouse


def assert_same_as_full_build(
    tmp_path: Path,
    lake: Path,
    incremental: Warehouse,
    relations: tuple[str, ...] = tuple(COMPARED),
    full: Warehouse | None = None,
) -> Warehouse:
    """`incremental`'s rows equal a full build's; `full`: a full build of the lake as it is now, when the test has
    one already (built when None). Returns the full build, for the next comparison of the same lake."""
    full = full or built(tmp_path, lake, "full")
    orders = {relation: order for relation, order in COMPARED.items() if relation in relations}
    expected = tables(full, orders)
    for relation, frame in tables(incremental, orders).items():
        try:
            assert_frame_equal(frame, expected[relation], check_row_order=True)
        except AssertionError as difference:
            raise AssertionError(f"{relation}: {difference}") from None
    return full


def quality(warehouse: Warehouse) -> dict[datetime, dict[str, Any]]:
    frame = run(warehouse, "select * from data_quality_hourly where zone_id = $zone order by hour", {"zone": ZONE})
    return {row["hour"]: row for row in frame.iter_rows(named=True)}


def test_local_times_follow_the_dst_changes(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 3, 1, tzinfo=UTC))
    rides = [
        # Spring forward at 01:00 UTC: 02:00 CET becomes 03:00 CEST.
        ride(
            "spring-before",
            "scooter-a",
            datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
            datetime(2026, 3, 29, 0, 50, tzinfo=UTC),
        ),
        ride(
            "spring-after",
            "scooter-a",
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            datetime(2026, 3, 29, 1, 50, tzinfo=UTC),
        ),
        # Fall back at 01:00 UTC: 03:00 CEST becomes 02:00 CET, so 02:30 local happens twice.
        ride(
            "autumn-before",
            "scooter-b",
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 40, tzinfo=UTC),
        ),
        ride(
            "autumn-after",
            "scooter-b",
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 40, tzinfo=UTC),
        ),
    ]
    write_rides(lake, ZONE, rides)
    warehouse = built(tmp_path, lake)

    trips = run(warehouse, "select trip_id, start_time_local, end_time_local, timezone from trips")
    local = {row["trip_id"]: (row["start_time_local"], row["end_time_local"]) for row in trips.iter_rows(named=True)}
    assert set(trips["timezone"]) == {"Europe/Stockholm"}
    assert local[uid("spring-before")] == (datetime(2026, 3, 29, 1, 30), datetime(2026, 3, 29, 1, 50))
    assert local[uid("spring-after")] == (datetime(2026, 3, 29, 3, 30), datetime(2026, 3, 29, 3, 50))
    assert local[uid("autumn-before")] == (datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 2, 40))
    assert local[uid("autumn-after")] == (datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 2, 40))


def test_trips_across_hours_and_midnight_count_once_in_their_end_hour(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    midnight = datetime(2026, 4, 2, tzinfo=UTC)
    rides = [
        ride("over-midnight", "scooter-a", midnight - 10 * M, midnight + 10 * M),
        ride("over-an-hour", "scooter-b", midnight + 50 * M, midnight + H + 5 * M),
        ride("within-an-hour", "scooter-c", midnight + 5 * M, midnight + 20 * M),
    ]
    write_rides(lake, ZONE, rides)
    warehouse = built(tmp_path, lake)

    trips = run(warehouse, "select trip_id, delivery_hour from trips order by end_time")
    assert trips["trip_id"].to_list() == [uid("over-midnight"), uid("within-an-hour"), uid("over-an-hour")]
    assert trips["delivery_hour"].to_list() == [midnight, midnight, midnight + H]

    dq = quality(warehouse)
    assert list(dq) == [midnight - H, midnight, midnight + H]
    assert [dq[h]["mds_trips_records"] for h in dq] == [0, 2, 1]
    # Each trip has both events, though its start event sits in an earlier hour than the trip.
    assert all(row["trips_without_start_event"] == row["trips_without_end_event"] == 0 for row in dq.values())
    assert all(row["trip_events_without_trip"] == 0 for row in dq.values())

    # Building the hours one window at a time gives the full build.
    stepwise = Warehouse(tmp_path / "stepwise.duckdb", lake)
    for hour in (midnight - H, midnight, midnight + H):
        stepwise.build(window=(hour, hour + H))
    assert_same_as_full_build(tmp_path, lake, stepwise, full=warehouse)


def test_a_late_event_reingested_updates_trips_and_intervals(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    first, first_events = ride("first", "scooter-a", hour + 5 * M, hour + 15 * M)
    write_trips(lake, ZONE, hour, [first])
    write_events(lake, ZONE, hour, first_events)
    warehouse = built(tmp_path, lake)
    assert run(warehouse, "select count(*) as n from trips")["n"][0] == 1

    # The provider publishes a second ride of the hour 40 minutes after the hour was served; the hour is re-ingested.
    late_published = hour + H + 50 * M
    second = trip("second", "scooter-a", hour + 30 * M, hour + 45 * M)
    late_events = [
        event(
            "second/start",
            "scooter-a",
            hour + 30 * M,
            "trip_start",
            "on_trip",
            trips=["second"],
            published=late_published,
        ),
        event(
            "second/end",
            "scooter-a",
            hour + 45 * M,
            "trip_end",
            "available",
            trips=["second"],
            published=late_published,
        ),
    ]
    write_trips(lake, ZONE, hour, [first, second])
    write_events(lake, ZONE, hour, [*first_events, *late_events])
    warehouse.build(window=(hour, hour + H))

    assert run(warehouse, "select trip_id from trips order by end_time")["trip_id"].to_list() == [
        uid("first"),
        uid("second"),
    ]
    states = run(warehouse, "select vehicle_state, ended_at from vehicle_state_intervals order by started_at")
    assert states["vehicle_state"].to_list() == ["on_trip", "available", "on_trip", "available"]
    assert states["ended_at"].to_list()[:3] == [hour + 15 * M, hour + 30 * M, hour + 45 * M]
    assert quality(warehouse)[hour]["late_events"] == 2
    assert_same_as_full_build(tmp_path, lake, warehouse)


def late_ride(name: str, device: str, start: datetime, end: datetime, published: datetime) -> list[Record]:
    """A ride's trip_start and trip_end events, published late."""
    return [
        event(f"{name}/start", device, start, "trip_start", "on_trip", trips=[name], published=published),
        event(f"{name}/end", device, end, "trip_end", "available", trips=[name], published=published),
    ]


def test_a_late_delivery_to_an_old_hour_rebuilds_what_it_changed_in_the_later_hours(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    # Scooter A rides in the first and the third hour, scooter B in the second; scooter C breaks down at 10:50 and
    # is mended at 12:30. All three hours are built.
    rides = [
        ride("a-first", "scooter-a", hour + 5 * M, hour + 15 * M),
        ride("b-middle", "scooter-b", hour + H + 20 * M, hour + H + 30 * M),
        ride("a-last", "scooter-a", hour + 2 * H + 10 * M, hour + 2 * H + 20 * M),
    ]
    c_states = [
        event("c-ready", "scooter-c", hour + 5 * M, "battery_charged", "available"),
        event("c-broken", "scooter-c", hour + 50 * M, "maintenance", "non_operational"),
        event("c-mended", "scooter-c", hour + 2 * H + 30 * M, "battery_charged", "available"),
    ]
    write_rides(lake, ZONE, rides, c_states)
    warehouse = built(tmp_path, lake)
    first_trip, first_events = rides[0]
    first_hour_events = [*first_events, *c_states[:2]]

    # The first hour delivered again with a ride of scooter C from 10:30 to 10:40: its states change only within
    # the hour, but the hour-long activity pieces from 10:15 and 10:30 that now hold its ride end after the hour.
    c_ride = late_ride("c-late", "scooter-c", hour + 30 * M, hour + 40 * M, hour + 3 * H)
    c_trip = trip("c-late", "scooter-c", hour + 30 * M, hour + 40 * M)
    write_trips(lake, ZONE, hour, [first_trip, c_trip])
    write_events(lake, ZONE, hour, [*first_hour_events, *c_ride])
    warehouse.build(window=(hour, hour + H))
    assert_same_as_full_build(tmp_path, lake, warehouse)

    # Again, with a breakdown of scooter A at 10:55 too: its state until its ride at 12:10 is another, so the
    # vehicle measures and occupancy of the two later hours change.
    a_broken = event("a-broken", "scooter-a", hour + 55 * M, "maintenance", "non_operational", published=hour + 4 * H)
    write_events(lake, ZONE, hour, [*first_hour_events, *c_ride, a_broken])
    warehouse.build(window=(hour, hour + H))
    states = run(
        warehouse,
        "select vehicle_state, started_at, ended_at from vehicle_state_intervals "
        "where device_id = $device order by started_at",
        {"device": uid("scooter-a")},
    )
    assert states.rows()[-3] == ("non_operational", hour + 55 * M, hour + 2 * H + 10 * M)
    assert_same_as_full_build(tmp_path, lake, warehouse)


LATEST_STATE = """-- Each vehicle's latest state interval.
-- grain: (device_id) one row per device_id
-- inputs: vehicle_state_intervals
-- materialized: incremental(started_at)
-- unique_key: device_id
-- keep: latest
select device_id, zone_id, vehicle_state, started_at
from main.vehicle_state_intervals
where started_at >= $window_start and started_at < $window_end
qualify row_number() over (partition by device_id order by started_at desc) = 1
"""
ZONE_2_LATER = (
    "select rowid as row_id, * from core.int_metrics_vehicles where zone_id = '2' and interval_start >= $after "
    "order by row_id"
)


@dataclass(frozen=True)
class WithdrawnEvents:
    """A warehouse built in full, then again for an hour redelivered without every event two vehicles had in it."""

    lake: Path
    hour: datetime
    warehouse: Warehouse
    zone_2_before: pl.DataFrame  # zone 2's vehicle measures of the later hours, as the full build stored them


@pytest.fixture(scope="module")
def withdrawn_events(tmp_path_factory: pytest.TempPathFactory) -> WithdrawnEvents:
    """Built once for the tests that read it (none changes it). Besides the project's models, the warehouse has a
    `keep: latest` reader of vehicle_state_intervals keyed without its zone (LATEST_STATE), which the spill of the
    window build rebuilds too."""
    root = tmp_path_factory.mktemp("withdrawn")
    sql_dir = root / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "marts" / "latest_vehicle_states.sql").write_text(LATEST_STATE)
    lake = root / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    # Scooter A rides in each of the three hours, scooter B in the second, breaks down at 12:40 and rides again two
    # days later; scooter C is charged at 10:05 and breaks down at 11:45, its last event. All is built.
    rides = [
        ride("a-first", "scooter-a", hour + 5 * M, hour + 15 * M),
        ride("a-middle", "scooter-a", hour + H + 20 * M, hour + H + 30 * M),
        ride("b-middle", "scooter-b", hour + H + 35 * M, hour + H + 40 * M),
        ride("a-last", "scooter-a", hour + 2 * H + 10 * M, hour + 2 * H + 20 * M),
        ride("b-later", "scooter-b", hour + 2 * DAY + 5 * M, hour + 2 * DAY + 15 * M),
    ]
    c_states = [
        event("c-ready", "scooter-c", hour + 5 * M, "battery_charged", "available"),
        event("c-broken", "scooter-c", hour + H + 45 * M, "maintenance", "non_operational"),
        event("b-broken", "scooter-b", hour + 2 * H + 40 * M, "maintenance", "non_operational"),
    ]
    write_rides(lake, ZONE, rides, c_states)
    # In zone 2 scooter D rides in the second hour and two days later; nothing of zone 2 changes below.
    write_system_information(lake, "2", datetime(2026, 4, 1, tzinfo=UTC))
    write_vehicles(lake, "2", datetime(2026, 4, 1, tzinfo=UTC), ["scooter-d"])
    d_rides = [
        ride("d-middle", "scooter-d", hour + H + 10 * M, hour + H + 25 * M),
        ride("d-later", "scooter-d", hour + 2 * DAY + 20 * M, hour + 2 * DAY + 30 * M),
    ]
    write_rides(lake, "2", d_rides)
    warehouse = Warehouse(root / "warehouse.duckdb", lake, sql_dir=sql_dir)
    warehouse.build()
    zone_2_before = run(warehouse, ZONE_2_LATER, {"after": hour + 2 * H})
    assert not zone_2_before.is_empty()

    # The second hour delivered again without A's ride and C's breakdown: neither vehicle has an event in it any
    # more, so A stays available from 10:15 until its ride at 12:10, and C from 10:05 on (its state lasts, and
    # the later hours, two days of them, are rebuilt a day at a time).
    b_trip, b_events = rides[2]
    write_trips(lake, ZONE, hour + H, [b_trip])
    write_events(lake, ZONE, hour + H, b_events)
    warehouse.build(window=(hour + H, hour + 2 * H))
    return WithdrawnEvents(lake, hour, warehouse, zone_2_before)


@pytest.mark.slow
def test_a_redelivery_that_withdraws_every_event_of_a_vehicle_ends_its_earlier_state_anew(
    tmp_path: Path, withdrawn_events: WithdrawnEvents
) -> None:
    hour, warehouse = withdrawn_events.hour, withdrawn_events.warehouse
    states = run(
        warehouse,
        "select device_id, vehicle_state, started_at, ended_at from vehicle_state_intervals "
        "where device_id in ($a, $c) and started_at < $window_start order by device_id, started_at",
        {"a": uid("scooter-a"), "c": uid("scooter-c"), "window_start": hour + H},
    )
    assert sorted(states.rows()) == sorted(
        [
            (uid("scooter-a"), "on_trip", hour + 5 * M, hour + 15 * M),
            (uid("scooter-a"), "available", hour + 15 * M, hour + 2 * H + 10 * M),
            (uid("scooter-c"), "available", hour + 5 * M, None),
        ]
    )
    # The later hours are rebuilt for zone 1 alone: zone 2's rows there are the very rows stored before.
    assert_frame_equal(run(warehouse, ZONE_2_LATER, {"after": hour + 2 * H}), withdrawn_events.zone_2_before)
    assert_same_as_full_build(tmp_path, withdrawn_events.lake, warehouse)


def test_a_spill_rebuilds_a_keep_latest_reader_keyed_without_its_zone(withdrawn_events: WithdrawnEvents) -> None:
    """A spill rebuilds vehicle_state_intervals' readers for its zones alone: a `keep: latest` reader whose key
    leaves out zone_id is rebuilt too, the newer rows it stores kept by the window and key alone, and the rows of
    the zones the spill left alone kept as they were."""
    hour = withdrawn_events.hour
    latest = (
        "select device_id, vehicle_state, started_at from latest_vehicle_states where device_id in ($a, $b, $d) "
        "order by device_id"
    )
    devices = {"a": uid("scooter-a"), "b": uid("scooter-b"), "d": uid("scooter-d")}
    assert run(withdrawn_events.warehouse, latest, devices).rows() == sorted(
        [
            (uid("scooter-a"), "available", hour + 2 * H + 20 * M),
            (uid("scooter-b"), "available", hour + 2 * DAY + 15 * M),
            (uid("scooter-d"), "available", hour + 2 * DAY + 30 * M),
        ]
    )


def test_a_spill_longer_than_a_day_is_rebuilt_a_day_at_a_time() -> None:
    end = datetime(2026, 4, 2, 11, tzinfo=UTC)
    assert chunks((end, end + 3 * H)) == [(end, end + 3 * H)]
    assert chunks((end, end + DAY)) == [(end, end + DAY)]
    assert chunks((end, end + 2 * DAY + 3 * H)) == [
        (end, end + DAY),
        (end + DAY, end + 2 * DAY),
        (end + 2 * DAY, end + 2 * DAY + 3 * H),
    ]


def test_a_trip_delivered_in_two_hours_is_one_trip(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    # First delivered ending at 10:55, then again (corrected) ending at 11:02: the later delivery wins.
    write_trips(lake, ZONE, hour, [trip("twice", "scooter-a", hour + 40 * M, hour + 55 * M)])
    write_trips(lake, ZONE, hour + H, [trip("twice", "scooter-a", hour + 40 * M, hour + H + 2 * M)])
    write_events(lake, ZONE, hour, [])
    write_events(lake, ZONE, hour + H, [])
    warehouse = built(tmp_path, lake, window=None)

    trips = run(warehouse, "select trip_id, end_time from trips")
    assert trips.rows() == [(uid("twice"), hour + H + 2 * M)]
    dq = quality(warehouse)
    assert [dq[h]["mds_trips_records"] for h in dq] == [1, 1]
    # Other content than the first delivery: a conflict, not a duplicate.
    assert [dq[h]["mds_trips_duplicates"] for h in dq] == [0, 0]
    assert [dq[h]["mds_trips_conflicts"] for h in dq] == [0, 1]

    # A window build covering both deliveries gives the full build.
    both = Warehouse(tmp_path / "both.duckdb", lake)
    both.build(window=(hour, hour + H))
    both.build(window=(hour, hour + 2 * H))
    assert_same_as_full_build(tmp_path, lake, both, full=warehouse)


def test_a_trip_delivered_by_two_zones_is_one_trip_in_every_build(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    write_system_information(lake, "145", datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    # A trip from one zone into the other: both zones' trips feeds of the hour deliver it, zone 145's ingested
    # last; only zone 1's events feed carries its events.
    crossing, events = ride("crossing", "scooter-a", hour + 10 * M, hour + 30 * M)
    write_trips(lake, ZONE, hour, [crossing, trip("stays", "scooter-b", hour + 5 * M, hour + 20 * M)])
    write_trips(lake, "145", hour, [crossing])
    write_events(lake, ZONE, hour, events)
    write_events(lake, "145", hour, [])
    full = built(tmp_path, lake, "full")

    # Counted once, in the zone of its newest delivery.
    trips = run(full, "select zone_id, trip_id from trips order by trip_id")
    assert sorted(trips.rows()) == sorted([("145", uid("crossing")), (ZONE, uid("stays"))])
    # The second zone's delivery is not lost: data quality counts it as a repeat (same content) in its hour.
    repeats = run(
        full,
        "select zone_id, mds_trips_records, mds_trips_duplicates from data_quality_hourly"
        " where hour = $hour order by zone_id",
        {"hour": hour},
    )
    assert repeats.rows() == [(ZONE, 2, 0), ("145", 1, 1)]
    # Its events, in the other zone's feed, still name it: neither the trip nor they count as unmatched.
    # (Only the trip that stays, given without events, lacks them.)
    unmatched = run(
        full,
        "select zone_id, trips_without_start_event, trips_without_end_event, trip_events_without_trip"
        " from data_quality_hourly where hour = $hour order by zone_id",
        {"hour": hour},
    )
    assert unmatched.rows() == [(ZONE, 1, 1, 0), ("145", 0, 0, 0)]

    # The hour's first window build, and the same window built again, both give the full build.
    window = Warehouse(tmp_path / "window.duckdb", lake)
    window.build(window=(hour, hour + H))
    assert_same_as_full_build(tmp_path, lake, window, full=full)
    window.build(window=(hour, hour + H))
    assert_same_as_full_build(tmp_path, lake, window, full=full)


def test_events_delivered_by_two_zones_are_each_one_event_in_every_build(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    write_system_information(lake, "145", datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    # A ride from one zone into the other, its trip and events in both zones' feeds (zone 145's ingested last).
    crossing, events = ride("crossing", "scooter-a", hour + 10 * M, hour + 30 * M)
    for zone in (ZONE, "145"):
        write_trips(lake, zone, hour, [crossing])
        write_events(lake, zone, hour, events)
    full = built(tmp_path, lake, "full")

    stored = run(full, "select zone_id, event_id from staging.stg_mds__events order by event_id")
    assert sorted(stored.rows()) == sorted(("145", uid(name)) for name in ("crossing/start", "crossing/end"))
    repeats = run(
        full,
        "select zone_id, mds_events_records, mds_events_duplicates from data_quality_hourly"
        " where hour = $hour order by zone_id",
        {"hour": hour},
    )
    assert repeats.rows() == [(ZONE, 2, 0), ("145", 2, 2)]

    window = Warehouse(tmp_path / "window.duckdb", lake)
    window.build(window=(hour, hour + H))
    assert_same_as_full_build(tmp_path, lake, window, full=full)
    window.build(window=(hour, hour + H))
    assert_same_as_full_build(tmp_path, lake, window, full=full)


def test_a_redelivery_into_a_later_hour_replaces_the_trip_in_a_window_build(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    write_trips(lake, ZONE, hour, [trip("twice", "scooter-a", hour + 40 * M, hour + 55 * M)])
    warehouse = built(tmp_path, lake)
    write_trips(lake, ZONE, hour + H, [trip("twice", "scooter-a", hour + 40 * M, hour + H + 2 * M)])
    warehouse.build(window=(hour + H, hour + 2 * H))
    assert run(warehouse, "select count(*) as n from trips")["n"][0] == 1


@pytest.mark.slow
def test_hour_by_hour_builds_and_an_old_hour_rebuilt_later_equal_a_full_build(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    start = datetime(2026, 4, 2, 6, tzinfo=UTC)
    hours = [start + n * H for n in range(5)]
    stockholm(lake, start - 2 * H)
    write_zone_areas(
        lake,
        ZONE,
        start - 2 * H,
        [area("ops", "operations", (59.0, 17.5), (59.6, 18.5)), area("park", "no-parking", (59.3, 18.0), (59.4, 18.1))],
    )
    # Three scooters riding in turns: trips cross hour boundaries, the last hour is silent (empty partitions).
    rides = [ride(f"ride-{n}", "abc"[n % 3], start + n * 37 * M, start + (n * 37 + 10 + 7 * n) * M) for n in range(6)]
    trips_by_hour = {hour: [t for t, _ in rides if hour_of_ms(t["end_time"]) == hour] for hour in hours}
    events_by_hour = {hour: [e for _, es in rides for e in es if hour_of_ms(e["timestamp"]) == hour] for hour in hours}
    # ride-1 ended at 06:54 and is delivered again, corrected to end at 09:05, in the 09:00 partition.
    corrected, _ = ride("ride-1", "b", start + 37 * M, start + 3 * H + 5 * M)
    hourly = Warehouse(tmp_path / "hourly.duckdb", lake)
    for hour in hours:  # as the hourly schedule ingests and builds, GBFS snapshots arriving in between
        write_trips(lake, ZONE, hour, trips_by_hour[hour] + ([corrected] if hour == start + 3 * H else []))
        write_events(lake, ZONE, hour, events_by_hour[hour])
        write_gbfs_vehicles(lake, ZONE, hour + 20 * M, [("gbfs-a", (59.35, 18.05)), ("gbfs-b", (59.2, 17.8))])
        write_vehicles(lake, ZONE, hour + 30 * M, ["a", "b", "c", f"new-{hour:%H}"])
        hourly.build(window=(hour, hour + H))
    assert run(hourly, "select count(*) as n from trips")["n"][0] == 6
    assert events_by_hour[hours[-1]] == trips_by_hour[hours[-1]] == []
    full = assert_same_as_full_build(tmp_path, lake, hourly)

    # Rebuilding the hour of the first delivery keeps the newer one.
    hourly.build(window=(start, start + H))
    assert run(hourly, "select end_time from trips where trip_id = $id", {"id": uid("ride-1")}).rows() == [
        (start + 3 * H + 5 * M,)
    ]
    assert_same_as_full_build(tmp_path, lake, hourly, full=full)


def test_an_area_and_a_state_first_seen_in_a_later_hour_fill_the_earlier_hours_zero_rows(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    start = datetime(2026, 4, 2, 6, tzinfo=UTC)
    hours = [start - H] + [start + n * H for n in range(3)]
    stockholm(lake, start - 2 * H)
    write_zone_areas(
        lake,
        ZONE,
        start - 2 * H,
        [area("ops", "operations", (59.0, 17.5), (59.6, 18.5)), area("far", "no-parking", (59.1, 17.6), (59.2, 17.7))],
    )
    # A silent first hour (no series at all yet), two hours of rides in the operations area, then a scooter breaks
    # down in the other area: a state and an area the hours built before had not seen. GBFS lists a vehicle in the
    # other area from the start (its mart reads occupancy_hourly's rows of each hour).
    rides = [ride(f"ride-{n}", "ab"[n % 2], start + n * 40 * M, start + (n * 40 + 15) * M) for n in range(3)]
    far = (59.15, 17.65)
    breakdown = event("c-broken", "scooter-c", hours[3] + 20 * M, "maintenance", "non_operational", location=far)
    hourly = Warehouse(tmp_path / "hourly.duckdb", lake)
    for hour in hours:  # as the hourly schedule ingests and builds
        write_gbfs_vehicles(lake, ZONE, hour + 20 * M, [("gbfs-a", far)])
        write_trips(lake, ZONE, hour, [t for t, _ in rides if hour_of_ms(t["end_time"]) == hour])
        write_events(
            lake,
            ZONE,
            hour,
            [e for _, es in rides for e in es if hour_of_ms(e["timestamp"]) == hour]
            + ([breakdown] if hour == hours[3] else []),
        )
        hourly.build(window=(hour, hour + H))
    full = assert_same_as_full_build(tmp_path, lake, hourly)
    # The full build's first hour has the zero rows the window builds had to add afterwards.
    first = run(
        full,
        "select area_id, vehicle_state, avg_vehicles from occupancy_hourly "
        "where hour = $hour and (area_id = 'far' or vehicle_state = 'non_operational') order by all",
        {"hour": start - H},
    )
    assert ("far", "available", 0.0) in first.rows()
    assert (None, "non_operational", 0.0) in first.rows()


def test_points_are_placed_in_the_zone_areas_in_force_at_their_time(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    day = datetime(2026, 4, 2, tzinfo=UTC)
    stockholm(lake, day - 2 * H)
    ops = area("ops", "operations", (59.0, 17.5), (59.6, 18.5))
    old_park = area("park", "no-parking", (59.3, 18.0), (59.4, 18.1))
    new_park = area("park-2", "no-parking", (59.1, 17.6), (59.2, 17.7))
    # Captured daily; the areas change on the third capture only.
    write_zone_areas(lake, ZONE, day, [ops, old_park])
    write_zone_areas(lake, ZONE, day + 24 * H, [ops, old_park])
    write_zone_areas(lake, ZONE, day + 48 * H, [new_park, ops])
    in_old, in_new = (59.35, 18.05), (59.15, 17.65)
    # Trip -> end time, end place, and the areas expected of its start (always in the old park's place) and end:
    # both ends are placed in the areas in force at the trip's end; before the first capture, in the first areas.
    ends = {
        "before-any-capture": (day - H + 10 * M, in_old, ("park", "park")),
        "second-capture": (day + 36 * H, in_old, ("park", "park")),
        "after-the-change-old-place": (day + 60 * H, in_old, ("ops", "ops")),
        "after-the-change-new-place": (day + 60 * H + 20 * M, in_new, ("ops", "park-2")),
    }
    rides = [
        trip(name, f"scooter-{n}", end - 5 * M, end, start_at=in_old, end_at=place)
        for n, (name, (end, place, _)) in enumerate(ends.items())
    ]
    hours = sorted({hour_of_ms(t["end_time"]) for t in rides})
    for hour in hours:
        write_trips(lake, ZONE, hour, [t for t in rides if hour_of_ms(t["end_time"]) == hour])
    hourly = Warehouse(tmp_path / "hourly.duckdb", lake)
    for hour in hours:
        hourly.build(window=(hour, hour + H))

    versions = run(hourly, "select valid_from, span_start, span_end from core.int_zone_area_versions order by 1")
    assert versions["valid_from"].to_list() == [day, day + 48 * H]
    assert versions["span_end"].to_list()[0] == day + 48 * H
    areas = run(hourly, "select trip_id, start_area_id, end_area_id from trips")
    found = {row["trip_id"]: (row["start_area_id"], row["end_area_id"]) for row in areas.iter_rows(named=True)}
    assert found == {uid(name): expected for name, (_, _, expected) in ends.items()}
    assert_same_as_full_build(tmp_path, lake, hourly, ("trips",))


def test_lake_files_of_an_older_schema_are_read_by_name(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    first = datetime(2026, 4, 2, 10, tzinfo=UTC)
    for n, hour in enumerate((first, first + H)):
        write_trips(lake, ZONE, hour, [trip(f"trip-{n}", "scooter-a", hour + 5 * M, hour + 15 * M)])
    warehouse = built(tmp_path, lake)
    views = "select view_name, comment from duckdb_views() where schema_name = 'lake'"
    uniform = dict(run(warehouse, views).rows())
    # One schema in every file: DuckDB opens only the files a query keeps.
    assert "union_by_name = false" in uniform["mds_trips"]

    # The first hour as an older version wrote it, without a column the newer files have.
    (older,) = (lake / "mds_trips").glob("zone_id=1/date=2026-04-02/hour=10/*.parquet")
    pl.read_parquet(older, hive_partitioning=False).drop("distance_m").write_parquet(older)
    warehouse.build()
    assert "union_by_name = true" in dict(run(warehouse, views).rows())["mds_trips"]
    trips = run(warehouse, "select trip_id, distance_m from trips order by end_time").rows()
    assert trips == [(uid("trip-0"), None), (uid("trip-1"), 1_000.0)]


def test_a_window_build_finds_neighbouring_events_days_and_weeks_away(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 3, 1, tzinfo=UTC))
    hour = datetime(2026, 3, 20, 10, tzinfo=UTC)
    # a: last seen 10 days before the hour; b: 3 days before; c: 2 days after; d: 10 days after; each moves in the
    # hour.
    seen = {
        "scooter-a": hour - 10 * 24 * H,
        "scooter-b": hour - 3 * 24 * H,
        "scooter-c": hour + 2 * 24 * H,
        "scooter-d": hour + 10 * 24 * H,
    }
    for device, at in seen.items():
        write_events(
            lake,
            ZONE,
            at.replace(minute=0),
            [event(f"{device}/seen", device, at + 5 * M, "battery_charged", "available")],
        )
    write_events(
        lake,
        ZONE,
        hour,
        [event(f"{device}/moved", device, hour + 20 * M, "trip_start", "on_trip", trips=[device]) for device in seen],
    )
    # The neighbours' hours first, then the hour: its window build finds their events, stored days and weeks away.
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lake)
    for at in seen.values():
        warehouse.build(window=(at.replace(minute=0), at.replace(minute=0) + H))
    warehouse.build(window=(hour, hour + H))
    ends = run(warehouse, "select device_id, started_by, ended_at from vehicle_state_intervals")
    ended = {(r["device_id"], r["started_by"]): r["ended_at"] for r in ends.iter_rows(named=True)}
    # The hour's events close the intervals open since days and weeks before, and one two days later closes its own.
    assert ended[(uid("scooter-a"), "battery_charged")] == hour + 20 * M
    assert ended[(uid("scooter-b"), "battery_charged")] == hour + 20 * M
    assert ended[(uid("scooter-c"), "trip_start")] == seen["scooter-c"] + 5 * M
    assert ended[(uid("scooter-d"), "trip_start")] == seen["scooter-d"] + 5 * M
    assert ended[(uid("scooter-a"), "trip_start")] is None
    # Only the intervals: hourly marts have rows only for the hours built, and the hours in between never were.
    assert_same_as_full_build(tmp_path, lake, warehouse, ("vehicle_state_intervals", "staging.stg_mds__events"))


def test_a_warehouse_from_an_older_layout_takes_a_window_build(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    ridden, ride_events = ride("r", "scooter-a", hour + 5 * M, hour + 15 * M)
    write_trips(lake, ZONE, hour, [ridden])
    write_events(lake, ZONE, hour, ride_events)
    warehouse = built(tmp_path, lake)
    full = tmp_path / "full.duckdb"  # the full build, kept as it was built
    shutil.copyfile(warehouse.path, full)
    # Staging was once made of views, and a mart once had other columns.
    with warehouse.connect() as con:
        con.execute("drop table staging.stg_mds__trips")
        con.execute("create view staging.stg_mds__trips as select * from lake.mds_trips")
        con.execute("alter table main.trips drop column end_in_parking_spot")
    warehouse.build(window=(hour, hour + H))
    assert run(warehouse, "select count(*) as n from trips")["n"][0] == 1
    assert_same_as_full_build(tmp_path, lake, warehouse, full=Warehouse(full, lake))


def hour_of_ms(epoch_ms: object) -> datetime:
    assert isinstance(epoch_ms, int)
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).replace(minute=0, second=0, microsecond=0)


def test_silent_vehicles_empty_and_missing_hours(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    # Scooter A: available at 10:10, nothing at 11 (an empty partition), on a trip from 12:20.
    write_events(lake, ZONE, hour, [event("a-1", "scooter-a", hour + 10 * M, "battery_charged", "available")])
    write_trips(lake, ZONE, hour, [])
    write_events(lake, ZONE, hour + H, [])
    write_trips(lake, ZONE, hour + H, [])
    # 12:00 has events only (the trips hour was never ingested); 13:00 nothing at all; 14:00 trips only.
    write_events(
        lake,
        ZONE,
        hour + 2 * H,
        [event("a-2", "scooter-a", hour + 2 * H + 20 * M, "trip_start", "on_trip", trips=["t"])],
    )
    write_trips(lake, ZONE, hour + 4 * H, [trip("t", "scooter-a", hour + 2 * H + 20 * M, hour + 4 * H + 1 * M)])
    warehouse = built(tmp_path, lake)

    intervals = run(warehouse, "select vehicle_state, started_at, ended_at from vehicle_state_intervals")
    assert intervals.rows() == [
        ("available", hour + 10 * M, hour + 2 * H + 20 * M),
        ("on_trip", hour + 2 * H + 20 * M, None),
    ]

    dq = quality(warehouse)
    assert list(dq) == [hour + n * H for n in range(5)]
    rows = [
        (
            r["mds_trips_records"],
            r["mds_events_records"],
            r["has_mds_trips_partition"],
            r["has_mds_events_partition"],
            r["missing_partitions"],
            r["coverage"],
        )
        for r in dq.values()
    ]
    assert rows == [
        (0, 1, True, True, 0, 1.0),
        (0, 0, True, True, 0, 1.0),  # empty, not missing
        (0, 1, False, True, 1, 0.5),
        (0, 0, False, False, 2, 0.0),  # in the grid although nothing was delivered
        (1, 0, True, False, 1, 0.5),
    ]
    # The trip has a start event but no end event; the start event's trip is there.
    assert dq[hour + 4 * H]["trips_without_start_event"] == 0
    assert dq[hour + 4 * H]["trips_without_end_event"] == 1
    assert sum(r["trip_events_without_trip"] for r in dq.values()) == 0


def test_an_hour_delivered_without_events_extends_the_horizon(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    write_events(lake, ZONE, hour, [event("a-1", "scooter-a", hour + 30 * M, "battery_charged", "available")])
    write_events(lake, ZONE, hour + H, [])  # nothing happened at 11:00, and the partition says so
    warehouse = built(tmp_path, lake)

    occupancy = run(
        warehouse,
        "select hour, avg_vehicles, max_vehicles from occupancy_hourly "
        "where area_type = 'zone' and vehicle_state = 'available' order by hour",
    )
    assert occupancy.rows() == [(hour, 0.5, 1), (hour + H, 1.0, 1)]

    # A later hour's series joins the stored ones, and the hours built before gain its zero rows at once.
    write_events(lake, ZONE, hour + 2 * H, [event("a-2", "scooter-a", hour + 2 * H, "maintenance", "non_operational")])
    warehouse.build(window=(hour + 2 * H, hour + 3 * H))
    series = run(warehouse, "select vehicle_state from core.int_occupancy_series order by all")
    assert series["vehicle_state"].to_list() == ["available", "non_operational"]
    earlier = run(
        warehouse,
        "select hour, avg_vehicles, max_vehicles from occupancy_hourly "
        "where area_type = 'zone' and vehicle_state = 'non_operational' and hour < $hour order by hour",
        {"hour": hour + 2 * H},
    )
    assert earlier.rows() == [(hour, 0.0, 0), (hour + H, 0.0, 0)]
    third = run(
        warehouse,
        "select vehicle_state, avg_vehicles from occupancy_hourly where area_type = 'zone' "
        "and hour = $hour order by all",
        {"hour": hour + 2 * H},
    )
    assert third.rows() == [("available", 0.0), ("deployed", 1.0), ("non_operational", 1.0), ("parked", 1.0)]


def test_quarantined_records_and_orphan_events_are_counted(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    outside = trip("outside", "scooter-a", hour + 2 * H, hour + 2 * H + 5 * M)  # not in the requested hour
    broken = trip("broken", "scooter-a", hour, hour + 5 * M) | {"device_id": "not-a-uuid"}
    result = write_trips(lake, ZONE, hour, [outside, broken, trip("ok", "scooter-b", hour, hour + 9 * M)])
    assert (result.rows, result.quarantined) == (1, 2)
    write_events(lake, ZONE, hour, [event("lost", "scooter-c", hour + 30 * M, "trip_end", "available", trips=["gone"])])
    warehouse = built(tmp_path, lake)

    row = quality(warehouse)[hour]
    assert (row["mds_trips_records"], row["mds_trips_quarantined"], row["mds_events_quarantined"]) == (1, 2, 0)
    assert (row["trips_without_start_event"], row["trips_without_end_event"]) == (1, 1)
    assert row["trip_events_without_trip"] == 1


def test_zones_without_parking_spots_build_sensible_empty_results(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    captured = datetime(2026, 4, 1, tzinfo=UTC)
    stockholm(lake, captured)
    # Zone 1 has an operations area and no parking spot; zone 2 has an areas snapshot with no areas at all.
    write_zone_areas(lake, ZONE, captured, [area("ops", "operations", (59.0, 17.5), (59.6, 18.5))])
    write_zone_areas(lake, "2", captured, [])
    write_system_information(lake, "2", captured)
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    for zone in (ZONE, "2"):
        t, events = ride(f"ride-{zone}", "scooter-a", hour + 5 * M, hour + 20 * M)
        write_hours(lake, zone, [t], [{**e, "event_id": uid(f"{zone}/{e['event_id']}")} for e in events])
    warehouse = built(tmp_path, lake)

    trips = run(warehouse, "select zone_id, start_area_type, end_area_type from trips order by zone_id")
    # An areas snapshot with no areas leaves no row in the lake: zone 2's areas are not known, not "outside".
    assert trips.rows() == [(ZONE, "operations", "operations"), ("2", None, None)]
    marts = run(warehouse, "select table_name from information_schema.tables where table_schema = 'main'")
    for frame in tables(warehouse, dict.fromkeys(marts["table_name"], "all")).values():
        if "area_type" in frame.columns:
            assert "parking-spot" not in frame["area_type"].to_list()
    spots = run(warehouse, "select count(*) as n from staging.stg_zone__areas where area_type = 'parking-spot'")
    assert spots["n"][0] == 0
    assert len(quality(warehouse)) == 1


def test_a_window_build_lists_only_its_days_of_the_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    days = [datetime(2026, 4, day, 10, tzinfo=UTC) for day in (1, 2, 3)]
    for n, day in enumerate(days):
        write_events(lake, ZONE, day, [event(f"e{n}", "scooter-a", day + 5 * M, "battery_charged", "available")])
        write_trips(lake, ZONE, day, [])
    warehouse = built(tmp_path, lake)
    # A stray folder whose name is no date: a read that lists the whole dataset trips over it; a window build,
    # which lists only its own days, does not (nor does it pay for listing a year of folders each hour).
    stray = lake / "mds_events" / f"zone_id={ZONE}" / "date=someday" / "hour=10"
    stray.mkdir(parents=True)
    first_file = next((lake / "mds_events" / f"zone_id={ZONE}" / "date=2026-04-01" / "hour=10").glob("*.parquet"))
    (stray / "copy.parquet").write_bytes(first_file.read_bytes())
    warehouse.build(window=(days[2], days[2] + H))
    assert run(warehouse, "select count(*) as n from vehicle_state_intervals")["n"][0] == 3
    with pytest.raises(duckdb.Error, match="someday"):
        warehouse.build()


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (datetime(2026, 4, 2, 22, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC), (22, 23)),  # to midnight: one day
        (datetime(2026, 4, 2, 23, tzinfo=UTC), datetime(2026, 4, 3, 1, tzinfo=UTC), (0, 23)),  # across it: every hour
        (datetime(2026, 4, 2, 9, 30, tzinfo=UTC), datetime(2026, 4, 2, 10, 15, tzinfo=UTC), (9, 10)),
    ],
)
def test_window_builds_read_only_the_lake_hours_they_touch(
    start: datetime, end: datetime, hours: tuple[int, int]
) -> None:
    parameters = window_parameters((start, end))
    assert (parameters["window_hour_from"], parameters["window_hour_to"]) == hours
    assert (window_parameters(None)["window_hour_from"], window_parameters(None)["window_hour_to"]) == (0, 23)


def test_a_redelivery_that_withdraws_the_only_state_of_its_kind_drops_its_zero_rows(tmp_path: Path) -> None:
    """The series occupancy_hourly fills every hour with (core.int_occupancy_series) shrink in a window build as in
    a full build: a redelivery that withdraws a zone's only non_operational state drops that state's zero rows from
    every hour, those built before included."""
    lake = tmp_path / "lake"
    stockholm(lake, datetime(2026, 4, 1, tzinfo=UTC))
    hour = datetime(2026, 4, 2, 10, tzinfo=UTC)
    # Scooter A rides in each of the three hours; scooter C is charged at 10:05 and breaks down at 11:45: the
    # zone's only non_operational state. All is built.
    rides = [
        ride("a-first", "scooter-a", hour + 5 * M, hour + 15 * M),
        ride("a-middle", "scooter-a", hour + H + 20 * M, hour + H + 30 * M),
        ride("a-last", "scooter-a", hour + 2 * H + 10 * M, hour + 2 * H + 20 * M),
    ]
    c_states = [
        event("c-ready", "scooter-c", hour + 5 * M, "battery_charged", "available"),
        event("c-broken", "scooter-c", hour + H + 45 * M, "maintenance", "non_operational"),
    ]
    write_rides(lake, ZONE, rides, c_states)
    warehouse = built(tmp_path, lake)
    broken = "select * from occupancy_hourly where vehicle_state = 'non_operational' and scope = 'zone'"
    assert run(warehouse, broken).height == 3

    # The second hour delivered again without C's breakdown: no vehicle is non_operational any more, in any hour.
    a_trip, a_events = rides[1]
    write_trips(lake, ZONE, hour + H, [a_trip])
    write_events(lake, ZONE, hour + H, a_events)
    warehouse.build(window=(hour + H, hour + 2 * H))
    assert run(warehouse, broken).is_empty()
    full = assert_same_as_full_build(tmp_path, lake, warehouse)
    series = "select * from core.int_occupancy_series order by all"
    assert_frame_equal(run(warehouse, series), run(full, series))
