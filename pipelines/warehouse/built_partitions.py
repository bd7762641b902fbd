"""What the warehouse was built from: each lake hour's partitions and their fingerprints, so that the hourly build
rebuilds only the hours whose records changed since.

Every build records, in `build_record.partitions` and in the same published file as the rows it built, the lake's
partitions of the hours it built: for an hourly dataset the data file's fingerprint (pipelines/lake/fingerprint.py),
for a snapshot dataset a digest of its hour's files' names (each capture is a file of its own, named by its time,
and written once: reading the footers of a few thousand captures a tick would cost more than the check saves; a
snapshot re-parsed with `fleetlake reparse` is not seen as changed, so build its window after). The
fingerprints are read before the build reads the lake: a partition that changes meanwhile is recorded as it was,
so the next build sees it changed and builds it again, never the other way round.

A lake hour has changed when its partitions or their fingerprints differ from the record: a new partition, one
rewritten with other records, one gone, or one whose fingerprint is not known (a file written before fingerprints
existed, an hour never built). A build records only the newest days of its window, or of the lake in a full build
(`FULL_BUILD_RECORDED_DAYS`), enough for the hourly build's lookback; an hour not recorded counts as changed, so an
older one is built again the first time an hourly build covers it.
"""

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from pipelines.lake.datasets import DATASETS, HOURLY_DATASETS
from pipelines.lake.filesystem import LakePath, uri
from pipelines.lake.fingerprint import FINGERPRINT_KEY
from pipelines.lake.listing import LakeListing
from pipelines.warehouse.frames import registered
from pipelines.warehouse.window import Window, window_days

SCHEMA = "build_record"
FULL_BUILD_RECORDED_DAYS = 2
"""The newest days of its window (of the lake, in a full build) a build records: a backfill of a month reads the
fingerprints of two days, not thirty (the hourly lookback is hours, not days)."""
FOLDERS = re.compile(r"zone_id=(?P<zone>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/(?P<file>[^/]+)$")
DATE_FOLDER = re.compile(r"date=\d{4}-\d{2}-\d{2}")
CREATE = (
    "create table if not exists build_record.partitions "
    "(dataset varchar, zone_id varchar, partition_hour timestamptz, fingerprint varchar)"
)
COLUMNS = {
    "dataset": pl.String(),
    "zone_id": pl.String(),
    "partition_hour": pl.Datetime("ms", "UTC"),
    "fingerprint": pl.String(),
}


def recorded_window(listing: LakeListing, lake_dir: LakePath, window: Window | None) -> Window | None:
    """The hours a build records: the newest days of its window, or of the lake in a full build (None: the lake
    has no hours)."""
    if window is not None:
        return max(window[0], window[1] - timedelta(days=FULL_BUILD_RECORDED_DAYS)), window[1]
    named = {
        folder.name
        for name in HOURLY_DATASETS
        for zone in listing.folders(lake_dir / name)
        for folder in listing.folders(zone)
        if folder.name.startswith("date=")
    }
    dates = sorted(name.removeprefix("date=") for name in named if DATE_FOLDER.fullmatch(name))  # no stray folder
    if not dates:
        return None
    last = datetime.fromisoformat(dates[-1]).replace(tzinfo=UTC) + timedelta(days=1)
    return last - timedelta(days=FULL_BUILD_RECORDED_DAYS), last


def lake_fingerprints(
    con: duckdb.DuckDBPyConnection, listing: LakeListing, lake_dir: LakePath, window: Window
) -> pl.DataFrame:
    """(dataset, zone_id, partition_hour, fingerprint) of every partition the lake holds in `window` as `listing`
    lists it; a null fingerprint when one of its files has none."""
    files: list[tuple[str, str, datetime, str, str]] = []
    for name in DATASETS:
        for date in window_days(window):
            for found in listing.glob(lake_dir / name, f"zone_id=*/date={date}/hour=*/*.parquet"):
                match = FOLDERS.search(found.as_posix())
                if match is None:
                    continue
                hour = datetime.fromisoformat(match["date"]).replace(hour=int(match["hour"]), tzinfo=UTC)
                if window[0] <= hour < window[1]:
                    files.append((name, match["zone"], hour, match["file"], uri(found)))
    if not files:
        return pl.DataFrame(schema=COLUMNS)
    hourly_files = [f[4] for f in files if DATASETS[f[0]].kind == "hourly"]
    stored = dict(
        con.execute(
            "select file_name, decode(value) from parquet_kv_metadata($files) where decode(key) = $key",
            {"files": hourly_files, "key": FINGERPRINT_KEY},
        ).fetchall()
        if hourly_files
        else []
    )
    by_partition: dict[tuple[str, str, datetime], list[tuple[str, str | None]]] = {}
    for name, zone, hour, file, location in files:
        fingerprint = stored.get(location) if DATASETS[name].kind == "hourly" else "captured"
        by_partition.setdefault((name, zone, hour), []).append((file, fingerprint))
    rows = [(*key, _digest(key[0], members)) for key, members in by_partition.items()]
    return pl.DataFrame(rows, schema=COLUMNS, orient="row")


def _digest(dataset: str, members: list[tuple[str, str | None]]) -> str | None:
    """An hourly partition's file's fingerprint; a snapshot hour's files' names and fingerprints in one digest."""
    if any(fingerprint is None for _, fingerprint in members):
        return None
    if DATASETS[dataset].kind == "hourly" and len(members) == 1:
        return members[0][1]
    digest = hashlib.blake2b(digest_size=20)
    for file, fingerprint in sorted(members):
        digest.update(f"{file}={fingerprint}\n".encode())
    return "files:" + digest.hexdigest()


def recorded(con: duckdb.DuckDBPyConnection, window: Window) -> pl.DataFrame | None:
    """The record's partitions of `window`; None when the warehouse keeps no record (built before it existed)."""
    found = con.execute(
        "select 1 from duckdb_tables() where schema_name = $schema and table_name = 'partitions'", {"schema": SCHEMA}
    ).fetchall()
    if not found:
        return None
    table = con.execute(
        "select * from build_record.partitions where partition_hour >= $start and partition_hour < $end",
        {"start": window[0], "end": window[1]},
    ).to_arrow_table()
    return pl.DataFrame(pl.from_arrow(table)).cast(COLUMNS)  # type: ignore[arg-type]


def changed_hours(lake: pl.DataFrame, record: pl.DataFrame | None, window: Window) -> list[datetime]:
    """The hours of `window` whose partitions or fingerprints differ between the lake and the record (every hour
    the lake holds, when there is no record), oldest first."""
    if record is None:
        return sorted(set(lake["partition_hour"].to_list()))
    key = ["dataset", "zone_id", "partition_hour"]
    compared = lake.join(record, on=key, how="full", coalesce=True, suffix="_built")
    differs = compared.filter(
        pl.col("fingerprint").is_null()
        | pl.col("fingerprint_built").is_null()
        | (pl.col("fingerprint") != pl.col("fingerprint_built"))
    )
    return sorted(set(differs["partition_hour"].to_list()))


def runs_of(hours: Iterable[datetime]) -> list[Window]:
    """Consecutive hours as windows: [10, 11, 14] -> [10, 12), [14, 15)."""
    windows: list[Window] = []
    for hour in sorted(hours):
        if windows and windows[-1][1] == hour:
            windows[-1] = (windows[-1][0], hour + timedelta(hours=1))
        else:
            windows.append((hour, hour + timedelta(hours=1)))
    return windows


def record(con: duckdb.DuckDBPyConnection, window: Window, fingerprints: pl.DataFrame) -> None:
    """Replace the record of `window`'s hours with the fingerprints read before they were built."""
    con.execute("create schema if not exists build_record")
    con.execute(CREATE)
    con.execute(
        "delete from build_record.partitions where partition_hour >= $start and partition_hour < $end",
        {"start": window[0], "end": window[1]},
    )
    rows = fingerprints.filter(pl.col("partition_hour").is_between(window[0], window[1], closed="left"))
    if rows.is_empty():
        return
    with registered(con, "built_fingerprints", rows):
        con.execute("insert into build_record.partitions by name select * from built_fingerprints")
