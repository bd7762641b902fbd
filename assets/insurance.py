"""The insurance trips in Dagster: one hourly asset, its job and its schedule, present only when they are switched
on (FLEETLAKE_INSURANCE_TRIPS); assets/definitions.py adds what `insurance_definitions` returns.

A run ingests its window into the insurance area, purges what is past the retention and rebuilds the insurance
warehouse. What it reports is counts only (rows, refused records, partitions, purged hours): no record, and no
value of one, reaches Dagster's event log, the UI or the run's logs. The asset's group, `insurance`, sits apart
from the city's layers, and nothing of the city's assets reads it.
"""

import asyncio
from datetime import UTC, timedelta

import dagster as dg

from assets.partition_keys import hourly_key, range_tags
from assets.partitions import hourly
from assets.reporting import raise_if_failed
from assets.resources import InsuranceStore, VoiApi
from assets.run_limits import INGEST_TAG, INGEST_TAG_VALUE, ingest_job_tags
from assets.settings import SCHEDULE_STATUS, SETTINGS
from pipelines.config import Settings
from pipelines.ingest import IngestReport, hours_between
from pipelines.insurance.ingest import ingest_insurance_trips
from pipelines.insurance.purge import purge
from pipelines.voi.client import VoiClient


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "insurance_trips",
            description="Insurance trips (personal data: licence plates, riders' ride counts) per zone and hour, "
            "in their own owner-only lake and warehouse under FLEETLAKE_INSURANCE_DIR; purged after the retention.",
            group_name="insurance",
            kinds={"parquet", "duckdb"},
        )
    ],
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    op_tags={INGEST_TAG: INGEST_TAG_VALUE},
)
def insurance_trips(context: dg.AssetExecutionContext, voi: VoiApi, insurance: InsuranceStore) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Fetch every zone's insurance trips for the window's hours, then purge the expired ones and rebuild the
    warehouse (also when the fetching failed)."""
    window = context.partition_time_window
    hours = hours_between(window.start.astimezone(UTC), window.end.astimezone(UTC))
    area = insurance.area()

    async def run() -> tuple[IngestReport, list[str]]:
        async with VoiClient(voi.settings()) as client:
            zones = await client.zones()
            return await ingest_insurance_trips(client, area, zones, hours), zones

    try:
        report, zones = asyncio.run(run())
    finally:  # the retention does not wait for the provider: a failed or retried run purges too
        purged = purge(area, timedelta(days=insurance.retention_days))
    raise_if_failed(report)
    if report.with_status("not_ready"):
        context.log.info("hours not ready yet at the provider; retrying later")
        raise dg.RetryRequested(max_retries=voi.not_ready_max_retries, seconds_to_wait=voi.not_ready_retry_s)
    summary = report.summary()
    return dg.MaterializeResult(
        asset_key="insurance_trips",
        metadata={
            "rows": summary["rows"],
            "quarantined": summary["quarantined"],
            "partitions_written": summary["partitions_written"],
            "future_hours_skipped": summary["partitions_future"],
            "zones": ", ".join(zones),
            "purged_partitions": purged.partitions,
            "purged_files": purged.files,
            "purge_cutoff": purged.cutoff.isoformat(),
            "trips_kept": purged.trips_kept,
        },
    )


insurance_hourly_job = dg.define_asset_job(
    "insurance_hourly_job",
    selection=dg.AssetSelection.assets(insurance_trips),
    tags=ingest_job_tags(SETTINGS.max_runtime_s),
    description="The insurance trips of the last hours into their own area, the expired ones purged.",
)


@dg.schedule(
    job=insurance_hourly_job,
    cron_schedule="10 * * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
    description="Ten minutes past each hour: the insurance trips of the last hour and the lookback, then the purge.",
)
def insurance_hourly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Ten minutes past each hour, after the city's own hourly run: the hour that just ended and the lookback
    (FLEETLAKE_LOOKBACK_HOURS), and the purge of what the retention lets go."""
    lookback_hours = Settings.from_env().lookback_hours
    last = context.scheduled_execution_time.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = last - timedelta(hours=max(lookback_hours - 1, 0))
    return dg.RunRequest(run_key=f"insurance-hourly-{hourly_key(last)}", tags=range_tags(first, last))


def insurance_definitions(settings: Settings) -> dg.Definitions:
    """The insurance asset, its job and schedule when the settings switch them on; nothing otherwise (their
    resource, `insurance`, is among every run's: resources_for)."""
    if not settings.insurance_trips:
        return dg.Definitions()
    return dg.Definitions(
        assets=[insurance_trips],
        jobs=[insurance_hourly_job],
        schedules=[insurance_hourly_schedule],
    )
