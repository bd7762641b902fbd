"""Data checks on written lake partitions: what the asset checks assert, as plain functions."""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from pipelines.lake.datasets import DATASETS
from pipelines.lake.filesystem import is_remote, readable
from pipelines.lake.store import INGESTED_AT, SUPERSEDED_COLUMNS, Lake, Partition

MAX_QUARANTINE_SHARE = 0.05


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    failures: int = 0


def existing(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.exists()]


def _scan(paths: list[Path]) -> pl.LazyFrame:
    """The files' rows with their path (`file`); files in a bucket are read through the lake's filesystem."""
    if not any(is_remote(p) for p in paths):
        return pl.scan_parquet(paths, include_file_paths="file")
    return pl.concat([pl.read_parquet(readable(p)).with_columns(file=pl.lit(str(p))).lazy() for p in paths])


def check_schema(dataset: str, paths: list[Path], extra: dict[str, pl.DataType] | None = None) -> CheckOutcome:
    """The files have the dataset's columns; an hourly dataset's also its delivery's `ingested_at`."""
    stamped = {INGESTED_AT: SUPERSEDED_COLUMNS[INGESTED_AT]} if DATASETS[dataset].kind == "hourly" else {}
    expected = pl.Schema({**DATASETS[dataset].schema, **stamped, **(extra or {})})
    wrong = [str(p) for p in paths if pl.read_parquet_schema(readable(p)) != expected]
    return CheckOutcome(
        "schema_matches",
        not wrong,
        f"{len(wrong)} partition file(s) whose columns differ from the {dataset} schema" if wrong else "all match",
        len(wrong),
    )


def check_unique_ids(dataset: str, paths: list[Path]) -> CheckOutcome:
    key = list(DATASETS[dataset].key)
    if not key or not paths:
        return CheckOutcome("no_duplicate_ids", True, "nothing to check")
    dupes = _scan(paths).group_by("file", *key).len().filter(pl.col("len") > 1).collect()
    return CheckOutcome(
        "no_duplicate_ids",
        dupes.height == 0,
        f"{dupes.height} id(s) appear more than once within a partition" if dupes.height else "ids are unique",
        dupes.height,
    )


def check_window(lake: Lake, dataset: str, partitions: list[Partition]) -> CheckOutcome:
    """Each record's time falls inside the hour its partition folder names; one scan over every file."""
    column = DATASETS[dataset].window_column
    if column is None:
        return CheckOutcome("timestamps_in_window", True, "not an hourly dataset")
    paths = existing([lake.data_path(p) for p in partitions])
    outside = 0
    if paths:
        folder_hour = (
            pl.col("file")
            .str.extract(r"date=(\d{4}-\d{2}-\d{2})[/\\]hour=(\d{2})", 0)
            .str.replace(r"date=(\d{4}-\d{2}-\d{2})[/\\]hour=(\d{2})", "${1} ${2}:00")
            .str.to_datetime("%Y-%m-%d %H:%M", time_zone="UTC", time_unit="ms")
        )
        outside = (
            _scan(paths)
            .with_columns(start=folder_hour)
            .filter((pl.col(column) < pl.col("start")) | (pl.col(column) >= pl.col("start") + timedelta(hours=1)))
            .select(pl.len())
            .collect()
            .item()
        )
    return CheckOutcome(
        "timestamps_in_window",
        outside == 0,
        f"{outside} record(s) with {column} outside their partition's hour" if outside else "all inside",
        outside,
    )


def check_row_counts(rows: int, received: int, quarantined: int, duplicates: int, conflicts: int = 0) -> CheckOutcome:
    """Every received record is accounted for, and the quarantine stays a small share."""
    balanced = rows + quarantined + duplicates + conflicts == received
    share = quarantined / received if received else 0.0
    passed = balanced and share <= MAX_QUARANTINE_SHARE
    parts = f"kept {rows} + quarantined {quarantined} + duplicates {duplicates}"
    if conflicts:
        parts += f" + conflicts {conflicts}"
    description = f"received {received} = {parts}" if balanced else f"received {received} != {parts}"
    if share > MAX_QUARANTINE_SHARE:
        description += f"; quarantined share {share:.1%} above {MAX_QUARANTINE_SHARE:.0%}"
    return CheckOutcome("row_count_sane", passed, description, quarantined)
