"""Durations on binned times: an hour whose times are all on a bin says so, and its trips' anomaly flags judge the
reported duration (or, without one, the bounds the bins leave), never "0 s, so under 10 s"."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.build import Warehouse
from tests.scenario import event, trip, write_hours, write_system_information, write_vehicles
from tests.scenario import query as run

ZONE = "1"
T0 = datetime(2026, 3, 10, 8, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)
FLAGS = (
    "trip_id, duration_s, is_under_10s, is_over_5h, is_impossible_speed, timestamp_bin_s, flags_duration_source, "
    "round(avg_speed_kph, 2)"
)


def city(lake: Path) -> None:
    """08:00-09:00 rounded to 15 minutes (open data), 09:00 exact to the millisecond, 10:00 rounded to seconds."""
    device = "scooter-a"
    trips = [
        # 08: binned. a: "0 s" by the times, 7 minutes reported over 1.5 km. b: 5 s reported. c: 15 minutes by the
        # times, 700 s reported over 50 km, which no scooter rides.
        trip("a", device, T0, T0, distance_m=1_500) | {"duration": 420},
        trip("b", device, T0 + 15 * M, T0 + 15 * M, distance_m=2) | {"duration": 5},
        trip("c", device, T0, T0 + 15 * M, distance_m=50_000) | {"duration": 700},
        # 09: exact times, 3.75 s.
        trip("d", device, T0 + H + 1.5 * S, T0 + H + 5.25 * S, distance_m=3) | {"duration": 4},
        # 10: whole seconds, 8 s by the times, 8.6 s reported.
        trip("e", device, T0 + 2 * H + 5 * M, T0 + 2 * H + 5 * M + 8 * S, distance_m=20) | {"duration": 8.6},
    ]
    events = [event("ping", device, T0 + 2 * H + 1 * S, "battery_charged", "available")]
    write_system_information(lake, ZONE, T0)
    write_vehicles(lake, ZONE, T0, [device])
    write_hours(lake, ZONE, trips, events)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The city built in full, once for the module: tests that only read it share it."""
    root = tmp_path_factory.mktemp("binned")
    city(root / "lake")
    warehouse = Warehouse(root / "warehouse.duckdb", root / "lake")
    warehouse.build()
    return warehouse


@pytest.fixture
def warehouse(built: Warehouse, tmp_path: Path) -> Warehouse:
    """A copy of the built city, lake and warehouse side by side as built, for a test that changes or rebuilds it."""
    shutil.copytree(built.path.parent, tmp_path / "city")
    return Warehouse(tmp_path / "city" / built.path.name, tmp_path / "city" / "lake")


def flags(warehouse: Warehouse) -> dict[str, tuple[object, ...]]:
    frame = run(warehouse, f"select {FLAGS} from trips order by end_time, distance_m")
    return {name: row[1:] for name, row in zip("abcde", frame.rows(), strict=True)}


def test_binned_hours_judge_the_reported_duration(built: Warehouse) -> None:
    assert flags(built) == {
        # 1,500 m in 420 s: 12.86 km/h.
        "a": (0.0, False, False, False, 900, "reported", 12.86),
        # 2 m in 5 s: 1.44 km/h.
        "b": (0.0, True, False, False, 900, "reported", 1.44),
        # 50,000 m in 700 s: 257.14 km/h.
        "c": (900.0, False, False, True, 900, "reported", 257.14),
        # 3 m in 3.75 s: 2.88 km/h.
        "d": (3.75, True, False, False, None, "times", 2.88),
        # 20 m in 8.6 s: 8.37 km/h.
        "e": (8.0, True, False, False, 1, "reported", 8.37),
    }


def test_data_quality_says_each_hours_bin(built: Warehouse) -> None:
    quality = run(built, "select hour, timestamp_bin_s from data_quality_hourly order by hour")
    # 08: 08:00 and 08:15 (900 s). 09: milliseconds (none). 10: 10:00:01, 10:05:00 and 10:05:08 (1 s).
    assert quality.rows() == [(T0, 900), (T0 + H, None), (T0 + 2 * H, 1)]


def test_without_a_reported_duration_the_bins_bound_it_and_unknown_stays_null(warehouse: Warehouse) -> None:
    # The lake requires a duration; a provider that left it out is staged as null.
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("update staging.stg_mds__trips set reported_duration_s = null")
    warehouse.build(window=(T0, T0 + H), select=["trips"])
    binned = {k: v for k, v in flags(warehouse).items() if k in "abc"}
    assert binned == {
        # 0 s +- 900 s: could be under 10 s or not; not over 5 h; 1.5 km over up to 900 s is 6 km/h at least, but
        # over a few seconds it would be impossible: unknown.
        "a": (0.0, None, False, None, 900, "binned_times", None),
        "b": (0.0, None, False, None, 900, "binned_times", None),
        # 900 s +- 900 s: 50 km in under 1,800 s is over 100 km/h whatever the true duration; no average to give.
        "c": (900.0, None, False, True, 900, "binned_times", None),
    }


def test_a_window_off_the_hour_rebuilds_whole_hours(warehouse: Warehouse) -> None:
    before = flags(warehouse)
    warehouse.build(window=(T0 + H + 10 * M, T0 + 2 * H + 3 * M))
    bins = run(warehouse, "select hour, timestamp_bin_s from core.int_timestamp_bins order by hour")
    # 09:10-10:03 touches 09:00 and 10:00: each is judged on its whole hour (10:00-10:03 alone holds one time, too
    # few to tell a bin), and its row replaced.
    assert bins.rows() == [(T0, 900), (T0 + H, None), (T0 + 2 * H, 1)]
    assert flags(warehouse) == before
