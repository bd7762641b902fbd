"""A backfill's lead-in: the hours read before its window, and those of them the lake already holds.

A vehicle parked since before a window's first hour is invisible to the window's own events until it moves; the
events of the hours before the window (FLEETLAKE_LEAD_IN_HOURS, 48 by default) give every vehicle that spoke within
them its state at the window's first hour. Hours the lake already holds are not fetched again.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from pipelines.config import Settings
from pipelines.ingest import hours_between
from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lake.store import Lake, Partition


def history_start(settings: Settings) -> datetime:
    """The first hour of the history (FLEETLAKE_HISTORY_START), where the hourly partitions begin."""
    return datetime.combine(settings.history_start, time(0), UTC)


@dataclass(frozen=True)
class LeadIn:
    """The hours read before a window: those asked for, those the lake already holds, the first one to fetch."""

    hours: list[datetime]
    in_lake: int
    first_to_fetch: datetime | None
    clipped: bool
    """Whether the history start cut it short."""


def plan_lead_in(settings: Settings, zones: tuple[str, ...], window_start: datetime, lead_in_hours: int) -> LeadIn:
    """The lead-in before `window_start`, within the history; one run covers a contiguous range, so it fetches from
    the first lead-in hour any zone lacks a partition of (none: the window alone)."""
    wanted = window_start - timedelta(hours=lead_in_hours)
    first = max(wanted, history_start(settings))
    hours = hours_between(first, window_start)
    lake = Lake(settings.lake_dir)

    def held(hour: datetime) -> bool:
        return all(lake.holds_hour(Partition(dataset, zone, hour)) for zone in zones for dataset in HOURLY_DATASETS)

    in_lake = [held(hour) for hour in hours]
    first_to_fetch = next((hour for hour, present in zip(hours, in_lake, strict=True) if not present), None)
    return LeadIn(hours, sum(in_lake), first_to_fetch, clipped=first > wanted)
