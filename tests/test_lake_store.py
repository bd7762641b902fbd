"""The lake on disk: partition paths, exact replacement, raw archive and reparse, quarantine, atomicity, data checks.

Everything runs on real files under tmp_path; the only monkeypatching injects a crash in the middle of a write.
"""

import gzip
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.ingest import reparse, write_partition
from pipelines.lake.checks import check_row_counts, check_schema, check_unique_ids, check_window
from pipelines.lake.datasets import DATASETS, parse
from pipelines.lake.store import QUARANTINE_SCHEMA, Lake, Partition, check_zone_id, delivery_stem, snapshot_stem

REPO = Path(__file__).resolve().parents[1]
HOUR = datetime(2026, 3, 28, 10, tzinfo=UTC)
WINDOW = (HOUR, HOUR + timedelta(hours=1))
HOUR_MS = int(HOUR.timestamp() * 1000)
TRIPS = DATASETS["mds_trips"]
PART = Partition("mds_trips", "1", HOUR)
INGESTED = datetime(2026, 3, 28, 11, 5, 0, 123_000, tzinfo=UTC)
DELIVERY = "delivery-20260328T110500123000Z"
TEMP_NAME = re.compile(r"^\.part-0\.parquet\.[0-9]+\.[0-9a-f]{32}\.tmp$")  # .{name}.{writer pid}.{uuid}.tmp


def trip(n: int, minute: int = 30, **fields: Any) -> dict[str, Any]:
    end = HOUR_MS + minute * 60_000 + n
    return {
        "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
        "device_id": f"d48ac4f0-d971-4cd0-be18-{n:012d}",
        "trip_id": f"95ba3c85-8087-457d-9fed-{n:012d}",
        "start_time": end - 600_000,
        "end_time": end,
        "start_location": {"lat": 59.311543, "lng": 18.059523},
        "end_location": {"lat": 59.306113, "lng": 18.107582},
        "duration": 600,
        "distance": 1200 + n,
        "trip_type": ["rider"],
        **fields,
    }


def stamped(frame: pl.DataFrame, ingested_at: datetime) -> pl.DataFrame:
    """A parsed frame as an hourly partition stores it: each row stamped with its delivery's ingest time."""
    return frame.with_columns(pl.lit(ingested_at).cast(pl.Datetime("ms", "UTC")).alias("ingested_at"))


def page(records: list[Any]) -> bytes:
    return json.dumps({"version": "2.0.0", "trips": records}).encode()


# Two pages: five trips, one bad record (impossible latitude), one re-delivered trip.
BAD = trip(99, end_location={"lat": 123.0, "lng": 18.1})
PAGES = [page([trip(1), trip(2), BAD, trip(3)]), page([trip(4), trip(5), trip(2)])]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def leftovers(root: Path) -> list[str]:
    """Temporary or hidden files anywhere under the lake."""
    return [f for f in files_under(root) if Path(f).name.startswith(".") or f.endswith(".tmp")]


def glob_read(root: Path, dataset: str = "mds_trips") -> tuple[pl.DataFrame, int]:
    """What a reader globbing `**/*.parquet` sees: polars' rows, and DuckDB's row count."""
    pattern = str(root / dataset / "**" / "*.parquet")
    frame = pl.scan_parquet(pattern, hive_partitioning=False).collect()
    with duckdb.connect() as con:
        row = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()
    assert row is not None
    return frame, int(row[0])


# --- Zone ids and partitions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["../x", "a/b", "", ".", "..", "a b", "z" * 65, "-1", "a\\b", "1\n", "é"])
def test_zone_id_validation_rejects_unsafe_folder_names(zone: str) -> None:
    with pytest.raises(ValueError, match="invalid zone id"):
        check_zone_id(zone)
    with pytest.raises(ValueError, match="invalid zone id"):
        Partition("mds_trips", zone, HOUR)


@pytest.mark.parametrize("zone", ["1", "145", "zone-9_a", "z" * 64])
def test_zone_id_validation_accepts_plain_identifiers(zone: str) -> None:
    assert check_zone_id(zone) == zone
    assert Partition("mds_trips", zone, HOUR).folder == Path(f"zone_id={zone}", "date=2026-03-28", "hour=10")


def test_partition_requires_a_timezone_aware_hour() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Partition("mds_trips", "1", datetime(2026, 3, 28, 10))
    # An aware hour in another zone lands in its UTC folder.
    paris_noon = datetime(2026, 3, 28, 12, tzinfo=timezone(timedelta(hours=2)))
    assert Partition("mds_trips", "1", paris_noon).folder == PART.folder


# --- Writing, replacing, raw archive, quarantine -------------------------------------------------------------------


def test_write_partition_round_trips_and_keeps_raw_pages_gzipped(lake: Lake) -> None:
    result = write_partition(lake, TRIPS, PART, PAGES, WINDOW, ingested_at=INGESTED)

    assert (result.status, result.rows, result.received, result.quarantined, result.duplicates) == (
        "written",
        5,
        7,
        1,
        1,
    )
    expected = stamped(parse(TRIPS, PAGES, WINDOW).frame, INGESTED)
    data = lake.data_path(PART)
    assert data == lake.root / "mds_trips/zone_id=1/date=2026-03-28/hour=10/part-0.parquet"
    assert_frame_equal(pl.read_parquet(data), expected)
    assert pl.read_parquet_schema(data) == pl.Schema({**TRIPS.schema, "ingested_at": pl.Datetime("ms", "UTC")})

    raw_dir = lake.raw_dir(PART)
    raw_files = sorted(raw_dir.iterdir())
    assert [p.name for p in raw_files] == [f"{DELIVERY}.page-0000.json.gz", f"{DELIVERY}.page-0001.json.gz"]
    for raw, body in zip(raw_files, PAGES, strict=True):
        assert raw.read_bytes()[:2] == b"\x1f\x8b"  # gzip magic
        assert gzip.decompress(raw.read_bytes()) == body
    assert lake.read_raw(PART, DELIVERY) == PAGES

    assert files_under(lake.root) == [
        f"_raw/mds_trips/zone_id=1/date=2026-03-28/hour=10/{DELIVERY}.page-0000.json.gz",
        f"_raw/mds_trips/zone_id=1/date=2026-03-28/hour=10/{DELIVERY}.page-0001.json.gz",
        "mds_trips/zone_id=1/date=2026-03-28/hour=10/part-0.parquet",
        "quarantine/dataset=mds_trips/zone_id=1/date=2026-03-28/hour=10/part-0.parquet",
        # The second copy of trip 2 (same content): kept as what the response repeated.
        f"superseded/mds_trips/zone_id=1/date=2026-03-28/hour=10/{DELIVERY}.parquet",
    ]
    assert result.bytes == sum((lake.root / f).stat().st_size for f in files_under(lake.root))
    assert list(lake.partitions("mds_trips")) == [data]


def test_quarantine_file_keeps_reason_raw_and_window(lake: Lake) -> None:
    before = datetime.now(UTC)
    write_partition(lake, TRIPS, PART, PAGES, WINDOW)
    after = datetime.now(UTC)

    quarantine = pl.read_parquet(lake.quarantine_path(PART))
    assert quarantine.schema == QUARANTINE_SCHEMA
    assert quarantine.height == 1
    row = quarantine.row(0, named=True)
    assert row["dataset"] == "mds_trips"
    assert row["record_index"] == 2
    assert row["reason"] == "Expected `float` <= 90.0 - at `$.end_location.lat`"
    assert json.loads(row["raw"]) == BAD
    assert row["raw"] == json.dumps(BAD)  # the exact text of the record in the response
    assert (row["window_start"], row["window_end"]) == WINDOW
    assert before - timedelta(milliseconds=1) <= row["ingested_at"] <= after


def test_rewrite_replaces_the_partition_exactly(lake: Lake) -> None:
    write_partition(lake, TRIPS, PART, PAGES, WINDOW, ingested_at=INGESTED)
    assert lake.quarantine_path(PART).exists()

    # Second delivery: one page, other trips, nothing to reject.
    new_pages = [page([trip(7), trip(8)])]
    later = INGESTED + timedelta(hours=1)
    result = write_partition(lake, TRIPS, PART, new_pages, WINDOW, ingested_at=later)

    assert (result.rows, result.received, result.quarantined, result.duplicates) == (2, 2, 0, 0)
    frame = pl.read_parquet(lake.data_path(PART))
    assert frame["trip_id"].to_list() == [f"95ba3c85-8087-457d-9fed-{n:012d}" for n in (7, 8)]
    assert_frame_equal(frame, stamped(parse(TRIPS, new_pages, WINDOW).frame, later))
    # No appended rows, no second data file, the stale quarantine is gone; both deliveries' raw responses stay, and
    # the five trips the second delivery no longer carries are kept as superseded.
    second = delivery_stem(later)
    assert files_under(lake.root) == [
        f"_raw/mds_trips/zone_id=1/date=2026-03-28/hour=10/{DELIVERY}.page-0000.json.gz",
        f"_raw/mds_trips/zone_id=1/date=2026-03-28/hour=10/{DELIVERY}.page-0001.json.gz",
        f"_raw/mds_trips/zone_id=1/date=2026-03-28/hour=10/{second}.page-0000.json.gz",
        "mds_trips/zone_id=1/date=2026-03-28/hour=10/part-0.parquet",
        f"superseded/mds_trips/zone_id=1/date=2026-03-28/hour=10/{DELIVERY}.parquet",
        f"superseded/mds_trips/zone_id=1/date=2026-03-28/hour=10/{second}.parquet",
    ]
    withdrawn = pl.read_parquet(lake.superseded_path(PART, second))
    assert withdrawn["reason"].unique().to_list() == ["withdrawn_by_later_delivery"]
    assert withdrawn["trip_id"].to_list() == [f"95ba3c85-8087-457d-9fed-{n:012d}" for n in (1, 2, 3, 4, 5)]
    assert lake.read_raw(PART, second) == new_pages
    polars_rows, duckdb_rows = glob_read(lake.root)
    assert polars_rows.height == duckdb_rows == 2

    # Writing the same response again is the same delivery: the same bytes, no third raw copy.
    before = lake.data_path(PART).read_bytes()
    write_partition(lake, TRIPS, PART, new_pages, WINDOW)
    assert lake.data_path(PART).read_bytes() == before
    assert lake.raw_deliveries(PART) == [DELIVERY, second]
    assert pl.read_parquet(lake.superseded_path(PART, second)).height == 5
    assert leftovers(lake.root) == []


def test_empty_hour_writes_an_empty_typed_partition(lake: Lake) -> None:
    result = write_partition(lake, TRIPS, PART, [page([])], WINDOW)
    assert (result.status, result.rows, result.received) == ("written", 0, 0)
    assert pl.read_parquet_schema(lake.data_path(PART)) == pl.Schema(
        {**TRIPS.schema, "ingested_at": pl.Datetime("ms", "UTC")}
    )
    assert not lake.quarantine_path(PART).exists()


def test_payload_error_fails_the_partition_and_keeps_the_previous_data(lake: Lake) -> None:
    write_partition(lake, TRIPS, PART, PAGES, WINDOW)
    data = lake.data_path(PART).read_bytes()

    result = write_partition(lake, TRIPS, PART, [b'{"error": "upstream timeout"}'], WINDOW)

    assert result.status == "failed"
    assert result.error == "mds_trips: the response has no `trips`"
    assert lake.data_path(PART).read_bytes() == data


def test_reparse_rebuilds_an_identical_partition_from_the_raw_pages(lake: Lake) -> None:
    first = write_partition(lake, TRIPS, PART, PAGES, WINDOW)
    data_bytes = lake.data_path(PART).read_bytes()
    quarantine = pl.read_parquet(lake.quarantine_path(PART)).drop("ingested_at")
    raw_before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in lake.raw_dir(PART).iterdir()}

    lake.data_path(PART).unlink()
    lake.quarantine_path(PART).unlink()
    again = reparse(lake, "mds_trips", "1", HOUR)

    assert (again.status, again.rows, again.received, again.quarantined, again.duplicates) == (
        first.status,
        first.rows,
        first.received,
        first.quarantined,
        first.duplicates,
    )
    assert lake.data_path(PART).read_bytes() == data_bytes
    assert_frame_equal(pl.read_parquet(lake.quarantine_path(PART)).drop("ingested_at"), quarantine)
    # The raw archive is read, not rewritten.
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in lake.raw_dir(PART).iterdir()} == raw_before
    assert leftovers(lake.root) == []


def test_reparse_without_a_raw_response_says_so(lake: Lake) -> None:
    with pytest.raises(FileNotFoundError, match="no raw response kept for mds_trips zone 1"):
        reparse(lake, "mds_trips", "1", HOUR)


def test_snapshots_keep_one_file_per_capture(lake: Lake) -> None:
    body = json.dumps(
        {"data": {"vehicles": [{"vehicle_id": "v1", "lat": 1.0, "lon": 2.0, "is_reserved": 0, "is_disabled": 0}]}}
    ).encode()
    partition = Partition("gbfs_vehicle_status", "1", HOUR)
    dataset = DATASETS["gbfs_vehicle_status"]
    for minute in (5, 10):
        captured = HOUR + timedelta(minutes=minute)
        stem = snapshot_stem(captured)
        write_partition(lake, dataset, partition, [body], (captured, captured), stem=stem, captured_at=captured)
    names = [p.name for p in lake.partitions("gbfs_vehicle_status")]
    assert names == ["snapshot-20260328T100500000000Z.parquet", "snapshot-20260328T101000000000Z.parquet"]
    assert sorted(p.name for p in lake.raw_dir(partition).iterdir()) == [
        "snapshot-20260328T100500000000Z.page-0000.json.gz",
        "snapshot-20260328T101000000000Z.page-0000.json.gz",
    ]
    frame = pl.read_parquet(lake.root / "gbfs_vehicle_status" / PART.folder / names[1])
    assert frame["captured_at"].to_list() == [HOUR + timedelta(minutes=10)]


# --- Atomicity -----------------------------------------------------------------------------------------------------


def _fails_while_encoding(self: pl.DataFrame, file: Any, **_: Any) -> None:
    file.write(b"PAR1" + b"\x00" * 64)  # the start of a Parquet file, then the machine runs out of room
    raise OSError(28, "No space left on device")


def _disk_fills_before_it_is_on_disk(descriptor: int) -> None:
    raise OSError(28, "No space left on device")  # as a delayed allocation reports it, at fsync


def _replace_fails(self: Path, target: Any) -> Path:
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize(
    ("owner", "name", "crash"),
    [
        (pl.DataFrame, "write_parquet", _fails_while_encoding),
        (os, "fsync", _disk_fills_before_it_is_on_disk),
        (Path, "replace", _replace_fails),
    ],
    ids=["crash-while-encoding", "crash-while-writing", "crash-on-rename"],
)
def test_a_crashed_write_leaves_the_previous_version_intact(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, owner: object, name: str, crash: Any
) -> None:
    write_partition(lake, TRIPS, PART, PAGES, WINDOW)
    path = lake.data_path(PART)
    previous = path.read_bytes()

    monkeypatch.setattr(owner, name, crash)
    with pytest.raises(OSError, match=r"No space left|Input/output error"):
        lake.write_data(PART, parse(TRIPS, [page([trip(7)])], WINDOW).frame)
    monkeypatch.undo()

    assert path.read_bytes() == previous
    assert sorted(p.name for p in path.parent.iterdir()) == ["part-0.parquet"]  # the temporary file is cleaned up
    polars_rows, duckdb_rows = glob_read(lake.root)
    assert polars_rows.height == duckdb_rows == 5
    assert_frame_equal(polars_rows, pl.read_parquet(path))


CRASH_SCRIPT = """
import os, sys
from datetime import datetime
from pathlib import Path

import polars as pl

from pipelines.lake.store import Lake, Partition


def die_mid_write(descriptor):
    os.write(descriptor, b"PAR1" + b"\\x00" * 64)
    os._exit(137)  # killed before the file is on disk: no exception handler, no finally


os.fsync = die_mid_write
Lake(Path(sys.argv[1])).write_data(
    Partition("mds_trips", "1", datetime.fromisoformat(sys.argv[2])), pl.DataFrame({"trip_id": ["x"]})
)
"""


def test_a_killed_writer_leaves_only_an_invisible_temp_file(lake: Lake) -> None:
    write_partition(lake, TRIPS, PART, PAGES, WINDOW)
    path = lake.data_path(PART)
    previous = path.read_bytes()

    died = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(lake.root), HOUR.isoformat()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert died.returncode == 137, died.stderr

    assert path.read_bytes() == previous
    others = [p.name for p in path.parent.iterdir() if p.name != "part-0.parquet"]
    assert len(others) == 1 and TEMP_NAME.match(others[0]), others  # hidden, and not *.parquet
    assert list(lake.partitions("mds_trips")) == [path]
    polars_rows, duckdb_rows = glob_read(lake.root)
    assert polars_rows.height == duckdb_rows == 5

    # The next write still lands whole, and clears the dead writer's leftover.
    write_partition(lake, TRIPS, PART, [page([trip(7)])], WINDOW)
    polars_rows, duckdb_rows = glob_read(lake.root)
    assert polars_rows["trip_id"].to_list() == ["95ba3c85-8087-457d-9fed-000000000007"]
    assert duckdb_rows == 1
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]


# --- Data checks ---------------------------------------------------------------------------------------------------


@pytest.fixture
def written(lake: Lake) -> pl.DataFrame:
    write_partition(lake, TRIPS, PART, PAGES, WINDOW)
    return pl.read_parquet(lake.data_path(PART))


def test_check_schema(lake: Lake, written: pl.DataFrame) -> None:
    good = lake.data_path(PART)
    assert check_schema("mds_trips", [good]).passed

    missing = Partition("mds_trips", "2", HOUR)
    lake.write_data(missing, written.drop("trip_type"))
    retyped = Partition("mds_trips", "3", HOUR)
    lake.write_data(retyped, written.with_columns(pl.col("end_time").dt.epoch("ms")))
    outcome = check_schema("mds_trips", [good, lake.data_path(missing), lake.data_path(retyped)])
    assert not outcome.passed
    assert outcome.failures == 2
    assert outcome.description == "2 partition file(s) whose columns differ from the mds_trips schema"

    # Snapshots carry `captured_at`, declared as an extra column.
    body = json.dumps(
        {"data": {"vehicles": [{"vehicle_id": "v1", "lat": 1.0, "lon": 2.0, "is_reserved": 0, "is_disabled": 0}]}}
    ).encode()
    snap = Partition("gbfs_vehicle_status", "1", HOUR)
    captured = HOUR + timedelta(minutes=5)
    stem = "snapshot-x"
    write_partition(
        lake, DATASETS["gbfs_vehicle_status"], snap, [body], (captured, captured), stem=stem, captured_at=captured
    )
    snap_path = lake.data_path(snap, stem)
    assert check_schema("gbfs_vehicle_status", [snap_path], {"captured_at": pl.Datetime("ms", "UTC")}).passed
    assert not check_schema("gbfs_vehicle_status", [snap_path]).passed


def test_check_unique_ids(lake: Lake, written: pl.DataFrame) -> None:
    good = lake.data_path(PART)
    assert check_unique_ids("mds_trips", [good]).passed

    # The same trips in another zone's partition are not duplicates: ids are unique per partition file.
    other = Partition("mds_trips", "145", HOUR)
    lake.write_data(other, written)
    assert check_unique_ids("mds_trips", [good, lake.data_path(other)]).passed

    doubled = Partition("mds_trips", "2", HOUR)
    lake.write_data(doubled, pl.concat([written, written.head(2)]))
    outcome = check_unique_ids("mds_trips", [good, lake.data_path(doubled)])
    assert not outcome.passed
    assert outcome.failures == 2
    assert outcome.description == "2 id(s) appear more than once within a partition"

    assert check_unique_ids("mds_trips", []).passed
    assert check_unique_ids("gbfs_geofencing_zones", [good]).description == "nothing to check"


def test_check_window(lake: Lake, written: pl.DataFrame) -> None:
    next_hour = Partition("mds_trips", "1", HOUR + timedelta(hours=1))
    never_written = Partition("mds_trips", "1", HOUR + timedelta(hours=2))
    assert check_window(lake, "mds_trips", [PART, never_written]).passed

    # This hour's trips filed under the next hour: every row is outside its partition's hour.
    lake.write_data(next_hour, written)
    outcome = check_window(lake, "mds_trips", [PART, next_hour])
    assert not outcome.passed
    assert outcome.failures == written.height == 5
    assert outcome.description == "5 record(s) with end_time outside their partition's hour"

    # One millisecond past the end is already outside.
    edge = Partition("mds_trips", "2", HOUR)
    lake.write_data(
        edge, written.head(1).with_columns(pl.lit(WINDOW[1]).cast(pl.Datetime("ms", "UTC")).alias("end_time"))
    )
    assert check_window(lake, "mds_trips", [edge]).failures == 1

    assert check_window(lake, "mds_vehicles", [PART]).description == "not an hourly dataset"


def test_check_row_counts() -> None:
    balanced = check_row_counts(rows=97, received=100, quarantined=2, duplicates=1)
    assert balanced.passed
    assert balanced.description == "received 100 = kept 97 + quarantined 2 + duplicates 1"
    assert check_row_counts(rows=95, received=100, quarantined=5, duplicates=0).passed  # 5% is still fine

    lost = check_row_counts(rows=96, received=100, quarantined=2, duplicates=1)
    assert not lost.passed
    assert lost.description == "received 100 != kept 96 + quarantined 2 + duplicates 1"

    too_many_rejects = check_row_counts(rows=90, received=100, quarantined=10, duplicates=0)
    assert not too_many_rejects.passed
    assert too_many_rejects.failures == 10
    assert "quarantined share 10.0% above 5%" in too_many_rejects.description

    assert check_row_counts(rows=0, received=0, quarantined=0, duplicates=0).passed
