"""The client and ingestion against a misbehaving provider, in-process (tests/misbehaving.py): every wait has an end
and every failure stays with its partition or zone, with a reason that names the limit or the field."""

import asyncio
import errno
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from fleetlake_provider.server import running
from fleetlake_provider.service import SimulatedProvider
from pipelines.ingest import IngestReport, ingest_hours
from pipelines.lake.store import Lake, Partition
from pipelines.voi.client import ProviderUnreachable, VoiAuthError, VoiClient, VoiRequestError, http_date
from pipelines.voi.ratelimit import RateLimiter
from tests.conftest import START, make_provider
from tests.misbehaving import BASE, Misbehaving, client, endless, gzip_bomb, is_trips, settings, trickle

HOUR = START + timedelta(hours=10)
MDS = "application/vnd.mds+json;version=2.0"


@pytest.fixture(scope="module")
def provider() -> SimulatedProvider:
    return make_provider(zones=("1", "145"), vehicles=30, days=1)


def ingest(
    transport: Misbehaving, tmp_path: Path, hours: list[datetime] | None = None, **overrides: object
) -> IngestReport:
    attempts = overrides.pop("max_attempts", None)
    config = settings(tmp_path, **overrides)

    async def run() -> IngestReport:
        kwargs = {} if attempts is None else {"max_attempts": attempts}
        async with client(transport, config, **kwargs) as voi:
            zones = await voi.zones()
            return await ingest_hours(voi, Lake(config.lake_dir), zones, hours or [HOUR], ["mds_trips"])

    return asyncio.run(run())


def by_zone(report: IngestReport) -> dict[str, tuple[str, str | None]]:
    return {r.zone_id: (r.status, r.error) for r in report.results}


def assert_written(report: IngestReport, zone: str, tmp_path: Path) -> None:
    (result,) = [r for r in report.results if r.zone_id == zone]
    assert result.status == "written", result.error
    assert result.rows > 0
    path = Lake(tmp_path / "lake").data_path(Partition("mds_trips", zone, HOUR))
    assert pl.read_parquet(path).height == result.rows


# -- every wait has an end ---------------------------------------------------------------------------------


def test_a_trickling_body_ends_at_the_request_deadline(provider: SimulatedProvider, tmp_path: Path) -> None:
    """One byte every 10 ms never lets a per-read timeout fire; the overall deadline (0.25 s) ends each attempt."""
    sent: list[int] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1"):
            return httpx.Response(200, headers={"content-type": MDS}, content=trickle(b'{"trips": [', 0.01, sent))
        return None

    transport = Misbehaving(provider, rule)
    began = time.perf_counter()
    report = ingest(transport, tmp_path, request_deadline_s=0.25, max_attempts=2)
    elapsed = time.perf_counter() - began
    status, error = by_zone(report)["1"]
    assert status == "failed"
    assert error is not None and error.endswith("failed after 2 attempts: deadline")
    assert report.retry_reasons == {"deadline": 2}
    assert_written(report, "145", tmp_path)
    assert elapsed < 3.0  # two attempts of 0.25 s, not forever
    trickled = len(sent)
    time.sleep(0.05)
    assert len(sent) == trickled, "the trickling body is still being read"


def test_an_endless_links_next_chain_fails_its_partition(provider: SimulatedProvider, tmp_path: Path) -> None:
    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1"):
            n = int(request.url.params.get("cursor", "0"))
            following = request.url.copy_merge_params({"cursor": str(n + 1)})
            body = {"version": "2.0", "trips": [], "links": {"next": str(following)}}
            return httpx.Response(200, headers={"content-type": MDS}, content=json.dumps(body).encode())
        return None

    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path, max_pages=25)
    status, error = by_zone(report)["1"]
    assert status == "failed"
    assert error is not None and "links.next still leads on after 25 pages (FLEETLAKE_MAX_PAGES)" in error
    assert len(transport.paths("/mds/1/trips")) == 25
    assert_written(report, "145", tmp_path)


def _retry_after_a_day(now: datetime) -> dict[str, str]:
    return {"Retry-After": format_datetime(now + timedelta(days=1), usegmt=True)}


@pytest.mark.parametrize(
    "headers",
    [lambda now: {"Retry-After": "86400"}, _retry_after_a_day],
    ids=["seconds", "http-date"],
)
def test_a_retry_after_beyond_the_cap_fails_the_partition_not_the_process(
    provider: SimulatedProvider, tmp_path: Path, headers: object
) -> None:
    transport = Misbehaving(provider)

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1"):
            return httpx.Response(429, headers=headers(transport.clock.now()), json={"error": "slow down"})  # type: ignore[operator]
        return None

    transport.rule = rule
    report = ingest(transport, tmp_path)
    status, error = by_zone(report)["1"]
    assert status == "failed"
    assert error is not None
    assert "HTTP 429 asks to wait 86,400 s" in error
    assert "longer than FLEETLAKE_MAX_RETRY_AFTER_SECONDS=300" in error
    assert len(transport.paths("/mds/1/trips")) == 1  # not retried
    assert_written(report, "145", tmp_path)
    assert max(transport.clock.slept, default=0.0) < 1.0  # nobody paused for the day


PROVIDER_DATE = "Mon, 30 Mar 2026 00:15:00 GMT"


@pytest.mark.parametrize(
    ("retry_after", "date"),
    [
        (lambda now: "90", None),
        # An HTTP date is read against the reply's own Date (the provider's clock), in any zone notation ...
        (lambda now: "Mon, 30 Mar 2026 00:16:30 GMT", PROVIDER_DATE),
        (lambda now: "Mon, 30 Mar 2026 00:16:30 -0000", "Mon, 30 Mar 2026 00:15:00 -0000"),
        (lambda now: "Mon, 30 Mar 2026 02:16:30 +0200", PROVIDER_DATE),
        # ... and against our clock when the reply has no Date.
        (lambda now: format_datetime(now + timedelta(seconds=90), usegmt=True), None),
    ],
    ids=["seconds", "http-date", "http-date-0000", "http-date-offset", "http-date-no-date-header"],
)
def test_a_retry_after_within_the_cap_is_waited_in_either_form(
    provider: SimulatedProvider, tmp_path: Path, retry_after: object, date: str | None
) -> None:
    """The second request leaves exactly 90 s (of the injected clock) after the 429, not 1 s."""
    transport = Misbehaving(provider)
    answered: list[int] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1") and not answered:
            answered.append(429)
            headers = {"Retry-After": retry_after(transport.clock.now())}  # type: ignore[operator]
            if date:
                headers["Date"] = date
            return httpx.Response(429, headers=headers, json={"error": "rate limit exceeded"})
        return None

    transport.rule = rule
    report = ingest(transport, tmp_path)
    assert_written(report, "1", tmp_path)
    assert_written(report, "145", tmp_path)
    first, second = [t for t, r in transport.seen if is_trips(r, "1")]
    assert second - first == pytest.approx(90.0, abs=1e-3)  # and one rate-limit slot (60 µs)
    assert report.retry_reasons == {"429": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon, 30 Mar 2026 00:15:00 GMT", datetime(2026, 3, 30, 0, 15, tzinfo=UTC)),
        ("Mon, 30 Mar 2026 00:15:00 -0000", datetime(2026, 3, 30, 0, 15, tzinfo=UTC)),
        ("Mon, 30 Mar 2026 02:15:00 +0200", datetime(2026, 3, 30, 0, 15, tzinfo=UTC)),
        ("Monday, 30-Mar-26 00:15:00 GMT", datetime(2026, 3, 30, 0, 15, tzinfo=UTC)),  # RFC 850
        ("Mon Mar 30 00:15:00 2026", datetime(2026, 3, 30, 0, 15, tzinfo=UTC)),  # asctime
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_http_dates_in_every_form_are_aware_utc(text: str | None, expected: datetime | None) -> None:
    parsed = http_date(text)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


def test_a_gzip_bomb_is_abandoned_at_the_size_limit(provider: SimulatedProvider, tmp_path: Path) -> None:
    """An endless gzip stream of zeros (1 MiB of content per ~1 KiB sent): reading stops past 8 MiB."""
    produced: list[int] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1"):
            headers = {"content-type": MDS, "content-encoding": "gzip"}
            return httpx.Response(200, headers=headers, content=gzip_bomb(produced))
        return None

    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path, max_response_bytes=8 * 2**20)
    status, error = by_zone(report)["1"]
    assert status == "failed"
    assert error is not None
    assert "response body larger than 8,388,608 bytes decompressed (FLEETLAKE_MAX_RESPONSE_BYTES)" in error
    assert sum(produced) <= 10 * 2**20  # the limit and at most a chunk or two in flight
    assert len(transport.paths("/mds/1/trips")) == 1  # a bomb is not retried
    assert_written(report, "145", tmp_path)


def test_an_endless_plain_body_is_abandoned_at_the_size_limit(provider: SimulatedProvider, tmp_path: Path) -> None:
    sent: list[int] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1"):
            return httpx.Response(200, headers={"content-type": MDS}, content=endless(b"[" * 65536, sent))
        return None

    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path, max_response_bytes=2**20)
    status, error = by_zone(report)["1"]
    assert status == "failed" and error is not None and "larger than 1,048,576 bytes" in error
    assert sum(sent) <= 2**20 + 2 * 65536
    assert_written(report, "145", tmp_path)


# -- errors outside the client's own types -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "named"),
    [
        ({"access_token": "tok-0123456789abcdef", "token_type": "bearer", "expires_in": "soon"}, "$.expires_in"),
        ({"token_type": "bearer", "expires_in": 900}, "access_token"),
        ({"access_token": "", "expires_in": 900}, "$.access_token"),
        (["tok-0123456789abcdef"], "Expected `object`"),
    ],
    ids=["expires-in-soon", "no-access-token", "empty-access-token", "not-an-object"],
)
def test_an_unusable_token_reply_fails_the_partitions_with_its_reason(
    provider: SimulatedProvider, tmp_path: Path, reply: object, named: str
) -> None:
    async def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/v1/partner-apis/token":
            return httpx.Response(200, json=reply)
        return None

    report = ingest(Misbehaving(provider, rule), tmp_path)
    assert [r.status for r in report.results] == ["failed", "failed"]
    for result in report.results:
        assert result.error is not None
        assert result.error.startswith(f"token reply from {BASE}/v1/partner-apis/token is unusable: ")
        assert named in result.error
        assert "tok-0123456789abcdef" not in result.error


def test_a_date_header_with_minus_0000_tells_future_from_missing(provider: SimulatedProvider, tmp_path: Path) -> None:
    """RFC 5322's `-0000` (UTC, zone unknown): the standard library returns a naive time for it, which crashed the
    comparison with an aware hour and with it the whole run."""

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1"):
            return httpx.Response(404, headers={"Date": "Mon, 30 Mar 2026 00:15:00 -0000"}, json={"error": "none"})
        return None

    past, future = datetime(2026, 3, 29, 10, tzinfo=UTC), datetime(2026, 3, 30, 3, tzinfo=UTC)
    report = ingest(Misbehaving(provider, rule), tmp_path, hours=[past, future], zones=("1",))
    statuses = {r.hour: (r.status, r.error) for r in report.results}
    assert statuses[future] == ("future", None)
    assert statuses[past][0] == "failed"
    assert "answered HTTP 404" in str(statuses[past][1])


class FullDisk(Lake):
    """A lake whose disk is full for one zone's folders (writing raises ENOSPC, as the OS does)."""

    def __init__(self, root: Path, full_zone: str) -> None:
        super().__init__(root)
        self.full_zone = full_zone

    def write_raw(self, p: Partition, pages: list[bytes], stem: str = "response") -> int:
        if p.zone_id == self.full_zone:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write_raw(p, pages, stem)


def test_a_full_disk_fails_its_partition_and_the_others_go_on(provider: SimulatedProvider, tmp_path: Path) -> None:
    config = settings(tmp_path)
    transport = Misbehaving(provider)

    async def run() -> IngestReport:
        async with client(transport, config) as voi:
            return await ingest_hours(voi, FullDisk(config.lake_dir, "1"), ["1", "145"], [HOUR], ["mds_trips"])

    report = asyncio.run(run())
    assert by_zone(report)["1"] == ("failed", "OSError: [Errno 28] No space left on device")
    assert_written(report, "145", tmp_path)


def test_a_zone_id_that_fails_validation_fails_that_zone_only(provider: SimulatedProvider, tmp_path: Path) -> None:
    zones = {"data": {"attributes": {"zones": [{"zoneId": 1}, {"zoneId": "../145"}, {"zoneId": 145}]}}}

    async def rule(request: httpx.Request) -> httpx.Response | None:
        return httpx.Response(200, json=zones) if request.url.path == "/v1/zone/info" else None

    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path, zones=())
    status, error = by_zone(report)["../145"]
    assert status == "failed"
    assert error is not None and error.startswith("ValueError: invalid zone id '../145'")
    assert not transport.paths("/mds/../145")  # nothing was asked for it
    assert_written(report, "1", tmp_path)
    assert_written(report, "145", tmp_path)


def test_refused_credentials_stop_the_run_after_one_token_request(provider: SimulatedProvider, tmp_path: Path) -> None:
    async def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/v1/partner-apis/token":
            return httpx.Response(401, json={"error": "invalid_client"})
        return None

    transport = Misbehaving(provider, rule)
    hours = [HOUR + timedelta(hours=n) for n in range(3)]
    report = ingest(transport, tmp_path, hours=hours)
    assert len(report.results) == 6
    assert all(r.status == "failed" for r in report.results)
    assert all("check VOI_CLIENT_ID and VOI_CLIENT_SECRET" in str(r.error) for r in report.results)
    assert len(transport.paths("/token")) == 1
    assert not transport.paths("/mds/")


def test_a_refused_connection_stops_the_run_after_three_attempts(provider: SimulatedProvider, tmp_path: Path) -> None:
    async def rule(request: httpx.Request) -> httpx.Response | None:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    transport = Misbehaving(provider, rule)
    hours = [HOUR + timedelta(hours=n) for n in range(3)]
    report = ingest(transport, tmp_path, hours=hours)
    assert all(r.status == "failed" for r in report.results)
    assert all("connection refused 3 times" in str(r.error) for r in report.results)
    assert len(transport.seen) == 3
    assert sum(transport.clock.slept) < 2.0  # two short back-offs, not minutes


def test_the_client_raises_its_own_types_for_refusal_and_unreachability(
    provider: SimulatedProvider, tmp_path: Path
) -> None:
    async def refused(request: httpx.Request) -> httpx.Response | None:
        raise httpx.ConnectError("refused", request=request)

    async def unauthorized(request: httpx.Request) -> httpx.Response | None:
        return httpx.Response(401, json={})

    async def call(rule: object) -> None:
        async with client(Misbehaving(provider, rule), settings(tmp_path)) as voi:  # type: ignore[arg-type]
            await voi.authenticate()

    with pytest.raises(ProviderUnreachable):
        asyncio.run(call(refused))
    with pytest.raises(VoiAuthError):
        asyncio.run(call(unauthorized))


# -- credentials never travel in an error text -------------------------------------------------------------


def test_an_error_body_echoing_the_token_is_scrubbed(provider: SimulatedProvider, tmp_path: Path) -> None:
    tokens: list[str] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1"):
            token = request.headers["authorization"].removeprefix("Bearer ")
            tokens.append(token)
            echo = f"bad request; you sent Authorization: Bearer {token} (token {token})"
            return httpx.Response(400, text=echo)
        return None

    report = ingest(Misbehaving(provider, rule), tmp_path)
    status, error = by_zone(report)["1"]
    assert status == "failed" and error is not None
    assert tokens and tokens[0] not in error
    assert "Authorization: Bearer *** (token ***)" in error
    assert_written(report, "145", tmp_path)


# -- the same over a real socket ---------------------------------------------------------------------------


class TricklingServer:
    """A real HTTP server whose MDS trips body trickles one byte every 0.2 s, forever."""

    def __init__(self) -> None:
        self.sent: list[int] = []

        async def token(request: object) -> JSONResponse:
            return JSONResponse({"access_token": "trickle-token-0123456789", "expires_in": 900})

        async def trips(request: object) -> StreamingResponse:
            return StreamingResponse(trickle(b'{"trips": [', 0.2, self.sent), media_type=MDS)

        self.app = Starlette(
            routes=[
                Route("/v1/partner-apis/token", token, methods=["POST"]),
                Route("/v1/partner-apis/mds/1/trips", trips),
            ]
        )


@pytest.mark.integration
def test_over_a_real_socket_the_read_timeout_never_fires_but_the_deadline_does(tmp_path: Path) -> None:
    """httpx's read timeout (here 1 s) restarts with every byte, so a body trickling a byte every 0.2 s would never
    time out; the overall deadline (1.5 s) ends the request."""
    server = TricklingServer()
    with running(server) as url:  # type: ignore[arg-type]
        config = settings(tmp_path, api_base_url=url, maas_base_url=url, request_deadline_s=1.5)

        async def fetch() -> None:
            async with VoiClient(config, limiter=RateLimiter(1e6, 1000), max_attempts=1, timeout_s=1.0) as voi:
                await voi.mds_trips("1", HOUR)

        began = time.perf_counter()
        with pytest.raises(VoiRequestError, match="failed after 1 attempts: deadline"):
            asyncio.run(fetch())
        elapsed = time.perf_counter() - began
    assert 1.5 <= elapsed < 4.0
    assert len(server.sent) >= 5  # bytes kept arriving well past the 1 s read timeout
