"""The code location: composes assets, checks, jobs, schedules and resources; no logic lives here."""

import dagster as dg

from assets.fanout import zone_backfill_job
from assets.ingestion import mds_hourly
from assets.insurance import insurance_definitions
from assets.reports import city_report
from assets.resources import resources_for
from assets.schedules import (
    city_report_job,
    city_report_schedule,
    gbfs_snapshot_job,
    gbfs_snapshot_schedule,
    mds_hourly_job,
    mds_hourly_schedule,
    mds_vehicle_snapshot_job,
    mds_vehicle_snapshot_schedule,
    warehouse_job,
    zone_geometry_job,
    zone_geometry_schedule,
)
from assets.settings import SETTINGS
from assets.snapshots import gbfs_snapshot, mds_vehicle_snapshot, zone_geometry
from assets.sources import SOURCE_SPECS
from assets.warehouse import warehouse_models

city = dg.Definitions(
    assets=[
        *SOURCE_SPECS,
        mds_hourly,
        gbfs_snapshot,
        mds_vehicle_snapshot,
        zone_geometry,
        warehouse_models,
        city_report,
    ],
    jobs=[
        mds_hourly_job,
        warehouse_job,
        gbfs_snapshot_job,
        mds_vehicle_snapshot_job,
        zone_geometry_job,
        city_report_job,
        zone_backfill_job,
    ],
    schedules=[
        mds_hourly_schedule,
        gbfs_snapshot_schedule,
        mds_vehicle_snapshot_schedule,
        zone_geometry_schedule,
        city_report_schedule,
    ],
    resources=resources_for(SETTINGS, secrets_as_env_vars=True),
)
defs = dg.Definitions.merge(city, insurance_definitions(SETTINGS))
"""The city's definitions, and the insurance trips' when FLEETLAKE_INSURANCE_TRIPS switches them on."""
