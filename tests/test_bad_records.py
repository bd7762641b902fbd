"""One bad record fails one record: in the client, in ingestion, and in the warehouse build."""

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.faults import Faults
from fleetlake_provider.service import SimulatedProvider
from pipelines.config import Settings
from pipelines.ingest import IngestReport, hours_between, ingest_hours, reparse, write_partition
from pipelines.lake.datasets import DATASETS
from pipelines.lake.store import Lake, Partition, snapshot_stem
from pipelines.voi.client import VoiClient, VoiRequestError
from pipelines.voi.ratelimit import RateLimiter
from pipelines.warehouse.build import Warehouse
from tests.conftest import CREDENTIALS, START, make_provider
from tests.scenario import (
    CENTER,
    area,
    event,
    query,
    ride,
    uid,
    write_events,
    write_hours,
    write_system_information,
    write_zone_areas,
)
from tests.test_malformed_corpus import CORPUS, FLAGGED, OTHER_ID, mutated

HOUR = datetime(2026, 3, 28, 10, tzinfo=UTC)
GOOD = CORPUS["good"]["mds_trips"]


def trips_body(*records: str) -> bytes:
    return ('{"version":"2.0.0","trips":[' + ",".join(records) + '],"links":{}}').encode()


GOOD_TEXT = json.dumps(GOOD)
BAD_BODIES = {
    "NaN": GOOD_TEXT.replace('"duration": 600', '"duration": NaN'),
    "Infinity": GOOD_TEXT.replace('"distance": 1500', '"distance": Infinity'),
    "1e400": GOOD_TEXT.replace('"duration": 600', '"duration": 1e400'),
    "lone surrogate": GOOD_TEXT.replace('"rider"', '"\\ud800rider"'),
}


def _second(record: str) -> str:
    return record.replace(GOOD["trip_id"], uid("second trip"))


class Provider:
    """A token endpoint and one trips response, counting the requests for trips."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.trip_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 900})
        self.trip_requests += 1
        return httpx.Response(200, content=self.body, headers={"content-type": "application/vnd.mds+json"})


def client(provider: Provider, lake_dir: Path) -> VoiClient:
    settings = Settings(
        api_base_url="http://voi.test", maas_base_url="http://voi.test", zones=("1",), lake_dir=lake_dir
    )
    return VoiClient(settings, transport=httpx.MockTransport(provider), limiter=RateLimiter(10_000, burst=200))


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_a_value_strict_json_refuses_costs_its_record_only_and_no_retry(kind: str, tmp_path: Path) -> None:
    body = trips_body(BAD_BODIES[kind], _second(GOOD_TEXT))
    provider = Provider(body)

    async def run() -> object:
        async with client(provider, tmp_path) as voi:
            return await ingest_hours(voi, Lake(tmp_path), ["1"], [HOUR], datasets=("mds_trips",))

    report = asyncio.run(run())
    assert provider.trip_requests == 1  # a complete body is not fetched again
    (result,) = report.results  # type: ignore[attr-defined]
    assert (result.status, result.received, result.rows, result.quarantined) == ("written", 2, 1, 1)
    lake = Lake(tmp_path)
    partition = Partition("mds_trips", "1", HOUR)
    (delivery,) = lake.raw_deliveries(partition)
    assert lake.read_raw(partition, stem=delivery) == [body]  # the response is kept as received
    quarantine = pl.read_parquet(lake.quarantine_path(partition))
    assert quarantine["record_index"].to_list() == [0]
    field = "trip_type" if kind == "lone surrogate" else ("distance" if kind == "Infinity" else "duration")
    assert f"$.{field}" in quarantine["reason"][0]
    kept = pl.read_parquet(lake.data_path(partition))
    assert kept["trip_id"].to_list() == [uid("second trip")]


def test_a_cut_body_is_still_retried_and_fails_its_partition(tmp_path: Path) -> None:
    provider = Provider(trips_body(GOOD_TEXT)[:-10])

    async def run() -> None:
        async with client(provider, tmp_path) as voi:
            voi.max_attempts = 2
            await voi.mds_trips("1", HOUR)

    with pytest.raises(VoiRequestError, match="cut body"):
        asyncio.run(run())
    assert provider.trip_requests == 2


def test_an_id_with_a_final_newline_is_quarantined_by_ingestion_and_reparse(tmp_path: Path) -> None:
    newline = GOOD_TEXT.replace(GOOD["trip_id"], GOOD["trip_id"] + "\\n")
    body = trips_body(newline, _second(GOOD_TEXT))
    lake = Lake(tmp_path)
    lake.write_raw(Partition("mds_trips", "1", HOUR), [body])
    result = reparse(lake, "mds_trips", "1", HOUR)
    assert (result.rows, result.quarantined) == (1, 1)
    reason = pl.read_parquet(lake.quarantine_path(Partition("mds_trips", "1", HOUR)))["reason"][0]
    assert reason == "Expected a whole UUID as text (nothing around it, no final newline) - at `$.trip_id`"


def _ingest(provider: SimulatedProvider, lake_dir: Path, hours: list[datetime]) -> IngestReport:
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)
    settings = Settings(
        api_base_url="http://voi.test", maas_base_url="http://voi.test", zones=("1",), lake_dir=lake_dir
    )

    async def run() -> IngestReport:
        transport = httpx.ASGITransport(app=app.app)
        async with VoiClient(settings, transport=transport, limiter=RateLimiter(1_000_000, burst=1_000)) as voi:
            return await ingest_hours(voi, Lake(lake_dir), ["1"], hours)

    return asyncio.run(run())


def _lake(lake_dir: Path, dataset: str, key: str) -> pl.DataFrame:
    return pl.read_parquet(sorted(lake_dir.glob(f"{dataset}/zone_id=*/date=*/hour=*/*.parquet"))).sort(key)


def test_the_simulators_implausible_and_contradicting_records_are_quarantined_and_flagged(
    provider: SimulatedProvider, tmp_path: Path
) -> None:
    """Implausible copies (seconds, end before start, ten-year trips, (0, 0), unknown states and types, ids with a
    newline, NaN, future times) cost only themselves; contradicting event types are kept and flagged. The clean
    city is the shared one (make_provider's defaults), the faulty one the same city with the faults on."""
    hours = hours_between(START + timedelta(hours=9), START + timedelta(hours=13))  # daytime: trips
    faults = Faults(implausible_rate=0.2, contradicting_rate=0.3)
    faulty = make_provider(faults=faults)
    clean_report = _ingest(provider, tmp_path / "clean", hours)
    faulty_report = _ingest(faulty, tmp_path / "faulty", hours)

    zone = faulty.zones["1"]
    first, end = (int(h.timestamp() * 1000) for h in (hours[0], hours[-1] + timedelta(hours=1)))
    in_window = {
        "mds_trips": (zone.trip_end >= first) & (zone.trip_end < end),
        "mds_events": (zone.event_ts >= first) & (zone.event_ts < end),
    }
    copies = {
        "mds_trips": int((zone.trip_faults.implausible[in_window["mds_trips"]] > 0).sum()),
        "mds_events": int((zone.event_faults.implausible[in_window["mds_events"]] > 0).sum()),
    }
    assert min(copies.values()) > 5
    for dataset, key in (("mds_trips", "trip_id"), ("mds_events", "event_id")):
        summary = faulty_report.summary(dataset)
        assert summary["partitions_failed"] == 0
        assert summary["quarantined"] == copies[dataset]
        assert summary["rows"] == clean_report.summary(dataset)["rows"]
        clean, kept = _lake(tmp_path / "clean", dataset, key), _lake(tmp_path / "faulty", dataset, key)
        differ = ["event_types", "ingested_at"]  # what contradicting_rate changes; when each lake was written
        assert kept.drop(differ, strict=False).equals(clean.drop(differ, strict=False))
    quarantine = pl.read_parquet(tmp_path / "faulty" / "quarantine")
    assert quarantine["reason"].str.contains("`").all()  # every reason names its field
    assert quarantine["reason"].str.contains("NaN is not a finite JSON number").any()

    kept_events = _lake(tmp_path / "faulty", "mds_events", "event_id")
    clean_events = _lake(tmp_path / "clean", "mds_events", "event_id")
    contradicted = int((kept_events["event_types"] != clean_events["event_types"]).sum())
    assert contradicted > 5
    warehouse = Warehouse(tmp_path / "w.duckdb", tmp_path / "faulty")
    warehouse.build()
    quality = query(warehouse, "select sum(events_contradicting_state)::int as n from data_quality_hourly")
    assert quality["n"].to_list() == [contradicted]


def test_a_body_nested_beyond_any_reader_fails_its_partition_once_and_is_kept(tmp_path: Path) -> None:
    body = b'{"trips":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    provider = Provider(body)

    async def run() -> IngestReport:
        async with client(provider, tmp_path) as voi:
            return await ingest_hours(voi, Lake(tmp_path), ["1"], [HOUR], datasets=("mds_trips",))

    (result,) = asyncio.run(run()).results
    assert provider.trip_requests == 1
    assert result.status == "failed"
    assert result.error is not None and "mds_trips: the response is not complete JSON" in result.error
    kept = sorted((tmp_path / "_raw" / "mds_trips").rglob("rejected-*.json.gz"))
    assert len(kept) == 1


# -- hand-made lakes: one zone each, one build for all ------------------------------------------------------------

UNREADABLE, CONTRADICTING, FAR, NO_AREAS, TIME_ZONE = "11", "12", "13", "14", "15"
"""Each case below writes its records into a zone of its own of one lake, built once for every test of the file (a
build costs about a CPU second, whatever the size of its lake); each test reads its zone alone."""

START_5 = HOUR + timedelta(minutes=5)
KEPT_TRIP, KEPT_EVENTS = ride("kept trip", "scooter-1", START_5, START_5 + timedelta(minutes=10))
CONTRADICTING_EVENTS = [
    json.loads(mutated(case)) | {"event_id": uid(case["case"])}
    for case in FLAGGED
    if case["field"] == "state_contradicts_event"
]
SOUND_EVENTS = [
    event("sound end", "scooter-1", HOUR + timedelta(minutes=1), "trip_end", "available"),
    event("sound low", "scooter-1", HOUR + timedelta(minutes=2), "battery_low", "non_operational"),
    event("sound unspecified", "scooter-2", HOUR + timedelta(minutes=3), "unspecified", "missing"),
]


def write_unreadable_ids(lake_dir: Path) -> None:
    """A file from before ingestion matched ids whole: a trip and an event whose ids end in a newline."""
    write_hours(lake_dir, UNREADABLE, [KEPT_TRIP], KEPT_EVENTS)
    lake = Lake(lake_dir)
    for dataset, key in (("mds_trips", "trip_id"), ("mds_events", "event_id")):
        path = lake.data_path(Partition(dataset, UNREADABLE, HOUR))
        frame = pl.read_parquet(path)
        bad = frame.head(1).with_columns(pl.col(key) + "\n")
        pl.concat([frame, bad]).write_parquet(path)


def write_contradicting_events(lake_dir: Path) -> None:
    result = write_events(lake_dir, CONTRADICTING, HOUR, [*SOUND_EVENTS, *CONTRADICTING_EVENTS])
    assert (result.rows, result.quarantined) == (len(SOUND_EVENTS) + len(CONTRADICTING_EVENTS), 0)


def write_far_locations(lake_dir: Path) -> None:
    """The corpus's far-away trip (latitude and longitude swapped) and event, beside sound ones, in a zone whose
    areas span central Stockholm."""
    far = {
        case["dataset"]: json.loads(mutated(case, new_id=True)) for case in FLAGGED if case["field"] == "far_from_zone"
    }
    near_trip, near_events = ride("near", "scooter-1", START_5, START_5 + timedelta(minutes=10))
    write_hours(lake_dir, FAR, [near_trip, far["mds_trips"]], [*near_events, far["mds_events"]])
    city = area("city", "operations", (CENTER[0] - 0.1, CENTER[1] - 0.1), (CENTER[0] + 0.1, CENTER[1] + 0.1))
    write_zone_areas(lake_dir, FAR, HOUR, [city])


def write_trip_without_areas(lake_dir: Path) -> None:
    trip, events = ride("alone", "scooter-1", START_5, START_5 + timedelta(minutes=10))
    write_hours(lake_dir, NO_AREAS, [trip], events)


def write_unknown_time_zone(lake_dir: Path) -> None:
    """Ingestion quarantines it; a lake file from before that check (written here as one would have been) holds
    it too."""
    trip, events = ride("local", "scooter-1", START_5, START_5 + timedelta(minutes=10))
    write_hours(lake_dir, TIME_ZONE, [trip], events)
    assert write_system_information(lake_dir, TIME_ZONE, HOUR, timezone="Europe/Stockholm").quarantined == 0
    refused = write_system_information(lake_dir, TIME_ZONE, HOUR + timedelta(minutes=5), timezone="Mars/Olympus_Mons")
    assert (refused.rows, refused.quarantined) == (0, 1)
    later = HOUR + timedelta(minutes=10)  # as an ingestion without the check wrote it
    unchecked = dataclasses.replace(DATASETS["gbfs_system_information"], check=None)
    body = {"data": {"system_id": "voi_1", "name": "Voi", "timezone": "Mars/Olympus_Mons"}}
    partition = Partition("gbfs_system_information", TIME_ZONE, HOUR)
    stem = snapshot_stem(later)
    write_partition(
        Lake(lake_dir), unchecked, partition, [json.dumps(body).encode()], (later, later), stem=stem, captured_at=later
    )


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    lake_dir = tmp_path_factory.mktemp("hand_made") / "lake"
    for write in (
        write_unreadable_ids,
        write_contradicting_events,
        write_far_locations,
        write_trip_without_areas,
        write_unknown_time_zone,
    ):
        write(lake_dir)
    warehouse = Warehouse(lake_dir.parent / "w.duckdb", lake_dir)
    warehouse.build()
    return warehouse


def quality(warehouse: Warehouse, zone: str, columns: str) -> list[tuple[object, ...]]:
    return query(
        warehouse,
        f"select {columns} from data_quality_hourly where zone_id = $zone and hour = $hour",
        {"zone": zone, "hour": HOUR},
    ).rows()


def test_a_lake_row_whose_id_is_not_a_uuid_never_fails_the_build_and_is_counted(hand_made: Warehouse) -> None:
    """Staging leaves the row out, data quality counts it."""
    zone = {"zone": UNREADABLE}
    trips = query(hand_made, "select trip_id::varchar as id from staging.stg_mds__trips where zone_id = $zone", zone)
    assert trips["id"].to_list() == [uid("kept trip")]
    events = query(hand_made, "select count(*) as n from staging.stg_mds__events where zone_id = $zone", zone)
    assert events["n"][0] == len(KEPT_EVENTS)
    assert quality(hand_made, UNREADABLE, "mds_trips_unreadable, mds_events_unreadable, mds_trips_records") == [
        (1, 1, 2)
    ]
    unreadable = query(
        hand_made,
        "select dataset, unreadable_column from core.int_unreadable_records where zone_id = $zone order by 1",
        zone,
    )
    assert unreadable.rows() == [("mds_events", "event_id"), ("mds_trips", "trip_id")]
    assert query(hand_made, "select distinct zone_id from core.int_unreadable_records")["zone_id"].to_list() == [
        UNREADABLE
    ]


def test_events_contradicting_the_state_machine_are_kept_flagged_and_counted(hand_made: Warehouse) -> None:
    events = query(
        hand_made,
        "select event_id::varchar as event_id, state_contradicts_event from staging.stg_mds__events "
        "where zone_id = $zone",
        {"zone": CONTRADICTING},
    )
    assert dict(events.rows()) == {e["event_id"]: False for e in SOUND_EVENTS} | {
        e["event_id"]: True for e in CONTRADICTING_EVENTS
    }
    assert quality(hand_made, CONTRADICTING, "events_contradicting_state") == [(len(CONTRADICTING_EVENTS),)] == [(3,)]


def test_locations_far_from_the_zone_are_kept_flagged_and_counted(hand_made: Warehouse) -> None:
    """Flagged in trips, counted in data_quality_hourly."""
    trips = query(
        hand_made,
        "select trip_id::varchar as trip_id, is_far_from_zone from trips where zone_id = $zone",
        {"zone": FAR},
    )
    assert dict(trips.rows()) == {uid("near"): False, OTHER_ID: True}
    assert quality(hand_made, FAR, "trips_far_from_zone, events_far_from_zone") == [(1, 1)]


def test_far_from_the_zone_is_not_known_without_areas(hand_made: Warehouse) -> None:
    trips = query(hand_made, "select is_far_from_zone from trips where zone_id = $zone", {"zone": NO_AREAS})
    assert trips["is_far_from_zone"].to_list() == [None]


def test_an_unknown_time_zone_is_quarantined_and_never_stops_a_build(hand_made: Warehouse) -> None:
    """Staging skips the unknown time zone the unchecked file holds: the last valid one holds."""
    zone = {"zone": TIME_ZONE}
    information = query(
        hand_made, "select timezone from staging.stg_gbfs__system_information where zone_id = $zone", zone
    )
    assert information["timezone"].to_list() == ["Europe/Stockholm"]
    local = query(hand_made, "select start_time_local from trips where zone_id = $zone", zone)["start_time_local"]
    assert local.to_list() == [datetime(2026, 3, 28, 11, 5)]  # Stockholm: UTC+1 in March
