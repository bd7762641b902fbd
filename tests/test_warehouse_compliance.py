"""Compliance marts: hand-built scenarios with exact expectations, and the shared city against its ground truth."""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import shapely

from fleetlake_provider.city import Area
from fleetlake_provider.truth import truth_frames
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.policy import PolicyError, load_policy_geographies, load_policy_rules
from tests.conftest import SHARED, BuiltWarehouse
from tests.scenario import (
    CENTER,
    area,
    event,
    geofence_rule,
    query,
    ride,
    trip,
    uid,
    write_events,
    write_gbfs_vehicles,
    write_geofencing,
    write_hours,
    write_rides,
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


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """Zone 1 (free-floating, 20 km/h) with one breach of each rule; zone 145 (parking spots) with one off-spot end.
    Built once for the module: its tests only read it."""
    tmp_path = tmp_path_factory.mktemp("city")
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
    write_rides(lake, "1", rides, idle)
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
    write_rides(lake, "145", spot_rides)
    write_system_information(lake, "145", snapshot, "Europe/Berlin")
    write_zone_info(lake, "145", snapshot, parking_mode="parking-spot", max_speed=20)
    write_zone_areas(lake, "145", snapshot, [OPS, SPOT])
    write_vehicles(lake, "145", snapshot, ["b1", "b2"])

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("FLEETLAKE_POLICY_DIR", raising=False)
        monkeypatch.delenv("FLEETLAKE_IDLE_LIMIT_HOURS", raising=False)
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


CAP_POLICY: dict[str, Any] = {
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


def geography(geography_id: str, name: str, *areas: dict[str, Any]) -> dict[str, Any]:
    """An MDS Geography whose area is the given zone-API-style rectangles."""
    features = [{"type": "Feature", "properties": {}, "geometry": a["geometry"]} for a in areas]
    return {
        "geography_id": geography_id,
        "name": name,
        "published_date": 1767224400000,
        "geography_json": {"type": "FeatureCollection", "features": features},
    }


CITY = geography("e3ed0a0e-61d3-4887-8b6a-4af4f3769c14", "City", OPS)


def write_policies(folder: Path, policies: dict[str, Any], *geographies: dict[str, Any]) -> None:
    folder.mkdir(parents=True)
    (folder / "policies.json").write_text(json.dumps(policies))
    (folder / "geographies.json").write_text(json.dumps({"version": "2.0.0", "geographies": list(geographies)}))


def events_city(
    tmp_path: Path, events: list[dict[str, Any]], devices: list[str], since: datetime, quiet: Sequence[datetime] = ()
) -> Warehouse:
    """Zone 1 (Stockholm, the operations area OPS) from MDS events alone, built; `quiet` hours delivered empty."""
    lake = tmp_path / "lake"
    write_hours(lake, "1", [], events)
    for hour in quiet:
        write_events(lake, "1", hour, [])
    write_system_information(lake, "1", since)
    write_zone_areas(lake, "1", since, [OPS])
    write_vehicles(lake, "1", since, devices)
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    return warehouse


def three_vehicle_city(tmp_path: Path) -> Warehouse:
    """T0 a Monday: 1 device deployed at 10:00 and 11:00 UTC, 3 at 12:00, 1 after."""
    events = [
        event("c1/on", "c1", at(10), "service_start", "available"),
        event("c2/on", "c2", at(11, 30), "service_start", "available"),
        event("c3/on", "c3", at(11, 40), "service_start", "available"),
        event("c2/off", "c2", at(12, 30), "maintenance_pick_up", "removed"),
        event("c3/off", "c3", at(12, 40), "maintenance_pick_up", "removed"),
        event("c1/ping", "c1", at(14), "battery_low", "available"),
    ]
    return events_city(tmp_path, events, ["c1", "c2", "c3"], at(10))


def test_policy_fleet_cap_exceeded_in_one_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policies = tmp_path / "policies" / "1"
    write_policies(policies, CAP_POLICY, CITY)
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(policies.parent))
    warehouse = three_vehicle_city(tmp_path)
    found = violations(warehouse, "fleet_cap_exceeded")
    assert found.select("zone_id", "observed_at", "observed_value", "limit_value").rows() == [("1", at(12), 3.0, 2.0)]
    rules = query(warehouse, "select * from core.policy_rules where source = 'policy'")
    assert rules.select("zone_id", "rule_type", "value", "value_units").rows() == [("1", "count", 2.0, "devices")]


SLOW_STREET = area("slow-street", "operations", (59.3200, 18.0500), (59.3220, 18.0550))
NO_PARKING_GEOGRAPHY = geography("0c77c813-bece-4e29-a5e2-9e1d9e1a2c1f", "Old Town", NO_PARKING)
SLOW_GEOGRAPHY = geography("6d0a6c2a-3c35-4bd5-a4c5-0c8d14b7a1a3", "Slow street", SLOW_STREET)


def rule(
    name: str, rule_type: str, units: str, maximum: float, geographies: list[str], states: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "rule_id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "rule_type": rule_type,
        "rule_units": units,
        "geographies": geographies,
        "states": {state: [] for state in states},
        "maximum": maximum,
    }


def policy(*rules: dict[str, Any]) -> dict[str, Any]:
    rules_policy = {"name": "City rules", "policy_id": "3f0c1f7c-0a8e-4a8e-9f27-6b7c1a0b7c33", "rules": list(rules)}
    return {"policies": [rules_policy | {"start_date": 1767225600000, "published_date": 1767224400000}]}


def located_ride(
    name: str, device: str, start: datetime, end: datetime, start_at: tuple[float, float], end_at: tuple[float, float]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A 2 km ride whose events lie where the trip starts and ends."""
    return trip(name, device, start, end, start_at=start_at, end_at=end_at, distance_m=2_000), [
        event(f"{name}/start", device, start, "trip_start", "on_trip", trips=[name], location=start_at),
        event(f"{name}/end", device, end, "trip_end", "available", trips=[name], location=end_at),
    ]  # fmt: skip


@pytest.mark.slow
def test_policy_rules_hold_only_in_their_geographies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = policy(
        rule("No parking in Old Town", "count", "devices", 0, [NO_PARKING_GEOGRAPHY["geography_id"]], ["available"]),
        rule("City cap", "count", "devices", 5, [CITY["geography_id"]], []),
        rule("Slow street", "speed", "kph", 10, [SLOW_GEOGRAPHY["geography_id"]], ["on_trip"]),
    )
    write_policies(tmp_path / "policies", rules, NO_PARKING_GEOGRAPHY, CITY, SLOW_GEOGRAPHY)
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(tmp_path / "policies"))
    lake = tmp_path / "lake"
    slow_start, slow_end = (59.3205, 18.0510), (59.3215, 18.0540)
    rides = [
        # From the center to Old Town at 12 km/h, where it stays parked: it did not start in the slow street, so
        # that limit does not hold for it.
        located_ride("into-old-town", "g1", at(10), at(10, 10), CENTER, IN_NO_PARKING),
        # Along the slow street, start to end, at 12 km/h: speeding.
        located_ride("along-slow-street", "g2", at(10, 30), at(10, 40), slow_start, slow_end),
    ]
    write_rides(lake, "1", rides)
    write_events(lake, "1", at(11), [])  # a quiet hour, delivered
    write_system_information(lake, "1", at(10))
    write_zone_info(lake, "1", at(10), max_speed=20)
    write_zone_areas(lake, "1", at(10), [OPS, NO_PARKING])
    write_vehicles(lake, "1", at(10), ["g1", "g2"])
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()

    # At 11:00 g1 is parked in Old Town (g2 in the slow street); the city's cap of 5 holds.
    capped = violations(warehouse, "fleet_cap_exceeded")
    assert capped.select("observed_at", "observed_value", "limit_value").rows() == [(at(11), 1.0, 0.0)]
    assert (
        capped["detail"][0] == "1 devices deployed at the start of the hour in Old Town, cap 0 (No parking in Old Town)"
    )
    speeding = violations(warehouse, "speeding")
    assert speeding.select("trip_id", "limit_value").rows() == [(uid("along-slow-street"), 10.0)]

    # The same warehouse hour by hour, and after the geographies change: placed again, as a full build would.
    hourly = Warehouse(tmp_path / "hourly.duckdb", lake)
    for hour in (10, 11):
        hourly.build(window=(at(hour), at(hour + 1)))
    # The center lies in the city; Old Town and the slow street's two ends in the city and their own.
    assert query(hourly, "select count(*) as n from core.int_policy_geography_points")["n"][0] == 7
    moved = geography(CITY["geography_id"], "City", area("elsewhere", "operations", (59.0, 17.0), (59.1, 17.1)))
    (tmp_path / "policies" / "geographies.json").write_text(
        json.dumps({"geographies": [NO_PARKING_GEOGRAPHY, moved, SLOW_GEOGRAPHY]})
    )
    hourly.build(window=(at(11), at(12)))
    points = query(hourly, "select geography_id, count(*) as n from core.int_policy_geography_points group by all")
    assert sorted(points.rows()) == sorted(
        [(NO_PARKING_GEOGRAPHY["geography_id"], 1), (SLOW_GEOGRAPHY["geography_id"], 2)]
    )


def test_a_rule_naming_an_unknown_geography_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps(policy(rule("cap", "count", "devices", 5, [CITY["geography_id"]], []))))
    with pytest.raises(PolicyError, match=f"names geographies the policy folder lacks: {CITY['geography_id']}"):
        load_policy_rules(tmp_path)


def test_the_mds_geography_samples_load(tmp_path: Path) -> None:
    samples = SHARED / "specs" / "samples" / "mds-official-examples" / "2.0.2" / "geography"
    for name in ("geographies.json", "no-ride-zone.json"):
        (tmp_path / name).write_bytes((samples / name).read_bytes())
    loaded = load_policy_geographies(tmp_path)
    listed = json.loads((samples / "geographies.json").read_text())["geographies"]
    assert loaded.height == len(listed)  # no-ride-zone.json repeats one of them: kept once
    areas = dict(zip(loaded["name"], shapely.from_wkb(loaded["geometry"].to_numpy()), strict=True))
    assert areas["Parking areas"].is_empty  # a list of stops: points, no area
    assert all(area.area > 0 for name, area in areas.items() if name != "Parking areas")
    louisville = shapely.Point(-85.7585, 38.2527)  # downtown Louisville, inside the municipal boundary
    assert areas["Municipal Boundary"].contains(louisville)
    # The samples give the municipal boundary's id to the no-ride zones too: both areas are kept under it.
    reused = loaded.filter(pl.col("geography_id") == "e00535dd-d8ff-4b1b-920d-34e7404d0208")
    assert sorted(reused["name"]) == ["Municipal Boundary", "No Ride Zones"]


def test_count_rules_hold_on_their_days_and_hours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    city = [CITY["geography_id"]]
    lunch = {"days": ["mon"], "start_time": "13:00:00", "end_time": "14:00:00"}
    morning = {"minimum": 2, "start_time": "10:00:00", "end_time": "12:00:00"}
    rules = policy(
        rule("Lunch cap", "count", "devices", 2, city, []) | lunch,
        rule("Tuesday cap", "count", "devices", 2, city, []) | {"days": ["tue"]},
        rule("Morning minimum", "count", "devices", 9, city, []) | morning,
        rule("Night cap", "count", "devices", 0, city, []) | {"start_time": "22:00:00", "end_time": "06:00:00"},
    )
    write_policies(tmp_path / "policies", rules, CITY)
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(tmp_path / "policies"))
    warehouse = three_vehicle_city(tmp_path)

    counted = query(
        warehouse,
        "select rule, observed_at, observed_value, limit_value from compliance_violations "
        "where rule like 'fleet%' order by observed_at, rule",
    )
    assert counted.rows() == [
        ("fleet_below_minimum", at(10), 1.0, 2.0),  # 11:00 local
        ("fleet_below_minimum", at(11), 1.0, 2.0),  # 12:00 local, the end of the morning window
        ("fleet_cap_exceeded", at(12), 3.0, 2.0),  # 13:00 local on a Monday; never the Tuesday cap
    ]
    # The night cap (22:00-06:00 local) holds in the hours past midnight too.
    assert run_rule_check(warehouse, "Night cap", datetime(2026, 3, 2, 23, 30)) is True
    assert run_rule_check(warehouse, "Night cap", datetime(2026, 3, 3, 5, 59)) is True
    assert run_rule_check(warehouse, "Night cap", datetime(2026, 3, 3, 12, 0)) is False
    assert run_rule_check(warehouse, "Tuesday cap", datetime(2026, 3, 3, 12, 0)) is True


def run_rule_check(warehouse: Warehouse, rule_name: str, local_at: datetime) -> bool:
    """Whether the named policy rule is in effect at a local time, asked as the marts ask it."""
    with warehouse.connect() as con:
        found = con.execute(
            "select policy_rule_in_effect(days, start_time, end_time, $at::timestamp) from core.policy_rules "
            "where rule_name = $name",
            {"at": local_at, "name": rule_name},
        ).fetchall()
    return bool(found[0][0])


def test_policy_days_and_times_must_be_readable(tmp_path: Path) -> None:
    bad = rule("cap", "count", "devices", 5, [], []) | {"start_time": "25:00"}
    (tmp_path / "p.json").write_text(json.dumps(policy(bad)))
    with pytest.raises(PolicyError, match=r"p\.json: policy .*: `\$\.rules\[0\]\.start_time`: '25:00' does not match"):
        load_policy_rules(tmp_path)


def test_within_a_policy_an_earlier_rule_takes_the_vehicles_it_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MDS `required-parking` example: parking allowed at a hub, forbidden elsewhere downtown."""
    downtown = geography(
        "075a5303-2571-4ca5-b429-841bcc4025d1", "Downtown", area("d", "x", (59.32, 18.05), (59.34, 18.09))
    )
    hub = geography("1512a3f4-313c-45fc-9fae-0dca6d7ab355", "Hub", area("h", "x", (59.329, 18.068), (59.330, 18.070)))
    at_hub, elsewhere_downtown = (59.3295, 18.069), (59.335, 18.08)
    hubs_first = policy(
        rule("Allow parking at the hub", "count", "devices", 0, [hub["geography_id"]], ["available"]),
        rule("No parking downtown", "count", "devices", 0, [downtown["geography_id"]], ["available"]),
    )
    del hubs_first["policies"][0]["rules"][0]["maximum"]  # allowed: no bound, it only takes its vehicles
    on_its_own = policy(
        rule("No parking downtown, counted alone", "count", "devices", 0, [downtown["geography_id"]], ["available"])
    )
    on_its_own["policies"][0]["policy_id"] = "9b1c6bb0-7d0e-4d43-9a45-1f1c1e7e6e01"
    folder = tmp_path / "policies"
    write_policies(folder, hubs_first, downtown, hub)
    (folder / "alone.json").write_text(json.dumps(on_its_own))
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(folder))
    events = [
        event("p1", "v1", at(10, 5), "trip_end", "available", location=at_hub),
        event("p2", "v2", at(10, 10), "trip_end", "available", location=elsewhere_downtown),
    ]
    warehouse = events_city(tmp_path, events, ["v1", "v2"], at(10), quiet=[at(11)])

    counted = query(
        warehouse,
        "select observed_at, observed_value, detail from compliance_violations where rule = 'fleet_cap_exceeded' "
        "order by observed_value",
    )
    deployed = "devices deployed at the start of the hour in Downtown, cap 0"
    assert counted.rows() == [
        (at(11), 1.0, f"1 {deployed} (No parking downtown)"),  # v2: v1 is at the hub, which the first rule allows
        (at(11), 2.0, f"2 {deployed} (No parking downtown, counted alone)"),  # another policy: both
    ]


def test_the_mds_policy_samples_load(tmp_path: Path) -> None:
    samples = SHARED / "specs" / "samples" / "mds-official-examples" / "1.2.0" / "policy"
    named: set[str] = set()
    listed = 0
    for path in sorted(samples.glob("*.json")):
        (tmp_path / path.name).write_bytes(path.read_bytes())
        for sample_policy in json.loads(path.read_text())["data"]["policies"]:
            listed += len(sample_policy["rules"])
            named.update(g for r in sample_policy["rules"] for g in r["geographies"])
    (tmp_path / "geographies.json").write_text(
        json.dumps({"geographies": [geography(g, g[:8], OPS) for g in sorted(named)]})
    )
    rules = load_policy_rules(tmp_path)
    assert rules.filter(pl.col("source") == "policy").height == listed
    venice = rules.row(by_predicate=pl.col("rule_name") == "Venice Beach on weekend afternoons", named=True)
    assert (venice["days"], venice["start_time"], venice["end_time"]) == (["sat", "sun"], time(12), time(23, 59, 59))
    assert venice["value"] == pytest.approx(10 * 1.609344)
    allowed, disallowed = rules.filter(pl.col("policy_name") == "Test City Mobility Hubs").iter_rows(named=True)
    assert (allowed["rule_order"], allowed["value"], disallowed["rule_order"], disallowed["value"]) == (0, None, 1, 0.0)
    assert load_policy_geographies(tmp_path).height == len(named)


def test_the_mds_idle_time_sample_limits_each_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The official `idle-time` policy: 72 h for rentable vehicles, 24 h for non-rentable ones (broken, on a trip)."""
    sample = SHARED / "specs" / "samples" / "mds-official-examples" / "1.2.0" / "policy" / "idle-time.json"
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "idle-time.json").write_bytes(sample.read_bytes())
    greater_la = [geography(g, "Greater LA", OPS) for g in ("b4bcc213-4888-48ce-a33d-4dd6c3384bda",
                                                             "12b3fcf5-22af-4b0d-a169-ac7ac903d3b9")]  # fmt: skip
    (folder / "geographies.json").write_text(json.dumps({"geographies": greater_la}))
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(folder))
    events = [
        event("b/broken", "broken", at(0), "maintenance", "non_operational"),  # 30 h broken
        event("b/fixed", "broken", at(30), "maintenance_end", "available"),
        event("w/waiting", "waiting", at(0), "service_start", "available"),  # 30 h available: within 72 h
        event("w/ride", "waiting", at(30), "trip_start", "on_trip"),
    ]
    warehouse = events_city(tmp_path, events, ["broken", "waiting"], at(0))

    found = query(
        warehouse, "select * from compliance_violations where rule in ('idle_too_long', 'time_in_state_exceeded')"
    )
    assert found.select("rule", "device_id", "observed_at", "limit_value", "observed_value").rows() == [
        ("time_in_state_exceeded", uid("broken"), at(24), 24 * 3600.0, 30 * 3600.0)
    ]
    assert found["detail"][0] == "non_operational for 30.0 h (policy limit 24.0 h)"


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
        .group_by("zone_id", "vehicle_type", pl.col("start_time").dt.truncate("1h").alias("hour"))
        .agg(pl.len().alias("trip_count"))
    )
    hourly = query(built_warehouse.warehouse, "select zone_id, vehicle_type, hour, trip_count from trips_hourly")
    key = ["zone_id", "vehicle_type", "hour"]
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
