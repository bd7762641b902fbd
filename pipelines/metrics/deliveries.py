"""The hours a zone did not deliver within its history: an answer's measures of them are not known.

A zone's delivered hours run from its first to its horizon (core.int_zone_horizons), but an hour in between may never
have arrived (an ingestion that failed for it, a provider's outage): its events and trips are not in the lake, so
every figure of an interval overlapping it would understate (a vehicle's state would run on through it, its trips
would be missing). An hour is delivered when the lake holds both its MDS partitions (trips and events) standing for
the whole hour (an empty one counts, a quiet night is known; an imported archive's file only for the hours the
import was told it covers completely): data_quality_hourly's own `missing_partitions`, read over the hours a query
asks about only, so the cost follows the query's period, not the history.
"""

from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import duckdb

HOUR = timedelta(hours=1)

MISSING_HOURS = """
select quality.zone_id, quality.hour
from main.data_quality_hourly as quality
join core.int_zone_horizons as horizons on quality.zone_id = horizons.zone_id
where
    quality.missing_partitions > 0
    and quality.hour >= greatest(horizons.first_hour, $start)
    and quality.hour < least(horizons.horizon, $end)
order by quality.zone_id, quality.hour
"""


def missing_hours(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> dict[str, list[datetime]]:
    """The start of every hour from `start` to `end` that a zone did not deliver though it lies between its first
    delivered hour and its horizon, sorted, by zone (only zones with one)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rows = con.execute(MISSING_HOURS, {"start": first, "end": end}).fetchall()
    missing: dict[str, list[datetime]] = {}
    for zone, hour in rows:
        missing.setdefault(zone, []).append(hour)
    return missing


def overlaps_missing(hours: Sequence[datetime], start: datetime, end: datetime) -> bool:
    """Whether [start, end) overlaps one of the sorted missing hours."""
    index = bisect_right(hours, start - HOUR)  # the first missing hour ending after `start`
    return index < len(hours) and hours[index] < end
