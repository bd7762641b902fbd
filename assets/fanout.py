"""`zone_backfill_job`: a backfill fanned out per zone, so that zones are ingested side by side by the processes
of one machine or the Celery workers of several (assets/executors.py chooses which, docs/scale-out.md).

One step lists the zones; one step per zone takes the snapshots the lake lacks of it and ingests its lead-in and
window of MDS trips and events (what `fleetlake backfill` does for all zones in one process); one last step builds
the warehouse for the hours ingested. A zone that fails fails alone: its step reports the failure instead of
raising, the other zones' hours are built, and the build step then fails the run naming the zones to rerun.

The build is one step, the warehouse's single writer: a DuckDB file is written by one process at a time. Its
Celery queue (`dagster-celery/queue`, FLEETLAKE_BUILD_QUEUE, default `dagster`) lets a deployment send it to the
machine that holds the warehouse; with a shared warehouse catalog (FLEETLAKE_WAREHOUSE_CATALOG) any worker builds
it and every machine reads the result.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets.executors import fan_out_executor
from assets.partition_keys import hourly_key
from assets.resources import LakeStore, VoiApi, WarehouseStore
from assets.schedules import SNAPSHOT_JOBS
from assets.settings import SETTINGS
from pipelines.ingest import hours_between, ingest_hours, ingest_snapshots
from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lake.store import check_zone_id
from pipelines.lead_in import plan_lead_in
from pipelines.needed_snapshots import missing_snapshots
from pipelines.scrub import scrub
from pipelines.voi.client import VoiClient

STEP_VALUES = "step_values"
"""The resource key of the IO manager steps hand their values through (assets.executors.StepValues)."""


class ZoneBackfill(dg.Config):
    """The hours [start, end) to backfill (ISO times, UTC), after a lead-in of `lead_in_hours` (-1: the
    FLEETLAKE_LEAD_IN_HOURS setting); `zones` empty: every zone the zone API lists (or FLEETLAKE_ZONES)."""

    start: str
    end: str
    zones: list[str] = []  # noqa: RUF012  (pydantic copies defaults)
    lead_in_hours: int = -1


def _hour(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass(frozen=True)
class ZoneTask:
    """One zone's share of the backfill, handed to its step."""

    zone_id: str
    start: datetime
    end: datetime
    lead_in_hours: int


@dataclass
class ZoneResult:
    """What one zone's step did, handed to the build step."""

    zone_id: str
    end: datetime
    first_hour: datetime | None = None
    """The first hour ingested (the lead-in's first missing one); None when nothing was ingested."""
    written: int = 0
    rows: int = 0
    quarantined: int = 0
    not_ready: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    snapshots_taken: list[str] = field(default_factory=list)
    error: str | None = None


def zone_mapping_key(zone: str) -> str:
    """The zone's step key suffix (`ingest_zone[<key>]`). Dagster allows letters, digits and `_` in a mapping key,
    a zone id also `-`: `_` is written `__` and `-` `_h`, so two zones never share a key (`a-b` is `a_hb`, `a_b`
    `a__b`) and a key reads back to one zone only."""
    return check_zone_id(zone).replace("_", "__").replace("-", "_h")


@dg.op(out=dg.DynamicOut(ZoneTask, io_manager_key=STEP_VALUES))
def zones_to_backfill(config: ZoneBackfill, voi: VoiApi, warehouse: WarehouseStore) -> Any:
    """One output per zone: those of the config, else the settings', else the zone API's."""
    zones = tuple(config.zones) or voi.settings().zones
    start, end = _hour(config.start), _hour(config.end)
    if not hours_between(start, end):
        raise dg.Failure(description=f"no whole hour starts in [{config.start}, {config.end})")
    lead_in_hours = warehouse.lead_in_hours if config.lead_in_hours < 0 else config.lead_in_hours

    async def listed() -> tuple[str, ...]:
        async with VoiClient(voi.settings()) as client:
            return tuple(await client.zones())

    for zone in zones or asyncio.run(listed()):
        task = ZoneTask(zone, start, end, lead_in_hours)
        yield dg.DynamicOutput(task, mapping_key=zone_mapping_key(zone))


@dg.op(out=dg.Out(io_manager_key=STEP_VALUES), tags={"fleetlake/ingest": "voi"})
def ingest_zone(context: dg.OpExecutionContext, task: ZoneTask, voi: VoiApi, lake: LakeStore) -> ZoneResult:
    """One zone: its missing snapshots, then its lead-in and window of trips and events. Failures are reported,
    not raised, so the other zones build."""
    zone = task.zone_id
    result = ZoneResult(zone, task.end)
    try:
        # The history's first day is the code location's, as its partitions'.
        update = {"zones": (zone,), "lake_dir": lake.lake().root, "history_start": SETTINGS.history_start}
        settings = voi.settings().model_copy(update=update)
        lead_in = plan_lead_in(settings, (zone,), task.start, task.lead_in_hours)
        hours = hours_between(lead_in.first_to_fetch or task.start, task.end)
        lacking = set(missing_snapshots(settings.lake_dir, (zone,)).get(zone, ()))
        # As `fleetlake backfill` does: every dataset of a snapshot job one of whose datasets the zone lacks.
        missing = [d for captured in SNAPSHOT_JOBS.values() if lacking & set(captured) for d in captured]

        async def run() -> Any:
            async with VoiClient(settings) as client:
                if missing:
                    snapshots = await ingest_snapshots(client, lake.lake(), (zone,), missing)
                    result.snapshots_taken = [r.dataset for r in snapshots.results if r.status == "written"]
                    result.failed += [f"{r.dataset}: {r.error}" for r in snapshots.with_status("failed")]
                return await ingest_hours(client, lake.lake(), (zone,), hours, HOURLY_DATASETS)

        report = asyncio.run(run())
    except Exception as error:  # one zone's failure is reported, the others go on
        result.error = scrub(f"{type(error).__name__}: {error}")
        context.log.error(f"zone {zone}: {result.error}")
        return result
    result.first_hour = hours[0] if hours else None
    result.written = report.summary()["partitions_written"]
    result.rows = report.summary()["rows"]
    result.quarantined = report.summary()["quarantined"]
    result.not_ready = sorted({f"{r.hour:%Y-%m-%dT%H}" for r in report.with_status("not_ready")})
    result.failed += [f"{r.dataset}/{r.hour:%Y-%m-%dT%H}: {r.error}" for r in report.with_status("failed")]
    for dataset in HOURLY_DATASETS:
        for written in (r for r in report.of(dataset) if r.status == "written"):
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=dataset,
                    partition=hourly_key(written.hour),
                    metadata={"zone": zone, "rows": written.rows, "quarantined": written.quarantined},
                )
            )
    context.add_output_metadata(
        {"zone": zone, "partitions_written": result.written, "rows": result.rows, "failed": len(result.failed)}
    )
    return result


@dg.op(
    out=dg.Out(io_manager_key=STEP_VALUES),
    tags={"dagster-celery/queue": SETTINGS.build_queue},
)
def build_zone_window(
    context: dg.OpExecutionContext, zones: list[ZoneResult], lake: LakeStore, warehouse: WarehouseStore
) -> dict[str, Any]:
    """Build the warehouse for the hours the zones ingested, then fail the run if a zone did not land whole."""
    firsts = [z.first_hour for z in zones if z.first_hour is not None]
    end = max(z.end for z in zones) if zones else None
    built: list[str] = []
    if firsts and end is not None:
        window = (min(firsts), end)
        runs = warehouse.warehouse(lake.lake().root).build(window)
        built = [run.name for run in runs]
        context.add_output_metadata(
            {
                "window": f"{window[0].isoformat()} to {window[1].isoformat()}",
                "models": len(built),
                "seconds": round(sum(run.seconds for run in runs), 2),
            }
        )
    incomplete = {
        z.zone_id: (z.error or "; ".join(z.failed[:3]) or f"hours not ready: {', '.join(z.not_ready[:5])}")
        for z in zones
        if z.error or z.failed or z.not_ready
    }
    if incomplete:
        raise dg.Failure(
            description=f"{len(incomplete)} zone(s) did not land whole: {', '.join(sorted(incomplete))}; rerun them",
            metadata={"zones": dg.MetadataValue.json(incomplete), "models_built": len(built)},
        )
    return {"zones": sorted(z.zone_id for z in zones), "models_built": len(built)}


@dg.job(
    executor_def=fan_out_executor(SETTINGS),
    tags={"fleetlake/ingest": "voi"},
    description="A backfill fanned out per zone across processes or Celery workers (docs/scale-out.md).",
)
def zone_backfill_job() -> None:
    results = zones_to_backfill().map(ingest_zone)
    build_zone_window(results.collect())
