"""Shared fixtures: one simulated provider, in-process and over real loopback HTTP."""

import asyncio
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from filelock import FileLock

from fleetlake_provider.app import Credentials, ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
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
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
# Two days across the EU switch to summer time (2026-03-29 01:00 UTC): local-time code meets a DST change.
START = datetime(2026, 3, 28, tzinfo=UTC)
DAYS = 2
END = START + timedelta(days=DAYS)
# Late enough that every simulated hour is ready to be served.
NOW = END + timedelta(minutes=15)


def _shared_dir() -> Path:
    """The project's `shared/` folder (specs, samples, seeds): FLEETLAKE_SHARED_DIR, or beside a parent folder."""
    if os.environ.get("FLEETLAKE_SHARED_DIR"):
        return Path(os.environ["FLEETLAKE_SHARED_DIR"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "specs").is_dir():
            return parent / "shared"
    raise RuntimeError("shared/specs not found beside the repository; set FLEETLAKE_SHARED_DIR")


SHARED = _shared_dir()
SPECS = SHARED / "specs"
MDS_ACCEPT = "application/vnd.mds+json;version=2.0"
CREDENTIALS = Credentials()


def make_provider(clock: FixedClock | None = None, **options: object) -> SimulatedProvider:
    defaults: dict[str, object] = {"start": START, "days": DAYS, "vehicles": 150, "seed": 11}
    return SimulatedProvider(ProviderOptions(**{**defaults, **options}), clock or FixedClock(NOW))  # type: ignore[arg-type]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist, slow tests first (in their order). Each file goes whole to one worker (`--dist loadfile`,
    pyproject.toml), in the order of its first test: the files of the end-to-end tests start at once, side by side,
    and the files of short tests fill the workers around them, instead of a long file starting last and running
    alone. In one process the order is left as written (a module's tests together share its fixtures)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Dagster instance of the test session's own: the command line otherwise records its runs in the repo's. It
    is configured as the repo's (dagster.yaml: the event log kept open, assets/instance_storage.py), so the runs a
    test launches through the command line are recorded as a user's are."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        yield home


@pytest.fixture(scope="session", autouse=True)
def duckdb_threads() -> Iterator[None]:
    """Builds on one DuckDB thread each: the test workers already keep every core busy, and a small warehouse's
    build spends more on starting and synchronising threads than they save it (a tiny build: 15-20% less CPU)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(Settings.variable("duckdb_threads"), "1")
        yield


def loopback_settings(url: str, root: Path, zones: tuple[str, ...] = ("1", "145")) -> Settings:
    """Settings of a client of the embedded provider at `url`, its lake and warehouse under `root`."""
    return Settings(
        api_base_url=url,
        maas_base_url=url,
        client_id=CREDENTIALS.client_id,
        client_secret=Secret(CREDENTIALS.client_secret),
        auth_token=Secret(CREDENTIALS.auth_token),
        zones=zones,
        lake_dir=root / "lake",
        warehouse=root / "warehouse.duckdb",
    )


@pytest.fixture(scope="session")
def provider() -> SimulatedProvider:
    """The shared simulated city; tests must not move its clock (build their own with make_provider)."""
    return make_provider()


@pytest.fixture(scope="session")
def served(provider: SimulatedProvider) -> Iterator[str]:
    """Base URL of the shared provider over real HTTP on 127.0.0.1."""
    with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        yield url


def bearer(client: httpx.Client) -> dict[str, str]:
    """Headers of an authorised MDS 2.0 request."""
    response = client.post(
        "/v1/partner-apis/token",
        auth=(CREDENTIALS.client_id, CREDENTIALS.client_secret),
        data={"grant_type": "client_credentials"},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}", "Accept": MDS_ACCEPT}


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as client:
        yield client


@dataclass(frozen=True)
class BuiltWarehouse:
    """The shared provider's city, ingested into a lake and built into a DuckDB warehouse."""

    provider: SimulatedProvider
    lake: Path
    warehouse: Warehouse


def ingest_and_build(provider: SimulatedProvider, root: Path, **settings: object) -> tuple[BuiltWarehouse, int]:
    """Every hour of the window and every snapshot dataset of both zones, from `provider`'s app in-process
    (httpx's ASGI transport: the city is what these tests are about, not HTTP), into `root`/lake, then a full build
    into `root`/warehouse.duckdb; returns it with the records ingestion quarantined. `settings` override the
    client's (e.g. `mds_versions`)."""
    lake = root / "lake"
    defaults: dict[str, object] = {
        "api_base_url": "http://provider",
        "maas_base_url": "http://provider",
        "zones": ("1", "145"),
        "lake_dir": lake,
    }
    options = Settings(**{**defaults, **settings})
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)

    async def ingest() -> int:
        async with VoiClient(options, transport=httpx.ASGITransport(app.app)) as client:
            hourly = await ingest_hours(client, Lake(lake), options.zones, hours_between(START, END))
            snapshots = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
            taken = await ingest_snapshots(client, Lake(lake), options.zones, snapshots, captured_at=NOW)
        assert not hourly.with_status("failed") and not taken.with_status("failed")
        assert not hourly.with_status("not_ready") and not hourly.with_status("future")
        return hourly.summary()["quarantined"]

    quarantined = asyncio.run(ingest())
    warehouse = Warehouse(root / "warehouse.duckdb", lake)
    warehouse.build()
    return BuiltWarehouse(provider, lake, warehouse), quarantined


@pytest.fixture(scope="session")
def built_warehouse(provider: SimulatedProvider, tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """The shared city ingested and fully built, once per test session: under pytest-xdist the first worker to
    need it builds it in the session's common temporary folder while the others wait on a file lock, and then every
    worker reads the same files. Tests only read it (a test that changes a warehouse copies this one first)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return ingest_and_build(provider, tmp_path_factory.mktemp("built"))[0]
    common = tmp_path_factory.getbasetemp().parent  # one folder per session, shared by its workers
    root, done = common / "built", common / "built.done"
    with FileLock(common / "built.lock"):
        if done.exists():
            return BuiltWarehouse(provider, root / "lake", Warehouse(root / "warehouse.duckdb", root / "lake"))
        shutil.rmtree(root, ignore_errors=True)  # what a worker that failed half-way left
        root.mkdir()
        built, _ = ingest_and_build(provider, root)
        done.touch()
    return built
