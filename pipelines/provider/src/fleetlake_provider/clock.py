"""The provider's notion of "now": wall time in production use, an anchored or fixed time in tests."""

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
