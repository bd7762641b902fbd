"""The provider's APIs as external assets (group `sources`), drawn upstream of the lake assets that read them.

Nothing materializes them: they stand for data Dagster does not make, so the asset graph reads as layers from the
provider's APIs through the lake, staging, core and marts to the reports.
"""

import dagster as dg

SOURCES = {
    "mds_api": "Voi's MDS 2.0 Provider API (1.2 and 0.4 for zones configured so): trips and events per zone and "
    "hour, vehicles and their status per capture.",
    "gbfs": "Voi's GBFS 3.0 feeds (and the account-wide GBFS 2.3 ones): vehicle status, geofencing zones, vehicle "
    "types, system information and pricing plans per zone.",
    "zone_api": "Voi's zone API: each zone's information (name, parking mode, speed), its areas and the parking "
    "spots' occupancy.",
}
SOURCE_SPECS = [
    dg.AssetSpec(dg.AssetKey(["voi", name]), description=text, group_name="sources", kinds={"api"})
    for name, text in SOURCES.items()
]


def source_of(dataset: str) -> dg.AssetKey:
    """The API a lake dataset is fetched from, by its name's prefix (pipelines/ingest.py fetches it)."""
    for prefix, source in (("gbfs_", "gbfs"), ("zone_", "zone_api"), ("mds_", "mds_api")):
        if dataset.startswith(prefix):
            return dg.AssetKey(["voi", source])
    raise ValueError(f"no API is known for the dataset {dataset!r}")
