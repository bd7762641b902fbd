"""The one place that speaks HTTP to Voi: auth, versions, the rate limit, retries and paging.

Errors a caller must tell apart are types: `HourNotReady` (202: try the partition later, write nothing),
`FutureHour` (404 for an hour that has not happened: not an alert), `VoiAuthError` and `ProviderUnreachable`
(nothing else will work either: stop the run), `VoiRequestError` (this request failed for good).
Transient trouble (429, 5xx, timeouts, cut bodies) never reaches the caller unless retries run out.

Requests go through aiohttp under httpx's API (pipelines/voi/transport.py), a third of the CPU per response of
httpx's own transport; a transport passed in (the tests' in-process provider) replaces it.

Every wait has an end: each request, body included, has an overall deadline (a body trickling one byte at a time
restarts httpx's per-read timeout forever); a `links.next` chain is followed for at most `max_pages` pages; a
Retry-After (seconds or an HTTP date) longer than `max_retry_after_s` fails the request rather than pausing the
process; a body is read while counting its decompressed bytes and abandoned beyond `max_response_bytes`. Every
error message is scrubbed of credentials, since a provider's error body can echo them.
"""

import asyncio
import contextlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Annotated, Any

import aiohttp
import httpx
import msgspec
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from pipelines import lenient_json
from pipelines.config import Settings
from pipelines.lake.mds_versions import MEDIA_TYPES, MdsVersion
from pipelines.scrub import remember_secret, scrub
from pipelines.voi.clock import SYSTEM_CLOCK, ClientClock
from pipelines.voi.ratelimit import PROCESS_LIMITER, RateLimiter
from pipelines.voi.transport import NetworkTransport

MDS_ACCEPT = "application/vnd.mds+json;version=2.0"
INSURANCE_ACCEPT = "application/vnd.insurance+json;version=2.0"
"""The insurance trips' media type (the seed's "Insurance providers" section)."""
TOKEN_PATH = "/v1/partner-apis/token"
LEGACY_TOKEN_PATH = "/token"
"""The MDS 1.2 and 0.4 host's own token endpoint (the seed: `POST mds.voiapp.io/token`)."""
TOKEN_REFRESH_MARGIN_S = 60.0
CONNECT_ATTEMPTS = 3
"""Refused connections are retried this often only: a provider that is down stays down for the whole run."""


class VoiError(Exception):
    """Base of everything the client raises; its message never carries a credential."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


class HourNotReady(VoiError):
    """HTTP 202: the hour has ended but the provider has not published it yet."""


class FutureHour(VoiError):
    """HTTP 404 for an hour that has not happened yet."""


class VoiAuthError(VoiError):
    """Credentials refused, even after a fresh token."""


class VoiRequestError(VoiError):
    """A request that failed for good: a 4xx other than the above, retries exhausted, or a limit reached."""


class ProviderUnreachable(VoiError):
    """The provider refused the connection (or its name did not resolve) on every attempt."""


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Envelope(msgspec.Struct):
    """Just the paging links of a response; decoding it also proves the body is complete JSON."""

    links: dict[str, Any] | None = None


class _TokenReply(msgspec.Struct):
    """The fields of an OAuth2 token reply the client relies on, typed: a reply without them is unusable."""

    access_token: Annotated[str, msgspec.Meta(min_length=1)]
    expires_in: float = 900.0


@dataclass
class _TokenSlot:
    """One token endpoint's access token: the API host and the legacy MDS host each issue their own."""

    token: str | None = None
    expires: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Reply:
    """One response, its body read in full within the request's deadline and size limit."""

    status: int
    url: str
    headers: httpx.Headers
    body: bytes
    authorization: str
    next_url: str | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


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
        clock: ClientClock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.limiter = limiter or PROCESS_LIMITER
        self.max_attempts = max_attempts
        self.stats = ClientStats()
        limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
        self._http = httpx.AsyncClient(
            transport=transport or NetworkTransport(limits=limits),
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            limits=limits,
            headers={"User-Agent": "fleetlake/0.1"},
        )
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._tokens: dict[str, _TokenSlot] = {}
        """By token URL."""
        self._fatal: VoiAuthError | ProviderUnreachable | None = None
        """Credentials refused or provider unreachable: every later request of this client fails at once."""

    async def __aenter__(self) -> "VoiClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # -- auth ---------------------------------------------------------------------------------------------

    def _token_url(self, auth: str) -> str:
        if auth == "legacy":
            return self.settings.legacy_mds_url + LEGACY_TOKEN_PATH
        return self.settings.api_base_url + TOKEN_PATH

    async def _bearer(self, stale: str | None = None, token_url: str | None = None) -> str:
        url = token_url or self._token_url("bearer")
        slot = self._tokens.setdefault(url, _TokenSlot())
        async with slot.lock:
            fresh = slot.token is not None and slot.token != stale
            if fresh and self.clock.monotonic() < slot.expires - TOKEN_REFRESH_MARGIN_S:
                return slot.token  # type: ignore[return-value]
            reply = await self._send(
                "POST",
                url,
                auth=(self.settings.client_id, self.settings.client_secret.reveal()),
                data={"grant_type": "client_credentials"},
                gated=False,
            )
            if reply.status in (400, 401, 403):
                self._fatal = VoiAuthError(
                    f"token request refused with HTTP {reply.status} by {url}: check VOI_CLIENT_ID and "
                    "VOI_CLIENT_SECRET"
                )
                raise self._fatal
            if reply.status != 200:
                raise VoiRequestError(f"token request failed with HTTP {reply.status} at {url}")
            try:
                token = msgspec.json.decode(reply.body, type=_TokenReply)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                # The message names the field and the expected type, never the body (which holds the token).
                raise VoiRequestError(f"token reply from {url} is unusable: {e}") from None
            remember_secret(token.access_token)
            slot.token = token.access_token
            slot.expires = self.clock.monotonic() + token.expires_in
            self.stats.token_refreshes += 1
            return slot.token

    # -- transport ----------------------------------------------------------------------------------------

    async def _send(
        self, method: str, url: str, *, bearer: str | None = None, gated: bool = True, **kwargs: Any
    ) -> _Reply:
        """One request with rate limiting and retries of everything transient; returns the final response.

        With `bearer` (the token endpoint's URL), the access token is attached only once the rate limiter lets the
        request go, so a request that waited in the queue never leaves with a token that expired while it waited.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=10.0, jitter=0.5),
            sleep=self.clock.sleep,
            reraise=True,
        )
        refused = 0
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        return await self._attempt(method, url, bearer, gated, **kwargs)
                    except _Transient as e:
                        self.stats.count_retry(e.reason)
                        refused = refused + 1 if e.reason == "ConnectError" else 0
                        if refused >= CONNECT_ATTEMPTS:
                            self._fatal = ProviderUnreachable(
                                f"{method} {_redact(url)}: connection refused {refused} times; is the provider "
                                "up, and is its base URL (VOI_API_BASE_URL, VOI_MAAS_BASE_URL, "
                                "VOI_LEGACY_MDS_BASE_URL) right?"
                            )
                            raise self._fatal from None
                        raise
        except _Transient as e:
            raise VoiRequestError(
                f"{method} {_redact(url)} failed after {self.max_attempts} attempts: {e.reason}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(self, method: str, url: str, bearer: str | None, gated: bool, **kwargs: Any) -> _Reply:
        if self._fatal is not None:
            raise type(self._fatal)(str(self._fatal))
        await self.limiter.acquire()
        # The token request skips the in-flight gate: requests holding the gate may be waiting for it.
        async with self._in_flight if gated else contextlib.nullcontext():
            if bearer:
                token = await self._bearer(token_url=bearer)
                kwargs["headers"] = {**kwargs["headers"], "Authorization": f"Bearer {token}"}
            self.stats.requests += 1
            deadline = self.settings.request_deadline_s
            try:
                async with asyncio.timeout(deadline):
                    reply = await self._read(method, url, **kwargs)
            except TimeoutError:
                raise _Transient("deadline") from None
            except httpx.DecodingError:
                raise _Transient("bad content encoding") from None
            except (httpx.TimeoutException, httpx.TransportError) as e:
                raise _Transient(type(e).__name__) from None
            except aiohttp.ClientError as e:  # one the transport leaves unmapped (a malformed status line, ...)
                raise _Transient(type(e).__name__) from None
        if reply.status == 429:
            retry_after = _retry_after(reply.headers, self.clock.now())
            if retry_after > self.settings.max_retry_after_s:
                raise VoiRequestError(
                    f"{method} {_redact(url)}: HTTP 429 asks to wait {retry_after:,.0f} s (Retry-After "
                    f"{reply.headers.get('retry-after')!r}), longer than FLEETLAKE_MAX_RETRY_AFTER_SECONDS="
                    f"{self.settings.max_retry_after_s:g}"
                )
            self.limiter.pause(retry_after)
            raise _Transient("429", retry_after)
        if reply.status >= 500:
            raise _Transient(str(reply.status))
        if reply.status == 200:
            next_url = _next_link(reply.body)
            reply.next_url = next_url if isinstance(next_url, str) and next_url else None
        return reply

    async def _read(self, method: str, url: str, **kwargs: Any) -> _Reply:
        """Send and read the body, decompressed, counting its size as it arrives: a gzip bomb is abandoned at
        the limit instead of filling memory."""
        limit = self.settings.max_response_bytes
        async with self._http.stream(method, url, **kwargs) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise VoiRequestError(
                        f"{method} {_redact(str(response.url))}: response body larger than {limit:,} bytes "
                        "decompressed (FLEETLAKE_MAX_RESPONSE_BYTES); abandoned"
                    )
                chunks.append(chunk)
        return _Reply(
            status=response.status_code,
            url=str(response.url),
            headers=response.headers,
            body=b"".join(chunks),
            authorization=response.request.headers.get("authorization", ""),
        )

    async def _get(self, url: str, *, accept: str | None, auth: str, params: dict[str, str] | None = None) -> Page:
        headers = {"Accept": accept or "application/json"}
        if auth == "maas":
            headers["X-Auth-Token"] = self.settings.auth_token.reveal()
            reply = await self._send("GET", url, headers=headers, params=params)
        else:
            token_url = self._token_url(auth)
            reply = await self._send("GET", url, bearer=token_url, headers=headers, params=params)
            if reply.status == 401:  # expired early or revoked: one fresh token, once
                await self._bearer(stale=reply.authorization.removeprefix("Bearer "), token_url=token_url)
                reply = await self._send("GET", url, bearer=token_url, headers=headers, params=params)
        status = reply.status
        if status == 200:
            return Page(reply.url, status, reply.body, reply.next_url)
        if status == 202:
            raise HourNotReady(f"{_redact(reply.url)}: hour not ready yet")
        if status == 401:
            which = "VOI_AUTH_TOKEN" if auth == "maas" else "VOI_CLIENT_ID and VOI_CLIENT_SECRET"
            raise VoiAuthError(f"{_redact(reply.url)}: unauthorized (HTTP 401); check {which}")
        if status == 404 and _is_future(params, reply.headers.get("date"), self.clock.now()):
            raise FutureHour(f"{_redact(reply.url)}: hour is in the future")
        raise VoiRequestError(f"GET {_redact(reply.url)} answered HTTP {status}: {reply.text[:200]}")

    async def _pages(
        self, url: str, *, accept: str | None, params: dict[str, str] | None = None, auth: str = "bearer"
    ) -> list[Page]:
        """All pages of a paged MDS response, following `links.next`."""
        pages = [await self._get(url, accept=accept, auth=auth, params=params)]
        seen = {pages[0].url}
        while True:
            next_url = pages[-1].next_url
            if not next_url or next_url in seen:
                return pages
            if len(pages) >= self.settings.max_pages:
                raise VoiRequestError(
                    f"{_redact(url)}: links.next still leads on after {len(pages):,} pages (FLEETLAKE_MAX_PAGES); "
                    "the provider's paging does not end"
                )
            if httpx.URL(next_url).netloc != httpx.URL(url).netloc:  # never send our token elsewhere
                raise VoiRequestError(f"{_redact(url)}: links.next points at another host: {_redact(next_url)}")
            seen.add(next_url)
            pages.append(await self._get(next_url, accept=accept, auth=auth))

    # -- endpoints ----------------------------------------------------------------------------------------

    def _mds(self, zone: str, path: str) -> str:
        return f"{self.settings.api_base_url}/v1/partner-apis/mds/{zone}/{path}"

    def mds_version(self, zone: str) -> MdsVersion:
        """The MDS version the zone is read in (FLEETLAKE_MDS_VERSIONS; 2.0 unless it names the zone)."""
        return self.settings.mds_version(zone)

    async def _legacy(self, zone: str, path: str, params: dict[str, str] | None = None) -> list[Page]:
        """An MDS 1.2 or 0.4 endpoint of the legacy host (`/en/{zone}/...`), in the version the zone is read in."""
        url = f"{self.settings.legacy_mds_url}/en/{zone}/{path}"
        return await self._pages(url, accept=MEDIA_TYPES[self.mds_version(zone)], params=params, auth="legacy")

    async def mds_trips(self, zone: str, hour: datetime) -> list[Page]:
        params = {"end_time": hour_param(hour)}
        if self.mds_version(zone) != "2.0":
            return await self._legacy(zone, "trips", params)
        return await self._pages(self._mds(zone, "trips"), accept=MDS_ACCEPT, params=params)

    async def mds_events_historical(self, zone: str, hour: datetime) -> list[Page]:
        params = {"event_time": hour_param(hour)}
        if self.mds_version(zone) != "2.0":
            return await self._legacy(zone, "status_changes", params)
        return await self._pages(self._mds(zone, "events/historical"), accept=MDS_ACCEPT, params=params)

    async def mds_events_recent(self, zone: str, start: datetime, end: datetime) -> list[Page]:
        params = {"start_time": str(_ms(start)), "end_time": str(_ms(end))}
        if self.mds_version(zone) != "2.0":
            return await self._legacy(zone, "events", params)
        return await self._pages(self._mds(zone, "events/recent"), accept=MDS_ACCEPT, params=params)

    async def mds_vehicles(self, zone: str) -> list[Page]:
        if self.mds_version(zone) != "2.0":
            return await self._legacy(zone, "vehicles")
        return await self._pages(self._mds(zone, "vehicles"), accept=MDS_ACCEPT)

    async def mds_vehicles_status(self, zone: str) -> list[Page]:
        """2.0's vehicle status; a legacy zone's /vehicles, which says each vehicle's last status change too."""
        if self.mds_version(zone) != "2.0":
            return await self._legacy(zone, "vehicles")
        return await self._pages(self._mds(zone, "vehicles/status"), accept=MDS_ACCEPT)

    async def insurance_trips(self, zone: str, hour: datetime) -> list[Page]:
        """The insurance trips that ended in the hour (personal data: only pipelines/insurance calls this)."""
        url = f"{self.settings.api_base_url}/v1/partner-apis/insurance/{zone}/trips"
        return await self._pages(url, accept=INSURANCE_ACCEPT, params={"end_time": hour_param(hour)})

    async def gbfs(self, zone: str, feed: str) -> Page:
        url = f"{self.settings.api_base_url}/v1/partner-apis/gbfs/{zone}/{feed}.json"
        return await self._get(url, accept="application/json", auth="bearer")

    async def gbfs_v2(self, feed: str) -> Page:
        """A GBFS 2.3 feed: account-wide, at the same host and with the same token as GBFS 3.0."""
        url = f"{self.settings.api_base_url}/gbfs/v2/{feed}.json"
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
        return await self.listed_zones()

    async def listed_zones(self) -> list[str]:
        """Every zone id the zone API lists for these credentials."""
        page = await self.zone_info()
        try:
            return [str(z["zoneId"]) for z in page.payload["data"]["attributes"]["zones"]]
        except (msgspec.DecodeError, KeyError, TypeError) as e:
            raise VoiRequestError(
                f"{_redact(page.url)}: the zone list has no data.attributes.zones[].zoneId ({e!r})"
            ) from None

    async def authenticate(self) -> None:
        """Get an access token now: proves the credentials before any data is asked for (from the legacy MDS host
        too when a zone is read there)."""
        await self._bearer()
        if any(version != "2.0" for _, version in self.settings.mds_versions):
            await self._bearer(token_url=self._token_url("legacy"))


def _next_link(body: bytes) -> Any:
    """`links.next` of a complete body; raises _Transient for a body cut short (fetching it again may help).

    A body msgspec refuses but Python's decoder reads (a NaN, a lone surrogate in one record) is complete: fetching
    it again brings the same bytes, so it is returned and parsed record by record, its raw text kept."""
    try:
        links = msgspec.json.decode(body, type=_Envelope).links
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        try:
            document = lenient_json.loads(body)
        except RecursionError:
            return None  # complete but nested beyond any reader: its partition fails when parsed, not fetched again
        except ValueError:
            raise _Transient("cut body") from None
        links = document.get("links") if isinstance(document, dict) else None
    return links.get("next") if isinstance(links, dict) else None


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def http_date(text: str | None) -> datetime | None:
    """An HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime forms) as an aware UTC datetime;
    None when it is not one. `-0000` and zone-less forms mean UTC, where the standard library returns naive."""
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _retry_after(headers: httpx.Headers, now: datetime) -> float:
    """Seconds a 429 asks to wait: `Retry-After` as delay-seconds or as an HTTP date; a date is read against the
    response's own `Date` when it has one (the provider's clock, immune to ours being off), else against `now`.
    Missing or unreadable: 1 s."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return 1.0
    with contextlib.suppress(ValueError):
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else 1.0
    until = http_date(value)
    if until is None:
        return 1.0
    reference = http_date(headers.get("date")) or now
    return max(0.0, (until - reference).total_seconds())


def _is_future(params: dict[str, str] | None, date_header: str | None, now: datetime) -> bool:
    """Whether a 404 answered a request for an hour that has not ended by the provider's own clock (its `Date`
    header; ours when it sends none or an unreadable one)."""
    for key in ("end_time", "event_time"):
        if params and key in params:
            try:
                hour = datetime.strptime(params[key], "%Y-%m-%dT%H").replace(tzinfo=UTC)
            except ValueError:
                return False
            return hour + timedelta(hours=1) > (http_date(date_header) or now)
    return False


def _redact(url: str) -> str:
    """URLs carry no secrets here, but cap their length for messages."""
    return url if len(url) < 200 else url[:200] + "..."
