"""Feeds that round their times: the provider's timestamp_rounding_s option, and the warehouse against the truth.

Published open data rounds times to 15 minutes. With the provider rounding every time it serves (and its truth) to
900 s, what must hold:
- each vehicle's state timeline is the truth's, interval for interval in the same order (the zero-length intervals
  of simultaneous events included), and every step is a transition of the MDS 2.0 state machine;
- zone occupancy equals the truth computed on the rounded times, to the millisecond;
- the anomaly flags equal the truth's (judged on the true durations): the times being binned, they judge the
  reported duration, which the provider reports exactly;
- data quality says the bin of every hour, and an hour rebuilt alone equals the full build.
"""

import asyncio
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from cli.app import app
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.service import SimulatedProvider
from fleetlake_provider.truth import truth_frames
from pipelines.config import Settings
from pipelines.ingest import (
    GBFS_DATASETS,
    MDS_SNAPSHOT_DATASETS,
    ZONE_DATASETS,
    hours_between,
    ingest_hours,
    ingest_snapshots,
)
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.state_machine import is_transition
from tests.conftest import CREDENTIALS, NOW, START, make_provider
from tests.scenario import query, tables
from tests.test_warehouse_occupancy import _compare, _truth_hourly, _truth_intervals

BIN_S = 900
DAYS = 1
ZONES = ("1", "145")


@dataclass(frozen=True)
class RoundedCity:
    provider: SimulatedProvider
    lake: Path
    warehouse: Warehouse


@pytest.fixture(scope="module")
def rounded(tmp_path_factory: pytest.TempPathFactory) -> RoundedCity:
    """A day of two zones whose feeds round every time down to 15 minutes, ingested in-process and built."""
    provider = make_provider(timestamp_rounding_s=BIN_S, days=DAYS, zones=ZONES)
    root = tmp_path_factory.mktemp("rounded")
    lake = root / "lake"
    settings = Settings(api_base_url="http://provider", maas_base_url="http://provider", zones=ZONES, lake_dir=lake)
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000).app

    async def ingest() -> None:
        async with VoiClient(settings, transport=httpx.ASGITransport(app=app)) as client:
            await ingest_hours(client, Lake(lake), ZONES, hours_between(START, START + timedelta(days=DAYS)))
            snapshots = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
            await ingest_snapshots(client, Lake(lake), ZONES, snapshots, captured_at=NOW)

    asyncio.run(ingest())
    warehouse = Warehouse(root / "warehouse.duckdb", lake)
    warehouse.build()
    return RoundedCity(provider, lake, warehouse)


def test_the_provider_rounds_every_time_but_not_the_reported_duration() -> None:
    exact = make_provider(days=DAYS, zones=("1",))
    binned = make_provider(timestamp_rounding_s=BIN_S, days=DAYS, zones=("1",))
    events, exact_events = binned.zones["1"].events, exact.zones["1"].events
    assert (events["timestamp_ms"] % (BIN_S * 1000) == 0).all()
    assert (events["timestamp_ms"] == exact_events["timestamp_ms"] // 900_000 * 900_000).all()
    # Same events, same order, same hour as the exact feed: a bin divides the hour.
    assert events["event_id"].to_list() == exact_events["event_id"].to_list()
    assert (events["timestamp_ms"] // 3_600_000 == exact_events["timestamp_ms"] // 3_600_000).all()
    trips, exact_trips = binned.zones["1"].trips, exact.zones["1"].trips
    assert (trips["start_ms"] % 900_000 == 0).all() and (trips["end_ms"] % 900_000 == 0).all()
    assert trips["duration_s"].to_list() == exact_trips["duration_s"].to_list()
    # Half the trips seem to last no time at all; their reported durations say otherwise.
    zero = trips.filter(pl.col("end_ms") == pl.col("start_ms"))
    assert zero.height > trips.height / 4 and (zero["duration_s"] >= 1).all()
    truth = truth_frames(binned)["vehicle_states"]
    assert (truth["start_time"].dt.epoch("ms") % 900_000 == 0).all()
    with pytest.raises(ValueError, match="divide an hour"):
        make_provider(timestamp_rounding_s=7, days=DAYS, zones=("1",))


def _timelines(rounded: RoundedCity) -> tuple[pl.DataFrame, pl.DataFrame]:
    truth = (
        truth_frames(rounded.provider)["vehicle_states"]
        .with_columns(position=pl.int_range(pl.len()).over("zone_id", "device_id"))
        .select("zone_id", "device_id", "position", "vehicle_state", "start_time", "lat", "lng")
    )
    mart = query(
        rounded.warehouse,
        "select zone_id, cast(device_id as varchar) as device_id, vehicle_state, started_at as start_time, "
        "start_lat as lat, start_lng as lng, started_by, position_in_instant "
        "from vehicle_state_intervals order by zone_id, device_id, started_at, position_in_instant",
    ).with_columns(
        pl.col("start_time").cast(pl.Datetime("ms", "UTC")),
        position=pl.int_range(pl.len()).over("zone_id", "device_id"),
    )
    return truth, mart


@pytest.mark.slow  # the first reader of `rounded`: it pays the city's ingest and build
def test_every_timeline_is_the_truths_in_order_and_a_state_machine_path(rounded: RoundedCity) -> None:
    truth, mart = _timelines(rounded)
    # Rounding made many events simultaneous: a trip's start and end, one trip's end and the next one's start.
    simultaneous = mart.filter(pl.col("position_in_instant") > 1)
    assert simultaneous.height > 500
    assert simultaneous.filter(pl.col("started_by") == "trip_end").height > 100
    assert_frame_equal(mart.select(truth.columns), truth, check_row_order=True)
    steps = mart.with_columns(before=pl.col("vehicle_state").shift(1).over("zone_id", "device_id")).drop_nulls("before")
    invalid = [
        row
        for row in steps.iter_rows(named=True)
        if not is_transition(row["before"], (row["started_by"],), row["vehicle_state"])
    ]
    assert invalid == []
    # No vehicle is left on a trip the truth has ended.
    last = mart.group_by("zone_id", "device_id", maintain_order=True).last()
    true_last = truth.group_by("zone_id", "device_id", maintain_order=True).last()
    assert last["vehicle_state"].to_list() == true_last["vehicle_state"].to_list()


def test_zone_occupancy_equals_the_truth_on_the_rounded_times(rounded: RoundedCity) -> None:
    # The truth's intervals, and its deployed and parked series, as the ground-truth occupancy tests count them.
    truth = _truth_hourly(_truth_intervals(rounded), ["zone_id", "vehicle_state"])  # type: ignore[arg-type]
    mart = query(rounded.warehouse, "select * from occupancy_hourly where area_type = 'zone'")
    assert mart["hour"].n_unique() == 24
    _compare(truth, mart, ["zone_id", "vehicle_state"])


def test_anomaly_flags_judge_the_reported_duration(rounded: RoundedCity) -> None:
    truth = truth_frames(rounded.provider)["trips"].select(
        "trip_id",
        "start_time",
        "end_time",
        "duration_s",
        (pl.col("duration_s") < 10).alias("under_10s"),
        (pl.col("duration_s") > 5 * 3600).alias("over_5h"),
        (pl.col("distance_m") / pl.col("duration_s") * 3.6 > 45).alias("impossible_speed"),
    )
    trips = query(
        rounded.warehouse,
        "select cast(trip_id as varchar) as trip_id, is_under_10s, is_over_5h, is_impossible_speed, "
        "timestamp_bin_s, flags_duration_source, start_time, end_time, duration_s, reported_duration_s, "
        "avg_speed_kph, distance_m from trips",
    )
    joined = trips.join(truth, on="trip_id", suffix="_true")
    assert joined.height == truth.height == trips.height
    # The trips are the truth's, on its rounded times, with its exact durations reported.
    assert (joined["start_time"].cast(pl.Datetime("ms", "UTC")) == joined["start_time_true"]).all()
    assert (joined["end_time"].cast(pl.Datetime("ms", "UTC")) == joined["end_time_true"]).all()
    assert (joined["reported_duration_s"] == joined["duration_s_true"]).all()
    true_speed = joined["distance_m"] / joined["duration_s_true"] * 3.6
    assert (joined["avg_speed_kph"] - true_speed).abs().max() < 1e-9  # type: ignore[operator]
    assert (joined["timestamp_bin_s"] == BIN_S).all() and (joined["flags_duration_source"] == "reported").all()
    # The binned times alone would call a third of the trips shorter than 10 s; the truth has a handful.
    assert (joined["duration_s"] < 10).sum() > joined.height / 4
    assert 0 < joined["under_10s"].sum() < 20
    assert joined["is_under_10s"].to_list() == joined["under_10s"].to_list()
    assert joined["is_over_5h"].to_list() == joined["over_5h"].to_list()
    assert joined["is_impossible_speed"].to_list() == joined["impossible_speed"].to_list()


def test_data_quality_says_the_bin_and_counts_simultaneous_events(rounded: RoundedCity) -> None:
    quality = query(rounded.warehouse, "select * from data_quality_hourly")
    assert quality.height == 24 * len(ZONES)
    assert (quality["timestamp_bin_s"] == BIN_S).all()
    tied = query(
        rounded.warehouse,
        "select count(*) as n from vehicle_state_intervals where position_in_instant > 1",
    )["n"][0]
    # Each instant's first event is tied too: the tied events are more than the intervals placed after another.
    assert quality["tied_events"].sum() > tied > 0


def test_an_hour_rebuilt_alone_equals_the_full_build(rounded: RoundedCity, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(rounded.warehouse.path, copy)
    warehouse = Warehouse(copy, rounded.lake)
    order = {
        "vehicle_state_intervals": "zone_id, device_id, started_at, position_in_instant",
        "core.int_event_order": "zone_id, event_time, position, event_id",
        "core.int_timestamp_bins": "zone_id, hour",
        "trips": "trip_id",
        "occupancy_hourly": "zone_id, area_type, area_id, hour, vehicle_state",
        "data_quality_hourly": "zone_id, hour",
    }
    before = tables(warehouse, order)
    hour = START + timedelta(hours=8)
    warehouse.build(window=(hour, hour + timedelta(hours=1)))
    for name, frame in tables(warehouse, order).items():
        assert_frame_equal(frame, before[name], check_row_order=True)


def test_the_command_line_rounds_the_truth_and_refuses_a_bin_that_does_not_divide_an_hour(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    city = ["--vehicles", "5", "--days", "1", "--zones", "1", "--start", "2026-03-10T00:00"]
    written = runner.invoke(app, ["provider", "truth", "--out", str(tmp_path), *city, "--timestamp-rounding", "900"])
    assert written.exit_code == 0, written.output
    events = pl.read_parquet(tmp_path / "events.parquet")
    assert events.height > 0 and (events["timestamp"].dt.epoch("ms") % 900_000 == 0).all()
    refused = runner.invoke(app, ["provider", "truth", "--out", str(tmp_path), *city, "--timestamp-rounding", "7"])
    assert refused.exit_code == 2 and "must divide an hour" in refused.output
