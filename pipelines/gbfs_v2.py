"""Which GBFS versions the pipeline reads (FLEETLAKE_GBFS_VERSIONS), and GBFS 2.3's account-wide datasets.

Voi serves GBFS 3.0 per zone (`/v1/partner-apis/gbfs/{zone}/...`) and GBFS 2.3 once for the whole account
(`/gbfs/v2/...`): `system_regions` names the zones the credentials may see, `free_bike_status` lists every zone's
parked vehicles without saying which zone each is in. The 2.3 datasets are therefore kept under one partition,
`zone_id=account`, raw delivery and all, and the warehouse places each vehicle in a zone by geometry
(pipelines/warehouse/gbfs_v2.py).
"""

from collections.abc import Iterable, Sequence

GBFS_VERSIONS = ("3.0", "2.3")
DEFAULT_GBFS_VERSIONS = ("3.0",)
ACCOUNT = "account"
"""The zone_id of the partitions of account-wide datasets."""
GBFS_V2_FEED = {
    "gbfs_v2_free_bike_status": "free_bike_status",
    "gbfs_v2_system_regions": "system_regions",
}
GBFS_V2_DATASETS = tuple(GBFS_V2_FEED)


def parse_gbfs_versions(text: str, variable: str = "FLEETLAKE_GBFS_VERSIONS") -> tuple[str, ...]:
    """'3.0', '2.3', '3.0,2.3' or 'both' (empty: 3.0 only); anything else is refused, naming the variable."""
    words = [w.strip() for w in text.replace(" ", ",").split(",") if w.strip()]
    if not words:
        return DEFAULT_GBFS_VERSIONS
    if words == ["both"]:
        return GBFS_VERSIONS
    unknown = [w for w in words if w not in GBFS_VERSIONS]
    if unknown:
        raise ValueError(f"{variable}={text!r}: takes 3.0, 2.3, '3.0,2.3' or 'both', not {', '.join(unknown)}")
    return tuple(v for v in GBFS_VERSIONS if v in words)


def gbfs_datasets(versions: Sequence[str], v3_datasets: Sequence[str]) -> tuple[str, ...]:
    """The GBFS datasets the chosen versions capture."""
    return (*(v3_datasets if "3.0" in versions else ()), *(GBFS_V2_DATASETS if "2.3" in versions else ()))


def is_account_wide(dataset: str) -> bool:
    return dataset in GBFS_V2_FEED


def snapshot_targets(zones: Sequence[str], datasets: Iterable[str]) -> list[tuple[str, str]]:
    """(dataset, partition zone) of each capture: per zone, except account-wide datasets, captured once."""
    datasets = list(datasets)
    per_zone = [(name, zone) for zone in zones for name in datasets if not is_account_wide(name)]
    return per_zone + [(name, ACCOUNT) for name in datasets if is_account_wide(name)]
