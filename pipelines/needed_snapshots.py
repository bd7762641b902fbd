"""The snapshots the marts need of a zone before its hours are worth building, and which of them the lake lacks.

A backfill's MDS trips and events alone leave the marts without zone areas (every trip then "outside"), without a
time zone and without vehicle types; so a backfill (from the command line or fanned out per zone) first takes the
snapshots of any zone the lake has none of.
"""

from collections.abc import Sequence
from pathlib import Path

# What the marts read from snapshots: zone areas and names, the time zone, vehicle types and geofencing rules, and
# the MDS vehicles (vehicle types of trips). A zone lacking any of them gets its snapshots before a backfill.
NEEDED_BY_MARTS = (
    "zone_info",
    "zone_areas",
    "gbfs_system_information",
    "gbfs_vehicle_types",
    "gbfs_geofencing_zones",
    "mds_vehicles",
)


def has_snapshot(lake_dir: Path, dataset: str, zone: str) -> bool:
    """Whether the lake holds at least one snapshot of `dataset` for `zone` (an empty capture counts)."""
    return next((lake_dir / dataset / f"zone_id={zone}").glob("date=*/hour=*/snapshot-*.parquet"), None) is not None


def missing_snapshots(lake_dir: Path, zones: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Per zone, the datasets the marts need that the lake has no snapshot of (zones lacking none are left out)."""
    missing = {zone: tuple(d for d in NEEDED_BY_MARTS if not has_snapshot(lake_dir, d, zone)) for zone in zones}
    return {zone: datasets for zone, datasets in missing.items() if datasets}
