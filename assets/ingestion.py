"""Hourly MDS trips and events: every zone for every hour of the run's window, into the lake."""

import asyncio
from collections.abc import Iterator
from datetime import UTC

import dagster as dg

from assets.partitions import hourly
from assets.reporting import ingest_metadata, raise_if_failed
from assets.resources import LakeStore, VoiApi
from assets.run_limits import INGEST_TAG, INGEST_TAG_VALUE
from assets.sources import source_of
from pipelines import backfill, progress
from pipelines.ingest import IngestReport, PartitionResult, hours_between, ingest_hours
from pipelines.lake import checks
from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lake.store import Partition
from pipelines.lake_writers import writer_for
from pipelines.voi.client import VoiClient

CHECKS = ("schema_matches", "no_duplicate_ids", "timestamps_in_window", "row_count_sane")
DESCRIPTIONS = {
    "mds_trips": "MDS 2.0 trips, one row per trip and delivery hour (by end time), per zone.",
    "mds_events": "MDS 2.0 vehicle events, one row per event (by event time), per zone.",
}
"""Each hourly dataset's asset description (pipelines/lake/datasets.py says which datasets are hourly)."""


def _check_results(
    lake: LakeStore, report: IngestReport, dataset: str, key: dg.AssetKey
) -> Iterator[dg.AssetCheckResult]:
    written = [Partition(r.dataset, r.zone_id, r.hour) for r in report.of(dataset) if r.status == "written"]
    paths = checks.existing([lake.lake().data_path(p) for p in written])
    summary = report.summary(dataset)
    outcomes = [
        checks.check_schema(dataset, paths),
        checks.check_unique_ids(dataset, paths),
        checks.check_window(lake.lake(), dataset, written),
        checks.check_row_counts(
            summary["rows"], summary["received"], summary["quarantined"], summary["duplicates"], summary["conflicts"]
        ),
    ]
    for outcome in outcomes:
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=outcome.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"detail": outcome.description, "failures": outcome.failures},
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dataset, description=DESCRIPTIONS[dataset], kinds={"parquet"}, group_name="lake", deps=[source_of(dataset)]
        )
        for dataset in HOURLY_DATASETS
    ],
    check_specs=[dg.AssetCheckSpec(name, asset=key) for key in HOURLY_DATASETS for name in CHECKS],
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
    op_tags={INGEST_TAG: INGEST_TAG_VALUE},
)
def mds_hourly(context: dg.AssetExecutionContext, voi: VoiApi, lake: LakeStore) -> Iterator[object]:
    """Fetch each selected dataset for every zone and hour of the window; 202 hours retry later. An ingestion of
    exactly this window the launching command started already (`fleetlake backfill`, pipelines/backfill.py) is
    waited for instead; a big window is written by worker processes (pipelines/lake_writers.py)."""
    window = context.partition_time_window
    hours = hours_between(window.start.astimezone(UTC), window.end.astimezone(UTC))
    datasets = [k.path[-1] for k in context.selected_asset_keys]

    def log_failure(result: PartitionResult) -> None:
        if result.status == "failed":
            context.log.warning(f"{result.dataset} zone {result.zone_id} {result.hour:%Y-%m-%dT%H}: {result.error}")

    def on_result(result: PartitionResult) -> None:
        progress.report(result)
        log_failure(result)

    async def run() -> tuple[IngestReport, list[str]]:
        async with VoiClient(voi.settings()) as client:
            zones = await client.zones()
            started = backfill.claim(backfill.Plan.of(lake.lake(), zones, hours, datasets))
            if started is not None:  # its command heard of each partition already
                report = await asyncio.to_thread(started.wait)
                for result in report.with_status("failed"):
                    log_failure(result)
                return report, zones
            with writer_for(len(zones) * len(hours) * len(datasets)) as writer:
                return await ingest_hours(client, lake.lake(), zones, hours, datasets, on_result, writer=writer), zones

    report, zones = asyncio.run(run())
    raise_if_failed(report)
    not_ready = report.with_status("not_ready")
    if not_ready:
        hours_waiting = sorted({f"{r.hour:%Y-%m-%dT%H}" for r in not_ready})
        context.log.info(f"hours not ready yet at the provider: {hours_waiting}; retrying later")
        raise dg.RetryRequested(max_retries=voi.not_ready_max_retries, seconds_to_wait=voi.not_ready_retry_s)
    for dataset in datasets:
        summary = report.summary(dataset)
        key = dg.AssetKey(dataset)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=ingest_metadata(
                report,
                dataset,
                zones,
                partitions_written=summary["partitions_written"],
                partitions_unchanged=summary["partitions_unchanged"],
                future_hours_skipped=summary["partitions_future"],
                window_start=window.start.isoformat(),
                window_end=window.end.isoformat(),
            ),
        )
        yield from _check_results(lake, report, dataset, key)
