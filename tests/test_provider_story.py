"""The simulated city tells one consistent story.

Trips, events and the per-vehicle state timeline agree with each other and with the MDS 2.0 state machine;
GBFS, parking occupancy and the hourly MDS feeds served over HTTP are exactly what that truth says; the city
looks like a city (rush hours, plausible rides, misplaced vehicles); and it is deterministic in its seed.
"""

import functools
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import polars as pl
import pytest
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from fleetlake_provider import gbfs, mds
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from fleetlake_provider.simulation import Fleet
from fleetlake_provider.truth import truth_frames
from tests.conftest import CREDENTIALS, END, NOW, START, bearer, make_provider

HOUR_MS = 3_600_000
START_MS = int(START.timestamp() * 1000)
END_MS = int(END.timestamp() * 1000)
PARKED = ("available", "reserved", "non_operational")
MAAS = {"X-Auth-Token": CREDENTIALS.auth_token}

# The MDS 2.0 micromobility "Vehicle State Events" table: (from states, to states, event type).
_STATE_TABLE = (
    ("available", "non_operational", "battery_low"),
    ("available", "non_operational", "maintenance"),
    ("available", "non_operational", "off_hours"),
    ("available", "reserved", "reservation_start"),
    ("available", "non_operational", "system_suspend"),
    ("available elsewhere non_operational on_trip removed reserved", "non_contactable", "comms_lost"),
    ("available elsewhere non_operational on_trip removed reserved", "non_contactable", "unspecified"),
    ("available non_contactable missing", "non_operational", "unspecified"),
    ("available non_operational elsewhere", "removed", "compliance_pick_up"),
    ("available non_operational elsewhere", "removed", "maintenance_pick_up"),
    ("available non_operational elsewhere", "removed", "rebalance_pick_up"),
    ("available non_operational elsewhere non_contactable missing", "removed", "agency_pick_up"),
    ("available non_operational elsewhere non_contactable missing", "removed", "decommissioned"),
    ("available reserved", "on_trip", "trip_start"),
    ("elsewhere", "on_trip", "trip_enter_jurisdiction"),
    ("missing", "available elsewhere non_operational on_trip removed reserved", "located"),
    ("non_contactable", "available elsewhere non_operational on_trip removed reserved", "comms_restored"),
    ("non_contactable", "missing", "not_located"),
    ("non_contactable", "missing", "unspecified"),
    ("non_contactable missing", "elsewhere", "unspecified"),
    ("non_contactable missing", "on_trip", "unspecified"),
    ("non_contactable missing", "reserved", "unspecified"),
    ("non_contactable missing non_operational available elsewhere", "removed", "unspecified"),
    ("non_operational", "available", "battery_charged"),
    ("non_operational", "available", "maintenance"),
    ("non_operational", "available", "on_hours"),
    ("non_operational", "available", "system_resume"),
    ("non_operational non_contactable missing", "available", "unspecified"),
    ("on_trip", "on_trip", "changed_geographies"),
    ("on_trip", "available", "trip_cancel"),
    ("on_trip", "available", "trip_end"),
    ("on_trip", "elsewhere", "trip_leave_jurisdiction"),
    ("removed non_contactable missing", "available", "agency_drop_off"),
    ("removed non_contactable missing", "available", "provider_drop_off"),
    ("reserved", "available", "reservation_cancel"),
)
VALID_TRANSITIONS = {
    (before, after, event_type)
    for befores, afters, event_type in _STATE_TABLE
    for before in befores.split()
    for after in afters.split()
}


def fleets(provider: SimulatedProvider) -> Iterator[tuple[str, Fleet]]:
    for zone_id, z in provider.zones.items():
        yield zone_id, z.fleet


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def hour_param(hour_ms: int) -> str:
    return datetime.fromtimestamp(hour_ms / 1000, UTC).strftime("%Y-%m-%dT%H")


def zone_areas(http: httpx.Client, zone_id: str) -> dict[str, dict[str, BaseGeometry]]:
    """The zone's areas as served by /v2/zone/id/{zone}: area type → area id → shapely geometry."""
    response = http.get(f"/v2/zone/id/{zone_id}", headers=MAAS)
    assert response.status_code == 200
    out: dict[str, dict[str, BaseGeometry]] = {}
    for area in response.json()["data"]["attributes"]["areas"]:
        out.setdefault(area["area_type"], {})[area["id"]] = shape(area["geometry"])
    return out


@functools.lru_cache(maxsize=4)
def truth_of(provider: SimulatedProvider) -> dict[str, pl.DataFrame]:
    return truth_frames(provider)


def parked_at(provider: SimulatedProvider, zone_id: str, at_ms: int) -> pl.DataFrame:
    """From the truth tables: the vehicles in the public right of way of `zone_id` at `at_ms`."""
    states = truth_of(provider)["vehicle_states"]
    return states.filter(
        (pl.col("zone_id") == zone_id)
        & (pl.col("start_time").dt.epoch("ms") <= at_ms)
        & (pl.col("end_time").dt.epoch("ms") > at_ms)
        & pl.col("vehicle_state").is_in(PARKED)
    )


# -- trips, events and state intervals --------------------------------------------------------------------


def test_every_trip_has_one_start_and_one_end_event(provider: SimulatedProvider) -> None:
    for zone_id, fleet in fleets(provider):
        trips, events = fleet.trips, fleet.events
        assert trips.height > 500, zone_id
        assert trips["trip_id"].n_unique() == trips.height
        trip_ids = set(trips["trip_id"])
        for kind, prefix in (("trip_start", "start"), ("trip_end", "end")):
            matching = events.filter(pl.col("event_type") == kind)
            assert matching["trip_id"].null_count() == 0
            assert matching["trip_id"].n_unique() == matching.height, f"{zone_id}: two {kind} for a trip"
            joined = trips.join(matching, on="trip_id", how="inner", suffix="_event")
            assert joined.height == trips.height, f"{zone_id}: a trip without its {kind} event"
            assert (joined["device_idx"] == joined["device_idx_event"]).all()
            assert (joined[f"{prefix}_ms"] == joined["timestamp_ms"]).all()
            assert (joined[f"{prefix}_lat"] == joined["lat"]).all()
            assert (joined[f"{prefix}_lng"] == joined["lng"]).all()
            orphans = matching.filter(~pl.col("trip_id").is_in(list(trip_ids)))
            if kind == "trip_end":
                assert orphans.height == 0, f"{zone_id}: trip_end events without a trip"
                continue
            # A trip still under way at the window end: its trip_end (and its trip row) come after the window.
            last_event = events.group_by("device_idx").agg(pl.col("timestamp_ms").max())
            in_progress = orphans.join(last_event, on="device_idx", suffix="_last")
            assert in_progress.height == orphans.height
            assert (in_progress["timestamp_ms"] == in_progress["timestamp_ms_last"]).all()
            assert orphans["device_idx"].n_unique() == orphans.height
        # Only trip events carry trip ids.
        others = events.filter(~pl.col("event_type").is_in(["trip_start", "trip_end"]))
        assert others["trip_id"].null_count() == others.height


def test_device_timelines_follow_the_mds_state_machine(provider: SimulatedProvider) -> None:
    for zone_id, fleet in fleets(provider):
        events = fleet.events.sort("device_idx", "timestamp_ms")
        intervals = fleet.intervals.sort("device_idx", "start_ms")
        assert events.height == intervals.height, "one interval per state change"
        assert set(events["device_idx"]) == set(range(fleet.vehicles.height))
        transitions: Counter[tuple[str, str, str]] = Counter()
        previous: dict[int, tuple[int, str]] = {}
        for event, interval in zip(events.iter_rows(named=True), intervals.iter_rows(named=True), strict=True):
            dev = event["device_idx"]
            assert interval["device_idx"] == dev
            # Before its first event a vehicle has not been put on the street: it is `removed`.
            last_ms, state = previous.get(dev, (-1, "removed"))
            assert event["timestamp_ms"] > last_ms, f"{zone_id}: events of device {dev} not increasing"
            step = (state, event["vehicle_state"], event["event_type"])
            assert step in VALID_TRANSITIONS, f"{zone_id}: device {dev} made an invalid transition {step}"
            transitions[step] += 1
            # The event opens the interval of the state it entered.
            assert interval["start_ms"] == event["timestamp_ms"]
            assert interval["vehicle_state"] == event["vehicle_state"]
            assert (interval["lat"], interval["lng"]) == (event["lat"], event["lng"])
            previous[dev] = (event["timestamp_ms"], event["vehicle_state"])
        assert len(transitions) >= 10, transitions

        # Per device the intervals tile the window: no gap, no overlap, never two states at once.
        tiles = intervals.group_by("device_idx").agg(
            first=pl.col("start_ms").first(),
            last=pl.col("end_ms").last(),
            gaps=(pl.col("start_ms").shift(-1) != pl.col("end_ms")).sum(),
            empty=(pl.col("end_ms") <= pl.col("start_ms")).sum(),
            repeats=(pl.col("vehicle_state").shift(-1) == pl.col("vehicle_state")).sum(),
        )
        assert (tiles["first"] == START_MS).all()
        assert (tiles["last"] == END_MS).all()
        assert tiles["gaps"].sum() == 0
        assert tiles["empty"].sum() == 0
        # A state change always changes the state.
        assert tiles["repeats"].sum() == 0

        # on_trip intervals are exactly the trips (the last may still be under way at the window end).
        on_trip = intervals.filter(pl.col("vehicle_state") == "on_trip").select("device_idx", "start_ms", "end_ms")
        matched = on_trip.join(fleet.trips, on=["device_idx", "start_ms"], how="left", suffix="_trip")
        completed = matched.filter(pl.col("trip_id").is_not_null())
        assert completed.height == fleet.trips.height
        assert (completed["end_ms"] == completed["end_ms_trip"]).all()
        open_trips = matched.filter(pl.col("trip_id").is_null())
        assert (open_trips["end_ms"] == END_MS).all()


def test_gbfs_vehicle_ids_rotate_after_every_trip(provider: SimulatedProvider) -> None:
    for zone_id, fleet in fleets(provider):
        intervals = fleet.intervals.sort("device_idx", "start_ms")
        owners = intervals.group_by("gbfs_vehicle_id").agg(pl.col("device_idx").n_unique())
        assert (owners["device_idx"] == 1).all(), f"{zone_id}: a GBFS vehicle id used by two devices"
        # A new id after every completed trip, and only then.
        ids_per_device = intervals.group_by("device_idx").agg(pl.col("gbfs_vehicle_id").n_unique())
        trips_per_device = fleet.trips.group_by("device_idx").len()
        counted = ids_per_device.join(trips_per_device, on="device_idx", how="left").fill_null(0)
        assert (counted["gbfs_vehicle_id"] == counted["len"] + 1).all(), zone_id
        around = intervals.with_columns(
            before=pl.col("gbfs_vehicle_id").shift(1).over("device_idx"),
            after=pl.col("gbfs_vehicle_id").shift(-1).over("device_idx"),
        ).filter((pl.col("vehicle_state") == "on_trip") & pl.col("after").is_not_null())
        assert around.height == fleet.trips.height
        assert (around["before"] != around["after"]).all(), f"{zone_id}: same GBFS id before and after a trip"


# -- what is served at an instant, over HTTP ------------------------------------------------------------


@pytest.fixture(scope="module")
def city() -> Iterator[tuple[SimulatedProvider, FixedClock, str]]:
    """A provider like the shared one, with a clock this module moves, served over loopback HTTP."""
    clock = FixedClock(NOW)
    provider = make_provider(clock)
    with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        yield provider, clock, url


def _instants(provider: SimulatedProvider) -> list[int]:
    # Saturday morning and evening rush (UTC+1), the night right after the switch to summer time, the exact
    # millisecond a trip ends on Sunday afternoon, and a clock past the window (held at its last instant).
    trip_ends = provider.zones["145"].fleet.trips.filter(pl.col("end_ms") >= ms(datetime(2026, 3, 29, 15, tzinfo=UTC)))
    return [
        ms(datetime(2026, 3, 28, 7, 40, tzinfo=UTC)),
        ms(datetime(2026, 3, 28, 16, 50, 30, tzinfo=UTC)),
        ms(datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        int(trip_ends["end_ms"][0]),
        ms(NOW),
    ]


@pytest.mark.integration
def test_gbfs_vehicle_status_is_the_true_parked_fleet(city: tuple[SimulatedProvider, FixedClock, str]) -> None:
    provider, clock, url = city
    with httpx.Client(base_url=url, timeout=30) as http:
        headers = bearer(http)
        for at in _instants(provider):
            clock.set(datetime.fromtimestamp(at / 1000, UTC))
            state_ms = min(at, END_MS - 1)
            for zone_id in provider.zones:
                response = http.get(f"/v1/partner-apis/gbfs/{zone_id}/vehicle_status.json", headers=headers)
                assert response.status_code == 200
                served = {v["vehicle_id"]: v for v in response.json()["data"]["vehicles"]}
                assert len(served) == len(response.json()["data"]["vehicles"]), "duplicate GBFS ids"
                truth = {r["gbfs_vehicle_id"]: r for r in parked_at(provider, zone_id, state_ms).iter_rows(named=True)}
                assert truth, f"{zone_id} at {at}: nothing parked"
                assert served.keys() == truth.keys(), f"{zone_id} at {at}"
                for vehicle_id, v in served.items():
                    state = truth[vehicle_id]["vehicle_state"]
                    assert v["is_reserved"] == (state == "reserved")
                    assert v["is_disabled"] == (state == "non_operational")
                    assert (v["lat"], v["lon"]) == (truth[vehicle_id]["lat"], truth[vehicle_id]["lng"])
                available = {i for i, v in served.items() if not v["is_reserved"] and not v["is_disabled"]}
                assert available == {i for i, r in truth.items() if r["vehicle_state"] == "available"}


@pytest.mark.integration
def test_parking_occupancy_matches_the_spot_geometry(city: tuple[SimulatedProvider, FixedClock, str]) -> None:
    provider, clock, url = city
    busy = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        headers = bearer(http)
        spots = zone_areas(http, "145")["parking-spot"]
        assert len(spots) >= 20
        ids = list(spots)
        polygons = [spots[i] for i in ids]
        for at in _instants(provider):
            clock.set(datetime.fromtimestamp(at / 1000, UTC))
            parked = parked_at(provider, "145", min(at, END_MS - 1))
            points = shapely.points(parked["lng"].to_numpy(), parked["lat"].to_numpy())
            inside = [shapely.contains(polygon, points) for polygon in polygons]
            available = (parked["vehicle_state"] == "available").to_numpy()
            disabled = (parked["vehicle_state"] == "non_operational").to_numpy()
            expected = {i: int(mask.sum()) for i, mask in zip(ids, inside, strict=True)}
            expected_available = {i: int((mask & available).sum()) for i, mask in zip(ids, inside, strict=True)}
            expected_disabled = {i: int((mask & disabled).sum()) for i, mask in zip(ids, inside, strict=True)}
            busy += sum(expected.values())

            occupancy = http.get("/v1/zone/id/145/areasOccupancy", headers=MAAS)
            assert occupancy.status_code == 200
            assert {a["id"]: a["occupancy"] for a in occupancy.json()["data"]} == expected, at

            status = http.get("/v1/partner-apis/gbfs/145/station_status.json", headers=headers)
            stations = status.json()["data"]["stations"]
            assert {s["station_id"]: s["num_vehicles_available"] for s in stations} == expected_available
            assert {s["station_id"]: s["num_vehicles_disabled"] for s in stations} == expected_disabled
            for s in stations:
                assert s["num_vehicles_available"] == sum(t["count"] for t in s["vehicle_types_available"])

            # A GBFS vehicle names the station it stands in, and only that one.
            vehicles = http.get("/v1/partner-apis/gbfs/145/vehicle_status.json", headers=headers)
            for v in vehicles.json()["data"]["vehicles"]:
                point = shapely.Point(v["lon"], v["lat"])
                containing = [i for i, polygon in zip(ids, polygons, strict=True) if polygon.contains(point)]
                assert containing == ([v["station_id"]] if "station_id" in v else [])
    assert busy > 0, "no vehicle was ever parked in a spot"


# -- the hourly MDS feeds ----------------------------------------------------------------------------------


def _follow(http: httpx.Client, path: str, params: dict[str, str], headers: dict[str, str], key: str) -> list[Any]:
    response = http.get(path, params=params, headers=headers)
    records: list[Any] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body[key])
        next_url = (body.get("links") or {}).get("next")
        if not next_url:
            return records
        response = http.get(next_url, headers=headers)


@pytest.mark.integration
def test_hourly_trips_and_events_are_exactly_the_truth(provider: SimulatedProvider, http: httpx.Client) -> None:
    headers = bearer(http)
    for zone_id, fleet in fleets(provider):
        mds = f"/v1/partner-apis/mds/{zone_id}"
        served_trips = served_events = 0
        for hour in range(START_MS, END_MS, HOUR_MS):
            param = hour_param(hour)
            trips = _follow(http, f"{mds}/trips", {"end_time": param}, headers, "trips")
            truth = fleet.trips.filter(pl.col("end_ms").is_between(hour, hour + HOUR_MS, closed="left"))
            device_ids = fleet.vehicles["device_id"]
            assert sorted(
                (t["trip_id"], t["device_id"], t["start_time"], t["end_time"], t["duration"], t["distance"])
                for t in trips
            ) == sorted(
                (
                    r["trip_id"],
                    device_ids[r["device_idx"]],
                    r["start_ms"],
                    r["end_ms"],
                    r["duration_s"],
                    r["distance_m"],
                )
                for r in truth.iter_rows(named=True)
            ), f"{zone_id} trips {param}"
            events = _follow(http, f"{mds}/events/historical", {"event_time": param}, headers, "events")
            truth_events = fleet.events.filter(pl.col("timestamp_ms").is_between(hour, hour + HOUR_MS, closed="left"))
            assert sorted(
                (e["event_id"], e["device_id"], e["timestamp"], *e["event_types"], e["vehicle_state"], *e["trip_ids"])
                for e in events
            ) == sorted(
                (r["event_id"], device_ids[r["device_idx"]], r["timestamp_ms"], r["event_type"], r["vehicle_state"])
                + ((r["trip_id"],) if r["trip_id"] else ())
                for r in truth_events.iter_rows(named=True)
            ), f"{zone_id} events {param}"
            served_trips += len(trips)
            served_events += len(events)
        assert served_trips == fleet.trips.height
        assert served_events == fleet.events.height


# -- does it look like a city? -----------------------------------------------------------------------------


def test_demand_follows_the_time_of_day(provider: SimulatedProvider) -> None:
    trips = truth_frames(provider)["trips"]
    for zone_id, z in provider.zones.items():
        local = trips.filter(pl.col("zone_id") == zone_id).select(
            hour=pl.col("start_time").dt.convert_time_zone(z.city.spec.timezone).dt.hour()
        )
        by_hour = Counter(local["hour"].to_list())
        rush = sum(by_hour[h] for h in (7, 8, 16, 17, 18)) / 5
        night = sum(by_hour[h] for h in (1, 2, 3, 4)) / 4
        assert rush > 4 * max(night, 1), f"{zone_id}: rush {rush}/h vs night {night}/h"


def test_trip_durations_and_speeds_are_plausible(provider: SimulatedProvider) -> None:
    trips = truth_frames(provider)["trips"]
    for zone_id in provider.zones:
        zone = trips.filter(pl.col("zone_id") == zone_id)
        median_s = zone["duration_s"].median()
        assert isinstance(median_s, float)
        assert 3 <= median_s / 60 <= 20, median_s
        speed = (zone["distance_m"] / zone["duration_s"].clip(lower_bound=1) * 3.6).median()
        assert isinstance(speed, float)
        assert 5 <= speed <= 25, speed
        assert (zone["end_time"] > zone["start_time"]).all()


@pytest.mark.integration
def test_some_riders_leave_vehicles_where_they_should_not(provider: SimulatedProvider, http: httpx.Client) -> None:
    trips = truth_frames(provider)["trips"]

    def ends(zone_id: str) -> Any:
        zone = trips.filter(pl.col("zone_id") == zone_id)
        return shapely.points(zone["end_lng"].to_numpy(), zone["end_lat"].to_numpy())

    free_floating = zone_areas(http, "1")
    points = ends("1")
    operations = shapely.union_all(list(free_floating["operations"].values()))
    outside = int((~shapely.contains(operations, points)).sum())
    no_parking = shapely.union_all(list(free_floating["no-parking"].values()))
    no_riding = shapely.union_all(list(free_floating["no-riding"].values()))
    in_no_parking = int(shapely.contains(no_parking, points).sum())
    in_no_riding = int(shapely.contains(no_riding, points).sum())
    assert outside > 0 and in_no_parking > 0 and in_no_riding > 0
    assert outside + in_no_parking + in_no_riding < 0.25 * len(points), "most riders park properly"

    spots = shapely.union_all(list(zone_areas(http, "145")["parking-spot"].values()))
    points = ends("145")
    in_spot = int(shapely.contains(spots, points).sum())
    assert 0 < len(points) - in_spot < 0.5 * len(points), (in_spot, len(points))


def test_fleet_mix_and_operations(provider: SimulatedProvider) -> None:
    truth = truth_frames(provider)
    for zone_id in provider.zones:
        vehicles = truth["vehicles"].filter(pl.col("zone_id") == zone_id)
        assert vehicles["vehicle_type"].n_unique() >= 2
        assert truth["trips"].filter(pl.col("zone_id") == zone_id)["vehicle_type"].n_unique() >= 2
        kinds = set(truth["events"].filter(pl.col("zone_id") == zone_id)["event_type"])
        for kind in (
            "battery_low",
            "battery_charged",
            "maintenance",
            "reservation_start",
            "rebalance_pick_up",
            "provider_drop_off",
        ):
            assert kind in kinds, f"{zone_id}: no {kind} event"


# -- determinism and scale ---------------------------------------------------------------------------------


def test_the_seed_decides_everything() -> None:
    first = make_provider(vehicles=40, days=1, seed=5)
    second = make_provider(vehicles=40, days=1, seed=5)
    other = make_provider(vehicles=40, days=1, seed=6)
    a, b, c = truth_frames(first), truth_frames(second), truth_frames(other)
    for name, frame in a.items():
        assert frame.height > 0
        assert frame.equals(b[name]), name
    assert not a["trips"].equals(c["trips"])
    assert not a["vehicle_states"].equals(c["vehicle_states"])
    assert set(a["trips"]["trip_id"]).isdisjoint(c["trips"]["trip_id"])
    # The payloads are built from the truth, so they agree too.
    hour = hour_param(START_MS + 9 * HOUR_MS)
    for zone_id in first.zones:
        assert mds.trips(first, zone_id, hour) == mds.trips(second, zone_id, hour)
        status = [gbfs.feed(p, zone_id, "vehicle_status", "http://x") for p in (first, second)]
        assert status[0] == status[1]
        assert mds.trips(first, zone_id, hour) != mds.trips(other, zone_id, hour)


@pytest.mark.slow
def test_a_large_city_builds_with_plausible_counts() -> None:
    start = datetime(2026, 3, 24, tzinfo=UTC)
    provider = SimulatedProvider(
        ProviderOptions(zones=("1",), vehicles=20_000, days=1, start=start, seed=3),
        FixedClock(start + timedelta(days=2)),
    )
    fleet = provider.zones["1"].fleet
    assert fleet.vehicles.height == 20_000
    assert fleet.vehicles["device_id"].n_unique() == 20_000
    assert 1 <= fleet.trips.height / 20_000 <= 10
    assert fleet.events["device_idx"].n_unique() == 20_000
    assert fleet.events.height == fleet.intervals.height
    assert fleet.events.height >= 2 * fleet.trips.height
