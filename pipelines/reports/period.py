"""The period a city report covers: whole local days of the city, from `start` to `end`, both included.

A city reads its report in its own calendar, so the period is a run of local days and its bounds in UTC come
from the city's IANA time zone (zoneinfo): a day across the switch to summer time lasts 23 hours, the day back
25. Queries take the UTC bounds ([start_utc, end_utc), end exclusive) or the local days (`start` to `end`).
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class ReportPeriod:
    zone_id: str
    start: date
    """First local day of the period."""
    end: date
    """Last local day of the period, included (as `fleetlake export --end` takes it)."""
    timezone: str
    """The city's IANA time zone, which defines its local days."""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not in the middle of a report

    @classmethod
    def month(cls, zone_id: str, year: int, month: int, timezone: str) -> "ReportPeriod":
        last = calendar.monthrange(year, month)[1]
        return cls(zone_id, date(year, month, 1), date(year, month, last), timezone)

    @property
    def end_exclusive(self) -> date:
        return self.end + timedelta(days=1)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def midnight_utc(self, day: date) -> datetime:
        """The UTC instant at which `day` begins in the city."""
        return datetime.combine(day, time(), tzinfo=self.tz).astimezone(UTC)

    @property
    def start_utc(self) -> datetime:
        return self.midnight_utc(self.start)

    @property
    def end_utc(self) -> datetime:
        """Exclusive: the instant the day after `end` begins."""
        return self.midnight_utc(self.end_exclusive)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def hours_in_day(self, day: date) -> int:
        return round((self.midnight_utc(day + timedelta(days=1)) - self.midnight_utc(day)).total_seconds() / 3600)

    @property
    def hours(self) -> int:
        return round((self.end_utc - self.start_utc).total_seconds() / 3600)

    def utc_offsets(self) -> list[str]:
        """The UTC offsets the city's clocks show during the period, e.g. ['+01:00', '+02:00']."""
        offsets: list[str] = []
        for day in self.days:
            for moment in (self.midnight_utc(day), self.midnight_utc(day + timedelta(days=1)) - timedelta(hours=1)):
                offset = moment.astimezone(self.tz).strftime("%z")
                text = f"{offset[:3]}:{offset[3:]}"
                if text not in offsets:
                    offsets.append(text)
        return offsets

    @property
    def label(self) -> str:
        return f"{self.start:%-d %b %Y}" if self.start == self.end else f"{self.start:%-d %b %Y} – {self.end:%-d %b %Y}"

    @property
    def slug(self) -> str:
        """The report's folder name: zone and local days, safe on every file system."""
        return f"zone-{self.zone_id}_{self.start.isoformat()}_{self.end.isoformat()}"

    def bound(self) -> dict[str, object]:
        """The values report queries take as parameters."""
        return {
            "zone_id": self.zone_id,
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "first_day": self.start,
            "last_day": self.end,
            "timezone": self.timezone,
        }


def previous_month(today: date) -> tuple[date, date]:
    """First and last day of the calendar month before `today`'s."""
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last
