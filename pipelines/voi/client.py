"""The one place that speaks HTTP to Voi: auth, versions, the rate limit, retries and paging.

Errors a caller must tell apart are types: `HourNotReady` (202: try the partition later, write nothing),
`FutureHour` (404 for an hour that has not happened: not an alert), `VoiAuthError`, `VoiRequestError`.
Transient trouble (429, 5xx, timeouts, cut bodies) never reaches the caller unless retries run out.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any

import httpx
import msgspec
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from pipelines.config import Settings
from pipelines.voi.ratelimit import PROCESS_LIMITER, RateLimiter

MDS_ACCEPT = "application/vnd.mds+json;version=2.0"
TOKEN_PATH = "/v1/partner-apis/token"
TOKEN_REFRESH_MARGIN_S = 60.0


class VoiError(Exception):
    """Base of everything the client raises."""


class HourNotReady(VoiError):
    """HTTP 202: the hour has ended but the provider has not published it yet."""


class FutureHour(VoiError):
    """HTTP 404 for an hour that has not happened yet."""


class VoiAuthError(VoiError):
    """Credentials refused, even after a fresh token."""


class VoiRequestError(VoiError):
    """A request that failed for good: a 4xx other than the above, or retries exhausted."""


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Envelope(msgspec.Struct):
    """Just the paging links of a response; decoding it also proves the body is complete JSON."""

    links: dict[str, Any] | None = None


@dataclass
class Page:
    url: str
    status: int
    body: bytes
    next_url: str | None = None

    @cached_property
    def payload(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    token_refreshes: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def count_retry(self, reason: str) -> None:
        self.retries += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


def hour_param(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y-%m-%dT%H")


class VoiClient:
    """Async client for the light-integration (MDS, GBFS) and deep-integration (zone) APIs.

    Use one per event loop: `async with VoiClient(settings) as client: ...`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        max_in_flight: int = 16,
        max_attempts: int = 10,
        timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.limiter = limiter or PROCESS_LIMITER
        self.max_attempts = max_attempts
        self.stats = ClientStats()
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
            headers={"User-Agent": "fleetlake/0.1"},
        )
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> "VoiClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # -- auth ---------------------------------------------------------------------------------------------

    async def _bearer(self, stale: str | None = None) -> str:
        async with self._token_lock:
            fresh = self._token is not None and self._token != stale
            if fresh and time.monotonic() < self._token_expires - TOKEN_REFRESH_MARGIN_S:
                return self._token  # type: ignore[return-value]
            response = await self._send(
                "POST",
                self.settings.api_base_url + TOKEN_PATH,
                auth=(self.settings.client_id, self.settings.client_secret.reveal()),
                data={"grant_type": "client_credentials"},
                gated=False,
            )
            if response.status_code in (400, 401, 403):
                raise VoiAuthError(f"token request refused with HTTP {response.status_code}")
            if response.status_code != 200:
                raise VoiRequestError(f"token request failed with HTTP {response.status_code}")
            payload = msgspec.json.decode(response.content)
            self._token = str(payload["access_token"])
            self._token_expires = time.monotonic() + float(payload.get("expires_in", 900))
            self.stats.token_refreshes += 1
            return self._token

    # -- transport ----------------------------------------------------------------------------------------

    async def _send(
        self, method: str, url: str, *, bearer: bool = False, gated: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One request with rate limiting and retries of everything transient; returns the final response.

        With `bearer`, the access token is attached only once the rate limiter lets the request go, so a
        request that waited in the queue never leaves with a token that expired while it waited.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=10.0, jitter=0.5),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        return await self._attempt(method, url, bearer, gated, **kwargs)
                    except _Transient as e:
                        self.stats.count_retry(e.reason)
                        raise
        except _Transient as e:
            raise VoiRequestError(
                f"{method} {_redact(url)} failed after {self.max_attempts} attempts: {e.reason}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(self, method: str, url: str, bearer: bool, gated: bool, **kwargs: Any) -> httpx.Response:
        await self.limiter.acquire()
        # The token request skips the in-flight gate: requests holding the gate may be waiting for it.
        async with self._in_flight if gated else contextlib.nullcontext():
            if bearer:
                kwargs["headers"] = {**kwargs["headers"], "Authorization": f"Bearer {await self._bearer()}"}
            self.stats.requests += 1
            try:
                response = await self._http.request(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                raise _Transient(type(e).__name__) from None
        if response.status_code == 429:
            retry_after = _retry_after(response)
            self.limiter.pause(retry_after)
            raise _Transient("429", retry_after)
        if response.status_code >= 500:
            raise _Transient(str(response.status_code))
        if response.status_code == 200:
            try:
                envelope = msgspec.json.decode(response.content, type=_Envelope)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise _Transient("cut body") from None
            next_url = (envelope.links or {}).get("next")
            response.extensions["fleetlake_next"] = next_url if isinstance(next_url, str) and next_url else None
        return response

    async def _get(self, url: str, *, accept: str | None, auth: str, params: dict[str, str] | None = None) -> Page:
        headers = {"Accept": accept or "application/json"}
        if auth == "maas":
            headers["X-Auth-Token"] = self.settings.auth_token.reveal()
            response = await self._send("GET", url, headers=headers, params=params)
        else:
            response = await self._send("GET", url, bearer=True, headers=headers, params=params)
            if response.status_code == 401:  # expired early or revoked: one fresh token, once
                used = response.request.headers.get("authorization", "").removeprefix("Bearer ")
                await self._bearer(stale=used)
                response = await self._send("GET", url, bearer=True, headers=headers, params=params)
        status = response.status_code
        if status == 200:
            return Page(str(response.url), status, response.content, response.extensions.get("fleetlake_next"))
        if status == 202:
            raise HourNotReady(f"{_redact(str(response.url))}: hour not ready yet")
        if status == 401:
            raise VoiAuthError(f"{_redact(str(response.url))}: unauthorized")
        if status == 404 and _is_future(params, response.headers.get("date")):
            raise FutureHour(f"{_redact(str(response.url))}: hour is in the future")
        raise VoiRequestError(f"GET {_redact(str(response.url))} answered HTTP {status}: {response.text[:200]}")

    async def _pages(self, url: str, *, accept: str | None, params: dict[str, str] | None = None) -> list[Page]:
        """All pages of a paged MDS response, following `links.next`."""
        pages = [await self._get(url, accept=accept, auth="bearer", params=params)]
        seen = {pages[0].url}
        while True:
            next_url = pages[-1].next_url
            if not next_url or next_url in seen:
                return pages
            if httpx.URL(next_url).netloc != httpx.URL(url).netloc:  # never send our token elsewhere
                raise VoiRequestError(f"{_redact(url)}: links.next points at another host: {_redact(next_url)}")
            seen.add(next_url)
            pages.append(await self._get(next_url, accept=accept, auth="bearer"))

    # -- endpoints ----------------------------------------------------------------------------------------

    def _mds(self, zone: str, path: str) -> str:
        return f"{self.settings.api_base_url}/v1/partner-apis/mds/{zone}/{path}"

    async def mds_trips(self, zone: str, hour: datetime) -> list[Page]:
        return await self._pages(self._mds(zone, "trips"), accept=MDS_ACCEPT, params={"end_time": hour_param(hour)})

    async def mds_events_historical(self, zone: str, hour: datetime) -> list[Page]:
        return await self._pages(
            self._mds(zone, "events/historical"), accept=MDS_ACCEPT, params={"event_time": hour_param(hour)}
        )

    async def mds_events_recent(self, zone: str, start: datetime, end: datetime) -> list[Page]:
        params = {"start_time": str(_ms(start)), "end_time": str(_ms(end))}
        return await self._pages(self._mds(zone, "events/recent"), accept=MDS_ACCEPT, params=params)

    async def mds_vehicles(self, zone: str) -> list[Page]:
        return await self._pages(self._mds(zone, "vehicles"), accept=MDS_ACCEPT)

    async def mds_vehicles_status(self, zone: str) -> list[Page]:
        return await self._pages(self._mds(zone, "vehicles/status"), accept=MDS_ACCEPT)

    async def gbfs(self, zone: str, feed: str) -> Page:
        url = f"{self.settings.api_base_url}/v1/partner-apis/gbfs/{zone}/{feed}.json"
        return await self._get(url, accept="application/json", auth="bearer")

    async def zone_info(self) -> Page:
        return await self._get(f"{self.settings.maas_base_url}/v1/zone/info", accept=None, auth="maas")

    async def zone_areas(self, zone: str) -> Page:
        return await self._get(f"{self.settings.maas_base_url}/v2/zone/id/{zone}", accept=None, auth="maas")

    async def areas_occupancy(self, zone: str) -> Page:
        return await self._get(
            f"{self.settings.maas_base_url}/v1/zone/id/{zone}/areasOccupancy", accept=None, auth="maas"
        )

    async def zones(self) -> list[str]:
        """Zone ids from the settings, else every zone the credentials can see."""
        if self.settings.zones:
            return list(self.settings.zones)
        info = (await self.zone_info()).payload
        return [str(z["zoneId"]) for z in info["data"]["attributes"]["zones"]]


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _is_future(params: dict[str, str] | None, date_header: str | None) -> bool:
    """Whether a 404 answered a request for an hour that has not ended by the provider's own clock."""
    for key in ("end_time", "event_time"):
        if params and key in params:
            try:
                hour = datetime.strptime(params[key], "%Y-%m-%dT%H").replace(tzinfo=UTC)
                now = parsedate_to_datetime(date_header) if date_header else datetime.now(UTC)
            except (ValueError, TypeError):
                return False
            return hour + timedelta(hours=1) > now
    return False


def _redact(url: str) -> str:
    """URLs carry no secrets here, but cap their length for messages."""
    return url if len(url) < 200 else url[:200] + "..."
