"""The client's notion of time: a steady clock for token lifetimes and rate-limit slots, the wall clock for HTTP
dates, and the one way to wait, so tests inject a clock that moves instantly instead of sleeping."""

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class ClientClock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
