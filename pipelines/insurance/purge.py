"""Retention: insurance trips older than the retention period leave the lake and the warehouse for good.

An hour's partition is expired once every trip in it ended more than the retention period ago (the hour's end is
before `now - retention`), so a trip is kept at least the retention period after it ended and at most an hour
more. Everything the hour left in the insurance lake goes with it: its records, every raw delivery (rejected ones
too), its quarantine and the records later deliveries superseded. The warehouse is then rebuilt from what is left
(pipelines/insurance/warehouse.py); should that fail, the warehouse file is deleted rather than left holding
expired trips.
"""

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.insurance import warehouse
from pipelines.insurance.area import InsuranceArea
from pipelines.insurance.trips import NAME
from pipelines.lake.store import QUARANTINE, RAW, SUPERSEDED


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    """Hours ending at or before this instant were purged."""
    partitions: int
    """(zone, hour) partitions removed."""
    files: int
    """Files removed: records, raw pages, quarantine and superseded records."""
    trips_kept: int
    """Trips the rebuilt warehouse holds."""


def _hour_of(folder: Path) -> datetime | None:
    """The UTC hour of a `date=YYYY-MM-DD/hour=HH` folder; None for anything else (left alone)."""
    try:
        day = folder.parent.name.removeprefix("date=")
        return datetime.strptime(f"{day}T{folder.name.removeprefix('hour=')}", "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        return None


def purge(area: InsuranceArea, retention: timedelta, now: datetime | None = None) -> PurgeReport:
    """Remove every partition of the insurance lake whose hour ended `retention` or longer before `now`, then
    rebuild the warehouse without them."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    cutoff = now - retention
    root = area.lake.root
    places = (root / NAME, root / QUARANTINE / f"dataset={NAME}", root / RAW / NAME, root / SUPERSEDED / NAME)
    partitions: set[tuple[str, datetime]] = set()
    files = 0
    for place in places:
        for folder in sorted(place.glob("zone_id=*/date=*/hour=*")):
            hour = _hour_of(folder)
            if hour is None or hour + timedelta(hours=1) > cutoff:
                continue
            files += sum(1 for path in folder.rglob("*") if not path.is_dir())
            shutil.rmtree(folder)
            partitions.add((folder.parent.parent.name, hour))
        for day in sorted(place.glob("zone_id=*/date=*")) + sorted(place.glob("zone_id=*")):
            if day.is_dir() and not any(day.iterdir()):
                day.rmdir()
    try:
        built = warehouse.build(area)
    except BaseException:
        area.warehouse.unlink(missing_ok=True)  # never left holding what should be gone
        raise
    return PurgeReport(cutoff=cutoff, partitions=len(partitions), files=files, trips_kept=built.trips)
