"""Snapshot assets: the current state of GBFS feeds, MDS vehicles and the zones, stamped with capture time."""

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.reporting import ingest_metadata, raise_if_failed
from assets.resources import LakeStore, VoiApi
from assets.run_limits import INGEST_TAG, INGEST_TAG_VALUE
from assets.sources import source_of
from pipelines import progress
from pipelines.config import Settings
from pipelines.gbfs_v2 import GBFS_V2_DATASETS, gbfs_datasets
from pipelines.ingest import GBFS_DATASETS, MDS_SNAPSHOT_DATASETS, IngestReport, ingest_snapshots
from pipelines.lake import checks
from pipelines.lake.store import Partition, snapshot_stem
from pipelines.voi.client import VoiClient

SNAPSHOT_CHECKS = ("schema_matches", "no_duplicate_ids")
CAPTURED_AT: dict[str, pl.DataType] = {"captured_at": pl.Datetime("ms", "UTC")}


def snapshot_assets(
    name: str,
    datasets: Sequence[str],
    descriptions: dict[str, str],
    group: str,
    configured: Callable[[Settings], Sequence[str]] | None = None,
) -> dg.AssetsDefinition:
    """One multi-asset capturing `datasets` for every zone at one instant; `configured` (if given) names the
    datasets the settings ask for, the others are skipped (not materialized, their checks not run)."""

    @dg.multi_asset(
        name=name,
        specs=[
            dg.AssetSpec(
                d,
                description=descriptions[d],
                kinds={"parquet"},
                group_name=group,
                skippable=configured is not None,
                deps=[source_of(d)],
            )
            for d in datasets
        ],
        check_specs=[dg.AssetCheckSpec(c, asset=d) for d in datasets for c in SNAPSHOT_CHECKS],
        can_subset=True,
        op_tags={INGEST_TAG: INGEST_TAG_VALUE},
    )
    def capture(context: dg.AssetExecutionContext, voi: VoiApi, lake: LakeStore) -> Iterator[object]:
        selected = [k.path[-1] for k in context.selected_asset_keys]
        if configured is not None:
            wanted = set(configured(voi.settings()))
            skipped = [d for d in selected if d not in wanted]
            if skipped:
                context.log.info(f"not captured (FLEETLAKE_GBFS_VERSIONS): {', '.join(skipped)}")
            selected = [d for d in selected if d in wanted]
        captured_at = datetime.now(UTC)

        async def run() -> tuple[IngestReport, list[str]]:
            async with VoiClient(voi.settings()) as client:
                zones = await client.zones()
                report = await ingest_snapshots(
                    client, lake.lake(), zones, selected, captured_at, on_result=progress.report
                )
                return report, zones

        report, zones = asyncio.run(run())
        raise_if_failed(report)
        stem = snapshot_stem(captured_at)
        for dataset in selected:
            key = dg.AssetKey(dataset)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=ingest_metadata(report, dataset, zones, captured_at=captured_at.isoformat()),
            )
            paths = checks.existing(
                [lake.lake().data_path(Partition(dataset, r.zone_id, r.hour), stem) for r in report.of(dataset)]
            )
            for outcome in (checks.check_schema(dataset, paths, CAPTURED_AT), checks.check_unique_ids(dataset, paths)):
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=outcome.name,
                    passed=outcome.passed,
                    metadata={"detail": outcome.description, "failures": outcome.failures},
                )

    return capture


def _configured_gbfs(settings: Settings) -> tuple[str, ...]:
    return (*gbfs_datasets(settings.gbfs_versions, GBFS_DATASETS), "zone_area_occupancy")


gbfs_snapshot = snapshot_assets(
    "gbfs_snapshot",
    (*GBFS_DATASETS, *GBFS_V2_DATASETS, "zone_area_occupancy"),
    {
        "gbfs_vehicle_status": "GBFS vehicle_status: one row per listed vehicle per capture (ids rotate per trip).",
        "gbfs_station_status": "GBFS station_status: one row per (virtual) station per capture.",
        "gbfs_station_information": "GBFS station_information: stations with their areas (WKB) per capture.",
        "gbfs_geofencing_zones": "GBFS geofencing_zones: one row per feature with its rules per capture.",
        "gbfs_vehicle_types": "GBFS vehicle_types: one row per vehicle type per capture.",
        "gbfs_system_information": "GBFS system_information: one row per system per capture (time zone).",
        "gbfs_pricing_plans": "GBFS system_pricing_plans: one row per plan per capture.",
        "gbfs_v2_free_bike_status": "GBFS 2.3 free_bike_status, account-wide (partition zone_id=account): one row "
        "per listed vehicle per capture; the warehouse places each in a zone by geometry.",
        "gbfs_v2_system_regions": "GBFS 2.3 system_regions, account-wide: the zones the credentials may see.",
        "zone_area_occupancy": "Zone API parking-spot occupancy: one row per parking-spot area per capture.",
    },
    group="lake",
    configured=_configured_gbfs,
)
mds_vehicle_snapshot = snapshot_assets(
    "mds_vehicle_snapshot",
    MDS_SNAPSHOT_DATASETS,
    {
        "mds_vehicles": "MDS 2.0 vehicles: one row per device per capture.",
        "mds_vehicle_status": "MDS 2.0 vehicle status: one row per device per capture, last event and telemetry.",
    },
    group="lake",
)
zone_geometry = snapshot_assets(
    "zone_geometry",
    ("zone_info", "zone_areas"),
    {
        "zone_info": "Zone API operational zones: name, parking mode, speed config; one row per zone per capture.",
        "zone_areas": "Zone API areas (v2): one row per area with type and MultiPolygon (WKB) per capture.",
    },
    group="lake",
)
