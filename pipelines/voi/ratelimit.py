"""One rate limiter for the whole process, so concurrent requests together stay under the provider's limit."""

import threading

from pipelines.voi.clock import SYSTEM_CLOCK, ClientClock


class RateLimiter:
    """The generic cell rate algorithm: each request reserves the next free slot, then sleeps until it.

    The provider counts requests in a sliding minute, so slots spaced at 60 / (per_minute - burst) seconds
    with at most `burst` taken early can never exceed `per_minute` in any 60 s window (`window_s` scales
    the window down for tests). Reservations are
    made under a thread lock and the wait happens outside it, so one limiter serves every thread and every
    event loop of the process. A 429 pauses every caller until its Retry-After has passed (the client never
    passes one longer than FLEETLAKE_MAX_RETRY_AFTER_SECONDS).
    """

    def __init__(
        self, per_minute: float = 4000, burst: int = 40, window_s: float = 60.0, clock: ClientClock = SYSTEM_CLOCK
    ) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self.interval = window_s / max(per_minute - burst, 1.0)
        self.tolerance = (burst - 1) * self.interval
        self.theoretical_arrival = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; returns how long to wait before using it."""
        with self._lock:
            now = self.clock.monotonic()
            arrival = max(self.theoretical_arrival, now)
            self.theoretical_arrival = arrival + self.interval
            return max(0.0, arrival - self.tolerance - now)

    def pause(self, seconds: float) -> None:
        """Hold every caller back for `seconds` (a 429's Retry-After)."""
        with self._lock:
            resume = self.clock.monotonic() + seconds
            self.theoretical_arrival = max(self.theoretical_arrival, resume + self.tolerance)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self.clock.sleep(delay)


JITTER_MARGIN = 0.01
"""Requests admitted on schedule reach the provider a little bunched (scheduling, network): a 1% margin keeps the
provider's own count under its limit, where a 429 would pause every caller for its Retry-After."""

PROCESS_LIMITER = RateLimiter(per_minute=4000 * (1 - JITTER_MARGIN))
"""Shared by every client in the process unless a test gives a client its own."""
