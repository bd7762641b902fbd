"""The embedded provider's GBFS 2.3 (`/gbfs/v2/{feed}.json`, account-wide): every feed valid against the official
GBFS 2.3 schemas (`shared/specs/gbfs/v2.3/`), the seed's own `"2.2"` examples as its one deviation, and the same
vehicles at the same instant as GBFS 3.0 serves per zone."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator
from jsonschema.protocols import Validator

from fleetlake_provider import gbfs_v2
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import SimulatedProvider
from tests.conftest import CREDENTIALS, NOW, SPECS, make_provider

Json = dict[str, Any]
SCHEMAS = SPECS / "gbfs" / "v2.3"
FEEDS = tuple(gbfs_v2.FEEDS)
ZONES = ("1", "145")


@cache
def validator(feed: str) -> Validator:
    schema = json.loads((SCHEMAS / f"{feed}.json").read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def errors(feed: str, payload: Json) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(feed).iter_errors(payload)]


class Client:
    """An authorised client of a provider served on loopback."""

    def __init__(self, provider: SimulatedProvider, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)
        token = self.http.post(
            "/v1/partner-apis/token",
            auth=(CREDENTIALS.client_id, CREDENTIALS.client_secret),
            data={"grant_type": "client_credentials"},
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> Json:
        response = self.http.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body


@pytest.fixture(scope="module")
def seed_shaped() -> Iterator[Client]:
    provider = make_provider(clock=FixedClock(NOW))
    with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        client = Client(provider, url)
        yield client
        client.http.close()


@pytest.fixture(scope="module")
def schema_shaped() -> Iterator[Client]:
    provider = make_provider(clock=FixedClock(NOW), quirks=False)
    with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        client = Client(provider, url)
        yield client
        client.http.close()


@pytest.mark.parametrize("feed", FEEDS)
def test_schema_shaped_feeds_validate(schema_shaped: Client, feed: str) -> None:
    body = schema_shaped.get(f"/gbfs/v2/{feed}.json")
    assert errors(feed, body) == []
    assert body["version"] == "2.3"
    assert body["last_updated"] == int(NOW.timestamp())


@pytest.mark.parametrize("feed", FEEDS)
def test_seed_shaped_feeds_deviate_only_by_the_seeds_version(seed_shaped: Client, feed: str) -> None:
    body = seed_shaped.get(f"/gbfs/v2/{feed}.json")
    if feed in ("gbfs", "geofencing_zones"):
        assert body["version"] == "2.2"
        assert errors(feed, body) == ["version: '2.3' was expected"]
        assert errors(feed, {**body, "version": "2.3"}) == []
    else:
        assert errors(feed, body) == []


def test_discovery_as_the_seed_lists_it(seed_shaped: Client) -> None:
    feeds = seed_shaped.get("/gbfs/v2/gbfs.json")["data"]["en"]["feeds"]
    names = [f["name"] for f in feeds]
    assert names == [
        "gbfs",
        "system_information",
        "vehicle_types",
        "gbfs_versions",
        "system_alerts",
        "system_pricing_plans",
        "system_regions",
        "free_bike_status",
    ]
    assert feeds[0]["url"] == f"{seed_shaped.url}/gbfs/gbfs.json"
    assert all(f["url"] == f"{seed_shaped.url}/gbfs/v2/{f['name']}.json" for f in feeds[1:])
    # Every listed URL answers, the seed's own path of gbfs.json too.
    for entry in feeds:
        assert seed_shaped.get(entry["url"].removeprefix(seed_shaped.url))["data"]


def test_regions_name_the_accounts_zones(seed_shaped: Client) -> None:
    regions = seed_shaped.get("/gbfs/v2/system_regions.json")["data"]["regions"]
    assert regions == [{"region_id": "1", "name": "Stockholm"}, {"region_id": "145", "name": "Berlin"}]


def test_free_bike_status_lists_every_zones_vehicles_as_gbfs_3_does(seed_shaped: Client) -> None:
    """The account-wide list is the union of the zones' GBFS 3.0 vehicle_status at the same instant: same ids,
    places and states, last_reported the same instant in POSIX seconds."""
    bikes = seed_shaped.get("/gbfs/v2/free_bike_status.json")["data"]["bikes"]
    per_zone = [seed_shaped.get(f"/v1/partner-apis/gbfs/{z}/vehicle_status.json")["data"]["vehicles"] for z in ZONES]
    v3 = [v for vehicles in per_zone for v in vehicles]
    assert len(bikes) == len(v3) > 100
    by_id = {b["bike_id"]: b for b in bikes}
    assert len(by_id) == len(bikes)
    for v in v3:
        b = by_id[v["vehicle_id"]]
        assert (b["lat"], b["lon"], b["is_reserved"], b["is_disabled"]) == (
            v["lat"],
            v["lon"],
            v["is_reserved"],
            v["is_disabled"],
        )
        reported = datetime.fromisoformat(v["last_reported"].replace("Z", "+00:00"))
        assert datetime.fromtimestamp(b["last_reported"], UTC) == reported
        assert isinstance(b["last_reported"], int)
        assert "station_id" not in b


def test_gbfs_v2_needs_the_bearer_token(seed_shaped: Client) -> None:
    assert seed_shaped.http.get("/gbfs/v2/free_bike_status.json").status_code == 401
    assert seed_shaped.http.get("/gbfs/v2/nothing.json", headers=seed_shaped.headers).status_code == 404


def test_strays_are_listed_only_when_asked() -> None:
    """`gbfs_v2_strays`: that many more bikes, about 220 km north of Stockholm, valid 2.3, in no zone's 3.0 feed."""
    plain = make_provider(clock=FixedClock(NOW))
    stray = make_provider(clock=FixedClock(NOW), gbfs_v2_strays=3)
    base = gbfs_v2.feed(plain, "free_bike_status", "http://127.0.0.1")
    more = gbfs_v2.feed(stray, "free_bike_status", "http://127.0.0.1")
    assert errors("free_bike_status", more) == []
    extra = more["data"]["bikes"][len(base["data"]["bikes"]) :]
    assert more["data"]["bikes"][: len(base["data"]["bikes"])] == base["data"]["bikes"]
    assert [(b["lat"], b["lon"]) for b in extra] == [(61.3326, 18.0649), (61.3426, 18.0649), (61.3526, 18.0649)]
