"""The snapshots a backfill's marts need (zone areas, time zone, vehicle types, geofencing, MDS vehicles), what the
lake lacks of them per zone, and `fleetlake snapshot`: taking them through their Dagster jobs on demand.

A backfill's MDS trips and events alone leave the marts without zone areas (every trip then "outside"), without a
time zone and without vehicle types; so a backfill first takes the snapshots of any zone the lake has none of.
"""

import io
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import dagster as dg
from rich.console import Console
from rich.progress import Progress

from assets.schedules import SNAPSHOT_JOBS
from cli.bars import bar_columns
from pipelines.config import Settings
from pipelines.ingest import PartitionResult
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
    console: Console | None = None,
    bar: Progress | None = None,
) -> list[SnapshotRun]:
    """Capture `datasets` for `zones` now, one run of each snapshot job concerned; a failed job fails alone.
    With a `console`, a bar counts the snapshots taken, job by job (the jobs take a minute together); it is a task
    of `bar` when given (a backfill's, whose ingestion shows its own progress meanwhile)."""
    from assets.launch import run_job

    unknown = sorted(set(datasets) - set(SNAPSHOT_DATASETS))
    if unknown:
        raise ValueError(f"not snapshot datasets: {unknown}; they are {list(SNAPSHOT_DATASETS)}")
    jobs = {job: tuple(d for d in captured if d in datasets) for job, captured in SNAPSHOT_JOBS.items()}
    jobs = {job: selected for job, selected in jobs.items() if selected}
    runs = []
    with nullcontext(bar) if bar is not None else _bar(console) as shown:
        task = shown.add_task("snapshots", total=len(zones) * sum(map(len, jobs.values())), detail="")
        taken = {"job": 0}

        def on_progress(event: object) -> None:
            if isinstance(event, PartitionResult):
                taken["job"] += 1
                shown.update(task, advance=1, detail=f"{event.dataset}, zone {event.zone_id}")

        for index, (job, selected) in enumerate(jobs.items(), start=1):
            shown.update(task, description=f"snapshots: {job} ({index} of {len(jobs)})")
            taken["job"] = 0

            result = run_job(
                job,
                settings.model_copy(update={"zones": tuple(zones)}),
                asset_selection=None if selected == SNAPSHOT_JOBS[job] else selected,
                dagster_instance=dagster_instance,
                on_progress=on_progress,
            )
            runs.append(SnapshotRun(job, tuple(zones), selected, result.success, result.run_id))
            # A job may capture fewer than planned (GBFS datasets of a version the configuration leaves out).
            planned = len(zones) * len(selected)
            if taken["job"] < planned:
                total = next(t.total for t in shown.tasks if t.id == task)
                shown.update(task, total=(total or 0) - (planned - taken["job"]))
    return runs


def _bar(console: Console | None) -> Progress:
    """A progress bar on `console`, or one drawn nowhere without a console (a caller that prints nothing)."""
    return Progress(
        *bar_columns(remaining=False),
        console=console or Console(file=io.StringIO()),
        disable=console is None,
        transient=False,
    )


def print_snapshot_runs(runs: Sequence[SnapshotRun], console: Console) -> bool:
    for run in runs:
        status = "[green]ok[/]" if run.success else "[red]failed[/]"
        console.print(
            f"{run.job} (zones {', '.join(run.zones)}): {status}, {len(run.datasets)} datasets, run {run.run_id[:8]}"
        )
    return all(run.success for run in runs)


def snapshots_first(
    settings: Settings,
    zones: Sequence[str],
    console: Console,
    dagster_instance: dg.DagsterInstance | None = None,
    bar: Progress | None = None,
) -> bool:
    """Before a backfill's build: take the snapshots of every zone the lake lacks one the marts need of, and say so
    (their bars in `bar` when given)."""
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
            runs += take_snapshots(
                settings, lacking, captured, dagster_instance=dagster_instance, console=console, bar=bar
            )
    return print_snapshot_runs(runs, console)
