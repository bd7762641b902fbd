"""Each compliance rule family is a model of its own (core.int_violations_<rule>), tested alone with every column
worked out by hand, and compliance_violations is exactly their union with the areas labelled."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.models import discover
from tests.scenario import (
    CENTER,
    event,
    geofence_rule,
    query,
    ride,
    uid,
    write_gbfs_vehicles,
    write_geofencing,
    write_rides,
    write_system_information,
    write_vehicles,
    write_zone_areas,
    write_zone_info,
)
from tests.test_warehouse_compliance import (
    CAP_POLICY,
    CITY,
    IN_NO_PARKING,
    NO_PARKING,
    OFF_SPOT,
    OPS,
    OUTSIDE,
    SPOT,
    at,
    three_vehicle_city,
    write_policies,
)

pytestmark = pytest.mark.integration

FAMILIES = {
    "int_violations_parking_in_forbidden_area": {"parking_in_forbidden_area"},
    "int_violations_parking_outside_operations": {"parking_outside_operations"},
    "int_violations_parking_outside_spot": {"parking_outside_spot"},
    "int_violations_start_not_allowed": {"start_not_allowed"},
    "int_violations_speeding": {"speeding"},
    "int_violations_time_in_state": {"idle_too_long", "time_in_state_exceeded"},
    "int_violations_parked_in_forbidden_area": {"parked_in_forbidden_area"},
    "int_violations_fleet_counts": {"fleet_cap_exceeded", "fleet_below_minimum"},
}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """Zone 1 (free-floating, zone API limit 20 km/h, starts allowed only inside its geofencing zones) with one
    breach of each trip, idle and GBFS rule; zone 145 (parking spots) with one trip ending off every spot."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FLEETLAKE_POLICY_DIR", raising=False)
        patch.delenv("FLEETLAKE_IDLE_LIMIT_HOURS", raising=False)
        lake = tmp_path_factory.mktemp("families") / "lake"
        rides = [
            ride("trip-np", "d1", at(10), at(10, 10), end_at=IN_NO_PARKING),
            ride("trip-out", "d2", at(10), at(10, 10), end_at=OUTSIDE),
            ride("trip-fast", "d3", at(10), at(10, 6), distance_m=3_000),  # 3 km in 6 minutes: 30 km/h
            ride("trip-start-out", "d5", at(11), at(11, 10), start_at=OUTSIDE),
        ]
        idle = [  # available from midnight until a trip 75 hours later
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
        warehouse = Warehouse(lake.parent / "w.duckdb", lake)
        warehouse.build()
        yield warehouse


def family(warehouse: Warehouse, model: str) -> list[dict[str, Any]]:
    """The rows of one family's model, every column, as dicts."""
    return query(warehouse, f"select * from core.{model} order by violation_key").to_dicts()


def trip_row(rule: str, zone: str, device: str, trip: str, observed_at: datetime, **columns: Any) -> dict[str, Any]:
    """A trip rule's row: judged at the trip's end (evidence_at), keyed by rule and trip."""
    return {
        "zone_id": zone,
        "rule": rule,
        "device_id": uid(device),
        "trip_id": uid(trip),
        "observed_at": observed_at,
        "observed_value": None,
        "limit_value": None,
        "violation_key": f"{rule}:{uid(trip)}",
        **columns,
    }


def test_a_trip_ending_in_a_no_parking_area(city: Warehouse) -> None:
    assert family(city, "int_violations_parking_in_forbidden_area") == [
        trip_row(
            "parking_in_forbidden_area",
            "1",
            "d1",
            "trip-np",
            at(10, 10),
            lat=IN_NO_PARKING[0],
            lng=IN_NO_PARKING[1],
            area_id="np-1",
            detail="trip ended in a no-parking area",
            evidence_at=at(10, 10),
        )
    ]


def test_a_trip_ending_outside_the_operations_area(city: Warehouse) -> None:
    assert family(city, "int_violations_parking_outside_operations") == [
        trip_row(
            "parking_outside_operations",
            "1",
            "d2",
            "trip-out",
            at(10, 10),
            lat=OUTSIDE[0],
            lng=OUTSIDE[1],
            area_id=None,
            detail="trip ended outside the operations area",
            evidence_at=at(10, 10),
        )
    ]


def test_a_trip_of_a_parking_spot_zone_ending_off_every_spot(city: Warehouse) -> None:
    # Zone 1 parks anywhere: its trips ending away from spots break nothing here.
    assert family(city, "int_violations_parking_outside_spot") == [
        trip_row(
            "parking_outside_spot",
            "145",
            "b2",
            "trip-nospot",
            at(10, 10),
            lat=OFF_SPOT[0],
            lng=OFF_SPOT[1],
            area_id="ops-1",
            detail="trip ended outside every parking spot of a parking-spot zone",
            evidence_at=at(10, 10),
        )
    ]


def test_a_trip_starting_outside_every_geofencing_zone(city: Warehouse) -> None:
    # Observed at its start (11:00), judged with its end (11:10); outside the operations area, no area.
    assert family(city, "int_violations_start_not_allowed") == [
        trip_row(
            "start_not_allowed",
            "1",
            "d5",
            "trip-start-out",
            at(11),
            lat=OUTSIDE[0],
            lng=OUTSIDE[1],
            area_id=None,
            detail="trip started outside every geofencing zone",
            evidence_at=at(11, 10),
        )
    ]


def test_a_trip_over_the_zone_api_speed_limit(city: Warehouse) -> None:
    (row,) = family(city, "int_violations_speeding")
    assert row.pop("observed_value") == pytest.approx(30.0)  # 3,000 m in 360 s
    expected = trip_row(
        "speeding",
        "1",
        "d3",
        "trip-fast",
        at(10, 6),
        lat=CENTER[0],
        lng=CENTER[1],
        area_id="ops-1",
        detail="average speed 30.0 km/h over the zone API limit of 20.0 km/h",
        limit_value=20.0,
        evidence_at=at(10, 6),
    )
    expected.pop("observed_value")
    assert row == expected


def test_a_vehicle_available_beyond_the_default_idle_limit(city: Warehouse) -> None:
    # Available from 00:00 to the trip at 75 h: the default 72-hour limit is passed at 72 h; the interval is judged
    # at its start and keyed by the event that began it.
    assert family(city, "int_violations_time_in_state") == [
        {
            "zone_id": "1",
            "rule": "idle_too_long",
            "device_id": uid("d4"),
            "trip_id": None,
            "observed_at": at(72),
            "lat": CENTER[0],
            "lng": CENTER[1],
            "area_id": "ops-1",
            "detail": "available and unmoved for 75.0 h (default limit 72.0 h)",
            "observed_value": 75 * 3600.0,
            "limit_value": 72 * 3600.0,
            "evidence_at": at(0),
            "violation_key": f"idle_too_long:{uid('d4/available')}",
        }
    ]


def test_a_gbfs_vehicle_seen_in_a_no_parking_area(city: Warehouse) -> None:
    # gbfs-b, at the centre, is inside the operations area where rides may end: no breach.
    (row,) = family(city, "int_violations_parked_in_forbidden_area")
    assert row == {
        "zone_id": "1",
        "rule": "parked_in_forbidden_area",
        "device_id": None,
        "trip_id": None,
        "observed_at": at(12),
        "lat": IN_NO_PARKING[0],
        "lng": IN_NO_PARKING[1],
        "area_id": "np-1",
        "detail": "GBFS vehicle gbfs-a seen in a no-parking area",
        "observed_value": None,
        "limit_value": None,
        "evidence_at": at(12),
        "violation_key": row["violation_key"],
    }
    assert row["violation_key"].startswith("parked_in_forbidden_area:1:gbfs-a:2026-03-02 12:00:00")


def test_no_fleet_count_without_a_count_rule(city: Warehouse) -> None:
    assert family(city, "int_violations_fleet_counts") == []


def test_a_fleet_cap_exceeded_at_the_start_of_an_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three scooters deployed in the city at 12:00 against a cap of two; one at 10:00, 11:00 and 13:00."""
    write_policies(tmp_path / "policies" / "1", CAP_POLICY, CITY)
    monkeypatch.setenv("FLEETLAKE_POLICY_DIR", str(tmp_path / "policies"))
    warehouse = three_vehicle_city(tmp_path)
    (row,) = family(warehouse, "int_violations_fleet_counts")
    # Keyed by the rule broken, the zone, the count rule's id and the hour.
    assert row.pop("violation_key").startswith(
        "fleet_cap_exceeded:1:8a61de66-d9fa-4cba-a38d-5d948e2373fe:2026-03-02 12:00:00"
    )
    assert [row] == [
        {
            "zone_id": "1",
            "rule": "fleet_cap_exceeded",
            "device_id": None,
            "trip_id": None,
            "observed_at": at(12),
            "lat": None,
            "lng": None,
            "area_id": None,
            "detail": "3 devices deployed at the start of the hour in City, cap 2 (City cap)",
            "observed_value": 3.0,
            "limit_value": 2.0,
            "evidence_at": at(12),
        }
    ]


def test_compliance_violations_is_the_union_of_the_families_with_areas_labelled(city: Warehouse) -> None:
    models = discover()
    assert set(models["compliance_violations"].inputs) == {*FAMILIES, "int_zone_area_labels"}
    for name, rules in FAMILIES.items():
        found = set(query(city, f"select distinct rule from core.{name}")["rule"])
        assert found <= rules, name
    united = " union all by name ".join(f"select * from core.{name}" for name in FAMILIES)
    mart = "select * exclude (area_type, area_label) from compliance_violations"
    for left, right in ((mart, united), (united, mart)):
        assert query(city, f"select count(*) as n from (from ({left}) except all from ({right}))")["n"][0] == 0
    # One breach of each rule but the fleet counts (no count rule).
    assert query(city, "select count(*) as n from compliance_violations")["n"][0] == 7
    # The mart names the no-parking area where the trip ended and the GBFS vehicle stood, as the zone API did.
    labelled = query(
        city,
        "select rule, area_type, area_label from compliance_violations where area_id = 'np-1' order by rule",
    )
    assert labelled.select("rule", "area_type").rows() == [
        ("parked_in_forbidden_area", "no-parking"),
        ("parking_in_forbidden_area", "no-parking"),
    ]
    assert labelled["area_label"].null_count() == 0
