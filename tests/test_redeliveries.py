"""Re-deliveries that disagree: the newest delivery of a record wins in staging and marts, a re-delivery with other
content counts as a conflict (not a duplicate) in data_quality_hourly, and every delivery's raw response stays in
the lake. Hand-built lakes, each delivery stamped with its own ingest time."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.truth import truth_frames
from pipelines.config import Settings
from pipelines.ingest import IngestReport, PartitionResult, hours_between, ingest_hours, write_partition
from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import Lake, Partition, delivery_stem
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from tests.conftest import CREDENTIALS, make_provider
from tests.scenario import Record, event, trip, uid, write_system_information, write_vehicles
from tests.scenario import query as run

pytestmark = pytest.mark.integration

ZONE = "1"
H = timedelta(hours=1)
M = timedelta(minutes=1)
HOUR = datetime(2026, 4, 2, 10, tzinfo=UTC)
FIRST_INGEST = datetime(2026, 4, 2, 11, 15, tzinfo=UTC)


def deliver(lake: Path, dataset: str, hour: datetime, records: list[Any], ingested_at: datetime) -> PartitionResult:
    """One delivery of an hour, ingested at `ingested_at`, through the one write path."""
    key = "trips" if dataset == "mds_trips" else "events"
    return write_partition(
        Lake(lake),
        DATASETS[dataset],
        Partition(dataset, ZONE, hour),
        [json.dumps({key: records}).encode()],
        (hour, hour + H),
        ingested_at=ingested_at,
    )


def setup_lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    write_system_information(lake, ZONE, HOUR - 24 * H)
    write_vehicles(lake, ZONE, HOUR - 24 * H, ["scooter-a", "scooter-b"])
    for hour in (HOUR, HOUR + H):
        deliver(lake, "mds_events", hour, [], FIRST_INGEST)
    return lake


def quality(warehouse: Warehouse) -> dict[datetime, dict[str, Any]]:
    frame = run(warehouse, "select * from data_quality_hourly where zone_id = $z order by hour", {"z": ZONE})
    return {row["hour"]: row for row in frame.iter_rows(named=True)}


def build(tmp_path: Path, lake: Path, name: str = "warehouse") -> Warehouse:
    warehouse = Warehouse(tmp_path / f"{name}.duckdb", lake)
    warehouse.build()
    return warehouse


def corrected(record: Record, **changes: Any) -> Record:
    return {**record, **changes}


def test_a_correction_in_a_later_ingest_of_the_same_hour_wins_and_is_a_conflict(tmp_path: Path) -> None:
    lake = setup_lake(tmp_path)
    first = trip("fixed", "scooter-a", HOUR + 10 * M, HOUR + 20 * M, distance_m=1_000.0)
    steady = trip("steady", "scooter-b", HOUR + 30 * M, HOUR + 40 * M)
    deliver(lake, "mds_trips", HOUR, [first, steady], FIRST_INGEST)
    # The operator corrects the distance; the hour's next ingest (the lookback) brings the corrected trip.
    second_ingest = FIRST_INGEST + H
    deliver(lake, "mds_trips", HOUR, [corrected(first, distance=1_350.0), steady], second_ingest)

    warehouse = build(tmp_path, lake)
    trips = run(warehouse, "select trip_id, distance_m from trips order by end_time")
    assert trips.rows() == [(uid("fixed"), 1_350.0), (uid("steady"), 1_000.0)]
    staged = run(warehouse, "select trip_id, ingested_at from staging.stg_mds__trips order by trip_id")
    assert staged["ingested_at"].to_list() == [second_ingest, second_ingest]
    dq = quality(warehouse)[HOUR]
    # One record re-delivered with other content; the unchanged one re-delivered in the same hour is no repeat.
    assert (dq["mds_trips_records"], dq["mds_trips_conflicts"], dq["mds_trips_duplicates"]) == (2, 1, 0)

    # Both raw responses stay; the first version of the corrected trip is kept, typed, as superseded.
    partition = Partition("mds_trips", ZONE, HOUR)
    stems = Lake(lake).raw_deliveries(partition)
    assert stems == [delivery_stem(FIRST_INGEST), delivery_stem(second_ingest)]
    first_raw = json.loads(Lake(lake).read_raw(partition, stems[0])[0])
    assert [t["distance"] for t in first_raw["trips"]] == [1_000.0, 1_000.0]
    superseded = pl.read_parquet(Lake(lake).superseded_path(partition, stems[1]))
    assert superseded.select("trip_id", "distance_m", "ingested_at", "superseded_at", "reason").rows() == [
        (uid("fixed"), 1_000.0, FIRST_INGEST, second_ingest, "changed_by_later_delivery")
    ]


@pytest.mark.slow
def test_a_correction_into_an_earlier_hour_wins_because_it_was_delivered_last(tmp_path: Path) -> None:
    lake = setup_lake(tmp_path)
    # First delivered ending at 11:05 (hour 11); later corrected to end at 10:55 and delivered by the re-ingest of
    # hour 10. The partition hour is earlier, the delivery newer: the correction wins.
    wrong = trip("moved", "scooter-a", HOUR + 40 * M, HOUR + H + 5 * M)
    right = trip("moved", "scooter-a", HOUR + 40 * M, HOUR + 55 * M)
    deliver(lake, "mds_trips", HOUR, [], FIRST_INGEST)
    deliver(lake, "mds_trips", HOUR + H, [wrong], FIRST_INGEST + H)
    warehouse = build(tmp_path, lake, "hourly")
    deliver(lake, "mds_trips", HOUR, [right], FIRST_INGEST + 2 * H)
    warehouse.build(window=(HOUR, HOUR + H))

    full = build(tmp_path, lake, "full")
    for built in (warehouse, full):
        assert run(built, "select trip_id, end_time from trips").rows() == [(uid("moved"), HOUR + 55 * M)]
        staged = run(built, "select delivery_hour, ingested_at from staging.stg_mds__trips")
        assert staged.rows() == [(HOUR, FIRST_INGEST + 2 * H)]
    dq = quality(full)
    assert [(dq[h]["mds_trips_conflicts"], dq[h]["mds_trips_duplicates"]) for h in (HOUR, HOUR + H)] == [
        (1, 0),  # the later delivery carries the conflict
        (0, 0),
    ]
    assert quality(warehouse)[HOUR]["mds_trips_conflicts"] == 1
    # Each hour keeps the raw responses of its deliveries.
    lake_files = Lake(lake)
    assert len(lake_files.raw_deliveries(Partition("mds_trips", ZONE, HOUR))) == 2
    assert len(lake_files.raw_deliveries(Partition("mds_trips", ZONE, HOUR + H))) == 1


def test_the_same_response_ingested_again_is_the_same_delivery(tmp_path: Path) -> None:
    lake = setup_lake(tmp_path)
    same = trip("same", "scooter-a", HOUR + 40 * M, HOUR + 50 * M)
    deliver(lake, "mds_trips", HOUR, [same], FIRST_INGEST)
    deliver(lake, "mds_trips", HOUR, [same], FIRST_INGEST + H)  # the lookback's re-ingest, byte for byte the same
    warehouse = build(tmp_path, lake)
    dq = quality(warehouse)[HOUR]
    assert (dq["mds_trips_records"], dq["mds_trips_duplicates"], dq["mds_trips_conflicts"]) == (1, 0, 0)
    # No second raw copy, and the delivery keeps its first ingest time.
    assert Lake(lake).raw_deliveries(Partition("mds_trips", ZONE, HOUR)) == [delivery_stem(FIRST_INGEST)]
    assert run(warehouse, "select ingested_at from staging.stg_mds__trips").item() == FIRST_INGEST


def test_a_redelivery_of_the_same_records_in_another_envelope_writes_nothing(tmp_path: Path) -> None:
    """Responses differ on every request (`last_updated`) and may list records in another order: the records are
    what is compared. The same records, rejections and repeats write nothing, not even a raw copy; one changed
    record, or one more rejection, is a delivery like any other."""
    lake = setup_lake(tmp_path)
    a = trip("a", "scooter-a", HOUR + 10 * M, HOUR + 20 * M)
    b = trip("b", "scooter-b", HOUR + 30 * M, HOUR + 40 * M)
    bad = {"trip_id": "not a trip"}

    def delivery(records: list[Any], ingested_at: datetime, last_updated: int) -> PartitionResult:
        body = json.dumps({"version": "2.0.0", "last_updated": last_updated, "trips": records}).encode()
        window = (HOUR, HOUR + H)
        partition = Partition("mds_trips", ZONE, HOUR)
        return write_partition(Lake(lake), DATASETS["mds_trips"], partition, [body], window, ingested_at=ingested_at)

    assert delivery([a, b, bad], FIRST_INGEST, 1).status == "written"
    partition = Partition("mds_trips", ZONE, HOUR)
    folder_of = {"data": Lake(lake).data_path(partition).parent, "raw": Lake(lake).raw_dir(partition)}
    before = {path: path.stat().st_mtime_ns for folder in folder_of.values() for path in folder.iterdir()}
    again = delivery([b, bad, a], FIRST_INGEST + H, 2)
    assert (again.status, again.rows, again.quarantined, again.bytes) == ("unchanged", 2, 1, 0)
    after = {path: path.stat().st_mtime_ns for folder in folder_of.values() for path in folder.iterdir()}
    assert after == before  # not one file written, replaced or added
    warehouse = build(tmp_path, lake)
    assert run(warehouse, "select distinct ingested_at from staging.stg_mds__trips").item() == FIRST_INGEST

    assert delivery([a, b], FIRST_INGEST + 2 * H, 3).status == "written"  # the rejection is gone: it differs
    assert delivery([a, corrected(b, distance=5.0)], FIRST_INGEST + 3 * H, 4).status == "written"
    deliveries = Lake(lake).raw_deliveries(partition)
    assert deliveries == [delivery_stem(FIRST_INGEST + n * H) for n in (0, 2, 3)]


def test_an_id_twice_in_one_response_counts_as_duplicate_or_conflict(tmp_path: Path) -> None:
    lake = setup_lake(tmp_path)
    a = trip("twice-same", "scooter-a", HOUR + 10 * M, HOUR + 20 * M)
    b = trip("twice-changed", "scooter-b", HOUR + 10 * M, HOUR + 20 * M, distance_m=800.0)
    result = deliver(lake, "mds_trips", HOUR, [a, b, a, corrected(b, distance=900.0)], FIRST_INGEST)
    assert (result.received, result.rows, result.duplicates, result.conflicts) == (4, 2, 1, 1)

    # Events too: one listed twice with another battery reading the second time.
    parked = event("parked", "scooter-a", HOUR + 25 * M, "trip_end", "available")
    deliver(lake, "mds_events", HOUR, [parked, {**parked, "battery_percent": 79}], FIRST_INGEST)
    warehouse = build(tmp_path, lake)
    dq = quality(warehouse)[HOUR]
    assert (dq["mds_trips_records"], dq["mds_trips_duplicates"], dq["mds_trips_conflicts"]) == (2, 1, 1)
    assert (dq["mds_events_records"], dq["mds_events_duplicates"], dq["mds_events_conflicts"]) == (1, 0, 1)
    assert run(warehouse, "select battery_percent from staging.stg_mds__events").item() == 79
    # The later occurrence wins.
    assert (
        run(warehouse, "select distance_m from trips where trip_id = $t", {"t": uid("twice-changed")}).item() == 900.0
    )

    # The next ingest of the hour, fixed by the provider: the counts are those of the delivery the lake holds now;
    # the superseded copies of the first response stay in the lake.
    deliver(lake, "mds_trips", HOUR, [a, corrected(b, distance=900.0)], FIRST_INGEST + H)
    rebuilt = build(tmp_path, lake, "rebuilt")
    dq = quality(rebuilt)[HOUR]
    assert (dq["mds_trips_records"], dq["mds_trips_duplicates"], dq["mds_trips_conflicts"]) == (2, 0, 0)
    partition = Partition("mds_trips", ZONE, HOUR)
    kept = pl.read_parquet(Lake(lake).superseded_path(partition, delivery_stem(FIRST_INGEST)))
    assert sorted(kept["reason"].to_list()) == ["conflict_in_response", "duplicate_in_response"]


# -- the provider's corrections, against its ground truth ------------------------------------------------------


def test_trips_corrected_in_a_later_delivery_end_up_as_the_truth(tmp_path: Path) -> None:
    """Each hour ingested as soon as it is served, then every hour again once all corrections are out (as the
    lookback does): the marts hold the corrected trips, and each trip first served preliminary is one conflict."""
    start = datetime(2026, 3, 28, tzinfo=UTC)
    hours = hours_between(start, start + 12 * H)
    clock = FixedClock(start)
    provider = make_provider(
        clock=clock, start=start, days=1, vehicles=60, zones=(ZONE,), faults=Faults(correction_rate=0.3)
    )
    lake = tmp_path / "lake"
    settings = Settings(api_base_url="http://provider", maas_base_url="http://provider", zones=(ZONE,), lake_dir=lake)
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000).app

    async def ingest(chosen: list[datetime]) -> IngestReport:
        async with VoiClient(settings, transport=httpx.ASGITransport(app=app)) as client:
            return await ingest_hours(client, Lake(lake), settings.zones, chosen)

    first_seen: dict[str, int] = {}
    for hour in hours:
        clock.set(hour + H + 11 * M)  # just after the hour is served
        assert {r.status for r in asyncio.run(ingest([hour])).results} == {"written"}
        for trip_id in pl.read_parquet(Lake(lake).data_path(Partition("mds_trips", ZONE, hour)))["trip_id"]:
            first_seen[trip_id] = provider.now_ms()
    clock.set(hours[-1] + 5 * H)  # every correction is out (at most 3 hours after an hour was served)
    again = asyncio.run(ingest(hours))
    write_system_information(lake, ZONE, start)
    warehouse = build(tmp_path, lake)

    truth = truth_frames(provider)["trips"].filter(pl.col("end_time") < hours[-1] + H, zone_id=ZONE).sort("trip_id")
    trips = run(warehouse, "select trip_id::varchar as trip_id, distance_m from trips order by trip_id")
    assert trips["trip_id"].to_list() == truth["trip_id"].to_list()
    assert trips["distance_m"].to_list() == truth["distance_m"].to_list()

    # Hand-count from the provider's own fault draws: trips served preliminary when their hour was first ingested.
    faults = provider.zones[ZONE].trip_faults
    ids = provider.zones[ZONE].trips["trip_id"].to_list()
    preliminary = sum(
        1
        for i, trip_id in enumerate(ids)
        if trip_id in first_seen and faults.corrected_from_ms[i] > first_seen[trip_id]
    )
    assert preliminary > 5  # the option really produced corrections
    # Only the hours a correction changed were written again; the others' records were the same: nothing written.
    hour_of_trip = dict(zip(truth["trip_id"], truth["end_time"].dt.truncate("1h"), strict=True))
    corrected_hours = {
        hour_of_trip[trip_id]
        for i, trip_id in enumerate(ids)
        if trip_id in first_seen and faults.corrected_from_ms[i] > first_seen[trip_id]
    }
    written = {r.hour for r in again.of("mds_trips") if r.status == "written"}
    assert written == corrected_hours and {r.status for r in again.results} == {"written", "unchanged"}
    totals = run(
        warehouse,
        "select sum(mds_trips_conflicts) as conflicts, sum(mds_trips_duplicates) as duplicates "
        "from data_quality_hourly",
    )
    assert totals.row(0) == (preliminary, 0)
    # The first, preliminary versions stay in the lake, raw and typed.
    superseded = pl.read_parquet(lake / "superseded" / "mds_trips", hive_partitioning=False)
    assert superseded.height == preliminary
    assert set(superseded["reason"]) == {"changed_by_later_delivery"}
    truth_distance = dict(zip(truth["trip_id"], truth["distance_m"], strict=True))
    assert all(row["distance_m"] > truth_distance[row["trip_id"]] for row in superseded.iter_rows(named=True))


def test_a_crashed_delivery_s_temporary_raw_file_goes_with_the_next_delivery(tmp_path: Path) -> None:
    lake = setup_lake(tmp_path)
    raw_dir = Lake(lake).raw_dir(Partition("mds_trips", ZONE, HOUR))
    raw_dir.mkdir(parents=True)
    # What a writer killed mid-write (process 999999999 is gone) leaves under its own delivery's name.
    stale = raw_dir / f".{delivery_stem(FIRST_INGEST)}.page-0000.json.gz.999999999.{'0' * 32}.tmp"
    stale.write_bytes(b"half")
    deliver(lake, "mds_trips", HOUR, [trip("t", "scooter-a", HOUR + 5 * M, HOUR + 9 * M)], FIRST_INGEST + H)
    assert not stale.exists()
    assert sorted(p.name for p in raw_dir.iterdir()) == [f"{delivery_stem(FIRST_INGEST + H)}.page-0000.json.gz"]


def test_a_lake_written_before_deliveries_were_stamped_still_builds(tmp_path: Path) -> None:
    lake = setup_lake(tmp_path)
    old = trip("old", "scooter-a", HOUR + 5 * M, HOUR + 9 * M, distance_m=500.0)
    deliver(lake, "mds_trips", HOUR, [old], FIRST_INGEST)
    deliver(lake, "mds_trips", HOUR + H, [trip("other", "scooter-b", HOUR + H, HOUR + H + 9 * M)], FIRST_INGEST)
    # Every file as an older version wrote it: no ingested_at column, raw responses under the one legacy name.
    for path in [*(lake / "mds_trips").rglob("*.parquet"), *(lake / "mds_events").rglob("*.parquet")]:
        pl.read_parquet(path, hive_partitioning=False).drop("ingested_at").write_parquet(path)
    for raw in (lake / "_raw").rglob("delivery-*.json.gz"):
        raw.rename(raw.with_name("response" + raw.name[len(delivery_stem(FIRST_INGEST)) :]))
    warehouse = build(tmp_path, lake)
    staged = run(warehouse, "select trip_id, ingested_at from staging.stg_mds__trips order by delivery_hour")
    assert staged.rows() == [(uid("old"), None), (uid("other"), None)]

    # A new delivery of the first hour, with a corrected distance, wins over the unstamped one and is a conflict.
    deliver(lake, "mds_trips", HOUR, [corrected(old, distance=550.0)], FIRST_INGEST + 2 * H)
    warehouse.build(window=(HOUR, HOUR + H))
    assert run(warehouse, "select distance_m from trips where trip_id = $t", {"t": uid("old")}).item() == 550.0
    assert quality(warehouse)[HOUR]["mds_trips_conflicts"] == 1
    partition = Partition("mds_trips", ZONE, HOUR)
    assert Lake(lake).raw_deliveries(partition) == ["response", delivery_stem(FIRST_INGEST + 2 * H)]
