"""Every payload the embedded provider serves, validated against the official schemas in `shared/specs/`.

- MDS 2.0: the JSON-Schema 2020-12 bundles derived from `mds-openapi` (`mds/2.0/bundled/provider_*.json`).
- GBFS 3.0: MobilityData's `gbfs-json-schema` (`gbfs/v3.0/*.json`, draft-07).
- The zone API has no official schema: its shapes are asserted from the seed (`001_*.txt`, "# Zone").

By default the provider serves the Voi seed's shapes, which deviate from the MDS 2.0 schema (nested
`last_updated`/`ttl`, `"links": {}`, no `last_updated`/`ttl` on /vehicles); `ProviderOptions(quirks=False)`
serves the schema's shapes. Both are checked: the schema shapes as they are, the seed shapes after undoing
exactly those documented quirks, which must then equal the schema-shaped payload exactly.
"""

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from shapely.geometry import shape

from fleetlake_provider import mds
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.city import CATALOG
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.gbfs import FEEDS as GBFS_FEEDS
from fleetlake_provider.server import running
from fleetlake_provider.service import SimulatedProvider
from tests.conftest import CREDENTIALS, END, NOW, SPECS, START, bearer, make_provider

Json = dict[str, Any]

MDS_BUNDLES = SPECS / "mds" / "2.0" / "bundled"
GBFS_SCHEMAS = SPECS / "gbfs" / "v3.0"
ZONES = ("1", "145")  # Stockholm (free-floating) and Berlin (parking-spot)
FREE_FLOATING, PARKING_SPOT = ZONES
MDS_PREFIX = "/v1/partner-apis/mds"
ZONE_AREA_TYPES = {
    "operations",
    "no-parking",
    "parking-spot",
    "slow-zone",
    "no-riding",
    "incentive",
    "free-floating",
}

# -- schemas ----------------------------------------------------------------------------------------------


def _only_micromobility_mode(node: Any) -> None:
    """The "oneOf mode issue": trip, event and vehicle end in a `oneOf` over the four MDS modes (car-share,
    delivery-robots, micromobility, passenger-services). The mode models are loose (mostly optional
    properties), so a micromobility record also matches other modes' branches and `oneOf` ("exactly one")
    fails for a perfectly valid record. The provider is micromobility-only, so each such `oneOf` (all branches
    `$ref` a `...modes__*` definition) keeps the micromobility branch alone, which then applies in full."""
    if isinstance(node, dict):
        branches = node.get("oneOf")
        if (
            isinstance(branches, list)
            and branches
            and all(isinstance(b, dict) and "__modes__" in b.get("$ref", "") for b in branches)
        ):
            micromobility = [b for b in branches if "__modes__micromobility__" in b["$ref"]]
            assert len(micromobility) == 1, branches
            node["oneOf"] = micromobility
        for value in node.values():
            _only_micromobility_mode(value)
    elif isinstance(node, list):
        for value in node:
            _only_micromobility_mode(value)


def _repair_contains_items(node: Any) -> None:
    """A second upstream defect, in every mode's event model (mds-openapi `models/modes/*/event.yaml`):

        if: {properties: {event_types: {contains: {items: [trip_start, trip_end, ...]}}}}
        then: {properties: {trip_ids: {minItems: 1}}}

    `items` must be a schema in 2020-12, so the bundles fail meta-validation (`check_schema`). Evaluated
    literally, `items` is ignored on the string elements of `event_types`, so `contains` matches any event and
    the rule would demand a non-empty `trip_ids` on every event, reservations and pick-ups included. The
    intent, stated in MDS 2.0 `docs/data-types.md` ("trip_ids ... required if `event_types` contains
    `trip_start`, `trip_end`, `trip_cancel`, `trip_enter_jurisdiction`, or `trip_leave_jurisdiction`"), is
    `contains: {enum: [...]}`, which is what this rewrites it to; the bundles then pass `check_schema`."""
    if isinstance(node, dict):
        contains = node.get("contains")
        if isinstance(contains, dict) and set(contains) == {"items"} and isinstance(contains["items"], list):
            node["contains"] = {"enum": contains["items"]}
        for value in node.values():
            _repair_contains_items(value)
    elif isinstance(node, list):
        for value in node:
            _repair_contains_items(value)


# jsonschema checks `date-time` only with `rfc3339-validator` and `uri` only with `rfc3987` (or
# `rfc3986-validator`); neither is installed (nor added here), so without them both formats would pass
# unchecked. The two checkers below stand in only while those packages are missing: an RFC 3339 date-time,
# and an absolute URI (a scheme, then no whitespace or characters RFC 3986 excludes).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # ValueError on an impossible date
    return True


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.fullmatch(value))


def _format_checker(cls: type[Validator]) -> FormatChecker:
    checker = FormatChecker(cls.FORMAT_CHECKER.checkers)  # this draft's formats only, in a private copy
    if "date-time" not in checker.checkers:
        checker.checks("date-time", raises=ValueError)(_is_date_time)
    if "uri" not in checker.checkers:
        checker.checks("uri")(_is_uri)
    return checker


def _compiled(path: Path, patch: Callable[[Any], None] | None = None) -> Validator:
    schema = json.loads(path.read_text())
    if patch is not None:
        patch(schema)
    cls = validator_for(schema, default=None)
    assert cls is not None, f"{path.name}: unknown $schema {schema.get('$schema')!r}"
    cls.check_schema(schema)
    return cls(schema, format_checker=_format_checker(cls))


@cache
def mds_validator(name: str) -> Validator:
    def patch(schema: Any) -> None:
        _only_micromobility_mode(schema)
        _repair_contains_items(schema)

    return _compiled(MDS_BUNDLES / f"provider_{name}.json", patch)


@cache
def gbfs_validator(feed: str) -> Validator:
    return _compiled(GBFS_SCHEMAS / f"{feed}.json")


def assert_valid(validator: Validator, payload: Json, what: str) -> None:
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    messages = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors[:10]]
    assert not errors, f"{what}: {len(errors)} schema errors, first ones:\n" + "\n".join(messages)


# -- simulated time -----------------------------------------------------------------------------------------

SATURDAY = START.date()  # 2026-03-28, the last day of CET
SUNDAY = SATURDAY + timedelta(days=1)  # 2026-03-29: clocks go 02:00 CET -> 03:00 CEST
# Local hours of the simulated window: night (02-04) and morning rush (07-09) on both days, and a Sunday night
# hour right after the DST switch (02:00 local does not exist that day).
SLOTS: dict[str, tuple[date, int]] = {
    "sat-night-02": (SATURDAY, 2),
    "sat-night-03": (SATURDAY, 3),
    "sat-rush-07": (SATURDAY, 7),
    "sat-rush-08": (SATURDAY, 8),
    "sun-night-03-after-dst": (SUNDAY, 3),
    "sun-rush-08": (SUNDAY, 8),
}
RUSH_SLOTS = ("sat-rush-07", "sat-rush-08", "sun-rush-08")


def local_time(zone: str, day: date, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time of the zone's city, in UTC; refuses times a DST switch skips."""
    tz = ZoneInfo(CATALOG[zone].timezone)
    at = datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)
    assert at.astimezone(tz).hour == hour, f"{day} {hour:02d}:00 does not exist in {tz}"
    assert START <= at < END
    return at


def utc_hour(zone: str, slot: str) -> str:
    return local_time(zone, *SLOTS[slot]).strftime("%Y-%m-%dT%H")


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


# -- providers over real HTTP ---------------------------------------------------------------------------------


class Served:
    """A provider served on loopback, with an authorised client for its MDS/GBFS and zone endpoints."""

    def __init__(self, provider: SimulatedProvider, url: str, clock: FixedClock | None = None) -> None:
        self.provider = provider
        self.clock = clock
        self.client = httpx.Client(base_url=url, timeout=30)
        self.headers = bearer(self.client)

    def at(self, moment: datetime) -> "Served":
        """Moves this provider's own clock (never the session provider's)."""
        assert self.clock is not None and self.provider.clock is self.clock
        self.clock.set(moment)
        return self

    def mds(self, path: str, **params: str | int) -> Json:
        response = self.client.get(f"{MDS_PREFIX}{path}", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/vnd.mds+json")
        body: Json = response.json()
        return body

    def get(self, url: str) -> Json:
        response = self.client.get(url, headers=self.headers)
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body

    def gbfs(self, zone: str, feed: str) -> Json:
        return self.get(f"/v1/partner-apis/gbfs/{zone}/{feed}.json")

    def zone_api(self, path: str) -> Json:
        response = self.client.get(path, headers={"X-Auth-Token": CREDENTIALS.auth_token})
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body


def _serve(provider: SimulatedProvider, clock: FixedClock | None = None) -> Iterator[Served]:
    with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        server = Served(provider, url, clock)
        try:
            yield server
        finally:
            server.client.close()


@pytest.fixture(scope="module")
def seed_shaped(provider: SimulatedProvider, served: str) -> Iterator[Served]:
    """The shared session provider (seed shapes, the default) over the shared loopback server."""
    assert provider.options.quirks and provider.now_ms() == ms(NOW)
    server = Served(provider, served)
    yield server
    server.client.close()


@pytest.fixture(scope="module")
def schema_shaped() -> Iterator[Served]:
    """The same simulated cities at the same clock, serving the MDS schema's shapes."""
    yield from _serve(make_provider(quirks=False))


@pytest.fixture(scope="module")
def moving() -> Iterator[Served]:
    """Schema-shaped too, on a clock of its own that tests set before each request."""
    clock = FixedClock(NOW)
    yield from _serve(make_provider(clock=clock, quirks=False), clock)


@pytest.fixture(scope="module")
def paged() -> Iterator[Served]:
    """Small pages, so that `links.next` is a URL and every page gets validated."""
    yield from _serve(make_provider(quirks=False, page_size=40))


# Instants for the current-state endpoints (vehicle status, recent events, GBFS, occupancy), local time.
MOMENTS: dict[str, tuple[date, int, int] | None] = {
    "sat-night-0330": (SATURDAY, 3, 30),
    "sat-rush-0815": (SATURDAY, 8, 15),
    "sun-rush-0745": (SUNDAY, 7, 45),
    "after-window": None,  # NOW: state is held at the end of the simulated window
}


def moment(zone: str, name: str) -> datetime:
    spec = MOMENTS[name]
    return NOW if spec is None else local_time(zone, *spec)


# -- the schemas themselves ---------------------------------------------------------------------------------


def _mode_choices(node: Any) -> list[list[Json]]:
    """The branches of every `oneOf` over MDS modes in a schema."""
    found: list[list[Json]] = []
    if isinstance(node, dict):
        branches = node.get("oneOf")
        if isinstance(branches, list) and any("__modes__" in b.get("$ref", "") for b in branches):
            found.append(branches)
        for value in node.values():
            found += _mode_choices(value)
    elif isinstance(node, list):
        for value in node:
            found += _mode_choices(value)
    return found


MDS_NAMES = (
    "trips",
    "events_historical",
    "events_recent",
    "vehicles",
    "vehicles_device_id",
    "vehicles_status",
    "vehicles_status_device_id",
)


@pytest.mark.parametrize("name", MDS_NAMES)
def test_mds_bundles_compile_as_2020_12_with_one_mode(name: str) -> None:
    validator = mds_validator(name)
    assert isinstance(validator, Draft202012Validator)
    raw = json.loads((MDS_BUNDLES / f"provider_{name}.json").read_text())
    # Every mode `oneOf` keeps exactly its micromobility branch, and nothing else was removed.
    before, after = _mode_choices(raw), _mode_choices(validator.schema)
    assert len(before) == len(after) >= 1
    assert all(len(branches) == 4 for branches in before)
    assert all(len(b) == 1 and "__modes__micromobility__" in b[0]["$ref"] for b in after)
    assert set(validator.schema["$defs"]) == set(raw["$defs"])
    assert validator.schema["allOf"] == raw["allOf"]


@pytest.mark.parametrize("feed", GBFS_FEEDS)
def test_gbfs_schemas_compile_as_draft_07(feed: str) -> None:
    validator = gbfs_validator(feed)
    assert isinstance(validator, Draft7Validator)
    assert validator.schema["properties"]["version"]["const"] == "3.0"


def test_format_checking_is_on() -> None:
    """`date-time`, `uri`, `uuid` and `email` formats are asserted, not just annotated."""
    system: Json = {
        "last_updated": "2026-03-28T10:00:00Z",
        "ttl": 0,
        "version": "3.0",
        "data": {
            "feeds": [
                {"name": "system_information", "url": "https://example.com/system_information.json"},
                {"name": "vehicle_status", "url": "https://example.com/vehicle_status.json"},
            ]
        },
    }
    assert_valid(gbfs_validator("gbfs"), system, "a minimal gbfs.json")
    for bad in ("yesterday", "2026-02-30T10:00:00Z", "2026-03-28 10:00:00"):
        assert not gbfs_validator("gbfs").is_valid({**system, "last_updated": bad}), bad
    feeds = system["data"]["feeds"]
    broken_url = {**system, "data": {"feeds": [feeds[0], {**feeds[1], "url": "not a url"}]}}
    assert not gbfs_validator("gbfs").is_valid(broken_url)
    vehicles = {"version": "2.0.0", "last_updated": ms(NOW), "ttl": 0, "vehicles": [], "links": {"next": None}}
    assert_valid(mds_validator("vehicles"), vehicles, "an empty vehicles page")
    assert not mds_validator("vehicles").is_valid({**vehicles, "links": {"next": "next page"}})
    event = {
        "device_id": "6aca5a87-60e9-51eb-8147-c38b58100c83",
        "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
        "event_id": "276ced41-0b6d-482a-85b0-84755b7dc97f",
        "event_types": ["trip_end"],
        "vehicle_state": "available",
        "timestamp": ms(NOW),
        "location": {"lat": 59.3, "lng": 18.0},
        "trip_ids": ["9456de24-eb22-46bb-b8af-b114b29d496e"],
    }
    events = {"version": "2.0.0", "events": [event]}
    assert_valid(mds_validator("events_historical"), events, "one trip_end event")
    # The repaired trip rule: a trip event needs its trip; other events may have none.
    assert not mds_validator("events_historical").is_valid({**events, "events": [{**event, "trip_ids": []}]})
    cancel = {**event, "event_types": ["reservation_cancel"], "trip_ids": []}
    assert_valid(mds_validator("events_historical"), {**events, "events": [cancel]}, "a reservation_cancel")
    # A micromobility event type the vehicle state does not allow is still rejected (the mode branch applies).
    assert not mds_validator("events_historical").is_valid(
        {**events, "events": [{**event, "event_types": ["trip_start"]}]}
    )


# -- MDS 2.0 ---------------------------------------------------------------------------------------------------


def local_hour_of(zone: str, ms_value: int) -> int:
    return datetime.fromtimestamp(ms_value / 1000, ZoneInfo(CATALOG[zone].timezone)).hour


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("zone", ZONES)
def test_trips_and_historical_events(schema_shaped: Served, zone: str, slot: str) -> None:
    hour = utc_hour(zone, slot)
    trips = schema_shaped.mds(f"/{zone}/trips", end_time=hour)
    assert_valid(mds_validator("trips"), trips, f"trips {zone} {hour}")
    events = schema_shaped.mds(f"/{zone}/events/historical", event_time=hour)
    assert_valid(mds_validator("events_historical"), events, f"events/historical {zone} {hour}")
    # The UTC hour asked for is the local hour meant (across the DST switch too).
    _, local = SLOTS[slot]
    assert {local_hour_of(zone, t["end_time"]) for t in trips["trips"]} <= {local}
    assert {local_hour_of(zone, e["timestamp"]) for e in events["events"]} <= {local}
    if slot in RUSH_SLOTS:
        assert len(trips["trips"]) >= 10 and len(events["events"]) >= 20
        assert {"trip_start", "trip_end"} <= {t for e in events["events"] for t in e["event_types"]}


RECENT_WINDOWS: dict[str, tuple[str, int]] = {
    # name: (the moment it is read at, how many hours back it starts)
    "sat-rush-0815": ("sat-rush-0815", 2),
    "sun-rush-0745": ("sun-rush-0745", 1),
    "after-window": ("after-window", 3),
}


@pytest.mark.parametrize("window", RECENT_WINDOWS)
@pytest.mark.parametrize("zone", ZONES)
def test_recent_events(moving: Served, zone: str, window: str) -> None:
    name, hours = RECENT_WINDOWS[window]
    now = moment(zone, name)
    start, end = ms(min(now, END) - timedelta(hours=hours)), ms(now)
    body = moving.at(now).mds(f"/{zone}/events/recent", start_time=start, end_time=end)
    assert_valid(mds_validator("events_recent"), body, f"events/recent {zone} {window}")
    assert len(body["events"]) >= 10
    assert all(start <= e["timestamp"] < end for e in body["events"])


@pytest.mark.parametrize("zone", ZONES)
def test_vehicles(schema_shaped: Served, zone: str) -> None:
    body = schema_shaped.mds(f"/{zone}/vehicles")
    assert_valid(mds_validator("vehicles"), body, f"vehicles {zone}")
    vehicles = body["vehicles"]
    assert len(vehicles) == schema_shaped.provider.options.vehicles
    for vehicle in (vehicles[0], vehicles[len(vehicles) // 2], vehicles[-1]):
        one = schema_shaped.mds(f"/{zone}/vehicles/{vehicle['device_id']}")
        assert_valid(mds_validator("vehicles_device_id"), one, f"vehicles/{vehicle['device_id']}")
        assert one["vehicles"] == [vehicle]


@pytest.mark.parametrize("at", MOMENTS)
@pytest.mark.parametrize("zone", ZONES)
def test_vehicle_status(moving: Served, zone: str, at: str) -> None:
    body = moving.at(moment(zone, at)).mds(f"/{zone}/vehicles/status")
    assert_valid(mds_validator("vehicles_status"), body, f"vehicles/status {zone} {at}")
    statuses = body["vehicles_status"]
    assert len(statuses) >= moving.provider.options.vehicles // 2
    on_trip = [s for s in statuses if s["last_event"]["vehicle_state"] == "on_trip"]
    if at in ("sat-rush-0815", "sun-rush-0745"):
        # Telemetry of a vehicle on a trip takes the other `trip_ids` branch (a non-empty array, not null).
        assert on_trip and all(s["last_telemetry"]["trip_ids"] for s in on_trip)
    for status in (statuses[0], *on_trip[:1], statuses[-1]):
        device = status["device_id"]
        one = moving.mds(f"/{zone}/vehicles/status/{device}")
        assert_valid(mds_validator("vehicles_status_device_id"), one, f"vehicles/status/{device} {at}")
        assert one["vehicles_status"] == [status]


PAGED: dict[str, tuple[str, dict[str, object], str]] = {
    # schema name: (path after the zone, query, records key)
    "events_historical": ("/events/historical", {"event_time": "sat-rush-08"}, "events"),
    "events_recent": ("/events/recent", {"start_time": END - timedelta(hours=4), "end_time": NOW}, "events"),
    "vehicles": ("/vehicles", {}, "vehicles"),
    "vehicles_status": ("/vehicles/status", {}, "vehicles_status"),
}


def _query(zone: str, params: dict[str, object]) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for key, value in params.items():
        if isinstance(value, datetime):
            out[key] = ms(value)
        elif key.endswith("_time") and value in SLOTS:
            out[key] = utc_hour(zone, str(value))
        else:
            assert isinstance(value, str | int), (key, value)
            out[key] = value
    return out


@pytest.mark.parametrize("name", PAGED)
@pytest.mark.parametrize("zone", ZONES)
def test_every_page_validates(paged: Served, schema_shaped: Served, zone: str, name: str) -> None:
    path, params, key = PAGED[name]
    query = _query(zone, params)
    page = paged.mds(f"/{zone}{path}", **query)
    pages = [page]
    while next_url := page.get("links", {}).get("next"):
        page = paged.get(next_url)
        pages.append(page)
    assert len(pages) >= 3
    for i, body in enumerate(pages):
        assert_valid(mds_validator(name), body, f"{name} {zone} page {i}")
    whole = schema_shaped.mds(f"/{zone}{path}", **query)
    assert [r for body in pages for r in body[key]] == whole[key]


def test_the_schemas_reject_the_providers_malformed_records(schema_shaped: Served) -> None:
    """The validation has teeth: with the malformed-records fault on, exactly the corrupted copies fail."""
    faulty = make_provider(quirks=False, faults=Faults(malformed_rate=0.3))
    clean = schema_shaped.provider
    zone = FREE_FLOATING
    hour = utc_hour(zone, "sat-rush-08")
    reads: dict[str, tuple[str, Callable[[SimulatedProvider], Json]]] = {
        "trips": ("trips", lambda p: mds.trips(p, zone, hour)),
        "events_historical": ("events", lambda p: mds.events_historical(p, zone, hour, 0, None)),
    }
    for name, (key, read) in reads.items():
        good = {json.dumps(r, sort_keys=True) for r in read(clean)[key]}
        payload = read(faulty)
        corrupted = {i for i, r in enumerate(payload[key]) if json.dumps(r, sort_keys=True) not in good}
        failing = {e.absolute_path[1] for e in mds_validator(name).iter_errors(payload)}
        assert corrupted, name
        assert failing == corrupted, name
        assert len(payload[key]) == len(good) + len(corrupted)


# -- the seed's deviations from the MDS schema ------------------------------------------------------------------


def undo_seed_quirks(payload: Json, name: str, now_ms: int) -> Json:
    """The schema's shape of a seed-shaped payload: exactly the seed's documented deviations are undone.

    - `"last_updated": {"last_updated": n}` and `"ttl": {"ttl": n}` (seed 002, every MDS 2.0 example);
    - `"links": {}` where there is no next page (seed 002, vehicles and events examples);
    - /vehicles has no `last_updated`/`ttl` at all (seed 002's vehicles example); the schema requires both,
      and the provider's schema shape sends the provider's clock and 0.
    """
    out = dict(payload)
    for key in ("last_updated", "ttl"):
        if key in out:
            assert isinstance(out[key], dict) and set(out[key]) == {key}, out[key]
            out[key] = out[key][key]
    if out.get("links") == {}:
        out["links"] = {"next": None}
    if name in ("vehicles", "vehicles_device_id"):
        assert "last_updated" not in out and "ttl" not in out
        out["last_updated"], out["ttl"] = now_ms, 0
    return out


def mds_request(name: str, zone: str, device: str) -> tuple[str, dict[str, str | int]]:
    hour = utc_hour(zone, "sat-rush-08")
    recent: dict[str, str | int] = {"start_time": ms(END - timedelta(hours=2)), "end_time": ms(NOW)}
    requests: dict[str, tuple[str, dict[str, str | int]]] = {
        "trips": (f"/{zone}/trips", {"end_time": hour}),
        "events_historical": (f"/{zone}/events/historical", {"event_time": hour}),
        "events_recent": (f"/{zone}/events/recent", recent),
        "vehicles": (f"/{zone}/vehicles", {}),
        "vehicles_device_id": (f"/{zone}/vehicles/{device}", {}),
        "vehicles_status": (f"/{zone}/vehicles/status", {}),
        "vehicles_status_device_id": (f"/{zone}/vehicles/status/{device}", {}),
    }
    return requests[name]


@pytest.mark.parametrize("name", MDS_NAMES)
@pytest.mark.parametrize("zone", ZONES)
def test_seed_shapes_differ_from_the_schema_only_by_the_documented_quirks(
    seed_shaped: Served, schema_shaped: Served, zone: str, name: str
) -> None:
    device = schema_shaped.mds(f"/{zone}/vehicles")["vehicles"][7]["device_id"]
    path, params = mds_request(name, zone, device)
    strict = schema_shaped.mds(path, **params)
    assert_valid(mds_validator(name), strict, f"schema shape of {path}")
    seed = seed_shaped.mds(path, **params)
    assert seed != strict, "the default provider should serve the seed's shapes"
    now_ms = schema_shaped.provider.now_ms()
    assert seed_shaped.provider.now_ms() == now_ms
    normalised = undo_seed_quirks(seed, name, now_ms)
    assert normalised == strict
    # The same JSON text, types included (true is not 1, 1.0 not 1): the quirks undone, the seed shape is the
    # document validated above, so it is valid as it is.
    assert json.dumps(normalised, sort_keys=True) == json.dumps(strict, sort_keys=True), f"seed shape of {path}"
    records = next(v for k, v in strict.items() if isinstance(v, list))
    assert records, f"{path} served no records"


# -- GBFS 3.0 ---------------------------------------------------------------------------------------------------


def assert_multipolygon(geometry: Json, what: str) -> None:
    geom = shape(geometry)
    assert geometry["type"] == "MultiPolygon" and geom.geom_type == "MultiPolygon", what
    assert not geom.is_empty and geom.is_valid, what


def assert_gbfs_content(zone: str, feed: str, data: Json, provider: SimulatedProvider) -> None:
    """What schema validation cannot see: the feeds are not empty where the city has something to say."""
    city = provider.zones[zone].city
    spots = {a.area_id for a in city.parking_spots}
    assert (len(spots) > 0) == (zone == PARKING_SPOT)
    if feed == "gbfs":
        assert {f["name"] for f in data["feeds"]} == set(GBFS_FEEDS) - {"gbfs"}
        assert all(f["url"].endswith(f"/gbfs/{zone}/{f['name']}.json") for f in data["feeds"])
    elif feed == "gbfs_versions":
        assert [v["version"] for v in data["versions"]] == ["3.0"]
    elif feed == "system_information":
        assert data["name"] and data["timezone"] == city.spec.timezone
    elif feed == "vehicle_types":
        assert data["vehicle_types"]
    elif feed == "vehicle_status":
        vehicles = data["vehicles"]
        assert len(vehicles) >= provider.options.vehicles // 2
        assert {v["station_id"] for v in vehicles if "station_id" in v} <= spots
    elif feed == "station_information":
        assert {s["station_id"] for s in data["stations"]} == spots
        for station in data["stations"]:
            assert_multipolygon(station["station_area"], station["station_id"])
    elif feed == "station_status":
        assert {s["station_id"] for s in data["stations"]} == spots
        if zone == PARKING_SPOT:
            assert sum(s["num_vehicles_available"] + s["num_vehicles_disabled"] for s in data["stations"]) > 0
    elif feed == "system_pricing_plans":
        assert data["plans"]
    elif feed == "geofencing_zones":
        features = data["geofencing_zones"]["features"]
        assert features and data["global_rules"]
        for feature in features:
            assert_multipolygon(feature["geometry"], feature["properties"]["name"][0]["text"])
    else:  # system_regions, system_alerts: the simulated cities have neither regions nor alerts
        assert feed in ("system_regions", "system_alerts")


@pytest.mark.parametrize("feed", GBFS_FEEDS)
@pytest.mark.parametrize("at", MOMENTS)
@pytest.mark.parametrize("zone", ZONES)
def test_gbfs_feed(moving: Served, zone: str, at: str, feed: str) -> None:
    body = moving.at(moment(zone, at)).gbfs(zone, feed)
    assert_valid(gbfs_validator(feed), body, f"GBFS {feed} {zone} {at}")
    assert_gbfs_content(zone, feed, body["data"], moving.provider)


def test_gbfs_cross_references(seed_shaped: Served) -> None:
    """Ids one GBFS feed names exist in the feed that defines them."""
    for zone in ZONES:
        feed = {name: seed_shaped.gbfs(zone, name)["data"] for name in GBFS_FEEDS}
        types = {t["vehicle_type_id"] for t in feed["vehicle_types"]["vehicle_types"]}
        plans = {p["plan_id"] for p in feed["system_pricing_plans"]["plans"]}
        assert {t["default_pricing_plan_id"] for t in feed["vehicle_types"]["vehicle_types"]} <= plans
        assert {v["vehicle_type_id"] for v in feed["vehicle_status"]["vehicles"]} <= types
        assert {v["pricing_plan_id"] for v in feed["vehicle_status"]["vehicles"]} <= plans
        for station in feed["station_status"]["stations"]:
            assert {t["vehicle_type_id"] for t in station["vehicle_types_available"]} <= types
        for feature in feed["geofencing_zones"]["geofencing_zones"]["features"]:
            for rule in feature["properties"]["rules"]:
                assert set(rule["vehicle_type_ids"]) <= types


@pytest.mark.parametrize("zone", ZONES)
def test_gbfs_discovery_over_the_shared_server(seed_shaped: Served, zone: str) -> None:
    """gbfs.json of the default (seed-shaped) provider leads to every feed, each valid; GBFS has no quirks."""
    discovery = seed_shaped.gbfs(zone, "gbfs")
    assert_valid(gbfs_validator("gbfs"), discovery, f"gbfs.json {zone}")
    for entry in discovery["data"]["feeds"]:
        assert urlsplit(entry["url"]).netloc == urlsplit(str(seed_shaped.client.base_url)).netloc
        body = seed_shaped.get(entry["url"])
        assert_valid(gbfs_validator(entry["name"]), body, f"{entry['url']}")
        assert_gbfs_content(zone, entry["name"], body["data"], seed_shaped.provider)


# -- the zone API (seed 001, "# Zone"; no official schema) ------------------------------------------------------


def is_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass, and not what the seed means


def test_zone_info(seed_shaped: Served) -> None:
    body = seed_shaped.zone_api("/v1/zone/info")
    assert set(body) == {"data"}
    data = body["data"]
    assert isinstance(data["id"], str) and data["id"]
    assert data["type"] == "zone"
    zones = data["attributes"]["zones"]
    by_id = {z["zoneId"]: z for z in zones}
    assert set(by_id) == set(ZONES) and len(zones) == len(ZONES)
    for zone_id, zone in by_id.items():
        spec = CATALOG[zone_id]
        # The table says Number for zoneId and zoneName; the example (and real feeds) send strings.
        assert isinstance(zone["zoneId"], str) and zone["zoneId"].isdigit()
        assert zone["zoneName"] == spec.name
        assert zone["parkingMode"] in ("free-floating", "parking-spot")
        assert type(zone["licenceVerificationRequired"]) is bool
        assert type(zone.get("isSleeping", False)) is bool
        if "speedConfig" in zone:
            speed = zone["speedConfig"]
            assert set(speed) == {"maxSpeed", "minRequiredRides", "reducedSpeed", "speedUnit"}
            assert all(is_int(speed[k]) and speed[k] > 0 for k in ("maxSpeed", "minRequiredRides", "reducedSpeed"))
            assert speed["reducedSpeed"] <= speed["maxSpeed"]
            assert speed["speedUnit"] in ("km/h", "mph")
    assert by_id[FREE_FLOATING]["parkingMode"] == "free-floating"
    assert by_id[PARKING_SPOT]["parkingMode"] == "parking-spot"


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("zone", ZONES)
def test_zone_areas(seed_shaped: Served, zone: str, version: int) -> None:
    body = seed_shaped.zone_api(f"/v{version}/zone/id/{zone}")
    assert set(body) == {"data"}
    data = body["data"]
    assert data["id"] == zone and data["type"] == "area"
    areas = data["attributes"]["areas"]
    for area in areas:
        assert {"id", "type", "area_type", "geometry"} <= set(area)
        assert isinstance(area["id"], str) and area["id"]
        assert isinstance(area["type"], str)
        assert area["area_type"] in ZONE_AREA_TYPES
        assert_multipolygon(area["geometry"], area["id"])
    assert len({a["id"] for a in areas}) == len(areas)
    types = [a["area_type"] for a in areas]
    assert types.count("operations") == 1
    # "A zone can only have either no-parking or parking-spot zone areas, never both."
    if zone == FREE_FLOATING:
        assert "no-parking" in types and "parking-spot" not in types
    else:
        assert "parking-spot" in types and "no-parking" not in types
    # free-floating areas come only from the v2 endpoint, and only in a free-floating zone.
    assert ("free-floating" in types) == (version == 2 and zone == FREE_FLOATING)


@pytest.mark.parametrize("at", MOMENTS)
@pytest.mark.parametrize("zone", ZONES)
def test_areas_occupancy(moving: Served, zone: str, at: str) -> None:
    body = moving.at(moment(zone, at)).zone_api(f"/v1/zone/id/{zone}/areasOccupancy")
    assert set(body) == {"data"}
    entries = body["data"]
    assert isinstance(entries, list)
    for entry in entries:
        assert set(entry) == {"id", "occupancy", "capacity"}
        assert isinstance(entry["id"], str)
        assert is_int(entry["occupancy"]) and is_int(entry["capacity"])
        assert entry["occupancy"] >= 0 and entry["capacity"] > 0
    areas = moving.zone_api(f"/v2/zone/id/{zone}")["data"]["attributes"]["areas"]
    spots = {a["id"] for a in areas if a["area_type"] == "parking-spot"}
    assert {e["id"] for e in entries} == spots
    if zone == PARKING_SPOT:
        assert sum(e["occupancy"] for e in entries) > 0
    else:
        assert entries == []
