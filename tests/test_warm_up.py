"""The first hours of a history: a backfill's lead-in, warm-up hours flagged, and occupancy equal to the truth once
the warm-up has passed, for a city whose vehicles were parked days before the first hour."""

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from fleetlake_provider.truth import truth_frames
from pipelines.config import Secret, Settings
from pipelines.ingest import (
    GBFS_DATASETS,
    MDS_SNAPSHOT_DATASETS,
    ZONE_DATASETS,
    hours_between,
    ingest_hours,
    ingest_snapshots,
)
from pipelines.lake.store import Lake
from pipelines.lead_in import plan_lead_in
from pipelines.reports.export import export_report
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from tests.conftest import CREDENTIALS, BuiltWarehouse
from tests.scenario import event, query, tables, write_events, write_system_information, write_trips
from tests.test_warehouse_occupancy import _compare, _truth_hourly, _truth_intervals

H = timedelta(hours=1)
M = timedelta(minutes=1)
ZONE = "1"

# -- warm-up hours worked out by hand -----------------------------------------------------------------------

T0 = datetime(2026, 3, 10, 6, tzinfo=UTC)


def build_gappy_history(lake: Path, lead_in_hours: int) -> Warehouse:
    """Events partitions for hours 0-5 and 8-11 (6 and 7 missing); trips partitions for every hour 0-11.

    a: dropped off at 0:30, then silent. b: dropped off at 9:15, then silent.
    """
    events = {
        0: [event("a1", "a", T0 + 30 * M, "provider_drop_off", "available")],
        9: [event("b1", "b", T0 + 9 * H + 15 * M, "provider_drop_off", "available")],
    }
    for n in (*range(6), *range(8, 12)):
        write_events(lake, ZONE, T0 + n * H, events.get(n, []))  # an empty partition: delivered, nothing happened
    for n in range(12):
        write_trips(lake, ZONE, T0 + n * H, [])
    write_system_information(lake, ZONE, T0)
    warehouse = Warehouse(lake.parent / "w.duckdb", lake, lead_in_hours=lead_in_hours)
    warehouse.build()
    return warehouse


@pytest.fixture(scope="module")
def gappy_history(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The gappy history with a 3-hour lead-in, built once for the module: a test that builds again builds a copy."""
    return build_gappy_history(tmp_path_factory.mktemp("gappy") / "lake", lead_in_hours=3)


def test_warm_up_hours_are_worked_out_by_hand(gappy_history: Warehouse) -> None:
    warehouse = gappy_history
    quality = query(warehouse, "select hour, warm_up, coverage from data_quality_hourly order by hour")
    assert quality["hour"].to_list() == [T0 + n * H for n in range(12)]
    # Hour h is warm-up when an hour of [h-3, h) has no events partition (before hour 0 none has): 0, 1, 2 at the
    # start; 6 has hours 3-5 before it (its own absence is a coverage gap); 7 to 10 have the missing 6 or 7 within
    # three hours; 11 has 8-10.
    assert [n for n, w in enumerate(quality["warm_up"]) if w] == [0, 1, 2, 7, 8, 9, 10]
    assert [n for n, c in enumerate(quality["coverage"]) if c < 1] == [6, 7]
    deployed = query(
        warehouse,
        "select hour, avg_vehicles, warm_up from occupancy_hourly "
        "where area_type = 'zone' and vehicle_state = 'deployed' order by hour",
    )
    # a from 0:30 (half of hour 0), b from 9:15 (three quarters of hour 9); flags as in data quality.
    expected_avg = [0.5, *[1.0] * 8, 1.75, 2.0, 2.0]
    assert [round(v, 9) for v in deployed["avg_vehicles"]] == expected_avg
    assert deployed["warm_up"].to_list() == quality["warm_up"].to_list()


def test_no_lead_in_means_no_warm_up_and_a_window_build_agrees(tmp_path: Path, gappy_history: Warehouse) -> None:
    warehouse = build_gappy_history(tmp_path / "lake", lead_in_hours=0)
    assert not query(warehouse, "select bool_or(warm_up) as any from data_quality_hourly")["any"][0]
    shutil.copyfile(gappy_history.path, tmp_path / "flagged.duckdb")
    flagged = Warehouse(tmp_path / "flagged.duckdb", gappy_history.lake_dir, lead_in_hours=3)
    compared = dict.fromkeys(("data_quality_hourly", "occupancy_hourly"), "all")
    before = tables(flagged, compared)
    flagged.build(window=(T0 + 8 * H, T0 + 9 * H))
    for name, frame in tables(flagged, compared).items():
        assert frame.equals(before[name]), name


# -- the parked city against its ground truth ----------------------------------------------------------------

START = datetime(2026, 3, 28, tzinfo=UTC)  # the simulated window: one day; the fleet parked in the two before
WINDOW = (START, START + timedelta(days=1))
LEAD_IN_HOURS = 48


def parked_provider(parked_days: float = 2) -> SimulatedProvider:
    options = ProviderOptions(zones=(ZONE,), vehicles=60, start=START, days=1, seed=11, parked_days=parked_days)
    return SimulatedProvider(options, FixedClock(WINDOW[1] + 15 * M))


def test_the_parked_fleet_option_deploys_every_vehicle_before_the_window() -> None:
    truth = truth_frames(parked_provider())
    firsts = truth["events"].sort("timestamp").group_by("device_id", maintain_order=True).first()
    assert firsts.height == 60
    assert (firsts["event_type"] == "provider_drop_off").all()
    assert firsts["timestamp"].min() >= START - timedelta(days=2)  # type: ignore[operator]
    assert firsts["timestamp"].max() < START  # type: ignore[operator]
    # Before the window: each vehicle's drop-off, nothing else; no trip.
    assert truth["events"].filter(pl.col("timestamp") < START).height == 60
    assert truth["trips"]["start_time"].min() >= START  # type: ignore[operator]
    # Off by default: the fleet is deployed at the window's first instant.
    default = (
        truth_frames(parked_provider(parked_days=0))["events"].group_by("device_id").agg(pl.col("timestamp").min())
    )
    assert (default["timestamp"] == START).all()


@dataclass(frozen=True)
class ParkedCity:
    provider: SimulatedProvider
    with_lead_in: Warehouse
    without_lead_in: Warehouse


def _ingest(provider: SimulatedProvider, lake: Path, hours: list[datetime]) -> None:
    """The hours and every snapshot, fetched from the provider in-process (what is tested is the lead-in, not HTTP)."""
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000).app
    settings = Settings(
        api_base_url="http://provider",
        maas_base_url="http://provider",
        client_id=CREDENTIALS.client_id,
        client_secret=Secret(CREDENTIALS.client_secret),
        auth_token=Secret(CREDENTIALS.auth_token),
        zones=(ZONE,),
        lake_dir=lake,
    )

    async def run() -> None:
        async with VoiClient(settings, transport=httpx.ASGITransport(app=app)) as client:
            await ingest_hours(client, Lake(lake), settings.zones, hours)
            snapshots = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
            await ingest_snapshots(client, Lake(lake), settings.zones, snapshots, captured_at=WINDOW[1] + 15 * M)

    asyncio.run(run())


@pytest.fixture(scope="module")
def parked_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParkedCity]:
    """The same day ingested twice: after the lead-in a backfill plans (48 h), and alone (as before it)."""
    provider = parked_provider()
    root = tmp_path_factory.mktemp("parked")
    lead_in = plan_lead_in(
        Settings(lake_dir=root / "with", history_start=date(2024, 1, 1)), (ZONE,), START, LEAD_IN_HOURS
    )
    assert (lead_in.hours[0], len(lead_in.hours), lead_in.first_to_fetch) == (START - 48 * H, 48, START - 48 * H)
    _ingest(provider, root / "with", hours_between(lead_in.hours[0], WINDOW[1]))
    _ingest(provider, root / "without", hours_between(*WINDOW))
    warehouses = []
    for name in ("with", "without"):
        warehouse = Warehouse(root / f"{name}.duckdb", root / name, lead_in_hours=LEAD_IN_HOURS)
        warehouse.build()
        warehouses.append(warehouse)
    yield ParkedCity(provider, *warehouses)


def _zone_occupancy(warehouse: Warehouse) -> pl.DataFrame:
    return query(warehouse, "select * from occupancy_hourly where area_type = 'zone'").with_columns(
        pl.col("hour").cast(pl.Datetime("ms", "UTC"))
    )


def _truth(city: ParkedCity, warehouse: Warehouse) -> pl.DataFrame:
    built = BuiltWarehouse(city.provider, warehouse.lake_dir, warehouse)
    return _truth_hourly(_truth_intervals(built), ["zone_id", "vehicle_state"])


@pytest.mark.integration
@pytest.mark.slow
def test_after_the_lead_in_occupancy_equals_the_truth(parked_city: ParkedCity) -> None:
    warehouse = parked_city.with_lead_in
    mart = _zone_occupancy(warehouse)
    truth = _truth(parked_city, warehouse)
    in_window = (pl.col("hour") >= START) & (pl.col("hour") < WINDOW[1])
    _compare(truth.filter(in_window), mart.filter(in_window), ["zone_id", "vehicle_state"])
    # All 60 vehicles parked at the window's first instant, every one known.
    first = mart.filter((pl.col("hour") == START) & (pl.col("vehicle_state") == "deployed"))
    assert first["max_vehicles"].to_list() == [60]
    # The warm-up is the lead-in: its 48 hours flagged, in the occupancy mart and in data quality alike.
    flagged = mart.filter(pl.col("warm_up"))["hour"].unique().sort()
    assert flagged.to_list() == [START - 48 * H + n * H for n in range(48)]
    quality = query(warehouse, "select hour, warm_up from data_quality_hourly order by hour")
    assert quality.filter(pl.col("warm_up"))["hour"].to_list() == flagged.to_list()
    assert quality.filter(~pl.col("warm_up"))["hour"].to_list() == hours_between(*WINDOW)
    # Within the warm-up the counts are lower bounds: never above the truth.
    warm = mart.filter(pl.col("warm_up")).join(truth, on=["zone_id", "vehicle_state", "hour"], how="left")
    assert (warm["max_vehicles"] <= warm["max"].fill_null(0)).all()


@pytest.mark.integration
@pytest.mark.slow
def test_without_a_lead_in_the_first_hours_are_flagged_and_short(parked_city: ParkedCity) -> None:
    warehouse = parked_city.without_lead_in
    mart = _zone_occupancy(warehouse)
    deployed = mart.filter(pl.col("vehicle_state") == "deployed").sort("hour")
    # The window's first hour: the truth has 60 parked vehicles; only those heard from in the hour are seen.
    assert deployed["max_vehicles"][0] < 30
    # Every hour of a history shorter than the lead-in is warm-up.
    assert deployed["warm_up"].all() and deployed.height == 24
    assert query(warehouse, "select bool_and(warm_up) as all from data_quality_hourly")["all"][0]


@pytest.mark.integration
@pytest.mark.slow
def test_reports_say_which_hours_are_warm_up(parked_city: ParkedCity, tmp_path: Path) -> None:
    files = export_report(parked_city.with_lead_in.path, ZONE, date(2026, 3, 26), date(2026, 3, 28), tmp_path)
    figures = {r["figure"]: r["value"] for r in pl.read_parquet(files.parquet["key_figures"]).iter_rows(named=True)}
    # The lead-in, 03-26 00:00 to 03-28 00:00 UTC, is 48 hours of the local days (UTC+1) 03-26 to 03-28.
    assert figures["warm_up_hours"] == 48
    # Local 03-26 begins at 03-25 23:00 UTC, an hour before the data: 23 hours; 03-27 all 24; 03-28 its first.
    daily = pl.read_parquet(files.parquet["daily"])
    assert daily["warm_up_hours"].to_list() == [23, 24, 1]
    assert pl.read_parquet(files.parquet["data_quality_daily"])["warm_up_hours"].to_list() == [23, 24, 1]
    hourly = pl.read_parquet(files.parquet["hourly"])
    # The data's 72 hours but the last (03-28 23:00 UTC is local 03-29), the first 48 warm-up.
    assert hourly["warm_up"].to_list() == [True] * 48 + [False] * 23
    page = files.html.read_text()
    assert "<strong>Warm-up.</strong> 48 hours of this period" in page
    assert '<th class="num" scope="col">Warm-up hours</th>' in page
    last = export_report(parked_city.with_lead_in.path, ZONE, date(2026, 3, 28), date(2026, 3, 28), tmp_path / "b")
    assert "<strong>Warm-up.</strong> 1 hour of this period" in last.html.read_text()
    # A period after the warm-up says nothing of it.
    later = export_report(parked_city.with_lead_in.path, ZONE, date(2026, 3, 29), date(2026, 3, 29), tmp_path / "c")
    assert "Warm-up.</strong>" not in later.html.read_text()


@pytest.mark.integration
@pytest.mark.slow
def test_a_vehicle_silent_longer_than_the_lead_in_stays_unknown_until_it_moves(tmp_path: Path) -> None:
    """Parked up to three days before the window, read with a 48-hour lead-in: after the warm-up the mart lacks
    exactly the vehicles dropped off before the lead-in that have not spoken since (none is counted twice)."""
    provider = parked_provider(parked_days=3)
    _ingest(provider, tmp_path / "lake", hours_between(START - 48 * H, WINDOW[1]))
    warehouse = Warehouse(tmp_path / "w.duckdb", tmp_path / "lake", lead_in_hours=LEAD_IN_HOURS)
    warehouse.build()
    events = truth_frames(provider)["events"].sort("timestamp")
    dropped = events.group_by("device_id", maintain_order=True).agg(
        pl.col("timestamp").first().alias("dropped"), pl.col("timestamp").slice(1, 1).first().alias("next_event")
    )
    # Never moving again: missing all day.
    unseen = dropped.filter(pl.col("dropped") < START - 48 * H).with_columns(pl.col("next_event").fill_null(WINDOW[1]))
    assert 0 < unseen.height < 60  # some vehicles parked before the lead-in, most within it
    mart = _zone_occupancy(warehouse).filter(pl.col("vehicle_state") == "deployed")
    truth = _truth(ParkedCity(provider, warehouse, warehouse), warehouse).filter(pl.col("vehicle_state") == "deployed")
    hours = hours_between(*WINDOW)
    # Each unseen vehicle is missing, parked, from the window's start until its next event (then the lake has it).
    missing_s = [
        sum(max(0.0, (min(nxt, hour + H) - max(START, hour)).total_seconds()) for nxt in unseen["next_event"].to_list())
        for hour in hours
    ]
    compared = (
        pl.DataFrame({"hour": hours, "missing_s": missing_s})
        .with_columns(pl.col("hour").cast(pl.Datetime("ms", "UTC")))
        .join(truth.select("hour", "seconds"), on="hour")
        .join(mart.select("hour", "state_seconds", "warm_up"), on="hour")
    )
    assert compared.height == 24 and not compared["warm_up"].any()
    assert compared["missing_s"][0] > 0  # the window's first hour lacks them
    assert ((compared["seconds"] - compared["state_seconds"]) - compared["missing_s"]).abs().max() < 1e-6  # type: ignore[operator]


# -- the lead-in a backfill plans -------------------------------------------------------------------------------


def test_the_lead_in_fetches_only_from_the_first_hour_the_lake_lacks(tmp_path: Path) -> None:
    window_start = datetime(2026, 3, 10, 2, tzinfo=UTC)
    for n in (1, 2, 3):
        write_events(tmp_path, "1", window_start - n * H, [])
        write_trips(tmp_path, "1", window_start - n * H, [])
    write_events(tmp_path, "145", window_start - H, [])
    write_trips(tmp_path, "145", window_start - H, [])
    settings = Settings(lake_dir=tmp_path, history_start=date(2026, 1, 1))
    # Four hours asked for: zone 1 holds the last three, zone 145 only the last; a run covers one range of hours.
    both = plan_lead_in(settings, ("1", "145"), window_start, 4)
    assert both.hours == [window_start - n * H for n in (4, 3, 2, 1)]
    assert (both.in_lake, both.first_to_fetch, both.clipped) == (1, window_start - 4 * H, False)
    assert plan_lead_in(settings, ("1",), window_start, 4).in_lake == 3
    held = plan_lead_in(settings, ("1",), window_start, 3)
    assert (held.in_lake, held.first_to_fetch) == (3, None)  # all in the lake: the run starts at the window
    # The history starts at midnight: 02:00 has two hours before it, not four.
    cut = plan_lead_in(settings.model_copy(update={"history_start": date(2026, 3, 10)}), ("1",), window_start, 4)
    assert (len(cut.hours), cut.in_lake, cut.first_to_fetch, cut.clipped) == (2, 2, None, True)
    assert plan_lead_in(settings, ("1",), window_start, 0).hours == []
