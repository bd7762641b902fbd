"""Zone-wide rows, rows of one area and rows of vehicles in no area are told apart by `scope`, and every area a mart
carries is named (its type, the zone API's name and a readable label) as the zone API named it at the row's time.
"""

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.warehouse.build import Warehouse
from tests.scenario import (
    CENTER,
    PROVIDER_ID,
    area,
    event,
    gbfs_vehicle,
    query,
    table,
    tables,
    trip,
    write_gbfs_snapshot,
    write_hours,
    write_system_information,
    write_zone_areas,
)

ZONE = "1"
T0 = datetime(2026, 3, 10, 8, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
IN_OLD_TOWN = CENTER
IN_HARBOUR = (CENTER[0] + 0.01, CENTER[1] + 0.01)
OUTSIDE = (CENTER[0] + 0.05, CENTER[1] + 0.05)  # in no area at all


def _areas(old_town_name: str) -> list[dict[str, object]]:
    old_town = area("A", "no-parking", (CENTER[0] - 0.001, CENTER[1] - 0.001), (CENTER[0] + 0.001, CENTER[1] + 0.001))
    old_town["name"] = old_town_name
    harbour = area(
        "B", "slow-zone", (IN_HARBOUR[0] - 0.001, IN_HARBOUR[1] - 0.001), (IN_HARBOUR[0] + 0.001, IN_HARBOUR[1] + 0.001)
    )
    harbour["name"] = ""  # the zone API gives this one no name
    return [old_town, harbour]


def build_city(lake: Path) -> Warehouse:
    """Two hours (08:00-10:00 UTC) of three scooters.

    v1: available in area A from 08:00 on. v2: available outside every area from 08:00 on. v3: available in area B
    from 08:00, on a trip from 08:30 (begun in B) to 09:15, ending outside every area, then available there.
    Area A is "Old Town" until 08:30, when the zone API renames it "Gamla stan"; area B has no name.
    GBFS lists v1 and v2 at 08:10.
    """
    events = [
        event("v1", "v1", T0, "provider_drop_off", "available", location=IN_OLD_TOWN),
        event("v2", "v2", T0, "provider_drop_off", "available", location=OUTSIDE),
        event("v3", "v3", T0, "provider_drop_off", "available", location=IN_HARBOUR),
        event("v3-start", "v3", T0 + 30 * M, "trip_start", "on_trip", trips=["t"], location=IN_HARBOUR),
        event("v3-end", "v3", T0 + H + 15 * M, "trip_end", "available", trips=["t"], location=OUTSIDE),
    ]
    write_hours(
        lake, ZONE, [trip("t", "v3", T0 + 30 * M, T0 + H + 15 * M, start_at=IN_HARBOUR, end_at=OUTSIDE)], events
    )
    write_system_information(lake, ZONE, T0 - 24 * H)
    write_zone_areas(lake, ZONE, T0 - 24 * H, _areas("Old Town"))
    write_zone_areas(lake, ZONE, T0 + 30 * M, _areas("Gamla stan"))
    write_gbfs_snapshot(lake, ZONE, T0 + 10 * M, [gbfs_vehicle("g1", IN_OLD_TOWN), gbfs_vehicle("g2", OUTSIDE)])
    warehouse = Warehouse(lake.parent / "w.duckdb", lake)
    warehouse.build()
    return warehouse


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return build_city(tmp_path_factory.mktemp("scope") / "lake")


def deployed(warehouse: Warehouse, where: str) -> list[tuple[object, ...]]:
    return query(
        warehouse,
        "select scope, area_id, area_type, area_name, area_label, hour, avg_vehicles from occupancy_hourly "
        f"where vehicle_state = 'deployed' and {where} order by hour, scope, area_id",
    ).rows()


def test_zone_wide_and_outside_rows_are_apart(city: Warehouse) -> None:
    # 08:00: v1 (A) + v2 (outside) + v3 (B, then on its trip begun in B) = 3 all hour; 09:00: v3's trip counts in
    # B until 09:15, then v3 is available outside: zone 3, A 1, B 0.25, outside 1.75.
    assert deployed(city, "scope = 'zone'") == [
        ("zone", None, "zone", None, "Whole zone", T0, 3.0),
        ("zone", None, "zone", None, "Whole zone", T0 + H, 3.0),
    ]
    assert deployed(city, "scope = 'outside'") == [
        ("outside", None, "outside", None, "Outside every area", T0, 1.0),
        ("outside", None, "outside", None, "Outside every area", T0 + H, 1.75),
    ]
    # The trap the scope closes: a null area_id is both the whole zone and the vehicles in no area.
    both = query(
        city,
        "select avg_vehicles from occupancy_hourly where area_id is null and vehicle_state = 'deployed' and hour = $h",
        {"h": T0 + H},
    )["avg_vehicles"]
    assert sorted(both.to_list()) == [1.75, 3.0]


def test_area_rows_carry_type_name_and_label_in_force_at_the_hour(city: Warehouse) -> None:
    # A was "Old Town" when 08:00 began; the rename at 08:30 holds from 09:00's row on. B has no name: its type and id.
    assert deployed(city, "scope = 'area'") == [
        ("area", "A", "no-parking", "Old Town", "Old Town", T0, 1.0),
        ("area", "B", "slow-zone", None, "slow-zone B", T0, 1.0),
        ("area", "A", "no-parking", "Gamla stan", "Gamla stan", T0 + H, 1.0),
        ("area", "B", "slow-zone", None, "slow-zone B", T0 + H, 0.25),
    ]
    # The scopes add up: zone = every area + outside, hour by hour.
    sums = query(
        city,
        "select hour, sum(avg_vehicles) filter (where scope = 'zone') as zone, "
        "sum(avg_vehicles) filter (where scope != 'zone') as parts from occupancy_hourly "
        "where vehicle_state = 'deployed' group by hour order by hour",
    ).rows()
    assert sums == [(T0, 3.0, 3.0), (T0 + H, 3.0, 3.0)]


def test_gbfs_rows_have_the_same_scopes(city: Warehouse) -> None:
    rows = query(
        city,
        "select scope, area_id, area_label, avg_vehicles, mds_avg_vehicles from gbfs_occupancy_hourly "
        "where vehicle_state = 'parked' order by scope, area_id",
    ).rows()
    # GBFS lists g1 in A and g2 outside; MDS has v1 parked in A, v2 outside, v3 parked in B until 08:30.
    assert rows == [
        ("area", "A", "Old Town", 1.0, 1.0),
        ("outside", None, "Outside every area", 1.0, 1.0),
        ("zone", None, "Whole zone", 2.0, 2.5),
    ]


def test_trips_intervals_and_flows_name_their_areas(city: Warehouse) -> None:
    trips = query(
        city, "select start_area_type, start_area_name, start_area_label, end_area_type, end_area_label from trips"
    )
    assert trips.rows() == [("slow-zone", None, "slow-zone B", "outside", "Outside every area")]
    flows = query(city, "select start_area_label, end_area_label, trip_count from od_flows").rows()
    assert flows == [("slow-zone B", "Outside every area", 1)]
    intervals = query(
        city,
        "select started_by, area_type, area_name, area_label from vehicle_state_intervals "
        "where device_id = (select device_id from trips) order by started_at",
    ).rows()
    assert intervals == [
        ("provider_drop_off", "slow-zone", None, "slow-zone B"),
        ("trip_start", "slow-zone", None, "slow-zone B"),
        ("trip_end", "outside", None, "Outside every area"),
    ]
    # v1's interval began at 08:00, under the first name.
    names = query(city, "select distinct area_name from vehicle_state_intervals where area_id = 'A'")
    assert names["area_name"].to_list() == ["Old Town"]


def test_trip_and_event_counts_by_area(city: Warehouse) -> None:
    # The trip starts in B at 08:30 and ends outside every area at 09:15: counted at 08:00 in B, at 09:00 outside.
    trips = query(
        city,
        "select location, hour, scope, area_label, trip_count from area_trips_hourly order by location desc, scope",
    ).rows()
    assert trips == [
        ("start", T0, "area", "slow-zone B", 1),
        ("start", T0, "zone", "Whole zone", 1),
        ("end", T0 + H, "outside", "Outside every area", 1),
        ("end", T0 + H, "zone", "Whole zone", 1),
    ]
    events = query(
        city,
        "select hour, event_type, scope, area_label, event_count from events_hourly order by all",
    ).rows()
    assert events == [
        (T0, "provider_drop_off", "area", "Old Town", 1),
        (T0, "provider_drop_off", "area", "slow-zone B", 1),
        (T0, "provider_drop_off", "outside", "Outside every area", 1),
        (T0, "provider_drop_off", "zone", "Whole zone", 3),
        (T0, "trip_start", "area", "slow-zone B", 1),
        (T0, "trip_start", "zone", "Whole zone", 1),
        (T0 + H, "trip_end", "outside", "Outside every area", 1),
        (T0 + H, "trip_end", "zone", "Whole zone", 1),
    ]


def test_violations_name_their_areas(city: Warehouse) -> None:
    # GBFS lists g1 in the no-parking area A at 08:10, before the rename.
    rows = query(city, "select rule, area_id, area_type, area_label from compliance_violations where area_id = 'A'")
    assert rows.rows() == [("parked_in_forbidden_area", "A", "no-parking", "Old Town")]


@pytest.mark.parametrize("hour", [0, 1])
def test_an_hour_rebuilt_alone_keeps_scopes_and_names(city: Warehouse, hour: int) -> None:
    order = "zone_id, scope, area_id, hour, vehicle_state"
    marts = {
        "occupancy_hourly": order,
        "gbfs_occupancy_hourly": order,
        "trips": "trip_id",
        "area_trips_hourly": "zone_id, hour, location, scope, area_id",
        "events_hourly": "zone_id, hour, event_type, scope, area_id",
        "compliance_violations": "violation_key",
    }
    before = tables(city, marts)
    city.build(window=(T0 + hour * H, T0 + (hour + 1) * H))
    for name, frame in tables(city, marts).items():
        assert frame.equals(before[name]), name


def test_vehicles_of_two_providers_add_up_and_their_extremes_are_not_known(tmp_path: Path) -> None:
    """occupancy_hourly rolls up the metrics pieces, which are kept per provider: seconds add up across providers,
    but the fewest and most vehicles of two fleets together are not those of each (both fleets' 1 at 08:00-08:30
    and 09:00 on, 2 from 08:30 to 09:00, could also have been 1 + 1 at different times), so they are null where two
    providers shared the hour's state, and exact where one fleet alone was in it."""
    other_provider = "0e1f9a62-5f1a-4bde-9c3b-6f8f4a2d7b10"
    events = [
        event("p1", "p1", T0, "provider_drop_off", "available"),
        event("p1-start", "p1", T0 + 30 * M, "trip_start", "on_trip", trips=["p1t"]),
        event("p1-end", "p1", T0 + H + 30 * M, "trip_end", "available", trips=["p1t"]),
        {**event("p2", "p2", T0, "provider_drop_off", "available"), "provider_id": other_provider},
    ]
    lake = tmp_path / "lake"
    write_hours(lake, ZONE, [], events)
    write_system_information(lake, ZONE, T0 - 24 * H)
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    rows = query(
        warehouse,
        "select hour, vehicle_state, state_seconds, min_vehicles, max_vehicles from occupancy_hourly "
        "where scope = 'zone' and vehicle_state in ('available', 'on_trip') order by hour, vehicle_state",
    ).rows()
    assert rows == [
        (T0, "available", 5400.0, None, None),  # p1 30 min and p2 60 min: two providers
        (T0, "on_trip", 1800.0, 0, 1),  # p1 alone, from 08:30
        (T0 + H, "available", 5400.0, None, None),  # p1 from 09:30 and p2 all the hour
        (T0 + H, "on_trip", 1800.0, 0, 1),
    ]
    # The pieces keep each provider's own figures: p1 available in 4 quarters (none while on its trip), p2 in all 8.
    pieces = query(
        warehouse,
        "select provider_id::varchar as provider, sum(state_seconds) as seconds, count(*) as quarters, "
        "min(min_vehicles), max(max_vehicles) from core.int_metrics_vehicles "
        "where scope = 'zone' and vehicle_type = '*' and vehicle_state = 'available' group by all order by seconds",
    ).rows()
    assert pieces == [(PROVIDER_ID, 3600.0, 4, 1, 1), (other_provider, 7200.0, 8, 1, 1)]


def test_trip_medians_and_deviations_roll_up_from_the_pieces(tmp_path: Path) -> None:
    """area_trips_hourly takes its means and (population) standard deviations from the pieces' sums and sums of
    squares, and its medians from the reported values the pieces keep: the same figures as the trips' own."""
    durations = {"a": 5, "b": 600, "c": 1500, "d": 780}  # a: under 10 s, an anomaly (still counted)
    distances = {"a": 10.0, "b": 1200.0, "c": 4100.0, "d": 2000.0}
    trips, events = [], []
    for index, (name, duration) in enumerate(durations.items()):
        start = T0 + (5 + index) * M
        end = start + timedelta(seconds=duration)
        trips.append(trip(name, f"v{name}", start, end, distance_m=distances[name]))
        events += [
            event(f"{name}/start", f"v{name}", start, "trip_start", "on_trip", trips=[name]),
            event(f"{name}/end", f"v{name}", end, "trip_end", "available", trips=[name]),
        ]
    lake = tmp_path / "lake"
    write_hours(lake, ZONE, trips, events)
    write_system_information(lake, ZONE, T0 - 24 * H)
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    row = query(
        warehouse,
        "select trip_count, anomaly_count, duration_missing_count, duration_sum_s, duration_avg_s, duration_median_s, "
        "duration_std_s, distance_sum_m, distance_avg_m, distance_median_m, distance_std_m from area_trips_hourly "
        "where location = 'start' and scope = 'zone' and hour = $hour",
        {"hour": T0},
    ).row(0, named=True)
    seconds, metres = list(durations.values()), list(distances.values())
    assert row == {
        "trip_count": 4,
        "anomaly_count": 1,
        "duration_missing_count": 0,
        "duration_sum_s": sum(seconds),
        "duration_avg_s": pytest.approx(statistics.mean(seconds)),
        "duration_median_s": statistics.median(seconds),  # 690: the mean of the middle two
        "duration_std_s": pytest.approx(statistics.pstdev(seconds)),
        "distance_sum_m": sum(metres),
        "distance_avg_m": pytest.approx(statistics.mean(metres)),
        "distance_median_m": statistics.median(metres),
        "distance_std_m": pytest.approx(statistics.pstdev(metres)),
    }


def test_events_name_their_areas_as_the_hour_began(tmp_path: Path) -> None:
    """events_hourly names an area as the zone API named it when the hour began, as the other hourly marts do: area
    A renamed at 08:30 keeps "Old Town" for an event at 08:45; area C, added at 08:30, is named as it was added."""
    in_quay = (CENTER[0] - 0.01, CENTER[1] - 0.01)
    quay = area("C", "parking-spot", (in_quay[0] - 0.001, in_quay[1] - 0.001), (in_quay[0] + 0.001, in_quay[1] + 0.001))
    quay["name"] = "New Quay"
    lake = tmp_path / "lake"
    events = [
        event("v1", "v1", T0 + 45 * M, "provider_drop_off", "available", location=IN_OLD_TOWN),
        event("v2", "v2", T0 + 45 * M, "provider_drop_off", "available", location=in_quay),
    ]
    write_hours(lake, ZONE, [], events)
    write_system_information(lake, ZONE, T0 - 24 * H)
    write_zone_areas(lake, ZONE, T0 - 24 * H, _areas("Old Town"))
    write_zone_areas(lake, ZONE, T0 + 30 * M, [*_areas("Gamla stan"), quay])
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    by = "zone_id, hour, event_type, scope, area_id"
    rows = "select area_id, area_type, area_label, event_count from events_hourly where scope = 'area' order by area_id"
    assert query(warehouse, rows).rows() == [("A", "no-parking", "Old Town", 1), ("C", "parking-spot", "New Quay", 1)]
    full = table(warehouse, "events_hourly", by)
    warehouse.build(window=(T0, T0 + H))
    assert table(warehouse, "events_hourly", by).equals(full)


def test_an_area_added_within_the_hour_is_named_as_it_was_added(tmp_path: Path) -> None:
    """area_trips_hourly, occupancy_hourly and gbfs_occupancy_hourly name area C, which the zone API added at 08:30, in
    the 08:00 hour as it was added (its type and name, not its id alone), as events_hourly does (window build == full
    build)."""
    in_quay = (CENTER[0] - 0.01, CENTER[1] - 0.01)
    quay = area("C", "parking-spot", (in_quay[0] - 0.001, in_quay[1] - 0.001), (in_quay[0] + 0.001, in_quay[1] + 0.001))
    quay["name"] = "New Quay"
    lake = tmp_path / "lake"
    events = [
        event("v1-start", "v1", T0 + 35 * M, "trip_start", "on_trip", trips=["t"], location=in_quay),
        event("v1-end", "v1", T0 + 50 * M, "trip_end", "available", trips=["t"], location=in_quay),
    ]
    write_hours(lake, ZONE, [trip("t", "v1", T0 + 35 * M, T0 + 50 * M, start_at=in_quay, end_at=in_quay)], events)
    write_system_information(lake, ZONE, T0 - 24 * H)
    write_zone_areas(lake, ZONE, T0 - 24 * H, _areas("Old Town"))
    write_zone_areas(lake, ZONE, T0 + 30 * M, [*_areas("Old Town"), quay])
    write_gbfs_snapshot(lake, ZONE, T0 + 55 * M, [gbfs_vehicle("g1", in_quay)])
    warehouse = Warehouse(tmp_path / "w.duckdb", lake)
    warehouse.build()
    named = {
        "area_trips_hourly": "zone_id, hour, location, scope, area_id",
        "occupancy_hourly": "zone_id, scope, area_id, hour, vehicle_state",
        "gbfs_occupancy_hourly": "zone_id, scope, area_id, hour, vehicle_state",
    }
    for mart in named:
        rows = f"select distinct area_type, area_label from {mart} where area_id = 'C' and hour = '{T0.isoformat()}'"
        assert query(warehouse, rows).rows() == [("parking-spot", "New Quay")], mart
    trips = "select location, trip_count from area_trips_hourly where area_id = 'C' order by location"
    assert query(warehouse, trips).rows() == [("end", 1), ("start", 1)]
    full = tables(warehouse, named)
    warehouse.build(window=(T0, T0 + H))
    for mart, frame in tables(warehouse, named).items():
        assert frame.equals(full[mart]), mart
