"""How a run names the hours it covers: the hourly partition key and Dagster's partition tags.

The hourly partitions, the hourly schedule, the command line's launches, the run queue and the warehouse asset (which
rebuilds the window its run covers) all name hours through this module, so the key's format and the tags' names are
written once. The format is Dagster's own for hourly partitions, handed to the definition explicitly.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

HOURLY_KEY_FORMAT = "%Y-%m-%d-%H:%M"
"""An hourly partition's key: its first UTC instant, e.g. 2026-03-29-05:00."""
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
"""The tags of a run over a range of partitions: its first and its last key (both included)."""
PARTITION = "dagster/partition"
"""The tag of a run over one partition."""


def hourly_key(hour: datetime) -> str:
    """The key of the hourly partition starting at `hour` (a UTC hour)."""
    return hour.strftime(HOURLY_KEY_FORMAT)


def hour_of(key: str) -> datetime:
    """The UTC hour an hourly partition key names; ValueError for any other key (a monthly one, say)."""
    return datetime.strptime(key, HOURLY_KEY_FORMAT).replace(tzinfo=UTC)


def range_tags(first_hour: datetime, last_hour: datetime) -> dict[str, str]:
    """The tags of one run over the hourly partitions from `first_hour` to `last_hour`, both included."""
    return {RANGE_START: hourly_key(first_hour), RANGE_END: hourly_key(last_hour)}


def run_window(tags: Mapping[str, str]) -> tuple[datetime, datetime] | None:
    """The hours a run covers, [start, end), from its partition tags (a range, or one partition); None: no window."""
    first = tags.get(RANGE_START) or tags.get(PARTITION)
    last = tags.get(RANGE_END) or tags.get(PARTITION)
    if not first or not last:
        return None
    return hour_of(first), hour_of(last) + timedelta(hours=1)
