"""The lake in an S3-compatible bucket (moto's server on loopback): the same files as on disk, each written whole
in one PUT, and DuckDB reading them through httpfs loaded from its PyPI package."""

import asyncio
import gzip
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from upath import UPath

from pipelines.duckdb_extensions import extension_file
from pipelines.ingest import ingest_hours
from pipelines.lake import checks, filesystem
from pipelines.lake.datasets import Quarantined
from pipelines.lake.fingerprint import FINGERPRINT_KEY, stored_fingerprint
from pipelines.lake.footer import arrow_schema, footer
from pipelines.lake.listing import LakeListing
from pipelines.lake.store import Lake, Partition
from pipelines.voi.client import VoiClient
from tests.conftest import START, loopback_settings
from tests.loopback_servers import s3_server

if TYPE_CHECKING:
    import s3fs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "fleetlake-lake"
HOUR = datetime(2026, 3, 28, 9, tzinfo=UTC)
KEY, SECRET = "fleetlake", "fleetlake-secret"


@pytest.fixture(scope="module")
def moto_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where moto's server keeps its log, a line per request."""
    return tmp_path_factory.mktemp("moto")


@pytest.fixture(scope="module")
def endpoint(moto_folder: Path) -> Iterator[str]:
    with s3_server(moto_folder) as url:
        bucket(url).mkdir(BUCKET)
        yield url


@pytest.fixture
def bucket_lake(endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Lake:
    use_bucket_server(endpoint, monkeypatch)
    return Lake(f"s3://{BUCKET}/{request.node.name}/")


def use_bucket_server(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment that points the lake's S3 client (and DuckDB's) at the moto server, with its test keys."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


def bucket(endpoint: str) -> "s3fs.S3FileSystem":
    """The test's own view of the bucket. s3fs (with aiobotocore, ~1 CPU s to import) loads when a test first asks,
    not when pytest collects this module in every worker."""
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY, secret=SECRET)


def keys(endpoint: str, prefix: str) -> list[str]:
    return sorted(bucket(endpoint).find(f"{BUCKET}/{prefix}"))


def test_a_local_location_stays_a_plain_path_and_a_bucket_needs_a_name(tmp_path: Path) -> None:
    assert filesystem.lake_root(str(tmp_path)) == tmp_path and type(filesystem.lake_root(str(tmp_path))) is type(
        tmp_path
    )
    assert not filesystem.is_remote("data/lake") and filesystem.is_remote("s3://bucket/lake")
    assert filesystem.uri(Path("data/lake")) == str(Path("data/lake").resolve())
    with pytest.raises(ValueError, match="names no bucket"):
        filesystem.lake_root("s3:///lake")


def test_partitions_raw_pages_and_quarantine_in_a_bucket(bucket_lake: Lake, endpoint: str) -> None:
    prefix = "test_partitions_raw_pages_and_quarantine_in_a_bucket"
    assert str(bucket_lake.root) == f"s3://{BUCKET}/{prefix}"
    part = Partition("mds_trips", "1", HOUR)
    first = pl.DataFrame({"trip_id": ["a", "b", "c"], "distance": [1.0, 2.0, 3.0]})
    size = bucket_lake.write_data(part, first)
    assert size == len(bucket_lake.data_path(part).read_bytes()) > 0
    bucket_lake.write_data(part, first.head(2))  # re-writing a partition replaces it exactly
    assert pl.read_parquet(filesystem.readable(bucket_lake.data_path(part))).equals(first.head(2))

    pages = [b'{"data": {"trips": []}, "page": 1}', b'{"page": 2}', b'{"page": 3}']
    bucket_lake.write_raw(part, pages, "delivery-20260328T100000000000Z")
    bucket_lake.write_raw(part, pages[:2], "delivery-20260328T100000000000Z")  # fewer pages: the third goes
    assert bucket_lake.read_raw(part, "delivery-20260328T100000000000Z") == pages[:2]
    assert bucket_lake.raw_deliveries(part) == ["delivery-20260328T100000000000Z"]
    assert bucket_lake.same_raw(part, pages[:2], "delivery-20260328T100000000000Z")
    raw = bucket_lake.raw_dir(part) / "delivery-20260328T100000000000Z.page-0000.json.gz"
    assert gzip.decompress(raw.read_bytes()) == pages[0]

    window = (HOUR, HOUR.replace(hour=10))
    bucket_lake.write_quarantine(part, [Quarantined(4, "trip_id: missing", "{}")], window, HOUR)
    assert bucket_lake.quarantine_path(part).exists()
    bucket_lake.write_quarantine(part, [], window, HOUR)  # a clean re-run removes the stale file
    assert not bucket_lake.quarantine_path(part).exists()

    # Whole objects only: no temporary names, nothing but the partition, its two pages.
    assert keys(endpoint, prefix) == [
        f"{BUCKET}/{prefix}/_raw/mds_trips/zone_id=1/date=2026-03-28/hour=09/"
        f"delivery-20260328T100000000000Z.page-{n:04d}.json.gz"
        for n in range(2)
    ] + [f"{BUCKET}/{prefix}/mds_trips/zone_id=1/date=2026-03-28/hour=09/part-0.parquet"]
    assert [str(p) for p in bucket_lake.partitions("mds_trips")] == [
        f"s3://{BUCKET}/{prefix}/mds_trips/zone_id=1/date=2026-03-28/hour=09/part-0.parquet"
    ]


def test_duckdb_reads_the_bucket_through_httpfs_from_its_package(bucket_lake: Lake) -> None:
    for zone, rows in (("1", 3), ("145", 2)):
        frame = pl.DataFrame({"trip_id": [f"{zone}-{n}" for n in range(rows)], "distance": [1.5] * rows})
        bucket_lake.write_data(Partition("mds_trips", zone, HOUR), frame)
    extension = extension_file("httpfs")
    assert extension.is_file() and "duckdb_extension_httpfs" in extension.parts
    with duckdb.connect() as con:
        con.execute("set autoinstall_known_extensions = false")  # nothing may be downloaded
        con.execute("set autoload_known_extensions = false")
        filesystem.attach_lake(con, bucket_lake.root)
        pattern = f"{filesystem.uri(bucket_lake.dataset_dir('mds_trips'))}/zone_id=*/date=*/hour=*/*.parquet"
        counted = con.execute(
            "select zone_id::varchar, count(*), sum(distance) from read_parquet($files, hive_partitioning = true) "
            "group by all order by all",
            {"files": pattern},
        ).fetchall()
        assert counted == [("1", 3, 4.5), ("145", 2, 3.0)]
        assert con.execute("select loaded from duckdb_extensions() where extension_name = 'httpfs'").fetchone() == (
            True,
        )


def test_the_ingestion_checks_read_partitions_in_a_bucket(bucket_lake: Lake, served: str, tmp_path: Path) -> None:
    """An hour ingested into the bucket passes the asset checks; a trip moved into the wrong hour's folder, and a
    duplicated id, are found there as on disk."""
    settings = loopback_settings(served, tmp_path, zones=("1",))
    hour = START + timedelta(hours=8)

    async def ingest() -> None:
        async with VoiClient(settings) as client:
            report = await ingest_hours(client, bucket_lake, ["1"], [hour], ["mds_trips"])
        assert [r.status for r in report.results] == ["written"]

    asyncio.run(ingest())
    part = Partition("mds_trips", "1", hour)
    paths = checks.existing([bucket_lake.data_path(part)])
    assert len(paths) == 1
    trips = pl.read_parquet(filesystem.readable(paths[0]))
    assert trips.height > 3
    assert checks.check_schema("mds_trips", paths).passed
    assert checks.check_unique_ids("mds_trips", paths).passed
    assert checks.check_window(bucket_lake, "mds_trips", [part]).passed

    moved = Partition("mds_trips", "1", hour + timedelta(hours=1))
    bucket_lake.write_data(moved, pl.concat([trips.head(2), trips.head(1)]))
    outcome = checks.check_window(bucket_lake, "mds_trips", [part, moved])
    assert (outcome.passed, outcome.failures) == (False, 3)
    duplicated = checks.check_unique_ids("mds_trips", checks.existing([bucket_lake.data_path(moved)]))
    assert (duplicated.passed, duplicated.failures) == (False, 1)


def test_a_listing_answers_as_pathlib_does_listing_each_folder_once_as_wide_as_asked(
    bucket_lake: Lake, moto_folder: Path, tmp_path: Path
) -> None:
    """The same files on disk and in the bucket get the same answers from a listing; in the bucket, a question about
    a day lists the dataset's zones and each zone's day folder, a question about every file lists the dataset flat
    once, every later question about it or a folder below it is answered from those, and a file written after its
    listing is not seen (a build's snapshot)."""
    local = Lake(tmp_path / "lake")
    frame = pl.DataFrame({"trip_id": ["a"], "distance": [1.0]})
    for lake in (local, bucket_lake):
        for zone, hour in (("1", HOUR), ("1", HOUR + timedelta(hours=1)), ("145", HOUR + timedelta(days=1))):
            lake.write_data(Partition("mds_trips", zone, hour), frame)

    def listings() -> int:
        """Requests that listed mds_trips or a folder in it."""
        lines = (moto_folder / "moto.log").read_text().splitlines()
        return sum("list-type=2" in line and "mds_trips" in line for line in lines)

    def listed(lake: Lake) -> dict[str, object]:
        trips = lake.dataset_dir("mds_trips")

        def relative(paths: list[Path]) -> list[str]:
            return sorted(path.relative_to(trips).as_posix() for path in paths)

        questions: dict[str, Callable[[LakeListing], object]] = {
            "day": lambda it: relative(it.glob(trips, "zone_id=*/date=2026-03-28/hour=*/*.parquet")),
            "all": lambda it: relative(it.glob(trips, "zone_id=*/date=*/hour=*/*.parquet")),
            "too deep": lambda it: relative(it.glob(trips, "zone_id=*/date=*/*.parquet")),
            "zones": lambda it: relative(it.folders(trips)),
            "dates of 1": lambda it: relative(it.folders(trips / "zone_id=1")),
            "hour of 145": lambda it: relative(it.glob(trips / "zone_id=145", "date=2026-03-29/hour=*/*.parquet")),
            "any on 29th": lambda it: it.any(trips, "zone_id=*/date=2026-03-29/hour=*/*.parquet"),
            "any on 30th": lambda it: it.any(trips, "zone_id=*/date=2026-03-30/hour=*/*.parquet"),
            "missing": lambda it: relative(
                it.glob(lake.dataset_dir("mds_events"), "zone_id=*/date=*/hour=*/*.parquet")
            ),
            "missing folders": lambda it: relative(it.folders(lake.dataset_dir("mds_events"))),
        }
        # Asked the other way round, the narrow questions list their folders before the flat listing of them all.
        backwards = LakeListing()
        answered_backwards = {name: ask(backwards) for name, ask in reversed(questions.items())}
        listing = LakeListing()
        before = listings()
        answers = {name: ask(listing) for name, ask in questions.items()}
        asked = listings() - before
        answers["same backwards"] = answered_backwards == answers
        lake.write_data(Partition("mds_trips", "9", HOUR), frame)  # after its listing: not in this listing
        before = listings()
        answers["after"] = relative(listing.folders(trips))
        answers["listings"] = asked, listings() - before
        return answers

    on_disk = listed(local)
    assert on_disk == {
        "day": ["zone_id=1/date=2026-03-28/hour=09/part-0.parquet", "zone_id=1/date=2026-03-28/hour=10/part-0.parquet"],
        "all": [
            "zone_id=1/date=2026-03-28/hour=09/part-0.parquet",
            "zone_id=1/date=2026-03-28/hour=10/part-0.parquet",
            "zone_id=145/date=2026-03-29/hour=09/part-0.parquet",
        ],
        "too deep": [],
        "zones": ["zone_id=1", "zone_id=145"],
        "dates of 1": ["zone_id=1/date=2026-03-28"],
        "hour of 145": ["zone_id=145/date=2026-03-29/hour=09/part-0.parquet"],
        "any on 29th": True,
        "any on 30th": False,
        "missing": [],
        "missing folders": [],
        "same backwards": True,
        "after": ["zone_id=1", "zone_id=145", "zone_id=9"],  # on disk each question looks again
        "listings": (0, 0),
    }
    in_bucket = listed(bucket_lake)
    # The day's question: the zones, and the day of each (3); every file's: one flat; the other 8, and `after`: none.
    assert in_bucket["listings"] == (4, 0)
    assert {**in_bucket, "listings": (0, 0)} == {**on_disk, "after": ["zone_id=1", "zone_id=145"]}


def test_a_window_build_lists_the_window_not_the_history(
    endpoint: str, moto_folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A one-hour window build in a long-lived bucket lists the folders its questions name (the window's days, each
    zone's oldest and newest partition) rather than every key of each dataset: over a lake of two days and one of
    eight, the same zones and hours, it makes the same number of listing requests and the keys its flat listings
    and DuckDB's (its reads through the window's views) return are the same (the window day's), and it builds the
    window's rides. Counted on the warehouse's second build, as every hourly build after the first: the first
    creates the `lake.<dataset>` views, and DuckDB lists each dataset whole to bind one."""
    from pipelines.warehouse.build import Warehouse
    from tests.scenario import ride, write_hours

    use_bucket_server(endpoint, monkeypatch)
    last = datetime(2026, 3, 28, 10, tzinfo=UTC)
    window = (last, last + timedelta(hours=1))

    def listing_requests(prefix: str) -> list[str]:
        """The query strings of the requests so far that listed a folder of the lake at `prefix`."""
        lines = (moto_folder / "moto.log").read_text().splitlines()
        queries = (line.split(" ")[6] for line in lines if "list-type=2" in line)
        return [query for query in queries if f"prefix={prefix}/" in query]

    def window_build(days: int) -> tuple[int, int, int]:
        """(listing requests, keys the flat listings returned, trips built) of a window build over a lake of
        `days` days. The build's own listings (s3fs) name a delimiter, empty for a flat one; DuckDB's (httpfs),
        always flat, name none: every key below the prefix is returned."""
        prefix = f"history-{days}-days"
        lake_dir = f"s3://{BUCKET}/{prefix}"
        for day in range(days):
            start = last - timedelta(days=day)
            for zone in ("1", "145"):
                begin, end = start + timedelta(minutes=5), start + timedelta(minutes=20)
                trip, events = ride(f"ride-{zone}-{day}", f"scooter-{zone}", begin, end)
                write_hours(cast(Path, lake_dir), zone, [trip], events)
        warehouse = Warehouse(tmp_path / f"{prefix}.duckdb", lake_dir)
        warehouse.build(window)
        before = len(listing_requests(prefix))
        warehouse.build(window)
        requests = listing_requests(prefix)[before:]
        with duckdb.connect(str(warehouse.path), read_only=True) as con:
            built = cast(tuple[int], con.execute("select count(*) from main.trips").fetchone())[0]
        stored = keys(endpoint, prefix)
        flat = [unquote(query.split("prefix=")[1].split("&")[0]) for query in requests if "delimiter=/" not in query]
        listed_flat = sum(key.startswith(f"{BUCKET}/{folder}") for folder in flat for key in stored)
        return len(requests), listed_flat, built

    short, long = window_build(2), window_build(8)
    assert short[2] == long[2] == 2  # the window's ride in each zone
    assert short[:2] == long[:2]


def test_a_footer_is_read_from_the_end_of_an_object(
    bucket_lake: Lake, moto_folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file's footer (its schema and key-value metadata) in a bucket is what pyarrow reads from the whole object,
    fetched in one GET of the object's end and nothing else (no HEAD for its size); a footer longer than the bytes
    asked for first costs one more GET. A file not there is FileNotFoundError (a partition without a stored
    fingerprint), one that is not Parquet a ValueError; on disk pyarrow reads the path itself."""
    part = Partition("mds_trips", "1", HOUR)
    frame = pl.DataFrame({"trip_id": ["a", "b"], "distance": [1.0, 2.0]})
    bucket_lake.write_data(part, frame, fingerprint="fingerprint-of-a-and-b")
    path = bucket_lake.data_path(part)
    whole = pq.read_metadata(filesystem.readable(path))
    object_name = f"/{BUCKET}/{cast(UPath, path).path.split('/', 1)[1]}"

    def read_with_requests() -> tuple[pq.FileMetaData, list[str]]:
        log = moto_folder / "moto.log"
        before = len(log.read_text().splitlines())
        read = footer(path)
        lines = log.read_text().splitlines()[before:]
        # A line per request, `... "GET /bucket/key HTTP/1.1" 206 -`, its request coloured when not a 2xx.
        requests = (re.sub("\x1b\\[[0-9;]*m", "", line).split('"')[1] for line in lines if object_name in line)
        return read, [request.split(" ")[0] for request in requests]

    def same(read: pq.FileMetaData) -> bool:
        schema_equal = bool(read.schema.to_arrow_schema().equals(whole.schema.to_arrow_schema(), check_metadata=True))
        return schema_equal and read.metadata == whole.metadata and read.num_rows == whole.num_rows == 2

    read, requests = read_with_requests()
    assert same(read) and requests == ["GET"]
    assert arrow_schema(path).equals(pq.read_schema(filesystem.readable(path)), check_metadata=True)
    monkeypatch.setattr("pipelines.lake.footer.TAIL_BYTES", 16)  # shorter than any footer
    read, requests = read_with_requests()
    assert same(read) and requests == ["GET", "GET"]
    assert stored_fingerprint(path) == "fingerprint-of-a-and-b"

    with pytest.raises(FileNotFoundError):
        footer(bucket_lake.data_path(Partition("mds_trips", "1", HOUR + timedelta(hours=1))))
    assert stored_fingerprint(bucket_lake.data_path(Partition("mds_trips", "1", HOUR + timedelta(hours=1)))) is None
    not_parquet = bucket_lake.root / "not-parquet.txt"
    not_parquet.write_bytes(b"a text, long enough to hold a footer's length")
    with pytest.raises(ValueError, match="not a Parquet file"):
        footer(not_parquet)

    local = Lake(tmp_path / "lake")
    local.write_data(part, frame, fingerprint="fingerprint-of-a-and-b")
    on_disk = footer(local.data_path(part))
    assert arrow_schema(local.data_path(part)).equals(pq.read_schema(local.data_path(part)), check_metadata=True)
    assert on_disk.schema.to_arrow_schema().names == whole.schema.to_arrow_schema().names
    assert on_disk.num_rows == 2 and FINGERPRINT_KEY.encode() in (on_disk.metadata or {})


def test_an_hour_is_ingested_into_a_bucket_in_few_requests_and_an_unchanged_one_in_one(
    bucket_lake: Lake, moto_folder: Path
) -> None:
    """An hour's first delivery of a partition into a bucket: its stored fingerprint asked for (not there), its raw
    folder listed, its page put, the folder listed again (for pages left from a longer delivery), the previous
    partition and this delivery's superseded records asked for (neither there), the stale superseded and
    quarantine files deleted, the partition put: nine requests, none of them a HEAD. The same records delivered
    again: one, the stored fingerprint's footer, and nothing is written."""
    from tests.scenario import ride, write_hours

    def requests_of(write: Callable[[], None]) -> list[str]:
        log = moto_folder / "moto.log"
        before = len(log.read_text().splitlines())
        write()
        lines = [re.sub("\x1b\\[[0-9;]*m", "", line) for line in log.read_text().splitlines()[before:]]
        return [line.split('"')[1].split(" ")[0] for line in lines if "HTTP/1.1" in line]

    trip, events = ride("ride-a", "scooter-1", HOUR + timedelta(minutes=5), HOUR + timedelta(minutes=20))
    first = requests_of(lambda: write_hours(cast(Path, str(bucket_lake.root)), "1", [trip], events))
    again = requests_of(lambda: write_hours(cast(Path, str(bucket_lake.root)), "1", [trip], events))
    assert len(first) == 2 * 9 and "HEAD" not in first  # trips and events
    assert again == ["GET", "GET"]
    assert bucket_lake.raw_deliveries(Partition("mds_trips", "1", HOUR)) != []
