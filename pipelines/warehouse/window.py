"""A build's window of hours: what a window build rebuilds, and what of the lake and the tables its SQL reads.

A full build is the window FULL_WINDOW (every time the lake can hold), so one SQL text serves both builds.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

Window = tuple[datetime, datetime]
FULL_WINDOW: Window = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def window_parameters(window: Window | None) -> dict[str, Any]:
    """The values a model's SQL may use: the window (the whole history in a full build), and the lake's `hour`
    folders it touches (its own hours when it lies within one UTC day, else every hour), so that a read of the
    lake opens only the window's files, not its days'."""
    start, end = window or FULL_WINDOW
    first, last = start.astimezone(UTC), (end - timedelta(microseconds=1)).astimezone(UTC)
    one_day = first.date() == last.date()
    return {
        "window_start": start,
        "window_end": end,
        "window_hour_from": first.hour if one_day else 0,
        "window_hour_to": last.hour if one_day else 23,
    }


def window_days(window: Window | None) -> list[str]:
    """The lake's `date=` folder names a window touches (UTC days), or `*` for every day."""
    if window is None:
        return ["*"]
    first, last = window[0].astimezone(UTC).date(), (window[1] - timedelta(microseconds=1)).astimezone(UTC).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
