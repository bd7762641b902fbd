"""Every payload the embedded provider serves, validated against the official schemas in `shared/specs/`.

- MDS 2.0: the JSON-Schema 2020-12 bundles derived from `mds-openapi` (`mds/2.0/bundled/provider_*.json`).
- GBFS 3.0: MobilityData's `gbfs-json-schema` (`gbfs/v3.0/*.json`, draft-07).
- The zone API has no official schema: its shapes are asserted from the seed (`001_*.txt`, "# Zone").

By default the provider serves the Voi seed's shapes, which deviate from the MDS 2.0 schema (nested
`last_updated`/`ttl`, `"links": {}`, no `last_updated`/`ttl` on /vehicles); `ProviderOptions(quirks=False)`
serves the schema's shapes. Both are checked: the schema shapes as they are, the seed shapes after undoing
exactly those documented quirks, which must then equal the schema-shaped payload byte for byte.
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

from pipelines.provider.app import ProviderApp
from pipelines.provider.city import CATALOG
from pipelines.provider.clock import FixedClock
from pipelines.provider.faults import Faults
from pipelines.provider.server import running
from pipelines.provider.service import GBFS_FEEDS, SimulatedProvider
from conftest import CREDENTIALS, END, NOW, SPECS, START, bearer, make_provider

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

    def __init__(self, provider: SimulatedProvider, url: str) -> None:
        self.provider = provider
        self.client = httpx.Client(base_url=url, timeout=30)
        self.headers = bearer(self.client)

    def mds(self, path: str, **params: object) -> Json:
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

