"""The snapshots a backfill's marts need (zone areas, time zone, vehicle types, geofencing, MDS vehicles), what the
lake lacks of them per zone, and `fleetlake snapshot`: taking them through their Dagster jobs on demand.

A backfill's MDS trips and events alone leave the marts without zone areas (every trip then "outside"), without a
time zone and without vehicle types; so a backfill first takes the snapshots of any zone the lake has none of.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from rich.console import Console

from assets.schedules import SNAPSHOT_JOBS
from pipelines.config import Settings
from pipelines.needed_snapshots import missing_snapshots

SNAPSHOT_DATASETS = tuple(d for datasets in SNAPSHOT_JOBS.values() for d in datasets)


def job_of(dataset: str) -> str:
    return next(job for job, datasets in SNAPSHOT_JOBS.items() if dataset in datasets)


@dataclass(frozen=True)
class SnapshotRun:
    job: str
    zones: tuple[str, ...]
    datasets: tuple[str, ...]
    success: bool
    run_id: str


def take_snapshots(
    settings: Settings,
    zones: Sequence[str],
    datasets: Sequence[str] = SNAPSHOT_DATASETS,
    *,
    dagster_instance: dg.DagsterInstance | None = None,
) -> list[SnapshotRun]:
    """Capture `datasets` for `zones` now, one run of each snapshot job concerned; a failed job fails alone."""
    from assets.launch import run_job

    unknown = sorted(set(datasets) - set(SNAPSHOT_DATASETS))
    if unknown:
        raise ValueError(f"not snapshot datasets: {unknown}; they are {list(SNAPSHOT_DATASETS)}")
    runs = []
    for job, captured in SNAPSHOT_JOBS.items():
        selected = tuple(d for d in captured if d in datasets)
        if not selected:
            continue
        result = run_job(
            job,
            settings.model_copy(update={"zones": tuple(zones)}),
            asset_selection=None if selected == captured else selected,
            dagster_instance=dagster_instance,
        )
        runs.append(SnapshotRun(job, tuple(zones), selected, result.success, result.run_id))
    return runs


def print_snapshot_runs(runs: Sequence[SnapshotRun], console: Console) -> bool:
    for run in runs:
        status = "[green]ok[/]" if run.success else "[red]failed[/]"
        console.print(
            f"{run.job} (zones {', '.join(run.zones)}): {status}, {len(run.datasets)} datasets, run {run.run_id[:8]}"
        )
    return all(run.success for run in runs)


def snapshots_first(
    settings: Settings, zones: Sequence[str], console: Console, dagster_instance: dg.DagsterInstance | None = None
) -> bool:
    """Before a backfill: take the snapshots of every zone the lake lacks one the marts need of, and say so."""
    missing = missing_snapshots(settings.lake_dir, zones)
    if not missing:
        return True
    for zone, datasets in missing.items():
        console.print(f"zone {zone}: the lake has no {', '.join(datasets)}; taking its snapshots first")
    runs = []
    # One run per job for the zones lacking one of its datasets; a zone's snapshot datasets are taken together.
    for captured in SNAPSHOT_JOBS.values():
        lacking = tuple(zone for zone, datasets in missing.items() if set(datasets) & set(captured))
        if lacking:
            runs += take_snapshots(settings, lacking, captured, dagster_instance=dagster_instance)
    return print_snapshot_runs(runs, console)
