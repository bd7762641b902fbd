"""`fleetlake import`: an archive of the simulator's own responses, written to files, imports into a warehouse whose
marts are the API-ingested ones, in each MDS version: one city whose zones are read in 2.0, 1.2 and 0.4 (as a city
moving between versions is), ingested once over the API and once from its archive, compared zone by zone."""

import asyncio
import gzip
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.service import SimulatedProvider
from pipelines.archives import Stated, accounted, import_archives
from pipelines.config import Settings
from pipelines.ingest import (
    GBFS_DATASETS,
    GBFS_FEED,
    MDS_SNAPSHOT_DATASETS,
    ZONE_DATASETS,
    ingest_hours,
    ingest_snapshots,
)
from pipelines.lake.mds_versions import MdsVersion
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from tests.conftest import CREDENTIALS, NOW, SPECS, START, make_provider
from tests.scenario import query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VERSIONS: dict[str, MdsVersion] = {"1": "2.0", "9": "1.2", "145": "0.4"}
"""Each zone of the city and the MDS version it is read (and archived) in."""
ZONES = tuple(VERSIONS)
HOURS = [START + timedelta(hours=h) for h in range(6)]
WINDOW = (HOURS[0], HOURS[-1] + timedelta(hours=1))
SNAPSHOTS = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
SAMPLES = SPECS / "samples"


@pytest.fixture(scope="module")
def city() -> SimulatedProvider:
    """A small city (40 vehicles a zone, one day) of which six hours are read: cheap to ingest and build twice."""
    return make_provider(vehicles=40, days=1, zones=ZONES)


def settings_for(root: Path) -> Settings:
    return Settings(
        api_base_url="http://provider",
        maas_base_url="http://provider",
        zones=ZONES,
        lake_dir=root / "lake",
        mds_versions=tuple(VERSIONS.items()),
        legacy_mds_base_url="http://mds-legacy",
    )


def transport(city: SimulatedProvider) -> httpx.ASGITransport:
    return httpx.ASGITransport(ProviderApp(city, CREDENTIALS, rate_limit_per_minute=1_000_000).app)


def api_ingest(city: SimulatedProvider, root: Path) -> Warehouse:
    settings = settings_for(root)

    async def ingest() -> None:
        async with VoiClient(settings, transport=transport(city)) as client:
            lake = Lake(settings.lake_dir)
            hourly = await ingest_hours(client, lake, ZONES, HOURS)
            taken = await ingest_snapshots(client, lake, ZONES, SNAPSHOTS, captured_at=NOW)
        assert not hourly.with_status("failed") and not taken.with_status("failed")

    asyncio.run(ingest())
    warehouse = Warehouse(root / "warehouse.duckdb", settings.lake_dir)
    warehouse.build()
    return warehouse


def write_archive(city: SimulatedProvider, folder: Path) -> None:
    """The simulator's own responses, as a city keeps them: a folder per zone, MDS pages one file each (every other
    one gzip'd), the snapshot feeds beside them; the zone API's zone list once, in the first zone's folder."""
    settings = settings_for(folder)

    def keep(path: Path, body: bytes, squeeze: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if squeeze:
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(body))
        else:
            path.write_bytes(body)

    async def fetch() -> None:
        async with VoiClient(settings, transport=transport(city)) as client:
            for zone in ZONES:
                here = folder / f"zone-{zone}"
                for n, hour in enumerate(HOURS):
                    for name, pages in (
                        ("trips", await client.mds_trips(zone, hour)),
                        ("events", await client.mds_events_historical(zone, hour)),
                    ):
                        for p, page in enumerate(pages):
                            keep(here / f"{name}-{hour:%Y%m%dT%H}-{p}.json", page.body, squeeze=n % 2 == 1)
                for feed in GBFS_FEED.values():
                    keep(here / "gbfs" / f"{feed}.json", (await client.gbfs(zone, feed)).body, squeeze=False)
                vehicles = await client.mds_vehicles(zone)
                for p, page in enumerate(vehicles):
                    keep(here / f"vehicles-{p}.json", page.body, squeeze=False)
                if VERSIONS[zone] == "2.0":  # 1.2 and 0.4 say both in /vehicles
                    for p, page in enumerate(await client.mds_vehicles_status(zone)):
                        keep(here / f"vehicles_status-{p}.json", page.body, squeeze=False)
                keep(here / "zone" / "areas.json", (await client.zone_areas(zone)).body, squeeze=False)
                keep(here / "zone" / "occupancy.json", (await client.areas_occupancy(zone)).body, squeeze=False)
            keep(folder / f"zone-{ZONES[0]}" / "zone" / "info.json", (await client.zone_info()).body, squeeze=True)

    asyncio.run(fetch())


@dataclass(frozen=True)
class Imported:
    api: Warehouse
    imported: Warehouse


@pytest.fixture(scope="module")
def imported(city: SimulatedProvider, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    root = tmp_path_factory.mktemp("archive")
    api = api_ingest(city, root / "api")
    write_archive(city, root / "archive")
    lake = Lake(root / "imported" / "lake")
    for zone in ZONES:
        report = import_archives(
            lake, [root / "archive" / f"zone-{zone}"], Stated(zone=zone, captured_at=NOW), complete=WINDOW
        )
        assert report.failed == [] and report.skipped == []
        for name, got, kept in accounted(report):
            assert got == kept, name
    warehouse = Warehouse(root / "imported" / "warehouse.duckdb", lake.root)
    warehouse.build()
    return Imported(api, warehouse)


MARTS = {
    "trips": "trip_id",
    "vehicle_state_intervals": "device_id, started_at",
    "occupancy_hourly": "all",
    "compliance_violations": "all",
    "gbfs_occupancy_hourly": "all",
    "fleet_utilization_daily": "all",
}


def zone_of(version: MdsVersion) -> str:
    return next(zone for zone, said in VERSIONS.items() if said == version)


@pytest.mark.parametrize("version", ["2.0", "1.2", "0.4"])
@pytest.mark.parametrize("mart", MARTS)
def test_imported_marts_equal_the_api_ingested(imported: Imported, mart: str, version: MdsVersion) -> None:
    sql = f"select * from {mart} where zone_id = '{zone_of(version)}' order by {MARTS[mart]}"
    ours, theirs = query(imported.imported, sql), query(imported.api, sql)
    assert ours.height > 0 or mart == "compliance_violations"
    assert ours.equals(theirs), mart


@pytest.mark.parametrize("version", ["2.0", "1.2", "0.4"])
def test_imported_hours_are_delivered_like_the_api_ones(imported: Imported, version: MdsVersion) -> None:
    columns = "zone_id, hour, mds_trips_records, mds_events_records, coverage, missing_partitions, warm_up"
    sql = f"select {columns} from data_quality_hourly where zone_id = '{zone_of(version)}' order by hour"
    ours = query(imported.imported, sql)
    assert ours.equals(query(imported.api, sql))
    assert ours.height == len(HOURS)
    assert set(ours["coverage"]) == {1}


@pytest.mark.parametrize("version", ["2.0", "1.2", "0.4"])
def test_imported_trips_are_the_true_trips(imported: Imported, city: SimulatedProvider, version: MdsVersion) -> None:
    from fleetlake_provider.truth import truth_frames

    zone = zone_of(version)
    truth = truth_frames(city)["trips"].filter(
        pl.col("end_time").is_between(WINDOW[0], WINDOW[1], closed="left") & (pl.col("zone_id") == zone)
    )
    sql = f"select trip_id, mds_version from trips where zone_id = '{zone}' order by trip_id"
    trips = query(imported.imported, sql)
    assert trips.height > 0
    assert trips["trip_id"].to_list() == sorted(truth["trip_id"].to_list())
    assert set(trips["mds_version"]) == {version}
