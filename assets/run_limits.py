"""The tags that keep the run queue moving: which runs count as ingestion, and how long a run may take.

The instance (dagster.yaml) lets one run tagged `fleetlake/ingest` run at a time, since the provider's rate limit
is shared by the whole account; the tag has to be on the run (the run queue reads run tags only), so every way an
ingesting run starts sets it: the job's own tags for schedules, the UI's launchpad and job backfills, and
`ingest_run_tags` for the command line.

`dagster/max_runtime` is the backstop of run monitoring: a run whose process was killed while no code server
watched it (a `fleetlake backfill` killed with -9, a reboot) stays "started" until its maximum runtime has passed,
then the daemon fails it and frees its slots. The limits are generous for a healthy run and short enough that a
dead one does not stop ingestion for long: the hourly job waits for hours the provider has not compiled yet for up
to an hour (12 retries of 5 minutes), so it gets two; a backfill gets that plus two minutes per hour it covers.
"""

from collections.abc import Mapping

from assets.partition_keys import run_window

INGEST_TAG = "fleetlake/ingest"
INGEST_TAG_VALUE = "voi"
MAX_RUNTIME_TAG = "dagster/max_runtime"
HOURLY_MAX_RUNTIME_S = 2 * 3600
BACKFILL_SECONDS_PER_HOUR = 120
SNAPSHOT_MAX_RUNTIME_S = 15 * 60
ZONE_GEOMETRY_MAX_RUNTIME_S = 30 * 60


def ingest_max_runtime_seconds(hours: int, override: int | None = None) -> int:
    """How long an ingesting run over `hours` hours may take before run monitoring fails it; `override` is the
    setting FLEETLAKE_MAX_RUNTIME_SECONDS, one maximum runtime for every ingesting run when set."""
    if override is not None:
        return override
    return HOURLY_MAX_RUNTIME_S + BACKFILL_SECONDS_PER_HOUR * max(hours - 1, 0)


def ingest_job_tags(override: int | None = None) -> dict[str, str]:
    """The tags of the MDS ingestion job itself: every run of it, however launched, starts with these."""
    return {INGEST_TAG: INGEST_TAG_VALUE, MAX_RUNTIME_TAG: str(ingest_max_runtime_seconds(1, override))}


def ingest_run_tags(hours: int, override: int | None = None) -> dict[str, str]:
    """The tags of one ingesting run over `hours` hours (the command line's backfills, the run queue's)."""
    return {INGEST_TAG: INGEST_TAG_VALUE, MAX_RUNTIME_TAG: str(ingest_max_runtime_seconds(hours, override))}


def max_runtime_tags(seconds: int) -> dict[str, str]:
    return {MAX_RUNTIME_TAG: str(seconds)}


def partition_hours(tags: Mapping[str, str]) -> int:
    """How many hourly partitions a run's tags name (a range, or one partition); 1 when they name none."""
    try:
        window = run_window(tags)
    except ValueError:  # not an hourly key (a monthly report's): one run's worth
        return 1
    if window is None:
        return 1
    start, end = window
    return max(int((end - start).total_seconds() // 3600), 1)
