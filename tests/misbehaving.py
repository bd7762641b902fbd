"""A misbehaving Voi provider, in-process: the embedded provider behind an httpx transport that lets a rule answer
any request in its place (a body that trickles, a links.next chain without end, Retry-After in either form, a gzip
bomb, a token reply that is not one, a Date header with -0000, an error body echoing the credentials), and a clock
that moves only when the client waits, so no test sleeps."""

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.service import SimulatedProvider
from pipelines.config import Secret, Settings
from pipelines.voi.client import VoiClient
from pipelines.voi.ratelimit import RateLimiter
from tests.conftest import CREDENTIALS, NOW

BASE = "http://voi.test"
Rule = Callable[[httpx.Request], Awaitable[httpx.Response | None]]


class FakeClock:
    """Steady and wall time that advance only when the client sleeps (rate-limit pauses, retry back-off)."""

    def __init__(self, wall: datetime = NOW) -> None:
        self.t = 0.0
        self.wall = wall
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass
class Misbehaving(httpx.AsyncBaseTransport):
    """The embedded provider in-process; `rule` may answer a request instead (None: the provider answers)."""

    provider: SimulatedProvider
    rule: Rule | None = None
    clock: FakeClock = field(default_factory=FakeClock)
    seen: list[tuple[float, httpx.Request]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = ProviderApp(self.provider, CREDENTIALS, rate_limit_per_minute=1_000_000)
        self.inner = httpx.ASGITransport(app=self.app.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((self.clock.monotonic(), request))
        answer = await self.rule(request) if self.rule is not None else None
        return answer if answer is not None else await self.inner.handle_async_request(request)

    def paths(self, fragment: str) -> list[str]:
        return [r.url.path for _, r in self.seen if fragment in r.url.path]


def settings(tmp: Path, **overrides: object) -> Settings:
    base = Settings(
        api_base_url=BASE,
        maas_base_url=BASE,
        client_id=CREDENTIALS.client_id,
        client_secret=Secret(CREDENTIALS.client_secret),
        auth_token=Secret(CREDENTIALS.auth_token),
        zones=("1", "145"),
        lake_dir=tmp / "lake",
    )
    return base.model_copy(update=overrides)


def client(transport: Misbehaving, settings: Settings, **kwargs: object) -> VoiClient:
    """A client on the misbehaving transport, with its own limiter and the transport's clock."""
    limiter = RateLimiter(per_minute=1_000_000, burst=1_000, clock=transport.clock)
    return VoiClient(settings, transport=transport, limiter=limiter, clock=transport.clock, **kwargs)  # type: ignore[arg-type]


def is_trips(request: httpx.Request, zone: str) -> bool:
    return request.url.path == f"/v1/partner-apis/mds/{zone}/trips"


async def trickle(head: bytes, every_s: float, sent: list[int]) -> AsyncIterator[bytes]:
    """`head`, then one byte every `every_s` seconds, forever."""
    yield head
    while True:
        await asyncio.sleep(every_s)
        sent.append(1)
        yield b" "


async def gzip_bomb(decompressed: list[int], chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    """An endless gzip stream of zeros (about 1,000:1), flushed every `chunk` bytes of content."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    while True:
        out = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
        decompressed.append(chunk)
        yield out
        await asyncio.sleep(0)


async def endless(chunk: bytes, sent: list[int]) -> AsyncIterator[bytes]:
    """An uncompressed body that never ends."""
    while True:
        sent.append(len(chunk))
        yield chunk
        await asyncio.sleep(0)
