"""The code location: composes assets, checks, jobs, schedules and resources; no logic lives here."""

import dagster as dg

from assets.ingestion import mds_hourly
from assets.resources import LakeStore, VoiApi, WarehouseStore
from assets.schedules import (
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
from assets.snapshots import gbfs_snapshot, mds_vehicle_snapshot, zone_geometry
from assets.warehouse import warehouse_models

defs = dg.Definitions(
    assets=[mds_hourly, gbfs_snapshot, mds_vehicle_snapshot, zone_geometry, warehouse_models],
    jobs=[mds_hourly_job, warehouse_job, gbfs_snapshot_job, mds_vehicle_snapshot_job, zone_geometry_job],
    schedules=[mds_hourly_schedule, gbfs_snapshot_schedule, mds_vehicle_snapshot_schedule, zone_geometry_schedule],
    resources={"voi": VoiApi(), "lake": LakeStore(), "warehouse": WarehouseStore()},
)
