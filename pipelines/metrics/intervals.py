"""The Metrics API's intervals: request dates, local calendar intervals (DST-correct) and their 15-minute pieces.

Every interval is a run of the warehouse's 15-minute UTC quarters: PT15M and PT1H step in absolute time from a
start on the local clock's quarter or hour (every time zone's offset is a multiple of 15 minutes, and a change of
daylight-saving time moves the clock by whole hours, so the repeated hour of an autumn night is two intervals, told
apart by their offsets); P1D and P1M run from local midnight to the next local midnight (23 or 25 hours across a
change). A measure's average divides by the interval's true length.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

QUARTER = timedelta(minutes=15)
INTERVALS = ("PT15M", "PT1H", "P1D", "P1M")
# The next shorter interval, whose averages `.avg.min` and `.avg.max` range over (a PT15M one over itself).
SHORTER = {"PT15M": "PT15M", "PT1H": "PT15M", "P1D": "PT1H", "P1M": "P1D"}
DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::00)?(Z|[+-]\d{2}(?::?\d{2})?)?$")
# The spec's timestamp type: milliseconds since 2018-01-01 at the earliest.
MIN_TIMESTAMP_MS = 1514764800000


class DateError(ValueError):
    """A request date that is not an ISO 8601 minute or a millisecond timestamp, or lies off the interval grid."""


@dataclass(frozen=True)
class Interval:
    """One interval of a query: its place in the answer and its UTC bounds."""

    index: int
    start: datetime
    end: datetime

    @cached_property
    def seconds(self) -> float:
        """The interval's length (read for every measure of every row of an answer: worked out once)."""
        return (self.end - self.start).total_seconds()


def parse_moment(value: object, zone: ZoneInfo) -> tuple[datetime, bool]:
    """A request date as an aware datetime, and whether it was a numeric timestamp. A local time without an offset
    is read in `zone` (the earlier of a repeated autumn hour)."""
    if isinstance(value, bool):
        raise DateError("a date is an ISO 8601 minute (YYYY-MM-DDTHH:mm) or a timestamp in milliseconds")
    if isinstance(value, int | float):
        if value != int(value) or value < MIN_TIMESTAMP_MS:
            raise DateError(f"a timestamp is whole milliseconds since the epoch, at least {MIN_TIMESTAMP_MS}")
        return datetime.fromtimestamp(int(value) / 1000, UTC), True
    if not isinstance(value, str) or not (match := DATETIME.match(value)):
        raise DateError("a date is an ISO 8601 minute (YYYY-MM-DDTHH:mm, optionally with an offset) or a timestamp")
    year, month, day, hour, minute = (int(part) for part in match.groups()[:5])
    offset = match.group(6)
    try:
        if offset is None:
            moment = datetime(year, month, day, hour, minute, tzinfo=zone)
            # A time the clock skips in spring does not exist there.
            if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment.replace(tzinfo=None):
                raise DateError(f"{value} does not exist in {zone.key} (the clock skips it)")
            return moment, False
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise DateError(str(error)) from None
    return parsed, False


def _aligned(moment: datetime, interval: str, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    if interval == "PT15M":
        return local.minute % 15 == 0
    if interval == "PT1H":
        return local.minute == 0
    if interval == "P1D":
        return (local.hour, local.minute) == (0, 0)
    return (local.day, local.hour, local.minute) == (1, 0, 0)


def _local_midnight(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    return datetime(year, month, day, tzinfo=zone).astimezone(UTC)


def _next_start(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    if interval == "PT15M":
        return start + QUARTER
    if interval == "PT1H":
        return start + timedelta(hours=1)
    local = start.astimezone(zone)
    if interval == "P1D":
        following = local.date() + timedelta(days=1)
        return _local_midnight(following.year, following.month, following.day, zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return _local_midnight(year, month, 1, zone)


def intervals(start: datetime, end: datetime | None, interval: str, zone: ZoneInfo, limit: int) -> list[Interval]:
    """The intervals that begin from `start` to `end` (inclusive; only the one at `start` without `end`); a
    DateError when `start` is not an interval's start in `zone` or there would be more than `limit`."""
    if not _aligned(start, interval, zone):
        raise DateError(f"start_date must begin a {interval} interval in {zone.key}")
    start = start.astimezone(UTC)
    last = start if end is None else end.astimezone(UTC)
    found: list[Interval] = []
    while start <= last:
        if len(found) == limit:
            raise DateError(f"more than max_intervals ({limit}) intervals")
        following = _next_start(start, interval, zone)
        found.append(Interval(len(found), start, following))
        start = following
    return found


def quarters(spans: list[Interval], interval: str, zone: ZoneInfo) -> list[tuple[datetime, int, int]]:
    """The 15-minute UTC pieces of each interval: (quarter start, interval index, index of the shorter interval
    within it that `.avg.min`/`.avg.max` range over)."""
    shorter = SHORTER[interval]
    rows: list[tuple[datetime, int, int]] = []
    for span in spans:
        sub_start, sub_index = span.start, 0
        sub_end = min(_next_start(sub_start, shorter, zone), span.end)
        moment = span.start
        while moment < span.end:
            if moment >= sub_end:
                sub_start, sub_index = sub_end, sub_index + 1
                sub_end = min(_next_start(sub_start, shorter, zone), span.end)
            rows.append((moment, span.index, sub_index))
            moment += QUARTER
    return rows


def formatted(moment: datetime, zone: ZoneInfo, numeric: bool) -> str | int:
    """A datetime as the response gives it: milliseconds when the request's dates were, else the local minute with
    its offset (which tells the two intervals of a repeated autumn hour apart)."""
    if numeric:
        return int(moment.timestamp() * 1000)
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M") + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
