"""The embedded provider's MDS 1.2 and 0.4 host: payloads valid against the official 0.4.1 and 1.2 schemas
(`shared/specs/mds/`), the seed's token path and media types, paging, hour answers, and the same story as 2.0."""

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from fleetlake_provider import mds
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.legacy_mds import LegacyMds
from fleetlake_provider.service import SimulatedProvider
from pipelines.config import Settings
from pipelines.ingest import hours_between, ingest_hours
from pipelines.lake import mds_versions
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from tests.conftest import CREDENTIALS, END, SPECS, START, make_provider

Json = dict[str, Any]
ACCEPT = {"1.2": "application/vnd.mds+json;version=1.2", "0.4": "application/vnd.mds.provider+json;version=0.4"}
SCHEMA_DIRS = {"1.2": SPECS / "mds" / "1.2" / "provider", "0.4": SPECS / "mds" / "0.4.1" / "provider" / "dockless"}
ZONES = ("1", "145")
HOURS = [START + timedelta(hours=h) for h in (0, 7, 17, 25, 40, 47)]  # the first, rush hours, the DST night, the last


@cache
def schema(version: str, name: str) -> Validator:
    """The official schema of a payload. The published 0.4.1 `events.json` refers to definitions it never defines
    (`version`, `uuid`, `timestamp`, ...): the README says its records are `status_changes`' , whose definitions
    complete it."""
    document = json.loads((SCHEMA_DIRS[version] / f"{name}.json").read_text())
    if version == "0.4" and name == "events":
        status_changes = json.loads((SCHEMA_DIRS[version] / "status_changes.json").read_text())
        document["definitions"] = {**status_changes["definitions"], **document["definitions"]}
    cls = validator_for(document)
    cls.check_schema(document)
    validator: Validator = cls(document)
    return validator


def errors(version: str, name: str, body: Json) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in schema(version, name).iter_errors(body)][:5]


@pytest.fixture(scope="module")
def legacy_http(provider: SimulatedProvider) -> Iterator[tuple[httpx.Client, str]]:
    """A client of the shared city's legacy host and a token from its own `/token`."""
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)

    async def token() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app.app), base_url="http://mds") as c:
            response = await c.post(
                "/token",
                auth=(CREDENTIALS.client_id, CREDENTIALS.client_secret),
                data={"grant_type": "client_credentials"},
            )
            assert response.status_code == 200 and response.json()["expires_in"] == 900
            return str(response.json()["access_token"])

    yield app, asyncio.run(token())  # type: ignore[misc]


def get(app: ProviderApp, token: str, path: str, accept: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} | ({"Accept": accept} if accept else {})

    async def request() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app.app), base_url="http://mds") as c:
            return await c.get(path, headers=headers, params=params)

    return asyncio.run(request())


def hour(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H")


@pytest.mark.slow
@pytest.mark.parametrize("version", ["1.2", "0.4"])
def test_every_payload_validates_against_the_official_schema(legacy_http: Any, version: str) -> None:
    app, token = legacy_http
    counted = {"trips": 0, "status_changes": 0, "vehicles": 0, "events": 0}
    for zone in ZONES:
        for moment in HOURS:
            for name, params in (
                ("trips", {"end_time": hour(moment)}),
                ("status_changes", {"event_time": hour(moment)}),
            ):
                response = get(app, token, f"/en/{zone}/{name}", ACCEPT[version], **params)
                assert response.status_code == 200
                assert response.headers["content-type"] == ACCEPT[version]
                body = response.json()
                assert errors(version, name, body) == []
                assert "links" not in body  # 0.4.1: "/trips and /status_changes must not use pagination"
                counted[name] += len(body["data"][name])
        vehicles = get(app, token, f"/en/{zone}/vehicles", ACCEPT[version]).json()
        assert errors(version, "vehicles", vehicles) == []
        if version == "0.4":  # 0.4.1: only vehicles in available, unavailable or reserved states
            assert {v["last_event_type"] for v in vehicles["data"]["vehicles"]} <= {
                "available",
                "unavailable",
                "reserved",
            }
        else:  # 1.2: every state, removed ones for 90 minutes
            removed = [v for v in vehicles["data"]["vehicles"] if v["last_vehicle_state"] == "removed"]
            assert all(vehicles["last_updated"] - v["last_event_time"] <= 90 * 60_000 for v in removed)
        counted["vehicles"] += len(vehicles["data"]["vehicles"])
        start = int((END - timedelta(hours=3)).timestamp() * 1000)
        events = get(
            app, token, f"/en/{zone}/events", ACCEPT[version], start_time=str(start), end_time=str(start + 3_600_000)
        )
        assert errors(version, "events", events.json()) == []
        counted["events"] += len(events.json()["data"]["status_changes"])
    assert all(n > 0 for n in counted.values()), counted  # the schemas judged real records


def test_the_seed_versions_and_nothing_else(legacy_http: Any) -> None:
    app, token = legacy_http
    params = {"end_time": hour(HOURS[1])}
    for accept in (
        "application/vnd.mds+json;version=2.0",
        "application/vnd.mds+json;version=0.3",
        "application/json",
        None,
    ):
        response = get(app, token, "/en/1/trips", accept, **params)
        assert response.status_code == 406, accept
    assert (
        get(app, token, "/en/1/trips", "application/vnd.mds.provider+json;version=0.4.1", **params).json()["version"]
        == "0.4.1"
    )
    assert (
        get(app, token, "/en/1/trips", 'application/vnd.mds+json; version="1.2"', **params).json()["version"] == "1.2.0"
    )
    assert get(app, "not-a-token", "/en/1/trips", ACCEPT["1.2"], **params).status_code == 401
    assert get(app, token, "/en/1/trips", ACCEPT["1.2"]).status_code == 400  # end_time is required
    assert get(app, token, "/en/999/trips", ACCEPT["1.2"], **params).status_code == 404


def test_hours_not_ended_or_not_compiled(tmp_path: Path) -> None:
    clock = FixedClock(START + timedelta(hours=5, minutes=5))  # the 04:00 hour ended 5 minutes ago
    provider = make_provider(clock, vehicles=10, ready_delay_s=600)
    legacy = LegacyMds(provider)
    with pytest.raises(Exception, match="not ready") as not_ready:
        legacy.status_changes("1", "1.2", hour(START + timedelta(hours=4)))
    assert getattr(not_ready.value, "status", None) == 202
    with pytest.raises(Exception, match="future") as future:
        legacy.trips("1", "0.4", hour(START + timedelta(hours=5)))
    assert getattr(future.value, "status", None) == 404


def test_events_are_paged_by_links_next() -> None:
    provider = make_provider(vehicles=60, page_size=25)
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)
    settings = Settings(api_base_url="http://provider", zones=("1",), mds_versions=(("1", "1.2"),))
    start, end = END - timedelta(hours=4), END

    async def read() -> list[Any]:
        async with VoiClient(settings, transport=httpx.ASGITransport(app.app)) as client:
            return await client.mds_events_recent("1", start, end)

    pages = asyncio.run(read())
    bodies = [json.loads(p.body) for p in pages]
    assert len(pages) > 2 and all(len(b["data"]["status_changes"]) == 25 for b in bodies[:-1])
    assert bodies[-1]["links"]["next"] is None and all(b["links"]["next"] for b in bodies[:-1])
    records = [r for b in bodies for r in b["data"]["status_changes"]]
    two = mds.events_recent(
        make_provider(vehicles=60), "1", str(int(start.timestamp() * 1000)), str(int(end.timestamp() * 1000)), 0, None
    )
    assert len(records) == len(two["events"])  # the same records as 2.0's /events/recent, in one page there
    assert [r["event_time"] for r in records] == [e["timestamp"] for e in two["events"]]


@pytest.mark.parametrize("version", ["1.2", "0.4"])
def test_every_status_change_says_the_true_state(provider: SimulatedProvider, version: str) -> None:
    """Every 2.0 event of the city, said in the version and read back through the mapping, is in its true state and
    at its time; 0.4 leaves out exactly the holds that were not rides."""
    legacy = LegacyMds(provider)
    for zone in ZONES:
        said: list[tuple[str, int, str]] = []
        truth: list[tuple[str, int, str]] = []
        for moment in hours_between(START, END):
            two = mds.events_historical(provider, zone, hour(moment), 0, None)["events"]
            truth += [
                (e["device_id"], e["timestamp"], e["vehicle_state"])
                for e in two
                if version == "1.2" or not e["event_types"][0].startswith("reservation_")
            ]
            for r in legacy.status_changes(zone, version, hour(moment))["data"]["status_changes"]:
                if version == "1.2":
                    state, _ = mds_versions.event_from_1_2(r["vehicle_state"], r["event_types"])
                else:
                    state, _ = mds_versions.event_from_0_4(
                        r["event_type"], r["event_type_reason"], "associated_trip" in r
                    )
                said.append((r["device_id"], r["event_time"], state))
        assert said == truth and len(truth) > 1000


def test_data_faults_are_the_same_and_cost_no_true_record(tmp_path: Path) -> None:
    """Duplicates, corrupted and implausible copies and late records of the 2.0 feed reach the legacy feeds too: the
    bad copies are quarantined with their reasons, and the lake ends with exactly the fault-free city's records."""
    faults = Faults(duplicate_rate=0.05, malformed_rate=0.05, implausible_rate=0.05)
    window = hours_between(START + timedelta(hours=6), START + timedelta(hours=12))

    def lake_of(provider: SimulatedProvider, root: Path, version: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
        app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)
        settings = Settings(api_base_url="http://provider", zones=("1",), lake_dir=root, mds_versions=(("1", version),))

        async def run() -> int:
            async with VoiClient(settings, transport=httpx.ASGITransport(app.app)) as client:
                report = await ingest_hours(client, Lake(root), ("1",), window)
            assert not report.with_status("failed")
            return report.summary()["quarantined"]

        quarantined = asyncio.run(run())
        trips = pl.read_parquet(root / "mds_trips" / "**" / "*.parquet").drop("ingested_at").sort("trip_id")
        events = pl.read_parquet(root / "mds_events" / "**" / "*.parquet").drop("ingested_at").sort("event_id")
        return trips, events, quarantined

    for version in ("1.2", "0.4"):
        clean_trips, clean_events, none = lake_of(make_provider(vehicles=60), tmp_path / f"clean-{version}", version)
        trips, events, quarantined = lake_of(
            make_provider(vehicles=60, faults=faults), tmp_path / f"faulty-{version}", version
        )
        assert none == 0 and quarantined > 20
        assert trips.equals(clean_trips) and events.equals(clean_events), version
        reasons = pl.read_parquet(tmp_path / f"faulty-{version}" / "quarantine" / "**" / "*.parquet")["reason"]
        assert reasons.str.contains("device_id").any() and reasons.str.contains("event_location|route").any()
