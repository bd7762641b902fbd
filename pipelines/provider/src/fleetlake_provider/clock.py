"""The provider's notion of time: "now" of the simulated city (wall time in production use, an anchored or fixed
time in tests), and the steady clock its HTTP face waits and expires things by (the rate window, token lifetimes,
429 storms, slow replies), which a test replaces by a virtual one so that a minute of trouble takes no time."""

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol

HOUR_MS = 3_600_000


class Clock(Protocol):
    def now_ms(self) -> int: ...


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class AnchoredClock:
    """Starts at `anchor` and advances in real time, so a served past still has an "hour not ready yet"."""

    def __init__(self, anchor: datetime) -> None:
        self._anchor_ms = int(anchor.astimezone(UTC).timestamp() * 1000)
        self._started = time.monotonic_ns()

    def now_ms(self) -> int:
        return self._anchor_ms + (time.monotonic_ns() - self._started) // 1_000_000


class FixedClock:
    """Stands still until told otherwise; tests move it explicitly."""

    def __init__(self, at: datetime) -> None:
        self._now_ms = int(at.astimezone(UTC).timestamp() * 1000)

    def now_ms(self) -> int:
        return self._now_ms

    def set(self, at: datetime) -> None:
        self._now_ms = int(at.astimezone(UTC).timestamp() * 1000)

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)


class SteadyClock(Protocol):
    """Seconds that only go forward, and the one way to wait for them to pass."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemSteadyClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_STEADY_CLOCK = SystemSteadyClock()
