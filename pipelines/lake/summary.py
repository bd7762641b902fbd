"""What the lake holds, per dataset: for the demo's closing table and for operators."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import QUARANTINE, Lake


@dataclass(frozen=True)
class DatasetSummary:
    dataset: str
    zones: int
    files: int
    rows: int
    quarantined: int
    bytes: int
    folder: Path


def summarize(lake: Lake) -> list[DatasetSummary]:
    out = []
    quarantine = lake.root / QUARANTINE
    for name in DATASETS:
        files = sorted(lake.dataset_dir(name).glob("zone_id=*/date=*/hour=*/*.parquet"))
        if not files:
            continue
        q_files = sorted((quarantine / f"dataset={name}").glob("zone_id=*/date=*/hour=*/*.parquet"))
        rows = pl.scan_parquet(files).select(pl.len()).collect().item()
        quarantined = pl.scan_parquet(q_files).select(pl.len()).collect().item() if q_files else 0
        zones = len({f.relative_to(lake.dataset_dir(name)).parts[0] for f in files})
        size = sum(f.stat().st_size for f in files)
        out.append(DatasetSummary(name, zones, len(files), rows, quarantined, size, lake.dataset_dir(name)))
    return out
