"""`fleetlake backfill`: one Dagster run over a range of hours and zones, with a progress bar."""

import asyncio
from dataclasses import replace
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipelines.config import Settings
from pipelines.ingest import HOURLY_DATASETS, PartitionResult, hours_between
from pipelines.voi.client import VoiClient


async def _zones(settings: Settings) -> tuple[str, ...]:
    async with VoiClient(settings) as client:
        return tuple(await client.zones())


def run_backfill(settings: Settings, start: datetime, end: datetime, console: Console) -> bool:
    """Backfill [start, end); returns whether every partition landed."""
    from assets.launch import run_job

    hours = hours_between(start, end)
    if not hours:
        console.print(f"[red]no whole hour starts in [{start:%Y-%m-%dT%H:%M}, {end:%Y-%m-%dT%H:%M})[/]")
        return False
    zones = settings.zones or asyncio.run(_zones(settings))
    settings = replace(settings, zones=zones)
    counts = {"written": 0, "quarantined": 0, "rows": 0, "not_ready": 0, "future": 0, "failed": 0}
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(
            f"{len(hours)} h × {len(zones)} zones", total=len(hours) * len(zones) * len(HOURLY_DATASETS), detail=""
        )

        def on_progress(event: object) -> None:
            if not isinstance(event, PartitionResult):
                return
            counts[event.status] += 1
            counts["rows"] += event.rows
            counts["quarantined"] += event.quarantined
            bar.update(task, advance=1, detail=f"{counts['rows']:,} rows, {counts['quarantined']} quarantined")

        result = run_job(
            "mds_hourly_job",
            settings,
            first_hour=hours[0],
            last_hour=hours[-1],
            on_progress=on_progress,
        )
    status = "[green]done[/]" if result.success else "[red]failed[/]"
    console.print(
        f"{status}: run {result.run_id[:8]}, {counts['written']} partitions written, {counts['rows']:,} rows, "
        f"{counts['quarantined']} quarantined, {counts['future']} future hours skipped, "
        f"lake at {settings.lake_dir}"
    )
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.event_specific_data is not None:
                console.print(f"[red]{event.message}[/]")
    return result.success
