"""core.int_hourly_partitions: which hourly lake partitions exist, with their row counts.

Data quality tells an empty hour (a file with no rows) from a missing one (no file), so it needs the files, not
the rows. Reading every file's footer on each build grows with the history; a window build lists and reads only
the window's date folders. `complete` says whether a file stands for its whole hour: a delivery does, an imported
archive's file only for the hours the import was told the archive covers completely (pipelines/archives.py); the
others' records count, but their hours are not delivered.
"""

import re
from datetime import UTC, datetime

import duckdb
import polars as pl

from pipelines.lake.datasets import HOURLY_DATASETS
from pipelines.lake.filesystem import LakePath, uri
from pipelines.lake.listing import LakeListing
from pipelines.lake.store import is_complete_file
from pipelines.warehouse.frames import registered
from pipelines.warehouse.window import window_days

FOLDERS = re.compile(r"zone_id=(?P<zone>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/[^/]+$")
CREATE = (
    "create table if not exists core.int_hourly_partitions "
    "(dataset varchar, zone_id varchar, partition_hour timestamptz, file_name varchar, records bigint, "
    "complete boolean)"
)
ADD_COMPLETE = "alter table core.int_hourly_partitions add column if not exists complete boolean default true"
"""A table built before imports existed holds deliveries only: each of them complete."""


def _files(
    listing: LakeListing, lake_dir: LakePath, window: tuple[datetime, datetime] | None
) -> list[tuple[str, str, datetime, str, bool]]:
    """(dataset, zone_id, partition hour, path, complete) of every hourly file in the window (all of them without
    one)."""
    dates = window_days(window)
    found = []
    for dataset in HOURLY_DATASETS:
        for date in dates:
            for path in listing.glob(lake_dir / dataset, f"zone_id=*/date={date}/hour=*/*.parquet"):
                match = FOLDERS.search(path.as_posix())
                if match is None:
                    continue
                hour = datetime.fromisoformat(match["date"]).replace(hour=int(match["hour"]), tzinfo=UTC)
                if window is None or window[0] <= hour < window[1]:
                    found.append((dataset, match["zone"], hour, uri(path), is_complete_file(path.name)))
    return found


def build_hourly_partitions(
    con: duckdb.DuckDBPyConnection,
    listing: LakeListing,
    lake_dir: LakePath,
    window: tuple[datetime, datetime] | None,
) -> int:
    files = _files(listing, lake_dir, window)
    if window is None:
        con.execute("drop table if exists core.int_hourly_partitions")
    con.execute(CREATE)
    con.execute(ADD_COMPLETE)
    if window is not None:
        con.execute(
            "delete from core.int_hourly_partitions where partition_hour >= $start and partition_hour < $end",
            {"start": window[0], "end": window[1]},
        )
    if not files:
        return 0
    listed = pl.DataFrame(
        files,
        schema={
            "dataset": pl.String,
            "zone_id": pl.String,
            "partition_hour": pl.Datetime("ms", "UTC"),
            "file_name": pl.String,
            "complete": pl.Boolean,
        },
        orient="row",
    )
    with registered(con, "listed_files", listed):
        con.execute(
            "insert into core.int_hourly_partitions by name "
            "select listed_files.*, metadata.num_rows as records "
            "from listed_files inner join parquet_file_metadata($files) as metadata "
            "on listed_files.file_name = metadata.file_name",
            {"files": [f[3] for f in files]},
        )
    return len(files)
