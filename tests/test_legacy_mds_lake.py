"""MDS 1.2 and 0.4 records into the lake, worked by hand: the 2.0 row each becomes, what is quarantined and why,
the version a response says, a re-parse from the kept raw response, and the client's settings and requests."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.config import Settings, SettingsError, parse_mds_versions
from pipelines.ingest import reparse, write_partition
from pipelines.lake.datasets import DATASETS, parse
from pipelines.lake.legacy_mds import dataset_for, derived_event_id
from pipelines.lake.store import Lake, Partition
from pipelines.voi.client import VoiClient

HOUR = datetime(2024, 6, 13, 10, tzinfo=UTC)
WINDOW = (HOUR, HOUR + timedelta(hours=1))
T = 1718272978417  # 2024-06-13T10:02:58.417Z
PROVIDER = "1f129e3f-158f-4df5-af9c-a80de238e334"
DEVICE = "d48ac4f0-d971-4cd0-be18-9658ebde9c75"
TRIP = "95ba3c85-8087-457d-9fed-8469ffb2dad7"


def point(lng: float, lat: float, at: int) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"timestamp": at},
        "geometry": {"type": "Point", "coordinates": [lng, lat]},
    }


def vehicle(version: str) -> dict[str, Any]:
    propulsion = {"propulsion_types": ["electric"]} if version == "1.2" else {"propulsion_type": ["electric"]}
    return {
        "provider_id": PROVIDER,
        "provider_name": "Voi",
        "device_id": DEVICE.upper(),
        "vehicle_id": "ab12",
        "vehicle_type": "scooter",
        **propulsion,
    }


def trips_body(version: str) -> bytes:
    trip = {
        **vehicle(version),
        "trip_id": TRIP,
        "trip_duration": 1652,
        "trip_distance": 8329,
        "route": {
            "type": "FeatureCollection",
            "features": [
                point(18.059523, 59.311543, T - 1652000),
                point(18.08, 59.31, T - 800000),
                point(18.107582, 59.306113, T),
            ],
        },
        "accuracy": 5,
        "start_time": T - 1652000,
        "end_time": T,
    }
    return json.dumps({"version": "1.2.0" if version == "1.2" else "0.4.1", "data": {"trips": [trip]}}).encode()


def test_a_legacy_trip_takes_its_ends_from_the_route() -> None:
    for version in ("1.2", "0.4"):
        parsed = parse(dataset_for("mds_trips", [trips_body(version)]), [trips_body(version)], WINDOW)
        assert (parsed.received, len(parsed.quarantined)) == (1, 0)
        row = parsed.frame.row(0, named=True)
        assert row == {
            "trip_id": TRIP,
            "device_id": DEVICE,  # lower-cased, as 2.0 ids are
            "provider_id": PROVIDER,
            "start_time": datetime(2024, 6, 13, 9, 35, 26, 417000, tzinfo=UTC),
            "end_time": datetime(2024, 6, 13, 10, 2, 58, 417000, tzinfo=UTC),
            "start_lat": 59.311543,
            "start_lng": 18.059523,
            "end_lat": 59.306113,  # the last point, not the one in between
            "end_lng": 18.107582,
            "duration_s": 1652.0,
            "distance_m": 8329.0,
            "trip_type": None,  # not carried: not known
            "accessibility_attributes": None,
            "vehicle_type": "scooter_standing",
            "mds_version": version,
        }


def status_changes(version: str, records: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"version": "1.2.0" if version == "1.2" else "0.4.1", "data": {"status_changes": records}}
    ).encode()


def test_status_changes_become_20_events_and_unmapped_words_are_quarantined() -> None:
    base = {"event_time": T, "publication_time": T + 5000, "event_location": point(18.1, 59.3, T), "battery_pct": 0.57}
    v12 = status_changes(
        "1.2",
        [
            {**vehicle("1.2"), **base, "vehicle_state": "on_trip", "event_types": ["trip_start"], "trip_id": TRIP},
            {**vehicle("1.2"), **base, "vehicle_state": "unknown", "event_types": ["missing"], "event_time": T + 1},
            {**vehicle("1.2"), **base, "vehicle_state": "parked", "event_types": ["trip_end"], "event_time": T + 2},
        ],
    )
    parsed = parse(dataset_for("mds_events", [v12]), [v12], WINDOW)
    assert [q.reason for q in parsed.quarantined] == ["vehicle_state 'parked' is not an MDS 1.2 state"]
    first, second = parsed.frame.to_dicts()
    assert first["event_id"] == derived_event_id(DEVICE, T, ("on_trip", "trip_start"), TRIP)
    assert (first["vehicle_state"], first["event_types"], first["trip_ids"]) == ("on_trip", ["trip_start"], [TRIP])
    assert (first["lat"], first["lng"], first["battery_percent"], first["mds_version"]) == (59.3, 18.1, 57.0, "1.2")
    assert (second["vehicle_state"], second["event_types"], second["trip_ids"]) == ("missing", ["not_located"], [])

    v04 = status_changes(
        "0.4",
        [
            {
                **vehicle("0.4"),
                **base,
                "event_type": "reserved",
                "event_type_reason": "user_pick_up",
                "associated_trip": TRIP,
            },
            {
                **vehicle("0.4"),
                **base,
                "event_type": "reserved",
                "event_type_reason": "user_pick_up",
                "event_time": T + 1,
            },
            {
                **vehicle("0.4"),
                **base,
                "event_type": "unavailable",
                "event_type_reason": "service_end",
                "event_time": T + 2,
            },
            {
                **vehicle("0.4"),
                **base,
                "event_type": "removed",
                "event_type_reason": "service_end",
                "event_time": T + 3,
                "event_location": point(18.1, 123.4, T),
            },
            {
                **vehicle("0.4"),
                **base,
                "event_type": "reserved",
                "event_type_reason": "user_pick_up",
                "associated_trip": TRIP,
            },
        ],
    )
    parsed = parse(dataset_for("mds_events", [v04]), [v04], WINDOW)
    assert parsed.duplicates == 1  # the last record repeats the first: the same derived id
    assert [q.reason for q in parsed.quarantined] == [
        "('unavailable', 'service_end') is not an MDS 0.4 event_type and event_type_reason pair",
        "`event_location` coordinates [18.1, 123.4] are not a longitude and a latitude",
    ]
    ride, hold = parsed.frame.to_dicts()
    assert (ride["vehicle_state"], ride["event_types"], ride["trip_ids"]) == ("on_trip", ["trip_start"], [TRIP])
    assert (hold["vehicle_state"], hold["event_types"], hold["trip_ids"]) == ("reserved", ["reservation_start"], [])
    assert ride["mds_version"] == "0.4" and ride["battery_percent"] == 57.0


def test_a_response_says_its_version_else_the_zone_setting_holds() -> None:
    assert dataset_for("mds_trips", [trips_body("0.4")], "1.2").path == ("data", "trips")
    assert dataset_for("mds_trips", [b'{"version": "2.0.0", "trips": []}'], "1.2") is DATASETS["mds_trips"]
    unversioned = json.dumps({"data": {"trips": []}}).encode()
    assert dataset_for("mds_trips", [unversioned], "0.4").path == ("data", "trips")
    assert dataset_for("mds_trips", [unversioned]) is DATASETS["mds_trips"]
    assert (
        dataset_for("gbfs_vehicle_status", [b'{"version": "2.0", "data": {}}'], "0.4")
        is DATASETS["gbfs_vehicle_status"]
    )


def test_a_legacy_partition_reparses_from_its_raw_response(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    body = trips_body("0.4")
    written = write_partition(lake, dataset_for("mds_trips", [body]), Partition("mds_trips", "9", HOUR), [body], WINDOW)
    assert (written.status, written.rows) == ("written", 1)
    before = lake.data_path(Partition("mds_trips", "9", HOUR)).read_bytes()
    again = reparse(lake, "mds_trips", "9", HOUR)
    assert (again.status, again.rows, again.quarantined) == ("written", 1, 0)
    assert lake.data_path(Partition("mds_trips", "9", HOUR)).read_bytes() == before


def test_the_versions_setting_names_its_variable() -> None:
    assert parse_mds_versions(" 9:1.2, 31:0.4 ,") == (("9", "1.2"), ("31", "0.4"))
    assert parse_mds_versions("") == ()
    for bad in ("9:1.3", "9", ":1.2", "9=1.2"):
        with pytest.raises(SettingsError, match=f"FLEETLAKE_MDS_VERSIONS must be zone:version pairs .*got {bad!r}"):
            Settings(mds_versions=bad)
    settings = Settings(mds_versions="9:0.4")
    assert (settings.mds_version("9"), settings.mds_version("1")) == ("0.4", "2.0")
    assert settings.legacy_mds_url == settings.api_base_url
    assert Settings(legacy_mds_base_url="https://mds.example/").legacy_mds_url == "https://mds.example"
    with pytest.raises(SettingsError, match="VOI_LEGACY_MDS_BASE_URL must be"):
        Settings(legacy_mds_base_url="not a url")


def test_the_client_asks_the_legacy_host_with_its_own_token() -> None:
    seen: list[tuple[str, str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers.get("accept", "")))
        if request.url.path.endswith("token"):
            token = "legacy-token" if request.url.host == "mds.example" else "api-token"
            return httpx.Response(200, json={"access_token": token, "expires_in": 900})
        assert (
            request.headers["authorization"]
            == f"Bearer {'legacy' if request.url.host == 'mds.example' else 'api'}-token"
        )
        if request.url.host == "mds.example":
            return httpx.Response(200, json={"version": "0.4.1", "data": {"trips": []}})
        return httpx.Response(200, json={"version": "2.0.0", "trips": []})

    settings = Settings(
        api_base_url="https://api.example", legacy_mds_base_url="https://mds.example", mds_versions=(("9", "0.4"),)
    )

    async def run() -> None:
        async with VoiClient(settings, transport=httpx.MockTransport(answer)) as client:
            await client.mds_trips("9", HOUR)
            await client.mds_trips("1", HOUR)

    asyncio.run(run())
    assert seen == [
        ("POST", "https://mds.example/token", "*/*"),
        (
            "GET",
            "https://mds.example/en/9/trips?end_time=2024-06-13T10",
            "application/vnd.mds.provider+json;version=0.4",
        ),
        ("POST", "https://api.example/v1/partner-apis/token", "*/*"),
        (
            "GET",
            "https://api.example/v1/partner-apis/mds/1/trips?end_time=2024-06-13T10",
            "application/vnd.mds+json;version=2.0",
        ),
    ]


@pytest.mark.parametrize(
    ("versions", "token_urls"),
    [
        ((), ["https://api.example/v1/partner-apis/token"]),
        ((("9", "2.0"),), ["https://api.example/v1/partner-apis/token"]),
        ((("9", "1.2"),), ["https://api.example/v1/partner-apis/token", "https://mds.example/token"]),
    ],
)
def test_authenticating_proves_the_legacy_host_credentials_when_a_zone_is_read_there(
    versions: tuple[tuple[str, str], ...], token_urls: list[str]
) -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json={"access_token": "t", "expires_in": 900})

    settings = Settings(
        api_base_url="https://api.example",
        legacy_mds_base_url="https://mds.example",
        mds_versions=versions,
    )

    async def run() -> None:
        async with VoiClient(settings, transport=httpx.MockTransport(answer)) as client:
            await client.authenticate()

    asyncio.run(run())
    assert asked == token_urls


def test_the_legacy_host_off_this_machine_needs_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOI_LEGACY_MDS_BASE_URL", "https://mds.voiapp.io")
    with pytest.raises(SettingsError, match=r"VOI_LEGACY_MDS_BASE_URL is https://mds\.voiapp\.io, not this machine"):
        Settings.from_env(env_file=None)
    monkeypatch.setenv("VOI_CLIENT_SECRET", "issued-secret")
    monkeypatch.setenv("FLEETLAKE_MDS_VERSIONS", "9:1.2")
    settings = Settings.from_env(env_file=None)
    assert (settings.legacy_mds_url, settings.mds_version("9")) == ("https://mds.voiapp.io", "1.2")
