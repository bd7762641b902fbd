"""`zone_backfill_job` (assets/fanout.py) on one machine: the same marts as `fleetlake backfill`, a zone that
fails fails alone, and the executor chosen by FLEETLAKE_EXECUTOR."""

import asyncio
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from rich.console import Console

from assets import executors
from assets.definitions import defs
from assets.fanout import zone_mapping_key
from assets.resources import resources_for
from cli.backfill import run_backfill
from cli.snapshots import SNAPSHOT_DATASETS
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.server import running
from pipelines.config import Settings, SettingsError
from pipelines.ingest import ingest_snapshots
from pipelines.lake.store import Lake
from pipelines.needed_snapshots import NEEDED_BY_MARTS
from pipelines.voi.client import VoiClient
from tests.conftest import CREDENTIALS, START, loopback_settings, make_provider

ZONES = ("1", "145")
WINDOW = (START + timedelta(hours=8), START + timedelta(hours=10))
LEAD_IN_HOURS = 2
CAPTURED_AT = WINDOW[1] + timedelta(minutes=5)


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    city = make_provider(zones=ZONES, days=1, vehicles=30)
    with running(ProviderApp(city, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        yield url


def take_snapshots(settings: Settings) -> None:
    """Every snapshot at one capture time, so both runs' marts see the same ones."""

    async def take() -> None:
        async with VoiClient(settings) as client:
            await ingest_snapshots(client, Lake(settings.lake_dir), settings.zones, SNAPSHOT_DATASETS, CAPTURED_AT)

    asyncio.run(take())


def run_fan_out(settings: Settings, zones: tuple[str, ...] = ()) -> dg.ExecuteInProcessResult:
    config: dict[str, Any] = {"start": WINDOW[0].isoformat(), "end": WINDOW[1].isoformat()}
    config |= {"lead_in_hours": LEAD_IN_HOURS, "zones": list(zones)}
    with dg.DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def("zone_backfill_job").execute_in_process(
            run_config={"ops": {"zones_to_backfill": {"config": config}}},
            resources=resources_for(settings),
            instance=instance,
            raise_on_error=False,
        )


def marts(path: Path) -> dict[str, list[tuple[object, ...]]]:
    from tests.test_scale_out import marts as scale_out_marts

    return scale_out_marts(path)


@pytest.mark.integration
@pytest.mark.slow
def test_the_fanned_out_backfill_builds_the_marts_of_fleetlake_backfill(provider_url: str, tmp_path: Path) -> None:
    single = loopback_settings(provider_url, tmp_path / "single", zones=ZONES)
    fanned = loopback_settings(provider_url, tmp_path / "fanned", zones=ZONES)
    for settings in (single, fanned):
        take_snapshots(settings)
    with dg.DagsterInstance.ephemeral() as instance:  # in memory: half the CPU of SQLite on disk
        console = Console(file=io.StringIO())
        assert run_backfill(single, *WINDOW, console, lead_in_hours=LEAD_IN_HOURS, dagster_instance=instance)
    result = run_fan_out(fanned)
    assert result.success
    zone_steps = sorted(
        str(e.step_key) for e in result.all_events if e.is_step_success and "ingest_zone" in str(e.step_key)
    )
    assert zone_steps == ["ingest_zone[145]", "ingest_zone[1]"]
    hours = LEAD_IN_HOURS + 2
    for zone in ZONES:  # the lead-in and the window, of both datasets
        assert len(list(Path(fanned.lake_dir).glob(f"mds_events/zone_id={zone}/date=*/hour=*/part-0.parquet"))) == hours
    fanned_marts, single_marts = marts(fanned.warehouse), marts(single.warehouse)
    assert len(single_marts["trips"]) > 50
    assert fanned_marts == single_marts


@pytest.mark.integration
@pytest.mark.slow
def test_a_zone_that_fails_fails_alone(provider_url: str, tmp_path: Path) -> None:
    """A zone the provider does not know: its step reports it, zone 1 is ingested and built, the run fails
    naming the zone to rerun; the snapshots a zone lacked are taken first, all datasets of their jobs."""
    settings = loopback_settings(provider_url, tmp_path, zones=("1", "777"))
    result = run_fan_out(settings, zones=("1", "777"))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "build_zone_window"
    assert "1 zone(s) did not land whole: 777" in str(failure.event_specific_data)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("select distinct zone_id::varchar from trips").fetchall() == [("1",)]
    taken = sorted(p.name for p in Path(settings.lake_dir).iterdir() if (p / "zone_id=1").is_dir())
    # What the marts need, and the other datasets of the same snapshot jobs (GBFS vehicle status, occupancy).
    assert {*NEEDED_BY_MARTS, "gbfs_vehicle_status", "zone_area_occupancy", "mds_vehicle_status"} <= set(taken)


def test_the_executor_is_chosen_by_configuration() -> None:
    assert executors.fan_out_executor(Settings(max_processes=4)).name == "multiprocess"
    assert executors.fan_out_executor(Settings(executor="in_process")) is dg.in_process_executor
    with pytest.raises(SettingsError, match="FLEETLAKE_EXECUTOR=celery needs FLEETLAKE_CELERY_BROKER"):
        executors.fan_out_executor(Settings(executor="celery"))
    celery = executors.fan_out_executor(Settings(executor="celery", celery_broker="redis://127.0.0.1:6379/0"))
    assert celery.name == "celery"
    with pytest.raises(SettingsError, match="FLEETLAKE_EXECUTOR must be multiprocess, in_process or celery"):
        Settings(executor="kubernetes")
    with pytest.raises(SettingsError, match="FLEETLAKE_MAX_PROCESSES must be a positive whole number"):
        Settings(max_processes=0)


def test_a_lake_in_a_bucket_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", "s3://city-lake/fleetlake/")
    assert str(Settings.from_env().lake_dir) == "s3://city-lake/fleetlake"
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", "data/lake")
    assert Settings.from_env().lake_dir == Path("data/lake")
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", "s3:///no-bucket")
    with pytest.raises(SettingsError, match="FLEETLAKE_LAKE_DIR must be a folder or s3://bucket/prefix"):
        Settings.from_env()


def test_zone_step_keys_never_collide_and_are_keys_dagster_takes() -> None:
    """Dagster's mapping keys allow no `-`; zones `a-b` and `a_b` must still get steps of their own."""
    zones = ["a-b", "a_b", "a__b", "a_hb", "a-hb", "a--b", "a_-b", "145", "Zone_1-x"]
    keys = [zone_mapping_key(zone) for zone in zones]
    assert len(set(keys)) == len(zones), dict(zip(zones, keys, strict=True))
    assert keys[:2] == ["a_hb", "a__b"]
    assert keys[7] == "145"  # plain ids keep their own name
    for zone, key in zip(zones, keys, strict=True):
        assert dg.DynamicOutput(zone, mapping_key=key).mapping_key == key
    with pytest.raises(ValueError, match="invalid zone id"):
        zone_mapping_key("../etc")
