"""Credentials never travel in an error text: `scrub` by shape and by value, and end to end through a Dagster run
and the command line against a provider whose error bodies echo what it was sent."""

import base64
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from typer.testing import CliRunner

from cli.app import app
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.server import running
from fleetlake_provider.service import SimulatedProvider
from pipelines.config import Secret
from pipelines.scrub import remember_secret, scrub
from tests.conftest import CREDENTIALS, START, make_provider

REPO = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-client-value"
HOUR = START + timedelta(hours=10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.J9abc-_~+/def=", "Authorization: Bearer ***"),
        ("headers={'authorization': 'Basic Zm9vOmJhcg=='}", "headers={'authorization': 'Basic ***'}"),
        ("X-Auth-Token: 1f2e3d4c5b6a, Accept: */*", "X-Auth-Token: ***, Accept: */*"),
        ('{"access_token": "abc.def.ghi", "expires_in": 900}', '{"access_token": "***", "expires_in": 900}'),
        (
            "grant_type=client_credentials&client_secret=hunter2&x=1",
            "grant_type=client_credentials&client_secret=***&x=1",
        ),
        ("GET https://fleet:pa55w0rd@voi.example/v1/zone/info", "GET https://***@voi.example/v1/zone/info"),
        ("?token=abc123&zone=1", "?token=***&zone=1"),
        # Prose around the names stays readable.
        ("token request refused with HTTP 401: check VOI_CLIENT_SECRET", None),
        ("hour 2026-03-28T10 answered HTTP 404", None),
    ],
)
def test_scrub_removes_credentials_by_shape(text: str, expected: str | None) -> None:
    assert scrub(text) == (text if expected is None else expected)


def test_scrub_removes_known_secret_values_wherever_they_stand() -> None:
    Secret("zone-api-token-77")  # every Secret is remembered when made
    remember_secret("issued-access-token-42")
    remember_secret("abc")  # too short to mask by value
    text = "echo: zone-api-token-77 / issued-access-token-42 / abc"
    assert scrub(text) == "echo: *** / *** / abc"


class Echo:
    """The embedded provider, except that every MDS trips request of zone 145 is answered 400 with a body that
    echoes the request's credentials, as some API gateways do."""

    def __init__(self, provider: SimulatedProvider) -> None:
        inner = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)
        self.echoed: list[str] = []

        async def echo(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            self.echoed.append(auth.removeprefix("Bearer "))
            basic = base64.b64encode(f"{CREDENTIALS.client_id}:{SECRET}".encode()).decode()
            return PlainTextResponse(
                f"invalid request {request.url}; headers: authorization={auth}; Authorization: {auth}; "
                f"{auth.removeprefix('Bearer ')}; earlier: Basic {basic}; client_secret={SECRET}",
                status_code=400,
            )

        self.app = Starlette(
            routes=[Route("/v1/partner-apis/mds/145/trips", echo), Mount("/", app=inner.app)],
        )


@pytest.fixture(scope="module")
def echo_server() -> Iterator[tuple[Echo, str]]:
    echo = Echo(make_provider(zones=("1", "145"), vehicles=30, days=1))
    with running(echo) as url:  # type: ignore[arg-type]
        yield echo, url


@pytest.mark.slow
@pytest.mark.integration
def test_an_echoed_token_reaches_neither_the_console_the_log_nor_the_dagster_event_log(
    echo_server: tuple[Echo, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fleetlake backfill` whose zone 145 answers with the request's credentials echoed in a 400 body."""
    echo, url = echo_server
    log = tmp_path / "fleetlake.log"
    for name, value in {
        "VOI_API_BASE_URL": url,
        "VOI_MAAS_BASE_URL": url,
        "FLEETLAKE_LAKE_DIR": str(tmp_path / "lake"),
        "FLEETLAKE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "FLEETLAKE_LOG_FILE": str(log),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster").mkdir()
    # The instance the checkout's `fleetlake` records its runs in (dagster.yaml: its event log kept open).
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster" / "dagster.yaml")
    hour = HOUR
    args = [
        "backfill",
        "--start",
        hour.isoformat(),
        "--end",
        (hour + timedelta(hours=1)).isoformat(),
        "--lead-in-hours",
        "0",
    ]
    outcome = CliRunner().invoke(app, [*args, "--zones", "1,145"])
    assert outcome.exit_code == 1
    tokens = set(echo.echoed)
    assert tokens
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        # The snapshots the empty lake lacks, then the backfill: every run's events are searched.
        runs = instance.get_runs()
        assert runs
        stored = "\n".join(str(entry) for run in runs for entry in instance.all_logs(run.run_id))
    assert "answered HTTP 400" in stored and "Authorization: Bearer ***" in stored
    output = outcome.output + log.read_text()
    assert "mds_trips/145/" in output and "answered HTTP 400" in output
    for text in (output, stored):
        for secret in (*tokens, SECRET, CREDENTIALS.client_secret):
            assert secret not in text
