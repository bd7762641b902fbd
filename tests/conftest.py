"""Shared fixtures: one simulated provider, in-process and over real loopback HTTP."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pipelines.provider.app import Credentials, ProviderApp
from pipelines.provider.clock import FixedClock
from pipelines.provider.server import running
from pipelines.provider.service import ProviderOptions, SimulatedProvider

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
