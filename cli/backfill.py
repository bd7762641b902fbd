"""`fleetlake backfill`: one Dagster run over a range of hours and zones, with a progress bar.

Before its window a backfill reads a lead-in (FLEETLAKE_LEAD_IN_HOURS, 48 by default): a vehicle parked since before
the window's first hour is invisible to the window's own events until it moves, so the hours before it are ingested
too, as ordinary lake partitions (those the lake already holds are not fetched again). Their events give every
vehicle that spoke within the lead-in its state at the window's first hour; the lead-in hours themselves are
flagged warm-up in the marts. It takes the zone, GBFS and MDS vehicle snapshots first for a zone the lake has none of.

The hours are fetched from the start: the ingestion begins as soon as the hours are known, before Dagster is
imported and while the snapshots are taken, and the run's ingestion asset joins it (pipelines/backfill.py); Dagster
and the warehouse's modules are imported only once it is under way.
"""

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import Progress, TaskID

from cli.bars import bar_columns
from cli.errorlog import log_detail
from pipelines import backfill
from pipelines.config import HISTORY_START_ENV, Settings
from pipelines.ingest import PartitionResult, hours_between
from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lead_in import LeadIn, history_start, plan_lead_in
from pipelines.scrub import scrub
from pipelines.voi.client import VoiClient

if TYPE_CHECKING:
    import dagster as dg


async def _zones(settings: Settings) -> tuple[str, ...]:
    async with VoiClient(settings) as client:
        return tuple(await client.zones())


def _say_lead_in(lead_in: LeadIn, lead_in_hours: int, window_start: datetime, console: Console) -> None:
    if lead_in_hours == 0:
        console.print(
            f"no lead-in: vehicles parked since before {window_start:%Y-%m-%dT%H:%M}Z stay unknown until they move"
        )
        return
    text = f"lead-in: {len(lead_in.hours)} h before the window"
    if lead_in.hours:
        text += f" (from {lead_in.hours[0]:%Y-%m-%dT%H:%M}Z), {lead_in.in_lake} already in the lake"
    if lead_in.clipped:
        text += f", cut at the history start ({HISTORY_START_ENV})"
    if lead_in.first_to_fetch is not None:
        text += f"; ingesting from {lead_in.first_to_fetch:%Y-%m-%dT%H:%M}Z"
    console.print(text)


def run_backfill(
    settings: Settings,
    start: datetime,
    end: datetime,
    console: Console,
    *,
    lead_in_hours: int | None = None,
    dagster_instance: "dg.DagsterInstance | None" = None,
) -> bool:
    """Backfill [start, end) after its lead-in, snapshots first where the lake has none; returns whether every
    partition landed (and every snapshot it had to take)."""
    hours = hours_between(start, end)
    if not hours:
        console.print(f"[red]no whole hour starts in [{start:%Y-%m-%dT%H:%M}, {end:%Y-%m-%dT%H:%M})[/]")
        return False
    if hours[0] < history_start(settings):
        console.print(
            f"[red]--start {hours[0]:%Y-%m-%dT%H:%M}Z is before the history start {settings.history_start} "
            f"({HISTORY_START_ENV}), where the hourly partitions begin; set {HISTORY_START_ENV}="
            f"{hours[0]:%Y-%m-%d} (or earlier) to load older hours[/]"
        )
        return False
    zones = settings.zones or asyncio.run(_zones(settings))
    settings = settings.model_copy(update={"zones": zones})
    lead_in_hours = settings.lead_in_hours if lead_in_hours is None else lead_in_hours
    lead_in = plan_lead_in(settings, zones, hours[0], lead_in_hours)
    _say_lead_in(lead_in, lead_in_hours, hours[0], console)
    if lead_in.first_to_fetch is not None:
        hours = hours_between(lead_in.first_to_fetch, end)
    counts = {"written": 0, "unchanged": 0, "quarantined": 0, "rows": 0, "not_ready": 0, "future": 0, "failed": 0}
    failures: list[PartitionResult] = []
    counting = threading.Lock()  # partitions are heard of from the ingestion's thread and from the run's
    with Progress(*bar_columns(), console=console, transient=False) as bar:
        task = bar.add_task(
            f"{len(hours)} h × {len(zones)} zones", total=len(hours) * len(zones) * len(HOURLY_DATASETS), detail=""
        )

        def on_partition(event: PartitionResult) -> None:
            with counting:
                counts[event.status] += 1
                if event.status == "failed":
                    failures.append(event)
                counts["rows"] += event.rows
                counts["quarantined"] += event.quarantined
                detail = f"{counts['rows']:,} rows, {counts['quarantined']} quarantined"
            bar.update(task, advance=1, detail=detail)

        started = backfill.start(settings, zones, hours, HOURLY_DATASETS, on_partition)
        try:
            result, snapshots_ok = _runs(settings, hours, bar, console, on_partition, dagster_instance)
        finally:
            unclaimed = backfill.claim(started.plan)
            if unclaimed is not None:  # the run ended before its ingestion began: stop fetching
                unclaimed.cancel()
    status = "[green]done[/]" if result.success else "[red]failed[/]"
    console.print(
        f"{status}: run {result.run_id[:8]}, {counts['written']} partitions written, "
        f"{counts['unchanged']} unchanged, {counts['rows']:,} rows, "
        f"{counts['quarantined']} quarantined, {counts['future']} future hours skipped, "
        f"{counts['failed']} failed, lake at {settings.lake_dir}"
    )
    if not result.success:
        print_failure(console, result, failures)
    if not snapshots_ok:
        console.print("[red]some snapshots failed: the marts lack their zone areas, time zone or vehicle types[/]")
    return result.success and snapshots_ok


def _runs(
    settings: Settings,
    hours: list[datetime],
    bar: Progress,
    console: Console,
    on_partition: Callable[[PartitionResult], None],
    dagster_instance: "dg.DagsterInstance | None",
) -> tuple[Any, bool]:
    """The Dagster runs of a backfill whose ingestion is under way: the snapshots a zone lacks, then the hourly job
    (which joins the ingestion, then builds the warehouse); returns the hourly run's result and whether every
    snapshot was taken."""
    from assets.launch import run_job
    from cli.snapshots import snapshots_first
    from pipelines.warehouse.build import BuildProgress

    snapshots_ok = snapshots_first(settings, settings.zones, console, dagster_instance, bar=bar)
    build: list[TaskID] = []  # the warehouse build's bar, once the build begins

    def on_progress(event: object) -> None:
        if isinstance(event, BuildProgress):
            # The models downstream of ingestion, built in the same run after the last partition landed.
            if not build:
                build.append(bar.add_task("warehouse build", total=event.total, detail=""))
            detail = f"{event.run.relation} ({event.run.mode})" if event.run else "starting"
            bar.update(build[0], completed=event.done, total=event.total, detail=detail)
        elif isinstance(event, PartitionResult):  # a retried step ingesting by itself
            on_partition(event)

    result = run_job(
        "mds_hourly_job",
        settings,
        first_hour=hours[0],
        last_hour=hours[-1],
        on_progress=on_progress,
        dagster_instance=dagster_instance,
    )
    return result, snapshots_ok


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
