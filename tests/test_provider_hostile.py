"""The embedded provider's hostile faults (fleetlake_provider/hostile.py), each off by default, and the client and
ingestion bounding each one: the partition it hits fails with a reason naming the limit, the others are written."""

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx

from fleetlake_provider.faults import Faults
from pipelines.ingest import IngestReport, ingest_hours
from pipelines.lake.store import Lake
from tests.conftest import CREDENTIALS, NOW, START, make_provider
from tests.misbehaving import Misbehaving, client, settings

HOUR = START + timedelta(hours=10)
HOSTILE = (
    "trickle_rate",
    "endless_paging_rate",
    "retry_after_http_date",
    "gzip_bomb_rate",
    "bad_token_rate",
    "date_minus_zero",
    "echo_credentials_rate",
)


def hostile(**faults: float) -> Misbehaving:
    provider = make_provider(zones=("1",), vehicles=30, days=1, faults=Faults(**faults))
    return Misbehaving(provider)


def ingest(transport: Misbehaving, tmp_path: Path, **overrides: object) -> IngestReport:
    config = settings(tmp_path, zones=("1",), **overrides)

    async def run() -> IngestReport:
        async with client(transport, config, max_attempts=2) as voi:
            return await ingest_hours(voi, Lake(config.lake_dir), ["1"], [HOUR])

    return asyncio.run(run())


def errors(report: IngestReport) -> list[str]:
    assert [r.status for r in report.results] == ["failed", "failed"]
    return [str(r.error) for r in report.results]


def test_hostile_faults_are_off_by_default_and_not_part_of_all() -> None:
    for name in HOSTILE:
        assert getattr(Faults(), name) == 0.0
        assert getattr(Faults.all_on(), name) == 0.0
    assert Faults.parse("trickle_rate=1,trickle_seconds=0.5").trickle_seconds == 0.5


def test_a_trickling_provider_hits_the_deadline(tmp_path: Path) -> None:
    report = ingest(hostile(trickle_rate=1.0, trickle_seconds=0.05), tmp_path, request_deadline_s=0.3)
    assert all(e.endswith("failed after 2 attempts: deadline") for e in errors(report))


def test_endless_paging_hits_the_page_cap(tmp_path: Path) -> None:
    transport = hostile(endless_paging_rate=1.0)
    report = ingest(transport, tmp_path, max_pages=12)
    assert all("links.next still leads on after 12 pages" in e for e in errors(report))
    assert len(transport.paths("/mds/1/trips")) == 12
    assert len(transport.paths("/mds/1/events/historical")) == 12


def test_a_gzip_bomb_hits_the_size_limit(tmp_path: Path) -> None:
    report = ingest(hostile(gzip_bomb_rate=1.0, gzip_bomb_bytes=32 * 2**20), tmp_path, max_response_bytes=4 * 2**20)
    assert all("larger than 4,194,304 bytes decompressed" in e for e in errors(report))


def test_unusable_token_replies_fail_with_the_field_named(tmp_path: Path) -> None:
    report = ingest(hostile(bad_token_rate=1.0), tmp_path)
    for error in errors(report):
        assert "token reply from http://voi.test/v1/partner-apis/token is unusable" in error
        assert "$.expires_in" in error or "access_token" in error


def test_echoed_credentials_are_scrubbed(tmp_path: Path) -> None:
    transport = hostile(echo_credentials_rate=1.0)
    report = ingest(transport, tmp_path)
    issued = list(transport.app.tokens)
    assert issued  # the token endpoint answers; the data endpoints echo the token they were sent
    for error in errors(report):
        assert "answered HTTP 400" in error and "'authorization': 'Bearer ***'" in error
        assert all(token not in error for token in issued)


def raw_get(transport: Misbehaving, path: str) -> httpx.Response:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport.inner, base_url="http://voi.test") as http:
            return await http.get(path, headers={"X-Auth-Token": CREDENTIALS.auth_token})

    return asyncio.run(get())


def test_retry_after_as_an_http_date_is_read_as_the_wait_it_names(tmp_path: Path) -> None:
    """A 429 storm with 30 s left: Retry-After is the instant 30 s after the reply's Date, and the client reads it
    as 30 s (it read any HTTP date as 1 s before); above a 10 s cap, the partition fails at once."""
    transport = hostile(retry_after_http_date=1.0)
    transport.app.burst_until = time.monotonic() + 30.4
    throttled = raw_get(transport, "/v1/zone/info")
    assert throttled.status_code == 429
    assert throttled.headers["date"] == "Mon, 30 Mar 2026 00:15:00 GMT"  # the provider's clock: NOW
    assert throttled.headers["retry-after"] == "Mon, 30 Mar 2026 00:15:30 GMT"
    report = ingest(transport, tmp_path, max_retry_after_s=10.0)
    assert all("HTTP 429 asks to wait 30 s" in e for e in errors(report))


def test_date_headers_with_minus_0000_still_tell_future_hours(tmp_path: Path) -> None:
    transport = hostile(date_minus_zero=1.0)
    assert raw_get(transport, "/v1/zone/info").headers["date"] == "Mon, 30 Mar 2026 00:15:00 -0000"
    config = settings(tmp_path, zones=("1",))

    async def run() -> IngestReport:
        async with client(transport, config) as voi:
            return await ingest_hours(voi, Lake(config.lake_dir), ["1"], [HOUR, NOW + timedelta(hours=3)])

    report = asyncio.run(run())
    assert sorted(r.status for r in report.results) == ["future", "future", "written", "written"]
