"""`fleetlake backfill`: one Dagster run over a range of hours and zones, with a progress bar."""

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipelines.config import Settings
from pipelines.errorlog import log_detail
from pipelines.ingest import HOURLY_DATASETS, PartitionResult, hours_between
from pipelines.scrub import scrub
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
    failures: list[PartitionResult] = []
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
            if event.status == "failed":
                failures.append(event)
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
        f"{counts['failed']} failed, lake at {settings.lake_dir}"
    )
    if not result.success:
        print_failure(console, result, failures)
    return result.success


def print_failure(console: Console, result: Any, failures: list[PartitionResult]) -> None:
    """One line saying why (the first failed partition's reason, else the run's first failure), the whole list
    in the log."""
    messages = [str(e.message) for e in result.all_events if e.is_failure and e.event_specific_data is not None]
    lines = [f"{r.dataset}/{r.zone_id}/{r.hour:%Y-%m-%dT%H}: {r.error}" for r in failures]
    first = lines[0] if lines else (messages[0].splitlines()[0] if messages else "the run failed")
    where = log_detail("\n".join([f"run {result.run_id}", *lines, *messages]))
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    detail = f"; detail in {where} and in the Dagster run {result.run_id[:8]}" if where else ""
    console.print(f"[red]error:[/] {scrub(first)}{more}{detail}", highlight=False, soft_wrap=True)
