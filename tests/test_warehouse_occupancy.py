"""Occupancy marts: hand-built timelines with numbers worked out by hand, the provider's ground truth, and hour
rebuilds that leave the tables exactly as a full build made them."""

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fleetlake_provider.truth import truth_frames
from pipelines.warehouse.build import Warehouse
from tests.conftest import BuiltWarehouse
from tests.scenario import (
    CENTER,
    area,
    event,
    gbfs_vehicle,
    query,
    table,
    tables,
    trip,
    write_area_occupancy,
    write_gbfs_snapshot,
    write_hours,
    write_system_information,
    write_zone_areas,
)

ZONE = "1"
T0 = datetime(2026, 3, 10, 22, tzinfo=UTC)  # 23:00 in Stockholm: the story crosses local and UTC midnight
H = timedelta(hours=1)
M = timedelta(minutes=1)
PARKED = ("available", "reserved", "non_operational")
DEPLOYED = (*PARKED, "on_trip")  # MDS dockless.deployed: the public right of way
FAR = (CENTER[0] + 0.02, CENTER[1] + 0.02)  # outside the parking spot, inside the operations area
ORDER = {
    "occupancy_hourly": "zone_id, area_type, area_id, hour, vehicle_state",
    "gbfs_occupancy_hourly": "zone_id, area_type, area_id, hour, vehicle_state",
    "parking_occupancy_hourly": "zone_id, area_id, hour",
    "fleet_utilization_daily": "zone_id, local_date",
}


def build_story(lake: Path) -> Warehouse:
    """Two scooters over four hours (22:00-02:00 UTC; events only in the first and the last hour).

    a: available in parking spot P 22:00-22:30, on a trip 22:30-01:10, then available outside P until the horizon.
    b: available 22:20-22:40, reserved until 22:50, then non_operational (no further event) until the horizon.
    """
    events = [
        event("a1", "a", T0, "provider_drop_off", "available"),
        event("a2", "a", T0 + 30 * M, "trip_start", "on_trip", trips=["t1"]),
        event("a3", "a", T0 + 3 * H + 10 * M, "trip_end", "available", trips=["t1"], location=FAR),
        event("b1", "b", T0 + 20 * M, "provider_drop_off", "available", location=FAR),
        event("b2", "b", T0 + 40 * M, "reservation_start", "reserved", location=FAR),
        event("b3", "b", T0 + 50 * M, "reservation_cancel", "non_operational", location=FAR),
    ]
    write_hours(lake, ZONE, [trip("t1", "a", T0 + 30 * M, T0 + 3 * H + 10 * M, end_at=FAR)], events)
    write_system_information(lake, ZONE, T0)
    spot = area("P", "parking-spot", (CENTER[0] - 0.001, CENTER[1] - 0.001), (CENTER[0] + 0.001, CENTER[1] + 0.001))
    city = area("city", "operations", (CENTER[0] - 0.1, CENTER[1] - 0.1), (CENTER[0] + 0.1, CENTER[1] + 0.1))
    write_zone_areas(lake, ZONE, T0, [spot, city])
    write_area_occupancy(lake, ZONE, T0 + 30 * M, [("P", 1, 4)])
    write_area_occupancy(lake, ZONE, T0 + 2 * H + 10 * M, [("P", 0, 6)])  # the spot grows after midnight
    write_gbfs_snapshot(lake, ZONE, T0 + 10 * M, [gbfs_vehicle("a")])
    write_gbfs_snapshot(lake, ZONE, T0 + 40 * M, [gbfs_vehicle("b", FAR, reserved=True)])
    warehouse = Warehouse(lake.parent / "w.duckdb", lake)
    warehouse.build()
    return warehouse


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """Built once for the module: its tests only read it (a test that builds again builds a copy)."""
    return build_story(tmp_path_factory.mktemp("story") / "lake")


def _rows(frame: pl.DataFrame) -> dict[tuple[datetime, str], tuple[float, int, int]]:
    return {
        (r["hour"], r["vehicle_state"]): (round(r["avg_vehicles"], 9), r["min_vehicles"], r["max_vehicles"])
        for r in frame.iter_rows(named=True)
    }


def test_zone_counts_are_worked_out_by_hand(story: Warehouse) -> None:
    zone = _rows(query(story, "select * from occupancy_hourly where area_type = 'zone'"))
    h22, h23, h00, h01 = (T0 + i * H for i in range(4))
    expected = {
        # 22:00 a available to 22:30, b 22:20-22:40: 1800 + 1200 s; the count goes 1, 2, 1, 0.
        (h22, "available"): (3000 / 3600, 0, 2),
        (h22, "on_trip"): (0.5, 0, 1),
        (h22, "reserved"): (600 / 3600, 0, 1),
        (h22, "non_operational"): (600 / 3600, 0, 1),
        # Deployed (MDS dockless.deployed: on_trip counts) has a all hour and b from 22:20; parked leaves out a's
        # trip from 22:30.
        (h22, "deployed"): (6000 / 3600, 1, 2),
        (h22, "parked"): (4200 / 3600, 1, 2),
        # 23:00 and 00:00 (across midnight, no events at all): a on its trip, b non_operational; zeros stay.
        **{
            (h, s): v
            for h in (h23, h00)
            for s, v in {
                "available": (0.0, 0, 0),
                "on_trip": (1.0, 1, 1),
                "reserved": (0.0, 0, 0),
                "non_operational": (1.0, 1, 1),
                "deployed": (2.0, 2, 2),
                "parked": (1.0, 1, 1),
            }.items()
        },
        # 01:00 a's trip ends at 01:10 and it stays available until the horizon (02:00); b is still open.
        (h01, "available"): (3000 / 3600, 0, 1),
        (h01, "on_trip"): (600 / 3600, 0, 1),
        (h01, "reserved"): (0.0, 0, 0),
        (h01, "non_operational"): (1.0, 1, 1),
        (h01, "deployed"): (2.0, 2, 2),
        (h01, "parked"): (6600 / 3600, 1, 2),
    }
    assert zone == {k: (round(v[0], 9), v[1], v[2]) for k, v in expected.items()}


def test_state_seconds_and_local_hour(story: Warehouse) -> None:
    row = query(
        story,
        "select state_seconds, hour_local, timezone from occupancy_hourly "
        "where area_type = 'zone' and vehicle_state = 'deployed' order by hour limit 1",
    ).row(0)
    assert row == (6000.0, datetime(2026, 3, 10, 23), "Europe/Stockholm")


def test_area_rows_follow_the_start_event_location(story: Warehouse) -> None:
    spot = _rows(query(story, "select * from occupancy_hourly where area_id = 'P'"))
    assert spot[(T0, "available")] == (0.5, 0, 1)
    assert spot[(T0, "parked")] == (0.5, 0, 1)
    assert spot[(T0, "deployed")] == (1.0, 1, 1)  # available in P, then on a trip that began in P
    assert spot[(T0 + H, "on_trip")] == (1.0, 1, 1)  # the trip began in P
    assert spot[(T0 + 3 * H, "available")] == (0.0, 0, 0)  # it ended outside P
    city = _rows(query(story, "select * from occupancy_hourly where area_id = 'city'"))
    assert city[(T0, "available")] == (round(1200 / 3600, 9), 0, 1)
    assert city[(T0 + 3 * H, "deployed")] == (round(6600 / 3600, 9), 1, 2)


def test_parking_occupancy(story: Warehouse) -> None:
    spot = query(story, "select * from parking_occupancy_hourly order by hour")
    assert spot["hour"].to_list() == [T0 + i * H for i in range(4)]
    assert spot["avg_vehicles"].to_list() == [0.5, 0.0, 0.0, 0.0]
    assert spot["max_vehicles"].to_list() == [1, 0, 0, 0]
    assert spot["capacity"].to_list() == [4, 4, 6, 6]  # in force in each hour, not the latest
    assert spot["avg_occupancy_rate"].to_list() == [0.125, 0.0, 0.0, 0.0]
    assert spot["reported_occupancy"].to_list() == [1.0, None, 0.0, None]


def test_fleet_utilization_daily(story: Warehouse) -> None:
    days = query(story, "select * from fleet_utilization_daily order by local_date").to_dicts()
    assert [d["local_date"] for d in days] == [date(2026, 3, 10), date(2026, 3, 11)]
    first, second = days
    # 10 March (local): one hour, 22:00 UTC; a started its trip then.
    assert first["hours"] == 1
    assert first["deployed_avg"] == pytest.approx(6000 / 3600)
    assert first["parked_avg"] == pytest.approx(4200 / 3600)
    assert (first["deployed_vehicles"], first["active_vehicles"], first["inactive_vehicles"]) == (2, 1, 1)
    assert first["idle_percent"] == pytest.approx(70.0)
    assert first["trips"] == 1
    assert first["trips_per_vehicle_avg"] == pytest.approx(0.6)
    # 11 March: 23:00-02:00 UTC, no trip started.
    assert second["hours"] == 3
    assert second["deployed_avg"] == pytest.approx(2.0)
    assert second["parked_avg"] == pytest.approx(13800 / 10800)
    assert (second["deployed_vehicles"], second["active_vehicles"], second["inactive_vehicles"]) == (2, 0, 2)
    assert second["idle_percent"] == pytest.approx(100 * 13800 / 21600)
    assert second["trips_per_vehicle_avg"] == 0.0


def test_gbfs_occupancy_against_mds(story: Warehouse) -> None:
    gbfs = query(story, "select * from gbfs_occupancy_hourly where area_type = 'zone' order by vehicle_state")
    by_state = {r["vehicle_state"]: r for r in gbfs.iter_rows(named=True)}
    assert set(by_state) == {"available", "parked", "non_operational", "reserved"}
    assert all(r["hour"] == T0 and r["snapshots"] == 2 for r in by_state.values())
    # 22:10 lists a (available), 22:40 lists b (reserved).
    assert [by_state[s]["avg_vehicles"] for s in ("available", "reserved", "non_operational", "parked")] == [
        0.5,
        0.5,
        0.0,
        1.0,
    ]
    assert (by_state["available"]["min_vehicles"], by_state["available"]["max_vehicles"]) == (0, 1)
    assert by_state["available"]["mds_avg_vehicles"] == pytest.approx(3000 / 3600)
    assert by_state["available"]["avg_vehicles_difference"] == pytest.approx(0.5 - 3000 / 3600)
    spot = query(story, "select * from gbfs_occupancy_hourly where area_id = 'P' and vehicle_state = 'available'")
    assert spot.select("avg_vehicles", "mds_avg_vehicles").row(0) == (0.5, 0.5)


@pytest.mark.parametrize("hour", [0, 1, 2, 3])
def test_an_hour_rebuilt_alone_matches_the_full_build(story: Warehouse, hour: int, tmp_path: Path) -> None:
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(story.path, copy)
    rebuilt = Warehouse(copy, story.lake_dir)
    rebuilt.build(window=(T0 + hour * H, T0 + (hour + 1) * H))
    full = tables(story, ORDER)
    for name, frame in tables(rebuilt, ORDER).items():
        assert frame.equals(full[name]), name


# -- the provider's ground truth ----------------------------------------------------------------------------


def _truth_intervals(built: BuiltWarehouse) -> pl.DataFrame:
    truth = truth_frames(built.provider)["vehicle_states"].select(
        "zone_id", "device_id", "vehicle_state", "start_time", "end_time", "parking_spot_id"
    )
    deployed = truth.filter(pl.col("vehicle_state").is_in(DEPLOYED)).with_columns(
        pl.lit("deployed").alias("vehicle_state")
    )
    parked = truth.filter(pl.col("vehicle_state").is_in(PARKED)).with_columns(pl.lit("parked").alias("vehicle_state"))
    return pl.concat([truth, deployed, parked])


def _truth_hourly(intervals: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Overlap seconds of each interval with each hour it touches, summed; min/max of the count by brute force
    at the hour start and every start and end inside the hour (count at t = started by t - ended by t)."""
    hours = intervals.with_columns(
        pl.datetime_ranges(
            pl.col("start_time").dt.truncate("1h"), pl.col("end_time") - pl.duration(milliseconds=1), "1h"
        ).alias("hour")
    ).explode("hour")
    seconds = (
        hours.with_columns(
            (
                pl.min_horizontal("end_time", pl.col("hour") + pl.duration(hours=1))
                - pl.max_horizontal("start_time", "hour")
            )
            .dt.total_milliseconds()
            .alias("ms")
        )
        .group_by(*keys, "hour")
        .agg((pl.col("ms").sum() / 1000).alias("seconds"))
    )
    extremes = []
    for group, rows in intervals.group_by(keys):
        starts = np.sort(rows["start_time"].dt.epoch("ms").to_numpy())
        ends = np.sort(rows["end_time"].dt.epoch("ms").to_numpy())
        first, last = starts.min() // 3_600_000, ends.max() // 3_600_000
        instants = np.unique(np.concatenate([starts, ends, np.arange(first, last + 1) * 3_600_000]))
        counts = np.searchsorted(starts, instants, "right") - np.searchsorted(ends, instants, "right")
        frame = pl.DataFrame({"t": instants, "count": counts}).with_columns(
            (pl.col("t") // 3_600_000 * 3_600_000).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("hour")
        )
        extremes.append(
            frame.group_by("hour")
            .agg(pl.col("count").min().alias("min"), pl.col("count").max().alias("max"))
            .with_columns(pl.lit(v).alias(k) for k, v in zip(keys, group, strict=True))
        )
    return seconds.join(pl.concat(extremes), on=[*keys, "hour"], how="inner")


def _compare(expected: pl.DataFrame, actual: pl.DataFrame, keys: list[str]) -> None:
    actual = actual.with_columns(pl.col("hour").cast(pl.Datetime("ms", "UTC")))
    joined = expected.join(actual, on=[*keys, "hour"], how="left")
    assert joined.height == expected.height > 0
    assert joined["avg_vehicles"].null_count() == 0
    assert (joined["avg_vehicles"] - joined["seconds"] / 3600).abs().max() < 1e-9  # type: ignore[operator]
    assert (joined["min_vehicles"] == joined["min"]).all()
    assert (joined["max_vehicles"] == joined["max"]).all()
    # Hours and states the truth has no vehicle in are zeros in the mart.
    others = actual.join(expected, on=[*keys, "hour"], how="anti")
    assert (others["avg_vehicles"] == 0).all() and (others["max_vehicles"] == 0).all()


def test_zone_occupancy_equals_the_truth(built_warehouse: BuiltWarehouse) -> None:
    truth = _truth_hourly(_truth_intervals(built_warehouse), ["zone_id", "vehicle_state"])
    mart = query(built_warehouse.warehouse, "select * from occupancy_hourly where area_type = 'zone'")
    hours_per_zone = mart.group_by("zone_id").agg(pl.col("hour").n_unique()).to_dict(as_series=False)
    assert hours_per_zone["hour"] == [48, 48]
    _compare(
        truth.filter(pl.col("hour") < pl.col("hour").max().over("zone_id") + pl.duration(hours=1)),
        mart,
        ["zone_id", "vehicle_state"],
    )


def test_parking_spot_occupancy_equals_the_truth(built_warehouse: BuiltWarehouse) -> None:
    intervals = _truth_intervals(built_warehouse).filter(pl.col("parking_spot_id").is_not_null())
    # The truth gives parked states a spot; a trip that starts in a spot is on_trip (and deployed) there in the mart,
    # not in the truth.
    intervals = intervals.filter(pl.col("vehicle_state") != "deployed")
    truth = _truth_hourly(intervals.rename({"parking_spot_id": "area_id"}), ["zone_id", "area_id", "vehicle_state"])
    mart = query(
        built_warehouse.warehouse,
        "select * from occupancy_hourly where area_type = 'parking-spot' "
        "and vehicle_state not in ('on_trip', 'deployed')",
    )
    _compare(truth, mart, ["zone_id", "area_id", "vehicle_state"])


def test_an_hour_rebuilt_alone_matches_the_full_build_of_the_city(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(built_warehouse.warehouse.path, copy)
    warehouse = Warehouse(copy, built_warehouse.lake)
    before = table(warehouse, "occupancy_hourly", ORDER["occupancy_hourly"])
    hour = datetime(2026, 3, 29, 1, tzinfo=UTC)  # the DST switch
    warehouse.build(window=(hour, hour + H))
    assert table(warehouse, "occupancy_hourly", ORDER["occupancy_hourly"]).equals(before)
