"""The embedded provider's HTTP protocol, over real loopback HTTP: auth, versions, hours, paging, rate limit,
faults, credentials from the environment and the `fleetlake provider` command line."""

import json
import os
import re
import selectors
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from fleetlake_provider import mds as mds_api
from fleetlake_provider.app import Credentials, ProviderApp
from fleetlake_provider.cli import app as provider_cli
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.server import running
from fleetlake_provider.service import SimulatedProvider
from tests.conftest import CREDENTIALS, END, MDS_ACCEPT, NOW, START, bearer, make_provider
from tests.misbehaving import FakeClock

pytestmark = pytest.mark.integration

TOKEN = "/v1/partner-apis/token"
MAAS = {"X-Auth-Token": CREDENTIALS.auth_token}
BASIC = (CREDENTIALS.client_id, CREDENTIALS.client_secret)
HOUR_MS = 3_600_000


def small(clock: FixedClock | None = None, **options: object) -> SimulatedProvider:
    """A cheap provider: one zone, one day, a small fleet (override any of it)."""
    defaults: dict[str, object] = {"zones": ("1",), "vehicles": 30, "days": 1}
    return make_provider(clock, **{**defaults, **options})


@contextmanager
def serving(app: ProviderApp) -> Iterator[httpx.Client]:
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def hour_param(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


# -- token -------------------------------------------------------------------------------------------------


def test_token_for_basic_credentials(http: httpx.Client) -> None:
    response = http.post(TOKEN, auth=BASIC, data={"grant_type": "client_credentials"})
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 900
    assert body["token_type"] == "bearer"
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 20
    # Every request gets its own token.
    again = http.post(TOKEN, auth=BASIC, data={"grant_type": "client_credentials"})
    assert again.json()["access_token"] != body["access_token"]


@pytest.mark.parametrize(
    "auth",
    [
        (CREDENTIALS.client_id, "wrong-secret"),
        ("someone-else", CREDENTIALS.client_secret),
        ("", ""),
        None,
    ],
)
def test_token_refused_for_wrong_credentials(http: httpx.Client, auth: tuple[str, str] | None) -> None:
    grant = {"grant_type": "client_credentials"}
    response = http.post(TOKEN, data=grant) if auth is None else http.post(TOKEN, auth=auth, data=grant)
    assert response.status_code == 401
    assert "access_token" not in response.json()


def test_token_needs_the_client_credentials_grant(http: httpx.Client) -> None:
    assert http.post(TOKEN, auth=BASIC).status_code == 400
    assert http.post(TOKEN, auth=BASIC, data={"grant_type": "password"}).status_code == 400
    assert http.post(TOKEN, auth=BASIC, data={"scope": "mds"}).status_code == 400


@pytest.mark.parametrize("value", ['"client_credentials"', "client_credentials"])
def test_token_from_the_seed_curl_multipart_form(http: httpx.Client, value: str) -> None:
    # curl -u USER:PASSWORD --form 'grant_type="client_credentials"' sends multipart/form-data.
    response = http.post(TOKEN, auth=BASIC, files={"grant_type": (None, value)})
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.status_code == 200
    token = response.json()["access_token"]
    trips = http.get(
        "/v1/partner-apis/mds/1/vehicles",
        headers={"Authorization": f"Bearer {token}", "Accept": MDS_ACCEPT},
    )
    assert trips.status_code == 200


# -- bearer auth and versions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Bearer", "Basic ZmxlZXRsYWtlOmZsZWV0bGFrZS1zZWNyZXQ=", "not-a-scheme"],
)
def test_mds_and_gbfs_need_a_valid_bearer_token(http: httpx.Client, authorization: str | None) -> None:
    headers = {"Accept": MDS_ACCEPT}
    if authorization is not None:
        headers["Authorization"] = authorization
    for path in ("/v1/partner-apis/mds/1/vehicles", "/v1/partner-apis/gbfs/1/vehicle_status.json"):
        response = http.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_refused() -> None:
    """Over real HTTP, on the provider's virtual steady clock: the token's lifetime passes without waiting."""
    lifetime = 1.0
    provider = small(faults=Faults(token_lifetime_s=lifetime))
    steady = FakeClock()
    with serving(ProviderApp(provider, CREDENTIALS, steady=steady)) as client:
        headers = bearer(client)
        response = client.get("/v1/partner-apis/mds/1/vehicles", headers=headers)
        assert response.status_code == 200
        steady.t += lifetime - 0.01
        assert client.get("/v1/partner-apis/mds/1/vehicles", headers=headers).status_code == 200
        steady.t += 0.02
        expired = client.get("/v1/partner-apis/mds/1/vehicles", headers=headers)
        assert expired.status_code == 401
        # The token still claims the documented 900 s: only the 401 tells a client to fetch a new one.
        fresh = client.post(TOKEN, auth=BASIC, data={"grant_type": "client_credentials"})
        assert fresh.json()["expires_in"] == 900
        headers["Authorization"] = f"Bearer {fresh.json()['access_token']}"
        assert client.get("/v1/partner-apis/mds/1/vehicles", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "*/*",
        "application/vnd.mds+json;version=1.2",
        "application/vnd.mds.provider+json;version=0.4",
        "application/vnd.mds+json",
    ],
)
def test_mds_refuses_other_versions(http: httpx.Client, accept: str | None) -> None:
    headers = bearer(http)
    if accept is None:
        del headers["Accept"]
    else:
        headers["Accept"] = accept
    hour = hour_param(START + timedelta(hours=9))
    for path, params in (
        ("trips", {"end_time": hour}),
        ("events/historical", {"event_time": hour}),
        ("vehicles", {}),
        ("vehicles/status", {}),
    ):
        # httpx sends Accept: */* when none is given; the provider must not take that for version 2.0.
        response = http.get(f"/v1/partner-apis/mds/1/{path}", params=params, headers=headers)
        assert response.status_code == 406, (path, accept)


def test_mds_serves_version_2_0(http: httpx.Client) -> None:
    headers = bearer(http)
    hour = hour_param(START + timedelta(hours=9))
    for path, params in (
        ("trips", {"end_time": hour}),
        ("events/historical", {"event_time": hour}),
        ("vehicles", {}),
        ("vehicles/status", {}),
    ):
        response = http.get(f"/v1/partner-apis/mds/145/{path}", params=params, headers=headers)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "application/vnd.mds+json;version=2.0"
        assert response.json()["version"] == "2.0.0"


# -- which hours exist -------------------------------------------------------------------------------------


def test_hours_are_served_once_past_and_ready() -> None:
    clock = FixedClock(START + timedelta(hours=10, minutes=5))
    provider = small(clock)
    with serving(ProviderApp(provider, CREDENTIALS)) as client:
        headers = bearer(client)

        def status(path: str, at: datetime) -> int:
            key = "end_time" if path == "trips" else "event_time"
            response = client.get(f"/v1/partner-apis/mds/1/{path}", params={key: hour_param(at)}, headers=headers)
            return response.status_code

        for path in ("trips", "events/historical"):
            clock.set(START + timedelta(hours=10, minutes=5))
            assert status(path, START + timedelta(hours=11)) == 404, "a future hour"
            assert status(path, START + timedelta(days=3)) == 404, "a future hour"
            assert status(path, START + timedelta(hours=10)) == 404, "the current hour is not past yet"
            assert status(path, START + timedelta(hours=9)) == 202, "ended 5 minutes ago, not ready"
            assert status(path, START + timedelta(hours=8)) == 200
            # ready_delay_s (600 s) after the hour ends, to the millisecond.
            clock.set(START + timedelta(hours=10, minutes=10) - timedelta(milliseconds=1))
            assert status(path, START + timedelta(hours=9)) == 202
            clock.set(START + timedelta(hours=10, minutes=10))
            assert status(path, START + timedelta(hours=9)) == 200

        clock.set(NOW)
        before = START - timedelta(hours=1)
        trips = client.get("/v1/partner-apis/mds/1/trips", params={"end_time": hour_param(before)}, headers=headers)
        assert trips.status_code == 200
        assert trips.json()["trips"] == []
        events = client.get(
            "/v1/partner-apis/mds/1/events/historical", params={"event_time": hour_param(before)}, headers=headers
        )
        assert events.status_code == 200
        assert events.json()["events"] == []


def test_bad_requests_and_unknown_zones(http: httpx.Client) -> None:
    headers = bearer(http)
    mds = "/v1/partner-apis/mds"
    hour = hour_param(START + timedelta(hours=9))
    for zone in ("999", "9", "stockholm"):
        assert http.get(f"{mds}/{zone}/trips", params={"end_time": hour}, headers=headers).status_code == 404
        assert http.get(f"{mds}/{zone}/vehicles", headers=headers).status_code == 404
        assert http.get(f"/v1/partner-apis/gbfs/{zone}/gbfs.json", headers=headers).status_code == 404
        assert http.get(f"/v2/zone/id/{zone}", headers=MAAS).status_code == 404
    assert http.get("/v1/partner-apis/gbfs/1/free_bike_status.json", headers=headers).status_code == 404
    assert http.get(f"{mds}/1/vehicles/not-a-device", headers=headers).status_code == 404

    for bad in ("2026-03-28 09", "2026-03-28T09:00", "2026-03-28T24", "2026-03-28", "1774688400000", ""):
        for path, key in (("trips", "end_time"), ("events/historical", "event_time")):
            response = http.get(f"{mds}/1/{path}", params={key: bad}, headers=headers)
            assert response.status_code == 400, (path, bad)
            assert key in response.json()["error"]
    assert http.get(f"{mds}/1/trips", headers=headers).status_code == 400

    now = ms(NOW)
    recent = f"{mds}/1/events/recent"
    two_weeks_and_a_minute = 14 * 24 * HOUR_MS + 60_000
    for params in (
        {"start_time": str(now - two_weeks_and_a_minute), "end_time": str(now)},
        {"start_time": str(now - HOUR_MS)},
        {"start_time": "2026-03-29T10", "end_time": str(now)},
        {"start_time": str(now), "end_time": str(now - HOUR_MS)},
    ):
        assert http.get(recent, params=params, headers=headers).status_code == 400, params
    ok = {"start_time": str(now - 14 * 24 * HOUR_MS + 60_000), "end_time": str(now)}
    assert http.get(recent, params=ok, headers=headers).status_code == 200


# -- rate limit --------------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after() -> None:
    with serving(ProviderApp(small(), CREDENTIALS, rate_limit_per_minute=30)) as client:
        responses = [client.get("/v1/zone/info", headers=MAAS) for _ in range(40)]
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 30
    assert statuses[:30] == [200] * 30
    assert statuses[30:] == [429] * 10
    for response in responses[30:]:
        retry_after = response.headers["Retry-After"]
        assert re.fullmatch(r"[0-9]+", retry_after)
        assert 1 <= int(retry_after) <= 60


# -- paging ------------------------------------------------------------------------------------------------


def _follow(client: httpx.Client, path: str, params: dict[str, str], headers: dict[str, str], key: str) -> list[Any]:
    response = client.get(path, params=params, headers=headers)
    records: list[Any] = []
    seen: set[str] = set()
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body[key])
        assert len(body[key]) <= 50
        next_url = (body.get("links") or {}).get("next")
        if not next_url:
            return records
        assert next_url not in seen, "paging loops"
        seen.add(next_url)
        response = client.get(next_url, headers=headers)


def test_paging_follows_links_next_to_the_whole_set() -> None:
    paged = small(zones=("145",), vehicles=120, page_size=50)
    unpaged = small(zones=("145",), vehicles=120)
    window = {"start_time": str(ms(START)), "end_time": str(ms(START + timedelta(days=1)))}
    with serving(ProviderApp(paged, CREDENTIALS)) as client:
        headers = bearer(client)
        mds = "/v1/partner-apis/mds/145"
        first = client.get(f"{mds}/vehicles", headers=headers).json()
        assert len(first["vehicles"]) == 50
        assert first["links"]["next"].startswith(str(client.base_url))
        for path, key, params, expected in (
            ("vehicles", "vehicles", {}, mds_api.vehicles(unpaged, "145", None, 0, None)),
            ("vehicles/status", "vehicles_status", {}, mds_api.vehicles_status(unpaged, "145", None, 0, None)),
            (
                "events/recent",
                "events",
                window,
                mds_api.events_recent(unpaged, "145", window["start_time"], window["end_time"], 0, None),
            ),
        ):
            assert "next" not in expected["links"], "the unpaged reference fits one page"
            records = _follow(client, f"{mds}/{path}", params, headers, key)
            assert len(records) > 100, path
            texts = [json.dumps(r, sort_keys=True) for r in records]
            assert len(texts) == len(set(texts)), f"{path}: a record on two pages"
            assert sorted(texts) == sorted(json.dumps(r, sort_keys=True) for r in expected[key]), path


# -- zone API ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong-token", CREDENTIALS.auth_token + "x"])
def test_zone_api_needs_the_auth_token(http: httpx.Client, token: str | None) -> None:
    headers = {} if token is None else {"X-Auth-Token": token}
    for path in ("/v1/zone/info", "/v1/zone/id/1", "/v2/zone/id/145", "/v1/zone/id/145/areasOccupancy"):
        assert http.get(path, headers=headers).status_code == 401, path
    # A bearer token is not a zone API token.
    assert http.get("/v1/zone/info", headers=bearer(http)).status_code == 401


def test_zone_info_lists_both_zones(http: httpx.Client) -> None:
    response = http.get("/v1/zone/info", headers=MAAS)
    assert response.status_code == 200
    zones = {z["zoneId"]: z for z in response.json()["data"]["attributes"]["zones"]}
    assert {k: z["parkingMode"] for k, z in zones.items()} == {"1": "free-floating", "145": "parking-spot"}
    assert zones["1"]["zoneName"] == "Stockholm"
    assert zones["145"]["zoneName"] == "Berlin"


# -- faults ------------------------------------------------------------------------------------------------


class Robust:
    """Just enough of a careful client to read through transport faults: retry 5xx, 429, cut bodies, 401."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.headers: dict[str, str] = {}
        self.retries = 0

    def _token(self) -> None:
        for _ in range(100):
            response = self.client.post(TOKEN, auth=BASIC, data={"grant_type": "client_credentials"})
            if response.status_code == 200:
                try:
                    token = response.json()["access_token"]
                except ValueError:
                    continue
                self.headers = {"Authorization": f"Bearer {token}", "Accept": MDS_ACCEPT}
                return
            time.sleep(0.05)
        raise AssertionError("no token")

    def get(self, path: str, params: dict[str, str]) -> Any:
        if not self.headers:
            self._token()
        for _ in range(200):
            response = self.client.get(path, params=params, headers=self.headers)
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError:
                    pass  # a body cut short
            elif response.status_code == 401:
                self._token()
            elif response.status_code == 429:
                time.sleep(0.1)
            else:
                assert response.status_code >= 500, response.text
            self.retries += 1
        raise AssertionError(f"{path} never answered")


def _well_formed(record: dict[str, Any], time_key: str, location_key: str) -> bool:
    location = record.get(location_key)
    return (
        isinstance(record.get("device_id"), str)
        and type(record.get(time_key)) is int
        and isinstance(location, dict)
        and -90 <= location["lat"] <= 90
        and -180 <= location["lng"] <= 180
    )


KINDS = {
    "trips": ("trips", "end_time", "trip_id", "end_time", "end_location"),
    "events": ("events/historical", "event_time", "event_id", "timestamp", "location"),
}


def _read_window(
    robust: Robust, clock: FixedClock, zone: str, kind: str, after_s: float
) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    """Every hour of the window, each read `after_s` after it ended: well-formed records by id.

    Checks the faulty extras on the way: a duplicate is an exact copy, a malformed record is an extra copy
    of a well-formed record of the same response.
    """
    path, param, id_key, time_key, location_key = KINDS[kind]
    records: dict[str, dict[str, Any]] = {}
    faults: Counter[str] = Counter()
    for hour in range(ms(START), ms(END), HOUR_MS):
        at = datetime.fromtimestamp(hour / 1000, UTC)
        clock.set(at + timedelta(hours=1, seconds=after_s))
        body = robust.get(f"/v1/partner-apis/mds/{zone}/{path}", {param: hour_param(at)})
        good = [r for r in body[kind] if _well_formed(r, time_key, location_key)]
        bad = [r for r in body[kind] if not _well_formed(r, time_key, location_key)]
        by_id: dict[str, dict[str, Any]] = {}
        for r in good:
            if r[id_key] in by_id:
                assert r == by_id[r[id_key]], "a duplicate is an exact copy"
                faults["duplicate"] += 1
            by_id[r[id_key]] = r
        for r in bad:
            assert r[id_key] in by_id, "a malformed record is an extra copy of a real one"
            faults["malformed"] += 1
        records.update(by_id)
    return records, faults


def _reference(provider: SimulatedProvider, zone: str, kind: str) -> dict[str, dict[str, Any]]:
    """The fault-free records of every hour of the window, by id (the shared provider's clock is past them)."""
    _, _, id_key, _, _ = KINDS[kind]
    out: dict[str, dict[str, Any]] = {}
    for hour in range(ms(START), ms(END), HOUR_MS):
        param = hour_param(datetime.fromtimestamp(hour / 1000, UTC))
        if kind == "trips":
            body = mds_api.trips(provider, zone, param)
        else:
            body = mds_api.events_historical(provider, zone, param, 0, None)
            assert "next" not in body["links"]
        out.update({r[id_key]: r for r in body[kind]})
    return out


@pytest.mark.slow
def test_data_faults_are_deterministic_and_converge(provider: SimulatedProvider) -> None:
    """Faulty reads of the shared city (the same seed and options, zone 1 only) against its fault-free reads."""
    faults = Faults.all_on()
    ready_s = 600.0
    clock = FixedClock(NOW)
    faulty = make_provider(clock, zones=("1",), faults=faults, ready_delay_s=ready_s)
    with serving(ProviderApp(faulty, CREDENTIALS, rate_limit_per_minute=1_000_000)) as client:
        robust = Robust(client)
        # Two reads of an hour at the same clock are identical, extras and all.
        for hour in (9, 17, 30):
            param = hour_param(START + timedelta(hours=hour))
            for path, key in (("trips", "end_time"), ("events/historical", "event_time")):
                first = robust.get(f"/v1/partner-apis/mds/1/{path}", {key: param})
                assert robust.get(f"/v1/partner-apis/mds/1/{path}", {key: param}) == first

        seen: Counter[str] = Counter()
        for kind in ("trips", "events"):
            truth = _reference(provider, "1", kind)
            # Each hour read as soon as it is served: everything but the late records is there.
            early, found = _read_window(robust, clock, "1", kind, after_s=ready_s)
            seen += found
            missing = truth.keys() - early.keys()
            assert early.keys() <= truth.keys(), "no invented records"
            assert 0 < len(missing) < 0.1 * len(truth), f"{kind}: some records are late, not many"
            for key, record in early.items():
                assert record == truth[key], f"{kind}: a well-formed record equals the true one"

            # Read again late_max_s later: the faulty feed has converged on the truth.
            late, found = _read_window(robust, clock, "1", kind, after_s=ready_s + faults.late_max_s)
            assert late.keys() == truth.keys(), kind
            for key, record in late.items():
                # Lateness delays when a record appears, not what it says.
                assert record == truth[key], kind
        assert seen["duplicate"] > 0 and seen["malformed"] > 0, seen
        assert robust.retries > 0, "transport faults were on too"


@pytest.mark.slow
def test_transport_faults_at_roughly_their_rates() -> None:
    # Faults.all_on()'s rates, with shorter slow responses and 429 storms to keep the test quick.
    faults = replace(Faults.all_on(), slow_seconds=0.2, burst_429_seconds=0.3)
    provider = small(faults=faults)
    outcomes: Counter[str] = Counter()
    storms = slow = 0
    with serving(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as client:
        in_storm = False
        while sum(outcomes.values()) < 400:
            started = time.monotonic()
            response = client.get("/v1/zone/info", headers=MAAS)
            elapsed = time.monotonic() - started
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                storms += not in_storm
                in_storm = True
                time.sleep(0.05)
                continue
            in_storm = False
            slow += elapsed >= 0.1
            if response.status_code >= 500:
                assert response.status_code in (500, 502, 503)
                outcomes["error"] += 1
                continue
            assert response.status_code == 200
            try:
                response.json()
            except ValueError:
                outcomes["cut"] += 1
                continue
            outcomes["ok"] += 1
    total = sum(outcomes.values())
    assert 0.01 * total <= outcomes["error"] <= 0.12 * total, outcomes
    assert 1 <= outcomes["cut"] <= 0.1 * total, outcomes
    assert 1 <= slow <= 0.15 * total, slow
    assert 1 <= storms <= 20, storms
    assert outcomes["ok"] >= 0.8 * total


# -- credentials from the environment ---------------------------------------------------------------------


def test_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOI_CLIENT_ID", "env-client")
    monkeypatch.setenv("VOI_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("VOI_AUTH_TOKEN", "env-maas-token")
    assert Credentials.from_env() == Credentials("env-client", "env-secret", "env-maas-token")
    with serving(ProviderApp(small())) as client:
        grant = {"grant_type": "client_credentials"}
        assert client.post(TOKEN, auth=("env-client", "env-secret"), data=grant).status_code == 200
        assert client.post(TOKEN, auth=BASIC, data=grant).status_code == 401
        assert client.get("/v1/zone/info", headers={"X-Auth-Token": "env-maas-token"}).status_code == 200
        assert client.get("/v1/zone/info", headers=MAAS).status_code == 401

    # Unset or empty variables fall back to the defaults.
    monkeypatch.delenv("VOI_CLIENT_ID")
    monkeypatch.setenv("VOI_CLIENT_SECRET", "")
    assert Credentials.from_env() == Credentials(auth_token="env-maas-token")


# -- the command line --------------------------------------------------------------------------------------

FLEETLAKE = Path(sys.executable).parent / "fleetlake"


# The credentials and faults a developer's shell may set: each command below runs without them.
SHELL_SETTINGS = ("VOI_CLIENT_ID", "VOI_CLIENT_SECRET", "VOI_AUTH_TOKEN", "FLEETLAKE_PROVIDER_FAULTS")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SHELL_SETTINGS}


def test_cli_serves_the_provider(tmp_path: Path) -> None:
    command = [str(FLEETLAKE), "provider", "serve", "--port", "0", "--vehicles", "50", "--days", "1"]
    with (
        (tmp_path / "stderr.txt").open("w") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=_clean_env()) as process,
    ):
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                ready = selector.select(timeout=60)
            assert ready, "no URL printed within a minute"
            url = process.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]{2,5}", url), (url, (tmp_path / "stderr.txt").read_text())
            response = httpx.get(f"{url}/v1/zone/info", headers=MAAS, timeout=30)
            assert response.status_code == 200
            zones = response.json()["data"]["attributes"]["zones"]
            assert {z["zoneId"] for z in zones} == {"1", "145"}
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def test_cli_writes_the_truth(tmp_path: Path) -> None:
    """`provider truth`, its options parsed and its files written by the command itself, in this process:
    test_cli_serves_the_provider starts the `fleetlake provider` command line in a process of its own."""
    out = tmp_path / "truth"
    command = ["truth", "--out", str(out), "--vehicles", "50", "--days", "1"]
    result = CliRunner().invoke(provider_cli, command, env=dict.fromkeys(SHELL_SETTINGS))  # None: unset
    assert result.exit_code == 0, result.output
    expected_times = {
        "trips": ("start_time", "end_time"),
        "events": ("timestamp",),
        "vehicle_states": ("start_time", "end_time"),
        "vehicles": (),
    }
    for name, time_columns in expected_times.items():
        frame = pl.read_parquet(out / f"{name}.parquet")
        assert frame.height > 0, name
        assert set(frame["zone_id"]) == {"1", "145"}, name
        datetimes = {c for c, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)}
        assert datetimes == set(time_columns), name
        for column in time_columns:
            dtype = frame.schema[column]
            assert isinstance(dtype, pl.Datetime) and dtype.time_zone == "UTC", (name, column, dtype)
    vehicles = pl.read_parquet(out / "vehicles.parquet")
    assert vehicles.height == 100
    trips = pl.read_parquet(out / "trips.parquet")
    assert (trips["end_time"] > trips["start_time"]).all()
