"""Archive files into the lake: what a file is, from its content; where each record goes, by its own time; every
record landed, quarantined with its reason or counted as a repeat; the real samples and the official MDS examples;
the command's summary."""

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cli import app as cli
from pipelines.archives import ImportReport, Stated, accounted, import_archives
from pipelines.config import Settings
from pipelines.lake.store import Lake
from tests.conftest import SPECS

SAMPLES = SPECS / "samples"
PROVIDER = "5f7114d1-4091-46ee-b492-e55875f7de00"
NOW = datetime(2026, 3, 30, tzinfo=UTC)
HOUR = datetime(2026, 3, 28, 10, tzinfo=UTC)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def device(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def trip_20(n: int, end: datetime) -> dict[str, Any]:
    return {
        "provider_id": PROVIDER,
        "device_id": device(n),
        "trip_id": f"10000000-0000-4000-8000-{n:012d}",
        "start_time": ms(end - timedelta(minutes=10)),
        "end_time": ms(end),
        "start_location": {"lat": 59.33, "lng": 18.06},
        "end_location": {"lat": 59.34, "lng": 18.07},
        "duration": 600,
        "distance": 1500,
    }


def point(lat: float, lng: float) -> dict[str, Any]:
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [lng, lat]}}


def status_change(n: int, at: datetime, version: str) -> dict[str, Any]:
    common = {
        "provider_id": PROVIDER,
        "device_id": device(n),
        "vehicle_id": f"V{n}",
        "vehicle_type": "scooter",
        "event_time": ms(at),
        "event_location": point(59.33, 18.06),
    }
    if version == "1.2":
        return {**common, "propulsion_types": ["electric"], "vehicle_state": "available", "event_types": ["located"]}
    return {**common, "propulsion_type": ["electric"], "event_type": "available", "event_type_reason": "service_start"}


def lake_rows(lake: Path, dataset: str) -> pl.DataFrame:
    files = sorted((lake / dataset).glob("zone_id=*/date=*/hour=*/*.parquet"))
    return pl.concat([pl.read_parquet(f).with_columns(file=pl.lit(f.name)) for f in files]) if files else pl.DataFrame()


def all_accounted(report: ImportReport) -> None:
    assert report.failed == []
    for name, received, kept in accounted(report):
        assert received == kept, name


# -- what a file is ----------------------------------------------------------------------------------------------


def test_legacy_record_files_say_their_version_by_their_fields(tmp_path: Path) -> None:
    """Bare lists (one JSON array, and JSON lines gzip'd) of 1.2 and 0.4 status changes: no envelope, no option;
    the fields tell the version, each record lands in its event_time's hour, mapped to 2.0's words."""
    (tmp_path / "a" / ".hidden").mkdir(parents=True)  # an editor's or a sync tool's folder: not the archive's
    (tmp_path / "a" / ".hidden" / "changes.json").write_text("[]")
    (tmp_path / "a" / "changes-1.2.json").write_text(json.dumps([status_change(1, HOUR + timedelta(minutes=5), "1.2")]))
    lines = "\n".join(json.dumps(status_change(2, HOUR + timedelta(hours=1, minutes=m), "0.4")) for m in (1, 2))
    (tmp_path / "a" / "changes-0.4.ndjson.gz").write_bytes(gzip.compress(lines.encode()))
    report = import_archives(Lake(tmp_path / "lake"), [tmp_path / "a"], Stated(zone="7"), imported_at=NOW)
    all_accounted(report)
    assert report.files == 2 and report.skipped == []
    events = lake_rows(tmp_path / "lake", "mds_events").sort("timestamp")
    assert events["mds_version"].to_list() == ["1.2", "0.4", "0.4"]
    assert events["vehicle_state"].to_list() == ["available"] * 3
    assert events["event_types"].to_list() == [["located"], ["provider_drop_off"], ["provider_drop_off"]]
    assert sorted(report.datasets["mds_events"].hours) == [("7", HOUR), ("7", HOUR + timedelta(hours=1))]
    # Not said complete: the hours' records count, the hours are not delivered.
    assert set(events["file"]) == {
        "import-20260330T000000000000Z-mds1.2-partial.parquet",
        "import-20260330T000000000000Z-mds0.4-partial.parquet",
    }


def test_what_a_file_cannot_say_is_asked_for_by_option(tmp_path: Path) -> None:
    """A legacy trip list without propulsion fields does not tell 1.2 from 0.4, an MDS file does not say its zone:
    each is skipped with the option that says it, and imports once the option is given."""
    trip = {
        "provider_id": PROVIDER, "device_id": device(1), "vehicle_type": "scooter",
        "trip_id": "10000000-0000-4000-8000-000000000001", "trip_duration": 600, "trip_distance": 1500,
        "route": {"type": "FeatureCollection", "features": [point(59.33, 18.06), point(59.34, 18.07)]},
        "start_time": ms(HOUR), "end_time": ms(HOUR + timedelta(minutes=10)),
    }  # fmt: skip
    (tmp_path / "trips.json").write_text(json.dumps([trip]))
    (tmp_path / "trips20.json").write_text(json.dumps({"version": "2.0.0", "trips": [trip_20(2, HOUR)]}))
    lake = Lake(tmp_path / "lake")
    report = import_archives(lake, [tmp_path / "trips.json", tmp_path / "trips20.json"], imported_at=NOW)
    reasons = {path.name: why for path, why in report.skipped}
    assert "give --mds-version" in reasons["trips.json"]
    assert "give --zone" in reasons["trips20.json"]
    report = import_archives(
        lake, [tmp_path / "trips.json", tmp_path / "trips20.json"], Stated(zone="7", mds_version="0.4"),
        imported_at=NOW + timedelta(hours=1),
    )  # fmt: skip
    assert report.skipped == []
    all_accounted(report)
    trips = lake_rows(tmp_path / "lake", "mds_trips").sort("trip_id")
    assert trips["mds_version"].to_list() == ["0.4", "2.0"]
    assert trips["vehicle_type"].to_list() == ["scooter_standing", None]


def test_a_record_no_time_places_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    """A trip without an end_time, one in seconds instead of milliseconds, one in the future and a line that is not
    JSON: none lost, each quarantined with why; the good trip lands in its hour."""
    good = trip_20(1, HOUR + timedelta(minutes=30))
    no_end = {k: v for k, v in trip_20(2, HOUR).items() if k != "end_time"}
    seconds = {**trip_20(3, HOUR), "end_time": ms(HOUR) // 1000}
    future = trip_20(4, NOW + timedelta(days=30))
    text = "\n".join([json.dumps(good), json.dumps(no_end), json.dumps(seconds), json.dumps(future), '{"trip_id": '])
    (tmp_path / "trips.jsonl").write_text(text)
    report = import_archives(Lake(tmp_path / "lake"), [tmp_path], Stated(zone="7"), imported_at=NOW)
    all_accounted(report)
    tally = report.datasets["mds_trips"]
    assert (tally.received, tally.rows, tally.quarantined) == (5, 1, 4)
    quarantine = pl.read_parquet(tmp_path / "lake" / "quarantine" / "dataset=mds_trips" / "**" / "*.parquet")
    reasons = sorted(quarantine["reason"].to_list())
    assert len(reasons) == 4 and all(r.startswith("not placed in an hour") for r in reasons)
    assert any("end_time" in r and "missing" in r for r in reasons)
    assert any("not a JSON object" in r for r in reasons)


def test_a_gbfs_snapshot_lands_at_its_last_updated(tmp_path: Path) -> None:
    """The Voi Marseille GBFS 2.3 feed: every one of its 1,466 bikes in the account-wide dataset (placed in zones by
    geometry in the warehouse), one snapshot at its last_updated, no zone needed."""
    report = import_archives(Lake(tmp_path / "lake"), [SAMPLES / "voi-marseille-gbfs2.3"], imported_at=NOW)
    all_accounted(report)
    bikes = lake_rows(tmp_path / "lake", "gbfs_v2_free_bike_status")
    assert bikes.height == 1466 and bikes["vehicle_id"].n_unique() == 1466
    captured = datetime(2023, 11, 3, 9, 31, 15, tzinfo=UTC)  # last_updated 1699003875
    assert report.datasets["gbfs_v2_free_bike_status"].snapshots == {("account", captured)}
    assert set(bikes["file"]) == {"snapshot-20231103T093115000000Z.parquet"}


def test_a_snapshot_instant_holds_one_content(tmp_path: Path) -> None:
    """A second, different file of the same feed, zone and instant is skipped saying so; the lake's is kept. The
    same file again imports again, alike."""
    source = json.loads((SAMPLES / "voi-marseille-gbfs2.3" / "free_bike_status.json").read_bytes())
    source["data"]["bikes"] = source["data"]["bikes"][:3]
    (tmp_path / "other.json").write_text(json.dumps(source))
    lake = Lake(tmp_path / "lake")
    first = import_archives(lake, [SAMPLES / "voi-marseille-gbfs2.3"], imported_at=NOW)
    again = import_archives(lake, [SAMPLES / "voi-marseille-gbfs2.3", tmp_path / "other.json"], imported_at=NOW)
    assert first.skipped == [] and [p.name for p, _ in again.skipped] == ["other.json"]
    assert "already has a snapshot" in again.skipped[0][1]
    assert lake_rows(tmp_path / "lake", "gbfs_v2_free_bike_status").height == 1466


# -- samples and the official examples --------------------------------------------------------------------------

SAMPLE_ZONES = {
    "voi-marseille-gbfs2.3": "31",
    "otp-tier-oslo-gbfs2.3": "oslo",
    "otp-ridecheck-almere-gbfs3.0": "almere",
    "gbfs-json-schema-testFixtures": "fixtures",
    "mds-official-examples": "examples",
}


def source_records(path: Path) -> int:
    """The records a sample holds, counted with the standard library (independently of the importer)."""
    document = json.loads(path.read_bytes())
    data = document.get("data")
    if not isinstance(data, dict):
        return 0
    if "system_id" in data:
        return 1
    lists = [v for k, v in data.items() if isinstance(v, list) and k not in {"global_rules"}]
    if "geofencing_zones" in data:
        return len(data["geofencing_zones"]["features"]) + ("global_rules" in data)
    return sum(len(v) for v in lists)


@pytest.mark.parametrize("folder", SAMPLE_ZONES)
def test_the_real_samples_import_with_no_record_lost(tmp_path: Path, folder: str) -> None:
    """Every sample folder: each file imported or skipped with a reason; the records of the imported ones, counted
    apart, all landed (these real feeds hold no invalid record); nothing failed."""
    report = import_archives(Lake(tmp_path / "lake"), [SAMPLES / folder], Stated(zone=SAMPLE_ZONES[folder]))
    all_accounted(report)
    files = sorted(p for p in (SAMPLES / folder).rglob("*") if p.is_file())
    skipped = {path for path, _ in report.skipped}
    imported = [f for f in files if f not in skipped]
    assert report.files == len(files)
    assert all(why for _, why in report.skipped)
    received = sum(t.received for name, t in report.datasets.items() if name != "mds_vehicle_status")
    assert received == sum(source_records(f) for f in imported)
    assert sum(t.quarantined for t in report.datasets.values()) == 0
    landed = sum(lake_rows(tmp_path / "lake", name).height for name in report.datasets)
    assert landed == sum(t.rows for t in report.datasets.values()) == received
    if folder != "mds-official-examples":
        assert imported, folder


def readme_examples() -> list[tuple[str, str]]:
    """The JSON examples of the MDS provider texts (0.4.1, 1.2, 2.0) that are JSON (some elide with `...`)."""
    found = []
    for readme in sorted((SPECS / "mds").glob("*/**/README*.md")):
        for n, block in enumerate(re.findall(r"```json\n(.*?)```", readme.read_text(), flags=re.S)):
            try:
                json.loads(block)
            except json.JSONDecodeError:
                continue
            found.append((f"{readme.relative_to(SPECS)}#{n}", block))
    return found


def test_the_official_mds_examples_import_or_say_why_not(tmp_path: Path) -> None:
    """The MDS texts' response examples: each one imports (empty record lists: nothing to lose) or is skipped with
    its reason; none fails."""
    examples = readme_examples()
    assert len(examples) >= 8
    for n, (_, block) in enumerate(examples):
        (tmp_path / "examples" / f"{n:02d}.json").parent.mkdir(exist_ok=True)
        (tmp_path / "examples" / f"{n:02d}.json").write_text(block)
    report = import_archives(
        Lake(tmp_path / "lake"), [tmp_path / "examples"], Stated(zone="examples", captured_at=NOW), imported_at=NOW
    )
    all_accounted(report)
    assert report.files == len(examples)
    assert len(report.skipped) + sum(len(t.files) for t in report.datasets.values()) >= len(examples)
    assert {"mds_trips", "mds_events"} <= set(report.datasets)
    assert all(why for _, why in report.skipped)


# -- the command ---------------------------------------------------------------------------------------------------


def test_the_command_shows_what_landed_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.variables().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("FLEETLAKE_LOG_FILE", str(tmp_path / "fleetlake.log"))
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "trips.json").write_text(json.dumps({"version": "2.0.0", "trips": [trip_20(1, HOUR)]}))
    (tmp_path / "a" / "notes.txt").write_text("not data")
    hours = ["--complete-start", "2026-03-28T09:00", "--complete-end", "2026-03-28T12:00"]
    result = CliRunner().invoke(cli.app, ["import", str(tmp_path / "a"), "--zone", "7", *hours])
    assert result.exit_code == 0, result.output
    assert re.search(r"mds_trips\s.*\s1\s.*\s1\s.*\s1\s.*\s3 h\s.*7", result.output), result.output
    assert "2 complete hours the archive had no record in: written empty" in result.output
    assert "skipped 1 file(s): not a JSON file by its name" in result.output
    assert "fleetlake build --start 2026-03-28T09:00Z --end 2026-03-28T12:00Z" in result.output
    files = sorted(p.name for p in (tmp_path / "lake" / "mds_trips").rglob("*.parquet"))
    assert len(files) == 3 and all(f.startswith("import-") and "partial" not in f for f in files)
    bad = CliRunner().invoke(cli.app, ["import", str(tmp_path / "a"), "--complete-start", "2026-03-28T09:30"])
    assert bad.exit_code == 2 and "give both --complete-start and --complete-end" in bad.output


# -- beside API deliveries ---------------------------------------------------------------------------------------


def test_an_import_beside_an_api_delivery_loses_neither(tmp_path: Path) -> None:
    """An hour the API delivered (trips 1, 2, 3), then an archive of it (trip 1 again alike, trip 2 with another
    distance, trip 4 the API never sent), then the API's same response again: every trip is in the marts, trip 2 as
    the import said it (the newer delivery: the API's same records again write nothing and keep their earlier
    delivery time, as for any unchanged redelivery), the repeat and the conflict are counted, the API's trip 2 is
    kept in the lake, and the API's redelivery withdraws nothing the import brought."""
    from pipelines.ingest import write_partition
    from pipelines.lake.datasets import DATASETS
    from pipelines.lake.store import Partition
    from pipelines.warehouse.build import Warehouse
    from tests.scenario import query

    lake = Lake(tmp_path / "lake")
    window = (HOUR, HOUR + timedelta(hours=1))
    api_page = json.dumps({"version": "2.0.0", "trips": [trip_20(n, HOUR + timedelta(minutes=n)) for n in (1, 2, 3)]})

    def deliver(at: datetime, expected: str) -> None:
        result = write_partition(
            lake, DATASETS["mds_trips"], Partition("mds_trips", "7", HOUR), [api_page.encode()], window, ingested_at=at
        )
        assert result.status == expected

    deliver(HOUR + timedelta(hours=1), "written")
    changed = {**trip_20(2, HOUR + timedelta(minutes=2)), "distance": 2500}
    archive = [trip_20(1, HOUR + timedelta(minutes=1)), changed, trip_20(4, HOUR + timedelta(minutes=4))]
    (tmp_path / "archive.json").write_text(json.dumps({"version": "2.0.0", "trips": archive}))
    report = import_archives(lake, [tmp_path / "archive.json"], Stated(zone="7"), complete=window, imported_at=NOW)
    all_accounted(report)
    # The API's same records, later: part-0 already holds them, so nothing is written (its delivery time stays)
    deliver(NOW + timedelta(hours=1), "unchanged")

    files = sorted(p.name for p in (tmp_path / "lake" / "mds_trips").rglob("*.parquet"))
    assert files == ["import-20260330T000000000000Z.parquet", "part-0.parquet"]
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lake.root)
    warehouse.build()
    trips = query(warehouse, "select trip_id, distance_m from trips order by trip_id")
    assert [t[-1] for t in trips["trip_id"].cast(pl.String).to_list()] == ["1", "2", "3", "4"]
    assert trips["distance_m"].to_list() == [1500.0, 2500.0, 1500.0, 1500.0]
    api = pl.read_parquet(next((tmp_path / "lake" / "mds_trips").rglob("part-0.parquet")))
    assert sorted(api["distance_m"].to_list()) == [1500.0, 1500.0, 1500.0]  # the API's trip 2, kept
    quality = query(
        warehouse,
        "select mds_trips_records, mds_trips_duplicates, mds_trips_conflicts, coverage from data_quality_hourly",
    )
    assert quality.rows() == [(6, 1, 1, 0.5)]  # 3 + 3 rows; trips only: the events hour is not delivered


def test_only_a_complete_import_holds_its_hour(tmp_path: Path) -> None:
    """The backfill's lead-in does not fetch an hour the lake holds: an API delivery or a complete import does, an
    import's partial hour does not."""
    from pipelines.lake.store import Partition

    (tmp_path / "trips.json").write_text(json.dumps({"version": "2.0.0", "trips": [trip_20(1, HOUR)]}))
    lake = Lake(tmp_path / "lake")
    import_archives(lake, [tmp_path / "trips.json"], Stated(zone="7"), imported_at=NOW)
    assert not lake.holds_hour(Partition("mds_trips", "7", HOUR))
    complete = (HOUR, HOUR + timedelta(hours=2))
    import_archives(lake, [tmp_path / "trips.json"], Stated(zone="7"), complete=complete, imported_at=NOW)
    assert lake.holds_hour(Partition("mds_trips", "7", HOUR))
    assert lake.holds_hour(Partition("mds_trips", "7", HOUR + timedelta(hours=1)))  # written empty
    assert not lake.holds_hour(Partition("mds_events", "7", HOUR))  # the archive held no events


def test_reparse_rebuilds_an_imported_hour_from_the_pages_the_import_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fleetlake reparse` of an hour holding only an import: its file is rebuilt from the import's kept pages, the
    same rows, the same quarantine, its own ingest time."""
    for name in Settings.variables().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("FLEETLAKE_LOG_FILE", str(tmp_path / "fleetlake.log"))
    bad = {**trip_20(2, HOUR), "start_location": {"lat": 123, "lng": 18}}
    (tmp_path / "trips.json").write_text(json.dumps([trip_20(1, HOUR), bad]))
    import_archives(Lake(tmp_path / "lake"), [tmp_path / "trips.json"], Stated(zone="7"), imported_at=NOW)
    written = next((tmp_path / "lake" / "mds_trips").rglob("import-*.parquet"))
    before = pl.read_parquet(written)
    written.unlink()
    result = CliRunner().invoke(
        cli.app, ["reparse", "--dataset", "mds_trips", "--zone", "7", "--hour", "2026-03-28T10"]
    )
    assert result.exit_code == 0, result.output
    assert "(import): 1 rows, 1 quarantined" in result.output
    assert pl.read_parquet(written).equals(before)
