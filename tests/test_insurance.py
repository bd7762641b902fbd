"""The insurance trips, in-process against the embedded provider: off unless set, ingested into their own owner-only
lake and warehouse equal to the truth, damaged records quarantined there, and purged after the retention."""

import asyncio
import json
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from cli.app import app
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.faults import Faults
from fleetlake_provider.insurance import insurance_truth
from fleetlake_provider.service import SimulatedProvider
from pipelines.config import Settings, SettingsError
from pipelines.ingest import IngestReport, hours_between, write_partition
from pipelines.insurance import warehouse
from pipelines.insurance.area import ExposedInsuranceData, InsuranceArea, exposed, open_area
from pipelines.insurance.ingest import ingest_insurance_trips, without_body
from pipelines.insurance.purge import purge
from pipelines.insurance.trips import INSURANCE_TRIPS, NAME, PERSONAL_FIELDS
from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import Partition
from pipelines.voi.client import VoiClient
from tests.conftest import CREDENTIALS, START, make_provider

ZONES = ("1", "145")
DAY = timedelta(days=1)
FAULTS = Faults(duplicate_rate=0.05, malformed_rate=0.04)


@dataclass(frozen=True)
class Ingested:
    provider: SimulatedProvider
    area: InsuranceArea
    report: IngestReport


def ingest(
    provider: SimulatedProvider, root: Path, hours: list[datetime], zones: tuple[str, ...] = ZONES
) -> tuple[InsuranceArea, IngestReport]:
    area = open_area(root)
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)
    settings = Settings(api_base_url="http://provider", zones=zones)

    async def run() -> IngestReport:
        async with VoiClient(settings, transport=httpx.ASGITransport(app.app)) as client:
            return await ingest_insurance_trips(client, area, zones, hours)

    return area, asyncio.run(run())


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """One day of two zones with duplicated and damaged records, ingested and built."""
    provider = make_provider(days=1, vehicles=60, faults=FAULTS)
    area, report = ingest(provider, tmp_path_factory.mktemp("insurance") / "area", hours_between(START, START + DAY))
    warehouse.build(area)
    return Ingested(provider, area, report)


def trips(area: InsuranceArea) -> pl.DataFrame:
    with duckdb.connect(str(area.warehouse), read_only=True) as con:
        return con.sql("select * from insurance_trips order by end_time, trip_id").pl()


def modes(root: Path) -> dict[str, int]:
    """Every path under root (itself included) and its permission bits."""
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.lstat().st_mode) for p in [root, *root.rglob("*")]}


def test_off_unless_set_and_never_in_a_bucket() -> None:
    assert Settings().insurance_trips is False
    assert Settings.from_env(env_file=None).insurance_trips is False
    assert Settings(insurance_trips="true").insurance_trips is True
    with pytest.raises(SettingsError, match="FLEETLAKE_INSURANCE_DIR must be a local folder"):
        Settings(insurance_dir="s3://bucket/insurance")
    with pytest.raises(SettingsError, match="FLEETLAKE_INSURANCE_RETENTION_DAYS"):
        Settings(insurance_retention_days=0)
    assert NAME not in DATASETS  # the city's ingestion, lake views and assets walk DATASETS
    for inside in ("data/lake/insurance", "data/lake", "data/reports/insurance", "data"):
        with pytest.raises(SettingsError, match=r"FLEETLAKE_INSURANCE_DIR .* must be a folder of its own"):
            Settings(insurance_dir=inside)
    assert Settings(lake_dir="s3://bucket/lake").insurance_dir == Path("data/insurance")


def test_the_warehouse_holds_every_trip_as_the_truth_says(ingested: Ingested) -> None:
    truth = insurance_truth(ingested.provider).sort("end_time", "trip_id")
    built = trips(ingested.area)
    assert built["trip_id"].to_list() == truth["trip_id"].to_list()
    columns = ["zone_id", "device_id", "city", "country", *PERSONAL_FIELDS, "vehicle_short_id", "start_lat", "end_lng"]
    assert built.select(columns).equals(truth.select(columns))
    assert built["end_time"].to_list() == truth["end_time"].to_list()
    assert built["duration_s"].to_list() == truth["duration_s"].cast(pl.Float64).to_list()
    assert (built["hour"] == built["end_time"].dt.truncate("1h")).all()


def test_damaged_and_repeated_records_stay_in_the_insurance_area(ingested: Ingested) -> None:
    summary = ingested.report.summary()
    assert summary["partitions_failed"] == 0 and summary["partitions_written"] == 48
    assert summary["quarantined"] > 0 and summary["duplicates"] > 0
    assert summary["received"] == summary["rows"] + summary["quarantined"] + summary["duplicates"]
    lake = ingested.area.lake
    quarantined = pl.read_parquet(lake.root / "quarantine" / f"dataset={NAME}" / "**" / "*.parquet")
    assert quarantined.height == summary["quarantined"]
    assert quarantined["raw"].str.contains("license_plate").all()  # what was refused, kept for inspection here
    with duckdb.connect(str(ingested.area.warehouse), read_only=True) as con:
        counted = con.sql("select sum(records) from insurance_quarantined").fetchone()
    assert counted == (summary["quarantined"],)
    assert list((lake.root / "superseded" / NAME).rglob("*.parquet")), "duplicates kept as superseded copies"


def test_every_folder_is_0700_and_every_file_0600(ingested: Ingested) -> None:
    found = modes(ingested.area.root)
    kinds = {Path(p).suffix or "folder" for p in found}
    assert {".parquet", ".gz", ".duckdb", "folder"} <= kinds
    for path, mode in found.items():
        is_dir = (ingested.area.root.parent / path).is_dir()
        assert mode == (0o700 if is_dir else 0o600), f"{path}: {mode:04o}"
    assert exposed(ingested.area.root) == []


def test_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """Files are 0600 from their first byte and folders 0700 even when the process would make them world-writable."""
    provider = make_provider(days=1, vehicles=20)
    previous = os.umask(0)
    try:
        area, report = ingest(provider, tmp_path / "area", hours_between(START, START + timedelta(hours=2)))
        warehouse.build(area)
    finally:
        os.umask(previous)
    assert report.summary()["rows"] > 0
    assert set(modes(area.root).values()) == {0o700, 0o600}
    assert exposed(area.root) == []


def test_an_area_others_can_read_is_refused(tmp_path: Path) -> None:
    area = open_area(tmp_path / "area")
    warehouse.build(area)
    area.warehouse.chmod(0o644)
    with pytest.raises(ExposedInsuranceData, match=r"insurance\.duckdb is 0644, not 0600.*chmod -R u=rwX,go="):
        open_area(area.root)
    area.warehouse.chmod(0o600)
    area.root.chmod(0o755)
    with pytest.raises(ExposedInsuranceData, match="is 0755, not 0700"):
        open_area(area.root)
    area.root.chmod(0o700)
    (area.root / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(ExposedInsuranceData, match="symbolic link"):
        open_area(area.root)


def partitions(area: InsuranceArea) -> dict[str, set[tuple[str, datetime]]]:
    """Every (zone, hour) each part of the insurance lake holds."""
    root = area.lake.root
    out = {}
    for part, place in {
        "data": root / NAME,
        "raw": root / "_raw" / NAME,
        "quarantine": root / "quarantine" / f"dataset={NAME}",
        "superseded": root / "superseded" / NAME,
    }.items():
        found = set()
        for folder in place.glob("zone_id=*/date=*/hour=*"):
            day = folder.parent.name.removeprefix("date=")
            hour = datetime.strptime(f"{day}T{folder.name.removeprefix('hour=')}", "%Y-%m-%dT%H").replace(tzinfo=UTC)
            found.add((folder.parent.parent.name.removeprefix("zone_id="), hour))
        out[part] = found
    return out


def test_the_purge_removes_expired_trips_from_lake_and_warehouse(ingested: Ingested, tmp_path: Path) -> None:
    area = InsuranceArea(Path(shutil.copytree(ingested.area.root, tmp_path / "area")))  # modes copied too
    provider = ingested.provider
    before = partitions(area)
    assert all(before.values()), "records, raw pages, quarantine and superseded copies before the purge"
    retention = timedelta(days=30)
    now = START + timedelta(hours=14, minutes=20) + retention  # hours ending by 14:20 - 30 days are expired
    report = purge(area, retention, now)

    assert report.cutoff == START + timedelta(hours=14, minutes=20)
    after = partitions(area)
    for part, kept in after.items():
        assert kept, part
        assert min(hour for _, hour in kept) >= START + timedelta(hours=14), part
        assert kept == {(zone, hour) for zone, hour in before[part] if hour >= START + timedelta(hours=14)}, part
    expired = {(zone, hour) for held in before.values() for zone, hour in held if hour < START + timedelta(hours=14)}
    assert report.partitions == len(expired) == 28
    # The warehouse holds exactly the truth's trips that ended at 14:00 or later.
    truth = insurance_truth(provider).filter(pl.col("end_time") >= START + timedelta(hours=14))
    built = trips(area)
    assert sorted(built["trip_id"]) == sorted(truth["trip_id"]) and report.trips_kept == truth.height
    with duckdb.connect(str(area.warehouse), read_only=True) as con:
        (oldest,) = con.sql("select min(hour) from insurance_quarantined").fetchone() or (None,)
    assert oldest is None or oldest >= START + timedelta(hours=14)
    assert exposed(area.root) == []
    # Once every hour is past the retention, nothing of them is left but empty owner-only folders and tables.
    purge(area, retention, START + DAY + retention)
    assert not [p for p in area.lake.root.rglob("*") if p.is_file()]
    assert trips(area).is_empty()


def test_a_purge_whose_rebuild_fails_leaves_no_warehouse(tmp_path: Path) -> None:
    provider = make_provider(days=1, vehicles=20)
    area, _ = ingest(provider, tmp_path / "area", hours_between(START, START + timedelta(hours=3)))
    warehouse.build(area)
    assert area.warehouse.exists()
    unreadable = area.lake.data_path(Partition(NAME, "1", START + timedelta(hours=2)))
    unreadable.write_bytes(b"not parquet")
    with pytest.raises(duckdb.Error):
        purge(area, timedelta(days=1), START + timedelta(days=1, hours=1))
    assert not area.warehouse.exists()
    assert not list(area.root.glob(".*building*"))


def test_the_command_line_purges_a_folder_no_run_looks_after(
    ingested: Ingested, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fleetlake purge-insurance` purges by the wall clock, whether or not the trips are still switched on."""
    root = Path(shutil.copytree(ingested.area.root, tmp_path / "area"))
    monkeypatch.chdir(tmp_path)  # no .env of the repository's
    monkeypatch.setenv("FLEETLAKE_INSURANCE_DIR", str(root))
    monkeypatch.setenv("FLEETLAKE_INSURANCE_RETENTION_DAYS", "1")
    result = CliRunner().invoke(app, ["purge-insurance"])
    assert result.exit_code == 0, result.output
    assert "purged: 48 zone-hours" in result.output and "0 trips kept" in result.output
    assert not [p for p in (root / "lake").rglob("*") if p.is_file()]
    assert trips(InsuranceArea(root)).is_empty()
    (root / "insurance.duckdb").chmod(0o644)
    refused = CliRunner().invoke(app, ["purge-insurance"])
    assert refused.exit_code == 1 and "must be readable by its owner only" in refused.output


def test_a_failure_reason_never_carries_the_insurance_endpoints_body(tmp_path: Path) -> None:
    provider = make_provider(days=1, vehicles=10)
    _, report = ingest(provider, tmp_path / "area", [START + timedelta(hours=1)], zones=("1", "31"))
    (failed,) = report.with_status("failed")
    assert failed.zone_id == "31" and failed.error is not None
    assert failed.error.endswith("answered HTTP 404 (its body is not logged: it may hold personal data)")
    assert report.summary()["partitions_written"] == 1
    reason = 'GET http://p/v1/partner-apis/insurance/1/trips answered HTTP 418: {"trips": [{"license_plate": "x"}]}'
    assert without_body(reason) == (
        "GET http://p/v1/partner-apis/insurance/1/trips answered HTTP 418 (its body is not logged: it may hold "
        "personal data)"
    )
    assert without_body("deadline") == "deadline"


def insurance_body(*trips: dict[str, object]) -> bytes:
    return json.dumps({"version": "2.0.0", "last_updated": 0, "trips": list(trips)}).encode()


def insurance_record(trip_id: str, end: datetime, *, user_ride_count: int) -> dict[str, object]:
    start_ms = int((end - timedelta(minutes=5)).timestamp() * 1000)
    return {
        "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
        "device_id": "93d4e213-0d93-5839-a631-8070ded1be5a",
        "trip_id": trip_id,
        "start_time": start_ms,
        "end_time": int(end.timestamp() * 1000),
        "start_location": {"lat": 59.3383, "lng": 18.0619},
        "end_location": {"lat": 59.3391, "lng": 18.0650},
        "duration": 300,
        "license_plate": "plate-1",
        "user_ride_count": user_ride_count,
    }


def test_a_trip_delivered_by_two_zones_or_in_two_hours_is_one_trip(tmp_path: Path) -> None:
    """The newest delivery wins (latest ingest, then latest hour, then lowest zone id), as in the city's warehouse;
    every other delivery is counted where the insurance data quality is reported, as a duplicate or a conflict."""
    area = open_area(tmp_path / "area")
    hour = START + timedelta(hours=3)
    ridden = "020b1efc-4cf6-4dd6-b6e6-8dfe079c76c1"  # from zone 145 into zone 1, in both zones' feeds
    corrected = "7c1d3a52-8f0e-4c43-9a39-2f7e5d0b6a11"  # re-delivered later into the next hour, its end corrected
    tied = "b2f4e8a0-1c3d-4e5f-8a9b-0c1d2e3f4a5b"  # in both zones' feeds of one ingest time and hour
    end = hour + timedelta(minutes=30)
    first, later = START + timedelta(hours=5), START + timedelta(hours=6)

    def deliver(zone: str, at: datetime, ingested_at: datetime, *trips: dict[str, object]) -> None:
        window = (at, at + timedelta(hours=1))
        result = write_partition(
            area.lake, INSURANCE_TRIPS, Partition(NAME, zone, at), [insurance_body(*trips)], window,
            ingested_at=ingested_at,
        )  # fmt: skip
        assert result.status == "written", result

    deliver(
        "1",
        hour,
        first,
        insurance_record(ridden, end, user_ride_count=3),
        insurance_record(tied, end, user_ride_count=1),
    )
    deliver(
        "145",
        hour,
        later,
        insurance_record(ridden, end, user_ride_count=3),
        insurance_record(corrected, end, user_ride_count=7),
    )
    deliver(
        "145",
        hour + timedelta(hours=1),
        later + timedelta(minutes=1),
        insurance_record(corrected, end + timedelta(hours=1), user_ride_count=8),
    )
    deliver("2", hour, first, insurance_record(tied, end, user_ride_count=1))

    built = warehouse.build(area)

    kept = trips(area).select("trip_id", "zone_id", "hour", "user_ride_count").sort("trip_id")
    assert kept.rows() == sorted([
        (ridden, "145", hour, 3),  # the later ingest
        (corrected, "145", hour + timedelta(hours=1), 8),  # the later ingest, into the next hour
        (tied, "1", hour, 1),  # one ingest time and hour: the lowest zone id ("1" < "2")
    ])  # fmt: skip
    assert built.trips == 3
    with duckdb.connect(str(area.warehouse), read_only=True) as con:
        repeats = con.sql("select zone_id, hour, duplicates, conflicts from insurance_repeated order by all").fetchall()
    assert repeats == [
        ("145", hour, 1, 0),  # ridden: the same content as zone 1's earlier delivery
        ("145", hour + timedelta(hours=1), 0, 1),  # corrected: other content than its delivery into the hour before
        ("2", hour, 1, 0),  # tied: after zone 1's delivery of the same ingest time and hour
    ]
    assert built.repeated == 3
    assert stat.S_IMODE(area.warehouse.stat().st_mode) == 0o600 and exposed(area.root) == []
