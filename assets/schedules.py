"""When things run: the last hours of MDS data every hour, GBFS every few minutes, zones daily, reports monthly."""

from datetime import timedelta

import dagster as dg

from assets.ingestion import mds_hourly
from assets.partition_keys import hourly_key, range_tags
from assets.reports import city_report
from assets.run_limits import SNAPSHOT_MAX_RUNTIME_S, ZONE_GEOMETRY_MAX_RUNTIME_S, ingest_job_tags, max_runtime_tags
from assets.settings import SCHEDULE_STATUS, SETTINGS
from assets.snapshots import gbfs_snapshot, mds_vehicle_snapshot, zone_geometry
from assets.warehouse import BUILD_TAG, CHANGED_HOURS, warehouse_models
from pipelines.config import Settings

# Ingest the window, then rebuild the warehouse models downstream of it, in one run. Its tags put every run of it
# (scheduled, launched or backfilled from the UI) under the one-ingestion-at-a-time limit (assets/run_limits.py).
# Its two steps run one after the other in the run's own process: a process per step (Dagster's default) would
# load the code location twice more in every run for no parallelism, and a run worker killed (OOM, kill -9) would
# leave its step's process ingesting on, unwatched.
mds_hourly_job = dg.define_asset_job(
    "mds_hourly_job",
    description=(
        "Ingest MDS trips and events of the hours its partition range names (every zone), then rebuild the "
        "warehouse models for that window and run their checks. One ingestion runs at a time."
    ),
    selection=dg.AssetSelection.assets(mds_hourly, warehouse_models),
    tags=ingest_job_tags(SETTINGS.max_runtime_s),
    executor_def=dg.in_process_executor,
)
warehouse_job = dg.define_asset_job(
    "warehouse_job",
    description="Rebuild the warehouse models (a full build, or the window its partition-range tags name), then "
    "run their checks. Fetches nothing.",
    selection=dg.AssetSelection.assets(warehouse_models),
)
# Snapshots are not under the ingestion limit: a few requests each, and a snapshot taken late is a snapshot lost.
gbfs_snapshot_job = dg.define_asset_job(
    "gbfs_snapshot_job",
    description="Capture the GBFS feeds (vehicle status, geofencing, system information, ...) and the parking "
    "spots' occupancy of every zone at one instant.",
    selection=dg.AssetSelection.assets(gbfs_snapshot),
    tags=max_runtime_tags(SNAPSHOT_MAX_RUNTIME_S),
)
mds_vehicle_snapshot_job = dg.define_asset_job(
    "mds_vehicle_snapshot_job",
    description="Capture the MDS vehicles and their current status in every zone (the vehicle types the marts use).",
    selection=dg.AssetSelection.assets(mds_vehicle_snapshot),
    tags=max_runtime_tags(SNAPSHOT_MAX_RUNTIME_S),
)
zone_geometry_job = dg.define_asset_job(
    "zone_geometry_job",
    description="Capture every zone's information and areas (operations, no-parking, parking spots, ...) from the "
    "zone API.",
    selection=dg.AssetSelection.assets(zone_geometry),
    tags=max_runtime_tags(ZONE_GEOMETRY_MAX_RUNTIME_S),
)
SNAPSHOT_JOBS: dict[str, tuple[str, ...]] = {
    job.name: tuple(spec.key.path[-1] for spec in captures.specs)
    for job, captures in (
        (zone_geometry_job, zone_geometry),
        (gbfs_snapshot_job, gbfs_snapshot),
        (mds_vehicle_snapshot_job, mds_vehicle_snapshot),
    )
}
"""Each snapshot job and the datasets it captures, in the order of its asset's specs (`fleetlake snapshot`)."""
city_report_job = dg.define_asset_job(
    "city_report_job",
    description="Write each city's report (HTML, XLSX, CSV, Parquet, GeoJSON) for the month its partition names.",
    selection=dg.AssetSelection.assets(city_report),
)


@dg.schedule(
    job=mds_hourly_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
    description="Five minutes past each hour: the hour that just ended and the lookback before it "
    "(FLEETLAKE_LOOKBACK_HOURS), then the warehouse for them.",
)
def mds_hourly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """A few minutes past each hour: the hour that just ended, plus a lookback window for late records
    (FLEETLAKE_LOOKBACK_HOURS, read at each tick: a bad value fails the tick with its name). Its warehouse build
    rebuilds only the hours whose records changed (usually the newest alone; see built_partitions.py)."""
    lookback_hours = Settings.from_env().lookback_hours
    scheduled = context.scheduled_execution_time
    last = scheduled.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = last - timedelta(hours=max(lookback_hours - 1, 0))
    tags = {**range_tags(first, last), BUILD_TAG: CHANGED_HOURS}
    return dg.RunRequest(run_key=f"mds-hourly-{hourly_key(last)}", tags=tags)


gbfs_snapshot_schedule = dg.ScheduleDefinition(
    name="gbfs_snapshot_schedule",
    job=gbfs_snapshot_job,
    cron_schedule=SETTINGS.gbfs_snapshot_cron,
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
    description="GBFS and parking occupancy snapshots, by FLEETLAKE_GBFS_SNAPSHOT_CRON (every 5 minutes).",
)
mds_vehicle_snapshot_schedule = dg.ScheduleDefinition(
    name="mds_vehicle_snapshot_schedule",
    job=mds_vehicle_snapshot_job,
    cron_schedule="2 * * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
    description="MDS vehicles snapshot, two minutes past each hour.",
)
zone_geometry_schedule = dg.ScheduleDefinition(
    name="zone_geometry_schedule",
    job=zone_geometry_job,
    cron_schedule="15 3 * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
    description="Zone information and areas, daily at 03:15 UTC (and on demand: fleetlake snapshot).",
)


@dg.schedule(
    job=city_report_job,
    cron_schedule="0 6 2 * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
    description="The city reports of the month before, on the 2nd of each month at 06:00 UTC.",
)
def city_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """The month that just ended, on the 2nd at 06:00 UTC: by then every city's last local day is over (west of
    UTC too) and its hours have been ingested, lookback included."""
    month = (context.scheduled_execution_time.replace(day=1) - timedelta(days=1)).replace(day=1)
    key = month.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"city-report-{key}", partition_key=key)
