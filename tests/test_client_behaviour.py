"""The client's promises, in-process (tests/misbehaving.py: the embedded provider behind an httpx transport, and a
clock that moves only when the client waits): 5xx and cut bodies retried with a growing back-off until the
attempts run out, an expired token replaced once, a token renewed before it expires, a 429 holding back every
caller of the rate limiter, the limiter's bound in any window, and `links.next` followed to its end, never in a
circle and never to another host. No test here opens a socket or sleeps."""

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

import httpx
import msgspec
import pytest

from fleetlake_provider import mds
from fleetlake_provider.service import SimulatedProvider
from pipelines.ingest import IngestReport, ingest_hours
from pipelines.lake.store import Lake
from pipelines.voi.client import TOKEN_REFRESH_MARGIN_S, Page, VoiRequestError
from pipelines.voi.ratelimit import RateLimiter
from tests.conftest import START, make_provider
from tests.misbehaving import BASE, FakeClock, Misbehaving, client, is_trips, settings

HOUR = START + timedelta(hours=10)
TOKEN = "/v1/partner-apis/token"


@pytest.fixture(scope="module")
def provider() -> SimulatedProvider:
    return make_provider(zones=("1", "145"), vehicles=30, days=1, page_size=4)


def ingest(transport: Misbehaving, tmp_path: Path, **kwargs: object) -> IngestReport:
    """mds_trips of HOUR for zones 1 and 145 through `transport`."""
    config = settings(tmp_path)

    async def run() -> IngestReport:
        async with client(transport, config, **kwargs) as voi:
            return await ingest_hours(voi, Lake(config.lake_dir), ["1", "145"], [HOUR], ["mds_trips"])

    return asyncio.run(run())


def status_of(report: IngestReport, zone: str) -> tuple[str, str | None, int]:
    (result,) = [r for r in report.results if r.zone_id == zone]
    return result.status, result.error, result.rows


def trips_in_hour(provider: SimulatedProvider, zone: str) -> int:
    trips = mds.trips(provider, zone, HOUR.strftime("%Y-%m-%dT%H"))
    assert isinstance(trips, dict) and isinstance(trips["trips"], list)
    return len(trips["trips"])


def departures(transport: Misbehaving, zone: str) -> list[float]:
    """When (on the injected clock) each request for zone's trips left."""
    return [t for t, r in transport.seen if is_trips(r, zone)]


# -- transient trouble is retried, and only so often ---------------------------------------------------------


def test_server_errors_are_retried_with_a_growing_back_off(provider: SimulatedProvider, tmp_path: Path) -> None:
    """500, 502 and 503, then the answer: three back-offs of 0.2, 0.4 and 0.8 s, each with up to 0.5 s of jitter
    (tenacity's wait_exponential_jitter(multiplier=0.2, jitter=0.5)), and every trip lands."""
    errors = [500, 502, 503]

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1") and errors:
            return httpx.Response(errors.pop(0), json={"error": "internal server error"})
        return None

    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path)
    assert status_of(report, "1") == ("written", None, trips_in_hour(provider, "1"))
    assert status_of(report, "145")[0] == "written"
    assert report.retry_reasons == {"500": 1, "502": 1, "503": 1}
    left = departures(transport, "1")
    assert len(left) == 4
    waits = [later - earlier for earlier, later in itertools.pairwise(left)]
    for wait, base in zip(waits, (0.2, 0.4, 0.8), strict=True):
        assert base <= wait <= base + 0.5, waits


def test_retries_run_out_after_max_attempts_and_fail_only_their_partition(
    provider: SimulatedProvider, tmp_path: Path
) -> None:
    async def rule(request: httpx.Request) -> httpx.Response | None:
        return httpx.Response(503, json={"error": "unavailable"}) if is_trips(request, "1") else None

    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path, max_attempts=4)
    status, error, rows = status_of(report, "1")
    assert (status, rows) == ("failed", 0)
    assert error is not None and error.endswith("failed after 4 attempts: 503")
    assert len(departures(transport, "1")) == 4
    assert report.retry_reasons == {"503": 4}
    assert status_of(report, "145") == ("written", None, trips_in_hour(provider, "145"))
    assert not list((tmp_path / "lake" / "mds_trips" / "zone_id=1").rglob("*.parquet"))


def test_a_body_cut_short_is_fetched_again_and_nothing_is_lost(provider: SimulatedProvider, tmp_path: Path) -> None:
    cut: list[int] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1") and not cut:
            whole = await transport.inner.handle_async_request(request)
            body = await whole.aread()
            cut.append(len(body))
            return httpx.Response(200, headers={"content-type": whole.headers["content-type"]}, content=body[:-40])
        return None

    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path)
    assert cut and cut[0] > 40
    assert report.retry_reasons == {"cut body": 1}
    assert status_of(report, "1") == ("written", None, trips_in_hour(provider, "1"))
    assert len(departures(transport, "1")) == 2


# -- tokens --------------------------------------------------------------------------------------------------


def test_a_token_refused_before_its_time_is_replaced_once(provider: SimulatedProvider, tmp_path: Path) -> None:
    """The provider may expire a token before its `expires_in`: its 401 brings one fresh token and the request
    again with it; a second 401 for the fresh token is a refusal, not a reason to loop."""
    refused: list[str] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if is_trips(request, "1") and len(refused) < limit:
            refused.append(request.headers["authorization"])
            return httpx.Response(401, json={"error": "unauthorized: expired access token"})
        return None

    limit = 1
    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path)
    assert status_of(report, "1") == ("written", None, trips_in_hour(provider, "1"))
    assert len(transport.paths(TOKEN)) == 2
    first, second = (r.headers["authorization"] for t, r in transport.seen if is_trips(r, "1"))
    assert refused == [first] and second != first
    assert report.retries == 0  # a refreshed token is not a retry

    limit = 2
    refused.clear()
    transport = Misbehaving(provider, rule)
    report = ingest(transport, tmp_path / "again")
    status, error, _ = status_of(report, "1")
    assert status == "failed"
    assert error is not None and "unauthorized (HTTP 401); check VOI_CLIENT_ID and VOI_CLIENT_SECRET" in error
    assert len(refused) == 2 and len(set(refused)) == 2
    assert len(transport.paths(TOKEN)) == 2


def test_a_token_is_renewed_before_it_expires(provider: SimulatedProvider, tmp_path: Path) -> None:
    """expires_in is 900 s: the token is used until 60 s (TOKEN_REFRESH_MARGIN_S) before that, then replaced
    before a request goes out, so the provider never sees an expired one."""
    transport = Misbehaving(provider)
    clock = transport.clock

    async def run() -> list[int]:
        tokens = []
        async with client(transport, settings(tmp_path)) as voi:
            for advance in (0.0, 900 - TOKEN_REFRESH_MARGIN_S - 1, 2.0, 900 - TOKEN_REFRESH_MARGIN_S - 1):
                clock.t += advance
                await voi.mds_trips("1", HOUR)
                tokens.append(voi.stats.token_refreshes)
        return tokens

    assert asyncio.run(run()) == [1, 1, 2, 2]
    assert len(transport.paths(TOKEN)) == 2
    assert transport.app.stats.get(401, 0) == 0


# -- the rate limit ------------------------------------------------------------------------------------------


def test_a_429_holds_back_every_caller_for_its_retry_after() -> None:
    """The limiter is shared by the whole process: once a 429 asks for 30 s, no caller's next slot comes sooner,
    and the slots after it are spaced as before (60 / (600 - 10) s)."""
    clock = FakeClock()
    limiter = RateLimiter(per_minute=600, burst=10, clock=clock)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    limiter.pause(30.0)
    first, second = limiter.reserve(), limiter.reserve()
    assert first == pytest.approx(30.0)
    assert second - first == pytest.approx(60 / 590)


def test_the_limiter_never_admits_more_than_its_limit_in_any_window() -> None:
    """100 a minute with a burst of 10: ten at once, then one every 60 / 90 s. Of 300 requests in a row, request
    i (from 9 on) leaves at (i - 9) × 2/3 s: 99 in the first minute, never more than 100 in any minute, and the
    last at 290 × 2/3 s."""
    clock = FakeClock()
    limiter = RateLimiter(per_minute=100, burst=10, clock=clock)

    async def admit_all() -> list[float]:
        admitted = []
        for _ in range(300):
            await limiter.acquire()
            admitted.append(clock.monotonic())
        return admitted

    admitted = asyncio.run(admit_all())
    assert admitted[:10] == [0.0] * 10
    assert admitted[10] == pytest.approx(2 / 3)
    assert admitted[-1] == pytest.approx(290 * 2 / 3)
    assert sum(1 for t in admitted if t < 60.0 - 1e-9) == 99
    busiest = max(sum(1 for t in admitted if start <= t < start + 60.0 - 1e-9) for start in admitted)
    assert busiest <= 100


# -- paging --------------------------------------------------------------------------------------------------


def test_links_next_is_followed_to_the_whole_set(provider: SimulatedProvider, tmp_path: Path) -> None:
    """Pages of 4 events: the client follows every `links.next` and the pages together hold exactly the events
    of the hour, in order."""
    transport = Misbehaving(provider)
    hour = HOUR.strftime("%Y-%m-%dT%H")
    whole = mds.events_historical(make_provider(zones=("1", "145"), vehicles=30, days=1), "1", hour, 0, None)
    assert isinstance(whole, dict) and isinstance(whole["events"], list)

    async def run() -> list[Page]:
        async with client(transport, settings(tmp_path)) as voi:
            return await voi.mds_events_historical("1", HOUR)

    pages = asyncio.run(run())
    events = [e for page in pages for e in msgspec.json.decode(page.body)["events"]]
    assert len(pages) == -(-len(whole["events"]) // 4) >= 3
    assert [e["event_id"] for e in events] == [e["event_id"] for e in whole["events"]]
    assert pages[-1].next_url is None


@pytest.mark.parametrize("where", ["seen", "elsewhere"])
def test_links_next_never_loops_nor_leaves_the_host(provider: SimulatedProvider, tmp_path: Path, where: str) -> None:
    """A `links.next` back to a page already read ends the chain; one to another host fails the request without
    sending the token there."""
    transport = Misbehaving(provider)
    first_url: list[str] = []

    async def rule(request: httpx.Request) -> httpx.Response | None:
        if "/events/historical" not in request.url.path:
            return None
        if not first_url:
            first_url.append(str(request.url))
        target = first_url[0] if where == "seen" else "https://elsewhere.test/v1/partner-apis/mds/1/events/historical"
        body = {"version": "2.0.0", "events": [], "links": {"next": target}}
        return httpx.Response(200, headers={"content-type": "application/vnd.mds+json;version=2.0"}, json=body)

    transport.rule = rule

    async def run() -> list[Page]:
        async with client(transport, settings(tmp_path)) as voi:
            return await voi.mds_events_historical("1", HOUR)

    if where == "seen":
        assert len(asyncio.run(run())) == 1
    else:
        with pytest.raises(VoiRequestError, match=r"links\.next points at another host"):
            asyncio.run(run())
    assert all(r.url.host == httpx.URL(BASE).host for _, r in transport.seen)
    assert len(transport.paths("/events/historical")) == 1
