"""Compliance marts: hand-built scenarios with exact expectations, and the shared city against its ground truth."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import shapely

from pipelines.provider.city import Area
from pipelines.provider.truth import truth_frames
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.policy import load_policy_rules
from tests.conftest import BuiltWarehouse
from tests.scenario import (
    CENTER,
    area,
    event,
    geofence_rule,
    query,
    ride,
    uid,
    write_gbfs_vehicles,
    write_geofencing,
    write_hours,
    write_system_information,
    write_vehicles,
    write_zone_areas,
    write_zone_info,
)

T0 = datetime(2026, 3, 2, tzinfo=UTC)
OPS = area("ops-1", "operations", (59.30, 18.00), (59.36, 18.14))
NO_PARKING = area("np-1", "no-parking", (59.330, 18.070), (59.332, 18.074))
IN_NO_PARKING = (59.331, 18.072)
OUTSIDE = (59.40, 18.30)
SPOT = area("spot-1", "parking-spot", (59.3290, 18.0680), (59.3296, 18.0690))
OFF_SPOT = (59.34, 18.09)


def at(hours: float, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """Zone 1 (free-floating, 20 km/h) with one breach of each rule; zone 145 (parking spots) with one off-spot end."""
    monkeypatch.delenv("FLEETLAKE_POLICY_DIR", raising=False)
    monkeypatch.delenv("FLEETLAKE_IDLE_LIMIT_HOURS", raising=False)
    lake = tmp_path / "lake"
    rides = [
        ride("trip-np", "d1", at(10), at(10, 10), end_at=IN_NO_PARKING),
        ride("trip-out", "d2", at(10), at(10, 10), end_at=OUTSIDE),
        ride("trip-fast", "d3", at(10), at(10, 6), distance_m=3_000),  # 30 km/h
        ride("trip-start-out", "d5", at(11), at(11, 10), start_at=OUTSIDE),
    ]
    idle = [
        event("d4/available", "d4", at(0), "service_start", "available"),
        event("d4/start", "d4", at(75), "trip_start", "on_trip"),
    ]
    write_hours(lake, "1", [t for t, _ in rides], [e for _, es in rides for e in es] + idle)
    snapshot = at(12)
    write_system_information(lake, "1", snapshot)
    write_zone_info(lake, "1", snapshot, max_speed=20)
    write_zone_areas(lake, "1", snapshot, [OPS, NO_PARKING])
    write_vehicles(lake, "1", snapshot, ["d1", "d2", "d3", "d4", "d5"])
    write_geofencing(
        lake,
        "1",
        snapshot,
        [(NO_PARKING, geofence_rule(start=False, end=False)), (OPS, geofence_rule(speed=20))],
        geofence_rule(start=False, end=False),
    )
    write_gbfs_vehicles(lake, "1", snapshot, [("gbfs-a", IN_NO_PARKING), ("gbfs-b", CENTER)])

    spot_rides = [
        ride("trip-spot", "b1", at(10), at(10, 10), end_at=(59.3293, 18.0686)),
        ride("trip-nospot", "b2", at(10), at(10, 10), end_at=OFF_SPOT),
    ]
    write_hours(lake, "145", [t for t, _ in spot_rides], [e for _, es in spot_rides for e in es])
    write_system_information(lake, "145", snapshot, "Europe/Berlin")
    write_zone_info(lake, "145", snapshot, parking_mode="parking-spot", max_speed=20)
    write_zone_areas(lake, "145", snapshot, [OPS, SPOT])
    write_vehicles(lake, "145", snapshot, ["b1", "b2"])

    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    return warehouse


def violations(warehouse: Warehouse, rule: str) -> pl.DataFrame:
    return query(
        warehouse,
        "select * from compliance_violations where rule = $rule order by zone_id, observed_at, trip_id",
        {"rule": rule},
    )


def test_trip_ending_in_a_no_parking_area(city: Warehouse) -> None:
    found = violations(city, "parking_in_forbidden_area")
    assert found.select("zone_id", "device_id", "trip_id", "observed_at", "area_id").rows() == [
        ("1", uid("d1"), uid("trip-np"), at(10, 10), "np-1")
    ]
    assert found["lat"].to_list() == [IN_NO_PARKING[0]]


def test_trip_ending_outside_operations(city: Warehouse) -> None:
    found = violations(city, "parking_outside_operations")
    assert found.select("zone_id", "device_id", "trip_id", "observed_at").rows() == [
        ("1", uid("d2"), uid("trip-out"), at(10, 10))
    ]


def test_parking_spot_zone_trip_ending_off_spot(city: Warehouse) -> None:
    found = violations(city, "parking_outside_spot")
    assert found.select("zone_id", "device_id", "trip_id", "area_id").rows() == [
        ("145", uid("b2"), uid("trip-nospot"), "ops-1")
    ]


def test_trip_starting_where_starts_are_not_allowed(city: Warehouse) -> None:
    found = violations(city, "start_not_allowed")
    assert found.select("device_id", "trip_id", "observed_at").rows() == [(uid("d5"), uid("trip-start-out"), at(11))]


def test_speeding_trip(city: Warehouse) -> None:
    found = violations(city, "speeding")
    assert found.select("device_id", "trip_id", "limit_value").rows() == [(uid("d3"), uid("trip-fast"), 20.0)]
    assert found["observed_value"][0] == pytest.approx(30.0)


def test_vehicle_idle_beyond_the_default_limit(city: Warehouse) -> None:
    found = violations(city, "idle_too_long")
    assert found.select("device_id", "trip_id", "observed_at", "limit_value").rows() == [
        (uid("d4"), None, at(72), 72 * 3600.0)
    ]
    assert found["observed_value"][0] == pytest.approx(75 * 3600.0)


def test_gbfs_vehicle_parked_in_a_forbidden_area(city: Warehouse) -> None:
    found = violations(city, "parked_in_forbidden_area")
    assert found.select("zone_id", "observed_at", "area_id").rows() == [("1", at(12), "np-1")]
    assert "gbfs-a" in found["detail"][0]


def test_no_cap_without_a_policy(city: Warehouse) -> None:
    assert violations(city, "fleet_cap_exceeded").is_empty()


def test_compliance_daily_counts_every_violation(city: Warehouse) -> None:
    daily = query(city, "select * from compliance_daily")
    total = query(city, "select count(*) as n from compliance_violations")["n"][0]
    assert daily["violation_count"].sum() == total
    day = daily.filter(
        (pl.col("zone_id") == "1") & (pl.col("rule") == "speeding") & (pl.col("local_date") == T0.date())
    )
    assert day.select("violation_count", "trip_count").rows() == [(1, 4)]
    assert day["violations_per_100_trips"][0] == pytest.approx(25.0)


CAP_POLICY = {
    "version": "2.0.0",
    "last_updated": 1767225600000,
    "policies": [
        {
            "name": "Fleet cap",
            "description": "At most two deployed devices",
            "policy_id": "99f7a469-6e3a-4981-9313-c2f6c0bbd5ce",
            "provider_ids": [],
            "start_date": 1767225600000,
            "end_date": None,
            "published_date": 1767224400000,
            "prev_policies": None,
            "rules": [
                {
                    "name": "City cap",
                    "rule_id": "8a61de66-d9fa-4cba-a38d-5d948e2373fe",
                    "rule_type": "count",
                    "rule_units": "devices",
                    "geographies": ["e3ed0a0e-61d3-4887-8b6a-4af4f3769c14"],
                    "states": {"available": [], "non_operational": [], "reserved": [], "on_trip": []},
                    "vehicle_types": ["scooter"],
                    "maximum": 2,
                }
            ],
        }
    ],
}


def test_policy_fleet_cap_exceeded_in_one_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policies = tmp_path / "policies" / "1"
    policies.mkdir(parents=True)
    (policies / "policies.json").write_text(json.dumps(CAP_POLICY))
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(policies.parent))
    lake = tmp_path / "lake"
    events = [
        event("c1/on", "c1", at(10), "service_start", "available"),
        event("c2/on", "c2", at(11, 30), "service_start", "available"),
        event("c3/on", "c3", at(11, 40), "service_start", "available"),
        event("c2/off", "c2", at(12, 30), "maintenance_pick_up", "removed"),
        event("c3/off", "c3", at(12, 40), "maintenance_pick_up", "removed"),
        event("c1/ping", "c1", at(14), "battery_low", "available"),
    ]
    write_hours(lake, "1", [], events)
    write_system_information(lake, "1", at(10))
    write_vehicles(lake, "1", at(10), ["c1", "c2", "c3"])
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    found = violations(warehouse, "fleet_cap_exceeded")
    assert found.select("zone_id", "observed_at", "observed_value", "limit_value").rows() == [("1", at(12), 3.0, 2.0)]
    rules = query(warehouse, "select * from core.policy_rules where source = 'policy'")
    assert rules.select("zone_id", "rule_type", "value", "value_units").rows() == [("1", "count", 2.0, "devices")]


def test_policy_units_are_normalised(tmp_path: Path) -> None:
    sample = {
        "data": {
            "policies": [
                {
                    "name": "limits",
                    "policy_id": "p",
                    "start_date": 0,
                    "published_date": 0,
                    "rules": [
                        {"name": "s", "rule_id": "r1", "rule_type": "speed", "rule_units": "mph", "maximum": 10,
                         "geographies": [], "states": {"on_trip": []}},
                        {"name": "t", "rule_id": "r2", "rule_type": "time", "rule_units": "hours", "maximum": 24,
                         "geographies": [], "states": {"available": [], "reserved": []}},
                    ],
                }
            ]
        }
    }  # fmt: skip
    (tmp_path / "p.json").write_text(json.dumps(sample))
    rules = load_policy_rules(tmp_path, idle_limit_hours=48)
    assert rules.select("rule_type", "value", "source").rows() == [
        ("speed", pytest.approx(16.09344), "policy"),
        ("time", 24 * 3600.0, "policy"),
        ("time", 48 * 3600.0, "default"),
    ]
    assert rules["states"].to_list()[1] == ["available", "reserved"]


# -- the shared city against its ground truth ------------------------------------------------------------------


def within(points: object, areas: Sequence[Area], area_types: tuple[str, ...]) -> set[int]:
    """Indices of the points within an area of one of `area_types`."""
    polygons = [a.geometry for a in areas if a.area_type in area_types]
    return set(shapely.STRtree(polygons).query(points, predicate="within")[0].tolist()) if polygons else set()


def truth_trip_end_violations(built: BuiltWarehouse) -> set[tuple[str, str]]:
    """(rule, trip_id) of every trip-end breach, from the true end points and the provider's own city areas."""
    trips = truth_frames(built.provider)["trips"]
    expected: set[tuple[str, str]] = set()
    for zone_id, z in built.provider.zones.items():
        zone_trips = trips.filter(pl.col("zone_id") == zone_id)
        ends = shapely.points(zone_trips["end_lng"].to_numpy(), zone_trips["end_lat"].to_numpy())
        ids = zone_trips["trip_id"].to_list()

        forbidden = within(ends, z.city.areas, ("no-parking", "no-riding"))
        operations = within(ends, z.city.areas, ("operations",))
        spots = within(ends, z.city.areas, ("parking-spot",))
        for i, trip_id in enumerate(ids):
            if i in forbidden:
                expected.add(("parking_in_forbidden_area", trip_id))
            if i not in operations:
                expected.add(("parking_outside_operations", trip_id))
            if z.city.spec.parking_mode == "parking-spot" and i not in spots:
                expected.add(("parking_outside_spot", trip_id))
    return expected


def test_trip_end_violations_match_the_truth(built_warehouse: BuiltWarehouse) -> None:
    found = query(
        built_warehouse.warehouse,
        "select rule, trip_id from compliance_violations "
        "where rule in ('parking_in_forbidden_area', 'parking_outside_operations', 'parking_outside_spot')",
    )
    assert found.height == len(set(found.rows()))
    expected = truth_trip_end_violations(built_warehouse)
    assert expected  # the simulated city does break its rules
    assert set(found.rows()) == expected


def test_trips_hourly_counts_match_the_truth_by_start_hour(built_warehouse: BuiltWarehouse) -> None:
    truth = (
        truth_frames(built_warehouse.provider)["trips"]
        .group_by("zone_id", "vehicle_type", pl.col("start_time").dt.truncate("1h").alias("start_hour_utc"))
        .agg(pl.len().alias("trip_count"))
    )
    hourly = query(
        built_warehouse.warehouse, "select zone_id, vehicle_type, start_hour_utc, trip_count from trips_hourly"
    )
    key = ["zone_id", "vehicle_type", "start_hour_utc"]
    assert sorted(hourly.with_columns(pl.col("trip_count").cast(pl.Int64)).rows()) == sorted(
        truth.select(*key, pl.col("trip_count").cast(pl.Int64)).rows()
    )


def test_od_flows_and_compliance_daily_add_up(built_warehouse: BuiltWarehouse) -> None:
    trips = query(built_warehouse.warehouse, "select count(*) as n from trips")["n"][0]
    flows = query(built_warehouse.warehouse, "select sum(trip_count) as n from od_flows")["n"][0]
    assert flows == trips
    total = query(built_warehouse.warehouse, "select count(*) as n from compliance_violations")["n"][0]
    daily = query(built_warehouse.warehouse, "select sum(violation_count) as n from compliance_daily")["n"][0]
    assert daily == total
