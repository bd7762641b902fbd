"""The snapshots a backfill's marts need (zone areas, time zone, vehicle types, geofencing, MDS vehicles), what the
lake lacks of them per zone, and `fleetlake snapshot`: taking them through their Dagster jobs on demand.

A backfill's MDS trips and events alone leave the marts without zone areas (every trip then "outside"), without a
time zone and without vehicle types; so a backfill first takes the snapshots of any zone the lake has none of.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from rich.console import Console

from pipelines.config import Settings
from pipelines.gbfs_v2 import GBFS_V2_DATASETS
from pipelines.ingest import GBFS_DATASETS, MDS_SNAPSHOT_DATASETS

# Each snapshot job and the datasets it captures (assets/schedules.py selects the same assets).
SNAPSHOT_JOBS: dict[str, tuple[str, ...]] = {
    "zone_geometry_job": ("zone_info", "zone_areas"),
    "gbfs_snapshot_job": (*GBFS_DATASETS, *GBFS_V2_DATASETS, "zone_area_occupancy"),
    "mds_vehicle_snapshot_job": MDS_SNAPSHOT_DATASETS,
}
SNAPSHOT_DATASETS = tuple(d for datasets in SNAPSHOT_JOBS.values() for d in datasets)
# What the marts read from snapshots: zone areas and names, the time zone, vehicle types and geofencing rules, and
# the MDS vehicles (vehicle types of trips). A zone lacking any of them gets its snapshots before a backfill.
NEEDED_BY_MARTS = (
    "zone_info",
    "zone_areas",
    "gbfs_system_information",
    "gbfs_vehicle_types",
    "gbfs_geofencing_zones",
    "mds_vehicles",
)


def job_of(dataset: str) -> str:
    return next(job for job, datasets in SNAPSHOT_JOBS.items() if dataset in datasets)


def has_snapshot(lake_dir: Path, dataset: str, zone: str) -> bool:
    """Whether the lake holds at least one snapshot of `dataset` for `zone` (an empty capture counts)."""
    return next((lake_dir / dataset / f"zone_id={zone}").glob("date=*/hour=*/snapshot-*.parquet"), None) is not None


def missing_snapshots(lake_dir: Path, zones: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Per zone, the datasets the marts need that the lake has no snapshot of (zones lacking none are left out)."""
    missing = {zone: tuple(d for d in NEEDED_BY_MARTS if not has_snapshot(lake_dir, d, zone)) for zone in zones}
    return {zone: datasets for zone, datasets in missing.items() if datasets}


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
