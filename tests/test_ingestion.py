"""Ingestion end to end: the embedded provider over loopback HTTP, real Dagster runs, the lake on disk."""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest

from assets.launch import run_job
from assets.partition_keys import hourly_key
from assets.schedules import mds_hourly_schedule
from assets.warehouse import BUILD_TAG, CHANGED_HOURS
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.server import running
from fleetlake_provider.service import SimulatedProvider
from fleetlake_provider.truth import truth_frames
from pipelines.config import Secret, Settings
from pipelines.ingest import IngestReport, hours_between, ingest_hours, reparse
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiAuthError, VoiClient
from pipelines.voi.ratelimit import RateLimiter
from pipelines.warehouse.checks import MODEL_CHECKS
from pipelines.warehouse.dictionary import COMMON_COLUMNS
from tests.conftest import CREDENTIALS, END, START, make_provider
from tests.misbehaving import BASE, FakeClock

pytestmark = pytest.mark.integration
HOURS = hours_between(START, END)
# Three daytime hours of the first day: a range, run as one Dagster run, whose every record is compared with the
# truth. A Dagster backfill costs some bookkeeping per hourly partition, and the landing of each record is the same
# in every hour (test_every_fault_on_gives_the_same_lake reads a whole day).
BACKFILL = HOURS[8:11]
TRIPS = dg.AssetKey("trips")
KEYS = {"mds_trips": "trip_id", "mds_events": "event_id"}


def settings_for(url: str, lake_dir: Path, **overrides: object) -> Settings:
    base = Settings(
        api_base_url=url,
        maas_base_url=url,
        client_id=CREDENTIALS.client_id,
        client_secret=Secret(CREDENTIALS.client_secret),
        auth_token=Secret(CREDENTIALS.auth_token),
        zones=("1", "145"),
        lake_dir=lake_dir,
        warehouse=lake_dir.parent / f"{lake_dir.name}.duckdb",
    )
    return base.model_copy(update=overrides)


def lake_table(root: Path, dataset: str) -> pl.DataFrame:
    files = sorted(root.glob(f"{dataset}/zone_id=*/date=*/hour=*/*.parquet"))
    frame = pl.read_parquet(files, hive_partitioning=True).with_columns(pl.col("zone_id").cast(pl.String))
    return frame.drop("ingested_at").sort("zone_id", KEYS[dataset])  # when it was ingested differs between lakes


@pytest.fixture(scope="module")
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """An in-memory instance: what these tests read is each run's result, not its record on disk, and SQLite on
    disk writes every event (a hundred-odd even for a run that fails at once) through to the file."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def backfill(settings: Settings, dagster_instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = run_job(
        "mds_hourly_job",
        settings,
        first_hour=BACKFILL[0],
        last_hour=BACKFILL[-1],
        dagster_instance=dagster_instance,
    )
    assert result.success
    return result


def lake_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The metadata of the run's mds_trips materialization (a range run repeats it on every partition)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("mds_trips")]
    return dict(events[0].materialization.metadata)


def truth_in(provider: SimulatedProvider, hours: list[datetime]) -> dict[str, pl.DataFrame]:
    """The provider's trips (by end time) and events (by time) in `hours`: what their hourly partitions hold."""
    truth = truth_frames(provider)
    start, end = hours[0], hours[-1] + timedelta(hours=1)
    return {
        table: truth[table].filter(pl.col(column).is_between(start, end, closed="left"))
        for table, column in (("trips", "end_time"), ("events", "timestamp"))
    }


def assert_matches_truth(provider: SimulatedProvider, root: Path, hours: list[datetime]) -> None:
    truth = truth_in(provider, hours)
    for dataset, table in (("mds_trips", "trips"), ("mds_events", "events")):
        key = KEYS[dataset]
        lake = lake_table(root, dataset)
        expected = truth[table].select("zone_id", key).sort("zone_id", key)
        assert expected.height > 0, dataset
        assert lake.height == expected.height, f"{dataset}: {lake.height} rows, truth has {expected.height}"
        assert lake.select("zone_id", key).equals(expected), f"{dataset}: ids differ from the truth"
        assert lake[key].n_unique() == lake.height


@pytest.mark.slow
def test_backfill_lands_exactly_the_providers_records(
    provider: SimulatedProvider, served: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    result = backfill(settings_for(served, tmp_path), dagster_instance)
    assert_matches_truth(provider, tmp_path, BACKFILL)
    trips = lake_table(tmp_path, "mds_trips")
    truth = truth_in(provider, BACKFILL)["trips"].sort("zone_id", "trip_id")
    # Typed columns carry the provider's values: UTC timestamps, not raw integers.
    assert trips.schema["start_time"] == pl.Datetime("ms", "UTC")
    assert trips["end_time"].equals(truth["end_time"].cast(pl.Datetime("ms", "UTC")))
    assert trips["distance_m"].equals(truth["distance_m"].cast(pl.Float64))
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key}
    # The hourly job ingests, then builds the warehouse models downstream of the window.
    assert {"mds_trips", "mds_events", "trips", "vehicle_state_intervals"} <= materialized
    checks = result.get_asset_check_evaluations()
    # Four checks on each lake dataset, and those of the marts the run built (pipelines/warehouse/checks.py).
    lake_checks = [c for c in checks if c.asset_key.path[-1] in ("mds_trips", "mds_events")]
    assert len(lake_checks) == 8
    assert {(c.asset_key.path[-1], c.check_name) for c in checks if c not in lake_checks} == {
        (check.model, check.name) for check in MODEL_CHECKS
    }
    assert all(c.passed for c in checks), [(c.asset_key, c.check_name) for c in checks if not c.passed]
    metadata = lake_metadata(result)
    assert {"rows", "quarantined", "bytes", "window_start", "window_end", "zones", "requests", "retries"} <= set(
        metadata
    )
    assert metadata["dagster/row_count"].value == metadata["rows"].value
    # The catalog's row count, column schema (the warehouse's comments as descriptions) and last partition built.
    (built,) = [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == TRIPS]
    assert built.metadata["dagster/row_count"].value == truth.height
    schema = built.metadata["dagster/column_schema"].value
    assert isinstance(schema, dg.TableSchema)
    columns = {column.name: column for column in schema.columns}
    assert columns["trip_id"].type == "UUID" and columns["trip_id"].description == COMMON_COLUMNS["trip_id"]
    assert all(column.description for column in schema.columns)
    assert built.metadata["last_partition_built"].value == hourly_key(BACKFILL[-1])


def ingest_window(app: ProviderApp, lake_dir: Path, clock: FakeClock, hours: list[datetime]) -> IngestReport:
    """Every hour of `hours`, both zones, both hourly datasets, from `app` in-process (httpx's ASGI transport):
    what a backfill's ingestion does, without the Dagster run around it and its warehouse build
    (test_backfill_lands_exactly_the_providers_records runs those over real HTTP). Client and provider share
    `clock`, on which retry back-offs, Retry-After pauses, 429 storms, slow replies and token lifetimes pass at
    once."""
    settings = settings_for(BASE, lake_dir)
    limiter = RateLimiter(per_minute=1_000_000, burst=1_000, clock=clock)

    async def run() -> IngestReport:
        transport = httpx.ASGITransport(app=app.app)
        async with VoiClient(settings, transport=transport, limiter=limiter, clock=clock) as client:
            return await ingest_hours(client, Lake(lake_dir), settings.zones, hours)

    report = asyncio.run(run())
    assert not report.with_status("failed"), [r.error for r in report.with_status("failed")]
    return report


def test_every_fault_on_gives_the_same_lake(tmp_path: Path) -> None:
    """5xx, 429 storms, slow and cut bodies, early token expiry, duplicates, late and malformed records, all at
    once, against the real provider app in-process on a virtual clock (each fault alone:
    test_client_behaviour.py, test_provider_misbehaving.py). Fails if the client loses, duplicates or alters a
    record under any mix of them, or gives up on a transient failure."""
    clean_dir, faulty_dir = tmp_path / "clean", tmp_path / "faulty"
    # One day of the city (the faults are drawn per request and per record; a second day adds time, not cases).
    hours = hours_between(START, START + timedelta(days=1))
    ready = hours[-1] + timedelta(hours=1, minutes=15)  # every hour ready, the last hours' late records not yet
    clean_clock = FakeClock()
    clean = ProviderApp(
        make_provider(FixedClock(ready), days=1), CREDENTIALS, rate_limit_per_minute=1_000_000, steady=clean_clock
    )
    ingest_window(clean, clean_dir, clean_clock, hours)

    clock, steady = FixedClock(ready), FakeClock()
    # 429 storms and cut bodies are drawn per request (1% and 3% in all_on); over the two hundred-odd
    # requests, whose order the client's concurrency changes, a run could meet none. At 4% and 6% the chance of
    # missing either is under one in a thousand, so the assertion on the retry reasons below is not a coin toss.
    faults = replace(Faults.all_on(), token_lifetime_s=5.0, late_max_s=2 * 3600.0, burst_429_rate=0.04, cut_rate=0.06)
    faulty = make_provider(clock=clock, faults=faults, days=1)
    app = ProviderApp(faulty, CREDENTIALS, rate_limit_per_minute=1_000_000, steady=steady)
    first = ingest_window(app, faulty_dir, steady, hours)
    # Late records are not there yet; the lookback re-ingest after they are published brings them in.
    assert lake_table(faulty_dir, "mds_events").height < lake_table(clean_dir, "mds_events").height
    clock.advance(faults.late_max_s + 3600)
    second = ingest_window(app, faulty_dir, steady, hours)
    for dataset in KEYS:
        assert lake_table(faulty_dir, dataset).equals(lake_table(clean_dir, dataset)), dataset
    quarantined = pl.read_parquet(faulty_dir / "quarantine", hive_partitioning=True)
    assert quarantined.height > 0
    assert set(quarantined["dataset"]) == {"mds_trips", "mds_events"}
    # Each reason names the offending field: a path into the record, or the missing field.
    assert quarantined["reason"].str.contains(r"at `\$\.|missing required field `").all()
    reasons = {reason for report in (first, second) for reason in report.retry_reasons}
    # Transient trouble of each kind was met and retried: 429 storms, server errors and cut bodies.
    assert {"429", "cut body"} <= reasons and reasons & {"500", "502", "503"}, reasons
    assert app.stats.get(401, 0) > 0  # tokens expired early and were replaced
    assert sum(faulty.zones["1"].event_faults.duplicate) > 0
    assert steady.slept and max(steady.slept) > 0.5  # the storms' Retry-After and the back-offs were waited out


@pytest.mark.slow
def test_client_stays_under_the_rate_limit(provider: SimulatedProvider, tmp_path: Path) -> None:
    """Scaled to a 2-second window: 100 requests per window, and 120 requests (30 hours of both zones' trips and
    events) in a burst, more than one window admits. The shared city, behind an app of its own (its own rate
    limit)."""
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=100, rate_limit_window_s=2.0)
    admitted: list[float] = []
    original = app.limiter.admit

    def recording_admit() -> float | None:
        wait = original()
        if wait is None:
            admitted.append(time.monotonic())
        return wait

    app.limiter.admit = recording_admit  # type: ignore[method-assign]
    with running(app) as url:
        settings = settings_for(url, tmp_path)
        # A margin, as the process limiter keeps one (JITTER_MARGIN): a request leaves when the event loop next runs
        # it, up to a few hundred ms after its slot while the loop parses responses, so requests reach the server
        # bunched; in a window 30 times shorter than a minute that delay weighs 30 times more.
        limiter = RateLimiter(per_minute=80, burst=10, window_s=2.0)

        async def burst() -> VoiClient:
            async with VoiClient(settings, limiter=limiter) as client:
                await ingest_hours(client, Lake(tmp_path), ["1", "145"], HOURS[:30])
                return client

        client = asyncio.run(burst())
    assert client.stats.requests >= 120
    assert app.stats.get(429, 0) == 0
    busiest = max(sum(1 for t in admitted if s <= t < s + 2.0) for s in admitted)
    assert busiest <= 100
    # That it keeps close to the bound (not idling) is a matter of its slots, which real time on a loaded machine
    # cannot tell: test_client_behaviour.py checks each slot on an injected clock.


def test_a_faster_client_honours_retry_after_and_loses_nothing(provider: SimulatedProvider, tmp_path: Path) -> None:
    """48 requests (a zone's trips, hour by hour) as fast as they can go, against 30 a second: the shared city,
    behind an app of its own."""
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=30, rate_limit_window_s=1.0)
    with running(app) as url:

        async def hurry() -> VoiClient:
            async with VoiClient(settings_for(url, tmp_path), limiter=RateLimiter(10_000, burst=200)) as client:
                report = await ingest_hours(client, Lake(tmp_path), ["1"], HOURS, ["mds_trips"])
                assert all(r.status == "written" for r in report.results)
                return client

        client = asyncio.run(hurry())
    assert app.stats.get(429, 0) > 0
    assert client.stats.by_reason.get("429", 0) == app.stats[429]
    truth = truth_frames(provider)["trips"].filter(pl.col("zone_id") == "1")
    assert sorted(lake_table(tmp_path, "mds_trips")["trip_id"]) == sorted(truth["trip_id"])


def test_hour_not_ready_writes_nothing_and_is_retried(
    tmp_path: Path, dagster_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour not yet ready fails its ingestion steps, which Dagster retries (RetryRequested) and never writes a
    partial hour; once ready, the same run succeeds. The job's ingestion alone: its warehouse build is
    test_backfill_lands_exactly_the_providers_records's."""
    hour = HOURS[10]
    clock = FixedClock(hour + timedelta(hours=1, minutes=2))
    provider = make_provider(clock=clock, days=1, vehicles=30)  # a city of its own: this test moves its clock
    with running(ProviderApp(provider, CREDENTIALS)) as url:
        settings = settings_for(url, tmp_path, zones=("1",), not_ready_retry_s=0, not_ready_max_retries=2)

        async def attempt() -> list[str]:
            async with VoiClient(settings) as client:
                report = await ingest_hours(client, Lake(tmp_path), ["1"], [hour - timedelta(hours=1), hour])
                return sorted(r.status for r in report.results)

        assert asyncio.run(attempt()) == ["not_ready", "not_ready", "written", "written"]
        assert not list(tmp_path.glob(f"mds_*/zone_id=1/date=*/hour={hour:%H}/*.parquet"))

        def run() -> dg.ExecuteInProcessResult:
            return run_job(
                "mds_hourly_job",
                settings,
                first_hour=hour,
                last_hour=hour,
                dagster_instance=dagster_instance,
                asset_selection=["mds_trips", "mds_events"],
            )

        waiting = run()
        assert not waiting.success
        retries = [e for e in waiting.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert len(retries) == 2
        assert not list(tmp_path.glob(f"mds_*/zone_id=1/date=*/hour={hour:%H}/*.parquet"))
        clock.advance(15 * 60)
        assert run().success
    assert len(list(tmp_path.glob(f"mds_*/zone_id=1/date=*/hour={hour:%H}/*.parquet"))) == 2


def test_future_hours_are_skipped_not_failed(provider: SimulatedProvider, served: str, tmp_path: Path) -> None:
    async def ahead() -> list[str]:
        async with VoiClient(settings_for(served, tmp_path)) as client:
            report = await ingest_hours(client, Lake(tmp_path), ["1"], [END + timedelta(hours=5)])
            return [r.status for r in report.results]

    # Judged by the provider's clock (its Date header), not ours.
    assert asyncio.run(ahead()) == ["future", "future"]
    assert not list(tmp_path.rglob("*.parquet"))


def test_hourly_schedule_asks_for_the_last_hour_and_a_lookback(monkeypatch: pytest.MonkeyPatch) -> None:
    context = dg.build_schedule_context(scheduled_execution_time=START + timedelta(hours=30, minutes=5))
    request = mds_hourly_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-29-00:00"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-29-05:00"
    assert request.tags[BUILD_TAG] == CHANGED_HOURS  # its build rebuilds the hours that changed, not all
    monkeypatch.setenv("FLEETLAKE_LOOKBACK_HOURS", "1")
    request = mds_hourly_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-29-05:00"


def test_snapshots_land_every_dataset_with_capture_time(
    served: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    settings = settings_for(served, tmp_path)
    for job in ("gbfs_snapshot_job", "mds_vehicle_snapshot_job", "zone_geometry_job"):
        result = run_job(job, settings, dagster_instance=dagster_instance)
        assert result.success, job
        assert all(c.passed for c in result.get_asset_check_evaluations()), job
    status = pl.read_parquet(tmp_path / "gbfs_vehicle_status", hive_partitioning=True)
    assert set(status["zone_id"].cast(pl.String)) == {"1", "145"}
    assert status["captured_at"].n_unique() == 1
    areas = pl.read_parquet(tmp_path / "zone_areas", hive_partitioning=True)
    assert {"operations", "parking-spot", "no-parking"} <= set(areas["area_type"])
    info = pl.read_parquet(tmp_path / "zone_info", hive_partitioning=True)
    assert sorted(info["source_zone_id"]) == ["1", "145"]
    assert (info["source_zone_id"] == info["zone_id"].cast(pl.String)).all()
    # A snapshot partition rebuilds from its raw response alone, capture time and zone filter included.
    for dataset in ("zone_info", "gbfs_vehicle_status"):
        path = next((tmp_path / dataset / "zone_id=145").rglob("snapshot-*.parquet"))
        before = pl.read_parquet(path)
        path.unlink()
        hour = datetime.strptime(f"{path.parent.parent.name[5:]} {path.parent.name[5:]}", "%Y-%m-%d %H")
        reparse(Lake(tmp_path), dataset, "145", hour.replace(tzinfo=UTC), stem=path.stem)
        assert pl.read_parquet(path).equals(before), dataset


def test_secrets_never_leave_the_process_in_clear(
    served: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    secret = "do-not-print-this-secret"
    settings = settings_for(served, tmp_path, client_secret=Secret(secret))
    assert secret not in repr(settings)
    result = run_job(
        "mds_hourly_job",
        settings,
        first_hour=HOURS[0],
        last_hour=HOURS[0],
        dagster_instance=dagster_instance,
    )
    assert not result.success
    text = "\n".join(str(event) for event in result.all_events)
    assert "token request refused" in text
    assert secret not in text

    async def direct() -> None:
        async with VoiClient(settings) as client:
            await client.mds_trips("1", HOURS[0])

    with pytest.raises(VoiAuthError) as error:
        asyncio.run(direct())
    assert secret not in str(error.value)
