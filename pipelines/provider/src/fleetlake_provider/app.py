"""The HTTP face of the simulated provider: the Voi partner API's paths, auth, versions and rate limit."""

import base64
import binascii
import os
import random
import re
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fleetlake_provider import gbfs, gbfs_v2, hostile, insurance, legacy_mds, mds, zone_api
from fleetlake_provider.clock import SYSTEM_STEADY_CLOCK, SteadyClock
from fleetlake_provider.service import Json, ProviderError, SimulatedProvider

TOKEN_TTL_S = 900
RATE_LIMIT_PER_MINUTE = 4000
MDS_MEDIA_TYPE = "application/vnd.mds+json"
Handler = Callable[[Request], Awaitable[Response]]
MDS_ACCEPT = re.compile(r"application/vnd\.mds\+json\s*;\s*version\s*=\s*\"?([0-9.]+)\"?", re.IGNORECASE)


@dataclass(frozen=True)
class Credentials:
    """What the embedded provider accepts; the client reads the same environment variables."""

    client_id: str = "fleetlake"
    client_secret: str = "fleetlake-secret"
    auth_token: str = "fleetlake-maas-token"

    @classmethod
    def from_env(cls) -> "Credentials":
        default = cls()
        return cls(
            client_id=os.environ.get("VOI_CLIENT_ID") or default.client_id,
            client_secret=os.environ.get("VOI_CLIENT_SECRET") or default.client_secret,
            auth_token=os.environ.get("VOI_AUTH_TOKEN") or default.auth_token,
        )


class SlidingWindowLimit:
    """At most `limit` requests in any `window_s` seconds over all endpoints: the documented 4,000/min."""

    def __init__(self, limit: int, window_s: float = 60.0, steady: SteadyClock = SYSTEM_STEADY_CLOCK) -> None:
        self.limit = limit
        self.window_s = window_s
        self.steady = steady
        self.window: deque[float] = deque()

    def admit(self) -> float | None:
        """None if admitted, else seconds until a slot frees up."""
        now = self.steady.monotonic()
        while self.window and self.window[0] <= now - self.window_s:
            self.window.popleft()
        if len(self.window) >= self.limit:
            return self.window[0] + self.window_s - now
        self.window.append(now)
        return None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - len(self.window))


def _json(body: Json, status: int = 200, headers: dict[str, str] | None = None, media: str | None = None) -> Response:
    return Response(msgspec.json.encode(body), status, headers, media or "application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": message, "status": status}, status, headers)


class ProviderApp:
    """Builds the Starlette app around a SimulatedProvider; state (tokens, rate window) lives here, timed by
    `steady` (the system's monotonic clock unless a test gives a virtual one)."""

    def __init__(
        self,
        provider: SimulatedProvider,
        credentials: Credentials | None = None,
        rate_limit_per_minute: int = RATE_LIMIT_PER_MINUTE,
        rate_limit_window_s: float = 60.0,
        fault_seed: int | None = None,
        steady: SteadyClock = SYSTEM_STEADY_CLOCK,
    ) -> None:
        self.provider = provider
        self.steady = steady
        self.credentials = credentials or Credentials.from_env()
        self.faults = provider.options.faults
        self.limiter = SlidingWindowLimit(rate_limit_per_minute, rate_limit_window_s, steady)
        self.tokens: dict[str, float] = {}
        self.burst_until = 0.0
        self.random = random.Random(fault_seed if fault_seed is not None else provider.options.seed)
        self.stats: dict[int, int] = {}
        mds_path = "/v1/partner-apis/mds/{zone}"
        self.app = Starlette(
            routes=[
                Route("/v1/partner-apis/token", self._endpoint(self.token, auth=None), methods=["POST"]),
                # MDS 2.0 (mds.py)
                Route(f"{mds_path}/trips", self._endpoint(self.trips, auth="bearer", mds=True)),
                Route(
                    f"{mds_path}/events/historical",
                    self._endpoint(self.events_historical, auth="bearer", mds=True),
                ),
                Route(f"{mds_path}/events/recent", self._endpoint(self.events_recent, auth="bearer", mds=True)),
                Route(f"{mds_path}/vehicles/status", self._endpoint(self.vehicles_status, auth="bearer", mds=True)),
                Route(
                    f"{mds_path}/vehicles/status/{{device}}",
                    self._endpoint(self.vehicles_status, auth="bearer", mds=True),
                ),
                Route(f"{mds_path}/vehicles", self._endpoint(self.vehicles, auth="bearer", mds=True)),
                Route(f"{mds_path}/vehicles/{{device}}", self._endpoint(self.vehicles, auth="bearer", mds=True)),
                # GBFS 3.0 (gbfs.py)
                Route("/v1/partner-apis/gbfs/{zone}/{feed}.json", self._endpoint(self.gbfs, auth="bearer")),
                # GBFS 2.3, account-wide (gbfs_v2.py); the seed's gbfs.json names itself at /gbfs/gbfs.json
                Route(f"{gbfs_v2.PREFIX}/{{feed}}.json", self._endpoint(self.gbfs_v2, auth="bearer")),
                Route(gbfs_v2.SEED_DISCOVERY_PATH, self._endpoint(self.gbfs_v2, auth="bearer")),
                # Voi's zone API (zone_api.py)
                Route("/v1/zone/info", self._endpoint(self.zone_info, auth="maas")),
                Route("/v1/zone/id/{zone}", self._endpoint(self.zone_areas_v1, auth="maas")),
                Route("/v2/zone/id/{zone}", self._endpoint(self.zone_areas_v2, auth="maas")),
                Route("/v1/zone/id/{zone}/areasOccupancy", self._endpoint(self.areas_occupancy, auth="maas")),
                # Insurance trips (insurance.py)
                Route(insurance.PATH, self._endpoint(self.insurance_trips, auth="bearer")),
                *legacy_mds.routes(self),
            ]
        )

    # -- the common path of every request ---------------------------------------------------------------

    def _endpoint(
        self, handler: Handler, auth: str | None, mds: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await self._guarded(request, handler, auth, mds)
            self.stats[response.status_code] = self.stats.get(response.status_code, 0) + 1
            # The provider's own clock, as HTTP says: clients tell "future hour" from "not found" by it.
            response.headers["Date"] = hostile.http_date(self.provider.now_ms() / 1000, self.faults)
            return response

        return endpoint

    async def _guarded(self, request: Request, handler: Handler, auth: str | None, mds: bool) -> Response:
        wait = self.limiter.admit()
        if wait is not None:
            retry = hostile.retry_after(wait + 0.5, self.provider.now_ms() / 1000, self.faults)
            return _error(429, "rate limit exceeded", {"Retry-After": retry})
        faults, rnd = self.faults, self.random
        now = self.steady.monotonic()
        if now < self.burst_until or (faults.burst_429_rate and rnd.random() < faults.burst_429_rate):
            if now >= self.burst_until:
                self.burst_until = now + faults.burst_429_seconds
            retry = hostile.retry_after(self.burst_until - now, self.provider.now_ms() / 1000, faults)
            return _error(429, "rate limit exceeded", {"Retry-After": retry})
        if faults.slow_rate and rnd.random() < faults.slow_rate:
            await self.steady.sleep(rnd.uniform(0.1, faults.slow_seconds))
        if faults.server_error_rate and rnd.random() < faults.server_error_rate:
            return _error(rnd.choice((500, 502, 503)), "internal server error")
        if auth is not None and faults.echo_credentials_rate and rnd.random() < faults.echo_credentials_rate:
            return hostile.echo_credentials(request)
        denied = self._authorize(request, auth)
        if denied is not None:
            return denied
        media = None
        if mds:
            match = MDS_ACCEPT.search(request.headers.get("accept", ""))
            if match is None or match.group(1) not in ("2.0", "2.0.0"):
                return _error(406, "Not Acceptable: this endpoint serves application/vnd.mds+json;version=2.0")
            media = f"{MDS_MEDIA_TYPE};version=2.0"
        try:
            response = await handler(request)
        except ProviderError as e:
            return _json({"error": e.message, "status": e.status}, e.status)
        response = hostile.misbehave(request, response, faults, rnd, paged=mds)
        if media is not None:
            response.headers["content-type"] = media
        response.headers["X-RateLimit-Limit"] = str(self.limiter.limit)
        response.headers["X-RateLimit-Remaining"] = str(self.limiter.remaining)
        streaming = isinstance(response, StreamingResponse)  # trickling or a gzip bomb: no body to cut
        if response.status_code == 200 and not streaming and faults.cut_rate and rnd.random() < faults.cut_rate:
            body = bytes(response.body)
            return Response(body[: rnd.randrange(max(1, len(body)))], 200, media_type=response.media_type)
        return response

    def _authorize(self, request: Request, auth: str | None) -> Response | None:
        if auth == "bearer":
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            expiry = self.tokens.get(token) if scheme.lower() == "bearer" else None
            if expiry is None or expiry <= self.steady.monotonic():
                self.tokens.pop(token, None)
                return _error(
                    401,
                    "unauthorized: missing, invalid or expired access token",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
        elif auth == "maas":
            given = request.headers.get("x-auth-token", "")
            if not secrets.compare_digest(given.encode(), self.credentials.auth_token.encode()):
                return _error(401, "unauthorized: missing or invalid X-Auth-Token")
        return None

    # -- handlers ---------------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = await request.form()
        grant = str(form.get("grant_type", "")).strip('"')
        if grant != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        given = _basic_credentials(request.headers.get("authorization", ""))
        expected = (self.credentials.client_id, self.credentials.client_secret)
        if given is None or not all(
            secrets.compare_digest(a.encode(), b.encode()) for a, b in zip(given, expected, strict=True)
        ):
            return _json({"error": "invalid_client"}, 401, {"WWW-Authenticate": 'Basic realm="token"'})
        now = self.steady.monotonic()
        self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        token = secrets.token_urlsafe(32)
        self.tokens[token] = now + (self.faults.token_lifetime_s or TOKEN_TTL_S)
        if self.faults.bad_token_rate and self.random.random() < self.faults.bad_token_rate:
            return hostile.unusable_token(self.random, token)
        return _json({"access_token": token, "expires_in": TOKEN_TTL_S, "token_type": "bearer"})

    async def trips(self, request: Request) -> Response:
        return _json(mds.trips(self.provider, request.path_params["zone"], request.query_params.get("end_time")))

    def _cursor(self, request: Request) -> tuple[int, str]:
        try:
            cursor = int(request.query_params.get("cursor", "0"))
        except ValueError:
            cursor = -1
        if cursor < 0:
            raise ProviderError("cursor must be a non-negative integer")
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"] + [("cursor", "{cursor}")]
        next_url = str(request.url.replace(query="&".join(f"{k}={v}" for k, v in query)))
        return cursor, next_url

    async def events_historical(self, request: Request) -> Response:
        cursor, next_url = self._cursor(request)
        return _json(
            mds.events_historical(
                self.provider, request.path_params["zone"], request.query_params.get("event_time"), cursor, next_url
            )
        )

    async def events_recent(self, request: Request) -> Response:
        cursor, next_url = self._cursor(request)
        q = request.query_params
        return _json(
            mds.events_recent(
                self.provider, request.path_params["zone"], q.get("start_time"), q.get("end_time"), cursor, next_url
            )
        )

    async def vehicles(self, request: Request) -> Response:
        cursor, next_url = self._cursor(request)
        return _json(
            mds.vehicles(
                self.provider, request.path_params["zone"], request.path_params.get("device"), cursor, next_url
            )
        )

    async def vehicles_status(self, request: Request) -> Response:
        cursor, next_url = self._cursor(request)
        return _json(
            mds.vehicles_status(
                self.provider, request.path_params["zone"], request.path_params.get("device"), cursor, next_url
            )
        )

    async def gbfs(self, request: Request) -> Response:
        zone = request.path_params["zone"]
        base = str(request.base_url).rstrip("/") + f"/v1/partner-apis/gbfs/{zone}"
        return _json(gbfs.feed(self.provider, zone, request.path_params["feed"], base))

    async def gbfs_v2(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return _json(gbfs_v2.feed(self.provider, request.path_params.get("feed", "gbfs"), base))

    async def insurance_trips(self, request: Request) -> Response:
        insurance.negotiate(request.headers.get("accept", ""))
        body = insurance.trips(self.provider, request.path_params["zone"], request.query_params.get("end_time"))
        return _json(body, media=insurance.MEDIA_TYPE)

    async def zone_info(self, request: Request) -> Response:
        return _json(zone_api.info(self.provider))

    async def zone_areas_v1(self, request: Request) -> Response:
        return _json(zone_api.areas(self.provider, request.path_params["zone"], version=1))

    async def zone_areas_v2(self, request: Request) -> Response:
        return _json(zone_api.areas(self.provider, request.path_params["zone"], version=2))

    async def areas_occupancy(self, request: Request) -> Response:
        return _json(zone_api.occupancy(self.provider, request.path_params["zone"]))


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
