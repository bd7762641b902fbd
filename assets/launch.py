"""Running this code location's jobs from the command line, recorded in the project's Dagster instance.

Runs execute in this process (so a backfill reports progress to the terminal) and are stored in the instance
that `dagster dev` and the daemon use: DAGSTER_HOME, else the repo root (which holds dagster.yaml) whatever the
working directory, so the daemon counts a command-line ingestion against the one-ingestion-at-a-time limit and
run monitoring fails it if its process is killed.
"""

import functools
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from assets.definitions import defs
from assets.partition_keys import range_tags
from assets.resources import resources_for
from assets.run_limits import ingest_run_tags, partition_hours
from pipelines import progress
from pipelines.config import Settings

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""Runs launched from the command line print nothing themselves: the command prints one summary (and one line
saying why a run failed); the detail is in the run's event log."""
REPO_ROOT = Path(__file__).resolve().parents[1]
INGEST_JOBS = frozenset({"mds_hourly_job"})


def dagster_home() -> Path | None:
    """DAGSTER_HOME if set (made absolute, as Dagster requires), else the repo root when it holds dagster.yaml
    (an installed copy of the code has none: its runs then go to a temporary instance)."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]).resolve()
    return REPO_ROOT if (REPO_ROOT / "dagster.yaml").is_file() else None


def instance() -> dg.DagsterInstance:
    """The project's instance (see dagster_home); the same one from any working directory, and the same object for
    every run a command launches."""
    home = dagster_home()
    if home is None:
        return dg.DagsterInstance.ephemeral()
    os.environ["DAGSTER_HOME"] = str(home)
    return _instance_at(home)


@functools.cache
def _instance_at(home: Path) -> dg.DagsterInstance:
    """One instance a home and process: opening one checks and migrates its storages' schemas (about a second of
    CPU), which a backfill would otherwise pay again for each of its runs (the snapshots, then the hourly job)."""
    return dg.DagsterInstance.get()


def run_job(
    job_name: str,
    settings: Settings,
    *,
    first_hour: datetime | None = None,
    last_hour: datetime | None = None,
    on_progress: Callable[[Any], None] | None = None,
    dagster_instance: dg.DagsterInstance | None = None,
    asset_selection: Sequence[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute one job in-process (all its assets, or those of `asset_selection`); hourly jobs run their whole
    range as a single run, tagged as an ingestion with a maximum runtime in proportion to its hours
    (assets/run_limits.py)."""
    tags = {}
    if first_hour is not None and last_hour is not None:
        tags = range_tags(first_hour, last_hour)
        if job_name in INGEST_JOBS:
            tags.update(ingest_run_tags(partition_hours(tags), settings.max_runtime_s))
    job = defs.resolve_job_def(job_name)
    if asset_selection is not None:
        job = job.get_subset(asset_selection={dg.AssetKey(name) for name in asset_selection})
    listener = on_progress or (lambda _event: None)
    with progress.listening(listener):
        return job.execute_in_process(
            run_config=QUIET,
            tags=tags,
            resources=resources_for(settings),
            instance=dagster_instance or instance(),
            raise_on_error=False,
        )
