"""The MDS Metrics API over real HTTP on loopback: the methodology's worked examples at their own 15-minute
intervals, redaction, scopes, refusals and a daylight-saving day, every answer validated against the official
OpenAPI (`shared/specs/mds/2.0/mds-openapi/reference/metrics.yaml` and the models it references).

The OpenAPI's query schema types a filter's values as objects, while the Metrics text (and its own example,
`values: [census_block]`) gives strings: the one correction made before validating is that filter values are strings.
"""

import contextlib
import functools
import json
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import jsonschema
import polars as pl
import pyarrow.parquet as pq
import pytest
import referencing
import referencing.jsonschema
import yaml

import pipelines.metrics.query as metrics_query
import tests.test_mds_metrics as examples
from fleetlake_provider.truth import truth_frames
from pipelines.metrics.columns import _as_json
from pipelines.metrics.geographies import area_geography_id, zone_geography_id
from pipelines.metrics.service import READ_PROVIDER, Grant, MetricsService, issue_token, running
from pipelines.warehouse.build import Warehouse
from tests.conftest import END, SPECS, START, BuiltWarehouse
from tests.scenario import PROVIDER_ID, Record, event, ms

OPENAPI = SPECS / "mds" / "2.0" / "mds-openapi" / "reference"
SECRET = "metrics-test-key-of-thirty-two-bytes-at-least"
H = examples.H
DST_ZONE = "301"  # one vehicle available through Stockholm's spring change (29 March 2026: 23 hours)
DST_DAY = datetime(2026, 3, 28, 23, tzinfo=UTC)  # local midnight of 29 March


@functools.cache
def _load(uri: str) -> referencing.Resource[Any]:
    """The OpenAPI document at `uri`, parsed once: a validation retrieves every document its references reach,
    and the registry it is given keeps none of them between validations."""
    path = Path(uri.removeprefix("file://"))
    document = yaml.safe_load(path.read_text())
    if path.name == "metrics.yaml":  # filter values are strings (see the module's docstring)
        document["components"]["schemas"]["query"]["properties"]["filters"]["items"]["properties"]["values"][
            "items"
        ] = {"type": "string"}
    return referencing.Resource.from_contents(document, default_specification=referencing.jsonschema.DRAFT202012)


REGISTRY: referencing.Registry[Any] = referencing.Registry(retrieve=_load)  # type: ignore[call-arg]


def schema_of(document: str, pointer: str) -> jsonschema.Draft202012Validator:
    """A validator of the schema at `pointer` (a JSON pointer) in an OpenAPI document of the reference folder."""
    uri = (OPENAPI / document).as_uri()
    return jsonschema.Draft202012Validator({"$ref": f"{uri}#{pointer}"}, registry=REGISTRY)


DISCOVERY = schema_of("metrics.yaml", "/paths/~1metrics/get/responses/200/content/application~1json/schema")
ANSWER = schema_of("metrics.yaml", "/paths/~1metrics/post/responses/200/content/application~1json/schema")
GEOGRAPHIES = schema_of("geography.yaml", "/paths/~1geographies/get/responses/200/content/application~1json/schema")
GEOGRAPHY = schema_of(
    "geography.yaml", "/paths/~1geographies~1{geography_id}/get/responses/200/content/application~1json/schema"
)
ERROR = schema_of("../models/response/error.yaml", "")


def rescaled(records: list[Record], origin: datetime, onto: datetime, factor: int) -> list[Record]:
    """An example's records with its time `factor` times shorter: what happened at origin + t happens at
    onto + t / factor (the stretched worked examples of tests/test_mds_metrics.py at their own 15 minutes)."""

    def moved(value: int) -> int:
        return ms(onto) + (value - ms(origin)) // factor

    found = []
    for record in records:
        record = dict(record)
        for name in ("timestamp", "start_time", "end_time"):
            if name in record:
                record[name] = moved(record[name])
        if "publication_time" in record:
            record["publication_time"] = record["timestamp"] + 60_000
        if "duration" in record:
            record["duration"] = (record["end_time"] - record["start_time"]) / 1000
        found.append(record)
    return found


def deployed_quarters_events() -> list[Record]:
    """2.2 and 2.4 at 15 minutes: the example's four hours (deployed 2.20, 4.10, 3.70, 1.80) as the four quarters of
    06:00-07:00, so PT1H is the longer interval whose quarters' averages `.avg.min`/`.avg.max` range over."""
    return rescaled(examples.deployed_hours_example(), examples.HOURS_06, examples.HOURS_06, 4)


def active_quarter() -> tuple[list[Record], list[Record]]:
    """2.6, 2.7 and 2.9 at their own 15 minutes (10:00-10:15; tests/test_mds_metrics.py stretches them to a day)."""
    trips, events = examples.active_example()
    return (
        rescaled(trips, examples.LOCAL_DAY, H, 96),
        rescaled(events, examples.LOCAL_DAY, H, 96),
    )


def dst_events() -> list[Record]:
    return [event("dst/drop", "dst-v1", DST_DAY - timedelta(hours=2), "provider_drop_off", "available")]


@dataclass(frozen=True)
class Api:
    url: str  # k = 1: the worked examples' small counts shown
    redacting_url: str  # k = 10, the default
    warehouse: Path
    lake: Path

    def post(self, body: dict[str, Any], token: str | None = None, url: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or issue_token(SECRET)}"}
        response = httpx.post(f"{url or self.url}/metrics", json=body, headers=headers, timeout=60)
        if response.status_code == 200:
            ANSWER.validate(response.json())
        else:
            ERROR.validate(response.json())
        return response

    def rows(self, body: dict[str, Any], url: str | None = None) -> list[list[Any]]:
        response = self.post(body, url=url)
        assert response.status_code == 200, response.text
        rows: list[list[Any]] = response.json()["rows"]
        return rows


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The worked examples unstretched (a minute is a minute: their 15-minute intervals are the API's PT15M), and a
    zone through a daylight-saving change, built once and served twice."""
    root = tmp_path_factory.mktemp("metrics-api")
    lake = root / "lake"
    hours = [H - timedelta(hours=1), H, H + timedelta(hours=1)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(examples, "STRETCH", 1)
        examples.write_zone(lake, examples.AVAILABLE, hours, examples.available_example())
        examples.write_zone(lake, examples.DURATION, hours, examples.duration_example())
        examples.write_zone(lake, examples.DEPLOYED, hours, examples.deployed_example())
        examples.write_zone(
            lake, examples.TRIPS, hours, [], examples.trips_example(), (examples.HISTORIC_CULTURAL, examples.DOWNTOWN)
        )
        examples.write_zone(lake, examples.IDLE, [H], examples.idle_example())
        examples.write_zone(lake, examples.DEPLOYED_HOURS, [examples.HOURS_06], deployed_quarters_events())
        trips, events = active_quarter()
        examples.write_zone(lake, examples.ACTIVE, hours, events, trips)
        trips, events = examples.trips_per_vehicle_example()
        examples.write_zone(lake, examples.TRIPS_PER_VEHICLE, [H], events, trips)
    examples.write_zone(lake, DST_ZONE, [DST_DAY + timedelta(hours=i) for i in range(-2, 26)], dst_events())
    warehouse = Warehouse(root / "warehouse.duckdb", lake)
    warehouse.build()
    with (
        running(MetricsService(warehouse.path, lake, SECRET, k=1)) as url,
        running(MetricsService(warehouse.path, lake, SECRET, k=10)) as redacting_url,
    ):
        yield Api(url, redacting_url, warehouse.path, lake)


def area(zone: str, area_id: str = "zone-a") -> str:
    return area_geography_id(zone, area_id)


def one(geography: str) -> list[dict[str, Any]]:
    return [{"name": "geography_id", "values": [geography]}]


def test_discovery_lists_every_measure_since_the_data_began(api: Api) -> None:
    response = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {issue_token(SECRET)}"})
    assert response.status_code == 200
    found = response.json()
    DISCOVERY.validate(found)
    measures = {name for metric in found["metrics"] for name in metric["measures"]}
    assert {"vehicles.available.avg", "events.trip_start.count", "trips.start_loc.duration.med"} <= measures
    assert {"dockless.deployed.avg.min", "dockless.utilization.trips_per_vehicle.avg"} <= measures
    assert {"dockless.active.avg", "dockless.inactive.avg", "dockless.utilization.active.percent"} <= measures
    assert {metric["since"] for metric in found["metrics"]} == {"2026-03-10T06:00+00:00"}
    assert all(metric["intervals"] == ["PT15M", "PT1H", "P1D", "P1M"] for metric in found["metrics"])
    assert set(found["dimensions"]) == {"provider_id", "geography_id", "vehicle_type"}
    assert "geography_type" in found["filters"]


def test_vehicles_available_avg_min_max_in_the_15_minutes(api: Api) -> None:
    """1.1-1.3: 23 vehicle-minutes available in 10:00-10:15: 1.53, min 1, max 3."""
    body = {
        "measures": ["vehicles.available.avg", "vehicles.available.min", "vehicles.available.max"],
        "interval": "PT15M",
        "start_date": "2026-03-10T10:00",
        "filters": one(area(examples.AVAILABLE)),
    }
    (row,) = api.rows(body)
    assert row[0] == "2026-03-10T10:00+00:00"
    assert row[1:] == [pytest.approx(23 / 15), 1, 3]
    assert round(row[1], 2) == 1.53


def test_vehicles_duration_sum_and_event_counts_by_area(api: Api) -> None:
    """1.4 and 1.5 at their own intervals: reserved 60 s (09:45) and 240 s (10:00; the text says 180) in Zone A, on
    a trip 360 s, available 540 s in Zone A and 300 s in Zone B; the events by type and area."""
    a, b = area(examples.DURATION), area(examples.DURATION, "zone-b")
    body = {
        "measures": [
            "vehicles.reserved.duration.sum",
            "vehicles.on_trip.duration.sum",
            "vehicles.available.duration.sum",
            "events.reservation_start.count",
            "events.trip_start.count",
            "events.trip_end.count",
            "events.provider_drop_off.count",
        ],
        "interval": "PT15M",
        "start_date": "2026-03-10T09:45",
        "end_date": "2026-03-10T10:15",
        "dimensions": ["geography_id"],
        "filters": [{"name": "geography_id", "values": [a, b]}],
    }
    rows = {(row[0][11:16], row[1]): row[2:] for row in api.rows(body)}
    # Counts of trip events are counts of trips: below k (here 1), zero included, they are -1.
    assert rows[("09:45", a)] == [60, 0, 0, 1, -1, -1, 0]
    assert rows[("10:00", a)] == [240, 360, 540, 0, 1, -1, 1]
    assert rows[("10:00", b)] == [0, 0, 300, 0, -1, 1, 0]
    assert rows[("10:15", a)][3] == rows[("10:15", b)][3] == 1


def test_trip_measures_by_start_and_end_location(api: Api) -> None:
    """1.6-1.14 as published: counts 1, 3, 1 (start, Historic Cultural) and 4, 1 (end, Downtown); durations and
    distances averaged and summed; the medians and standard deviations of the same trips."""
    start, end = area(examples.TRIPS, "historic-cultural"), area(examples.TRIPS, "downtown")
    measures = ["count", "duration.avg", "duration.sum", "distance.avg", "distance.sum", "duration.med", "duration.std"]
    body = {
        "measures": [f"trips.start_loc.{m}" for m in measures] + [f"trips.end_loc.{m}" for m in measures],
        "interval": "PT15M",
        "start_date": "2026-03-10T10:00",
        "end_date": "2026-03-10T10:45",
        "dimensions": ["geography_id"],
        "filters": [{"name": "geography_id", "values": [start, end]}],
    }
    rows = {(row[0][11:16], row[1]): row[2:] for row in api.rows(body)}
    n = len(measures)
    assert rows[("10:00", start)][:5] == [1, 1680, 1680, 987, 987]
    assert rows[("10:15", start)][:5] == [3, 900, 2700, pytest.approx(368.67, abs=0.005), 1106]
    assert rows[("10:15", start)][5:n] == [900, pytest.approx(math.sqrt((0 + 180**2 + 180**2) / 3))]
    assert rows[("10:30", start)][:5] == [1, 600, 600, 264, 264]
    assert rows[("10:30", end)][n : n + 5] == [4, 975, 3900, 484.25, 1937]
    assert rows[("10:45", end)][n : n + 5] == [1, 1080, 1080, 420, 420]
    # No trip started in Downtown: a zero count is redacted too, even at k = 1, and so is what it would average.
    assert rows[("10:00", end)][:2] == [-1, -1]


def test_dockless_deployed_and_utilization(api: Api) -> None:
    """2.1, 2.3, 2.5 (2.20, 1, 3 in 10:00-10:15), 2.8 (idle 0.98) and 2.10 (20 trips over 2 deployed = 10)."""
    body = {
        "measures": ["dockless.deployed.avg", "dockless.deployed.min", "dockless.deployed.max"],
        "interval": "PT15M",
        "start_date": "2026-03-10T10:00",
        "filters": one(area(examples.DEPLOYED)),
    }
    assert api.rows(body)[0][1:] == [pytest.approx(2.2), 1, 3]
    idle = {**body, "measures": ["dockless.utilization.idle.percent"], "interval": "PT1H"}
    (row,) = api.rows({**idle, "filters": one(area(examples.IDLE))})
    assert row[1] == pytest.approx(5060 / 5180)
    assert round(row[1], 2) == 0.98
    per_vehicle = {**idle, "measures": ["dockless.utilization.trips_per_vehicle.avg", "trips.start_loc.count"]}
    assert api.rows({**per_vehicle, "filters": one(area(examples.TRIPS_PER_VEHICLE))})[0][1:] == [
        pytest.approx(10.0),
        20,
    ]
    # The hour's averages of its quarters: 2.10's vehicles are both deployed throughout.
    spread = {**idle, "measures": ["dockless.deployed.avg.min", "dockless.deployed.avg.max"]}
    assert api.rows({**spread, "filters": one(area(examples.TRIPS_PER_VEHICLE))})[0][1:] == [2.0, 2.0]


def test_trip_counts_below_k_are_redacted_zero_included(api: Api) -> None:
    """The spec redacts counts of trips below k (zero too) and the figures of those trips; a count of other events
    and the vehicle figures (average, fewest, most vehicles, their seconds) are not counts of trips."""
    start = area(examples.TRIPS_PER_VEHICLE)
    trip_figures = ["trips.start_loc.count", "trips.start_loc.duration.avg", "trips.start_loc.distance.med"]
    trip_figures += ["events.trip_start.count", "events.trip_end.count", "dockless.utilization.trips_per_vehicle.avg"]
    others = ["events.provider_drop_off.count", "events.battery_low.count", "vehicles.on_trip.avg"]
    others += ["vehicles.on_trip.max", "dockless.deployed.avg", "dockless.active.avg", "dockless.inactive.avg"]
    body = {
        "measures": trip_figures + others,
        "interval": "PT15M",
        "start_date": "2026-03-10T10:00",
        "end_date": "2026-03-10T10:15",
        "filters": one(start),
    }
    response = api.post(body, url=api.redacting_url)
    assert response.json()["query"]["k_value"] == 10
    # 2.10's vehicles start 6 and 4 trips in the first two quarters (and end 4 and 6 of them), each of 180 s and
    # 1,000 m: every trip figure is -1 at k = 10, the rest as at k = 1.
    redacted = [row[1:] for row in response.json()["rows"]]
    shown = api.rows(body)
    assert api.post(body).json()["query"]["k_value"] == 1
    assert [row[1 : 1 + len(trip_figures)] for row in shown] == [
        [6, 180, 1000, 6, 4, pytest.approx(3.0)],
        [4, 180, 1000, 4, 6, pytest.approx(2.0)],
    ]
    assert [row[: len(trip_figures)] for row in redacted] == [[-1] * len(trip_figures)] * 2
    assert [row[len(trip_figures) :] for row in redacted] == [row[1 + len(trip_figures) :] for row in shown]
    # 2 drop-offs at 10:00, no battery_low: other events are counted as they are, zero too.
    assert [row[1 + len(trip_figures) : 3 + len(trip_figures)] for row in shown] == [[2, 0], [0, 0]]
    # The hour's 20 trips (and trip_start events) are shown at k = 10.
    hour = {
        **body,
        "interval": "PT1H",
        "end_date": None,
        "measures": ["trips.start_loc.count", "events.trip_start.count"],
    }
    assert api.rows(hour, url=api.redacting_url)[0][1:] == [20, 20]


def test_dockless_deployed_avg_min_and_max_of_the_quarters(api: Api) -> None:
    """2.2 and 2.4 at 15 minutes: the quarters' dockless.deployed.avg are 2.20, 4.10, 3.70, 1.80; over the hour
    avg.min 1.80 and avg.max 4.10 (the hour's own average their mean, 2.95)."""
    zone_a = one(area(examples.DEPLOYED_HOURS))
    quarters = {
        "measures": ["dockless.deployed.avg"],
        "interval": "PT15M",
        "start_date": "2026-03-10T06:00",
        "end_date": "2026-03-10T06:45",
        "filters": zone_a,
    }
    assert [row[1] for row in api.rows(quarters)] == pytest.approx([2.2, 4.1, 3.7, 1.8])
    hour = {
        "measures": ["dockless.deployed.avg.min", "dockless.deployed.avg.max", "dockless.deployed.avg"],
        "interval": "PT1H",
        "start_date": "2026-03-10T06:00",
        "filters": zone_a,
    }
    (row,) = api.rows(hour)
    assert row[1:] == pytest.approx([1.8, 4.1, 2.95])
    assert (round(row[1], 2), round(row[2], 2)) == (1.80, 4.10)
    # A quarter's avg.min and avg.max are its own average.
    assert api.rows({**hour, "interval": "PT15M", "start_date": "2026-03-10T06:15"})[0][1:] == pytest.approx([4.1] * 3)


def test_dockless_active_and_inactive_vehicles(api: Api) -> None:
    """2.6, 2.7 and 2.9 in 10:00-10:15: the average number of vehicles in the right of way that were on a trip at
    some time of the interval (active) and that were not (inactive), each vehicle's time in the area where its state
    began; active.percent is active / (active + inactive). vehicle_1 rides from Zone A (10:04-10:10) and stands in
    Zone B; vehicle_2 is on a trip in Zone A 10:05-10:07 and from 10:14; vehicle_3 stands in Zone B from 10:06
    without a trip. The methodology counts vehicles (active 2 in Zone A, inactive 1 in Zone B); MDS 2.0 names
    averages, whose vehicles are the same: Zone A's two active, none inactive; Zone B's vehicle_3 inactive."""
    a, b, zone = area(examples.ACTIVE), area(examples.ACTIVE, "zone-b"), zone_geography_id(examples.ACTIVE)
    body = {
        "measures": [
            "dockless.active.avg",
            "dockless.inactive.avg",
            "dockless.utilization.active.percent",
            "dockless.deployed.avg",
        ],
        "interval": "PT15M",
        "start_date": "2026-03-10T10:00",
        "dimensions": ["geography_id"],
        "filters": [{"name": "geography_id", "values": [zone, a, b]}],
    }
    rows = {row[1]: row[2:] for row in api.rows(body)}
    assert rows[a] == pytest.approx([(6 + 2 + 1) / 15, 0, 1.0, 9 / 15])
    assert rows[b] == pytest.approx([5 / 15, 9 / 15, 5 / 14, 14 / 15])
    assert rows[zone] == pytest.approx([14 / 15, 9 / 15, 14 / 23, 23 / 15])
    # By the hour: vehicle_3 (reserved at 10:16) is still without a trip; vehicle_2 rides on until the data ends.
    (hour,) = api.rows({**body, "interval": "PT1H", "dimensions": [], "filters": one(zone)})
    assert hour[1:] == pytest.approx([(6 + 50 + 2 + 46) / 60, 54 / 60, 104 / 158, 158 / 60])
    # No vehicle in the right of way: no share of them is known.
    before = api.rows({**body, "start_date": "2026-03-10T09:00", "dimensions": [], "filters": one(zone)})
    assert before == [["2026-03-10T09:00+00:00", 0.0, 0.0, "", 0.0]]


def test_scopes_limit_what_a_token_reads(api: Api) -> None:
    body = {
        "measures": ["trips.start_loc.count", "dockless.active.avg"],
        "interval": "PT1H",
        "start_date": "2026-03-10T10:00",
        "dimensions": ["provider_id"],
        "filters": one(area(examples.TRIPS_PER_VEHICLE)),
    }
    own = api.post(body, token=issue_token(SECRET, READ_PROVIDER, PROVIDER_ID))
    assert own.status_code == 200
    # Its two vehicles rode in the hour and were in the right of way all of it: 2 active on average.
    assert own.json()["rows"][0][1:] == [PROVIDER_ID, 20, pytest.approx(2.0)]
    other = "0d7e8c4a-1111-4222-8333-944455556666"
    foreign = api.post(body, token=issue_token(SECRET, READ_PROVIDER, other))
    assert foreign.status_code == 404  # no row of its own provider there
    asked = {**body, "filters": [*body["filters"], {"name": "provider_id", "values": [PROVIDER_ID]}]}
    assert api.post(asked, token=issue_token(SECRET, READ_PROVIDER, other)).status_code == 403
    assert api.post(body, token=issue_token(SECRET, "trips:read")).status_code == 403
    assert api.post(body, token=issue_token("another-key-of-thirty-two-bytes-or-longer")).status_code == 401
    expired = issue_token(SECRET, lifetime=timedelta(seconds=-1))
    assert api.post(body, token=expired).status_code == 401
    assert httpx.post(f"{api.url}/metrics", json=body).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"measures": ["vehicles.flying.avg"]}, "measures"),
        ({"interval": "P1W"}, "interval"),
        ({"start_date": "2026-03-10 10:00"}, "start_date"),
        ({"start_date": "2026-03-10T10:05"}, "start_date"),
        ({"end_date": "2026-06-10T10:00"}, "end_date"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"dimensions": ["device_id"]}, "dimensions"),
        ({"filters": [{"name": "zone", "values": ["x"]}]}, "filters"),
        ({"measures": ["vehicles.available.min"], "filters": []}, "dimensions"),
        ({"start_date": "2026-03-10T10:00'; drop table trips; --"}, "start_date"),
    ],
)
def test_bad_queries_get_400_naming_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    body = {
        "measures": ["vehicles.available.avg"],
        "interval": "PT15M",
        "start_date": "2026-03-10T10:00",
        "filters": one(area(examples.AVAILABLE)),
        **change,
    }
    response = api.post(body)
    assert response.status_code == 400, response.text
    assert response.json()["error_details"] == [field]


def test_a_daylight_saving_day_in_p1d_and_pt1h(api: Api) -> None:
    """29 March 2026 in Stockholm lasts 23 hours: one vehicle available all day is 23 h of vehicle time and an
    average of 1; by the hour, 23 intervals, 02:00 skipped."""
    base = {
        "measures": ["vehicles.available.duration.sum", "vehicles.available.avg"],
        "timezone": "Europe/Stockholm",
        "filters": one(zone_geography_id(DST_ZONE)),
    }
    (day,) = api.rows({**base, "interval": "P1D", "start_date": "2026-03-29T00:00"})
    assert day == ["2026-03-29T00:00+01:00", 23 * 3600, 1.0]
    hours = api.rows({**base, "interval": "PT1H", "start_date": "2026-03-29T00:00", "end_date": "2026-03-29T23:00"})
    assert len(hours) == 23
    assert [row[0] for row in hours[1:3]] == ["2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00"]
    assert {tuple(row[1:]) for row in hours} == {(3600, 1.0)}
    skipped = api.post({**base, "interval": "PT1H", "start_date": "2026-03-29T02:00"})
    assert skipped.status_code == 400
    # The vehicle never rode: inactive all 23 hours of the day, and in each of them.
    activity = {**base, "measures": ["dockless.active.avg", "dockless.inactive.avg"], "start_date": "2026-03-29T00:00"}
    assert api.rows({**activity, "interval": "P1D"})[0][1:] == [0.0, 1.0]
    hourly = api.rows({**activity, "interval": "PT1H", "end_date": "2026-03-29T23:00"})
    assert {tuple(row[1:]) for row in hourly} == {(0.0, 1.0)}


def test_geographies_are_mds_geography_objects(api: Api) -> None:
    everything = httpx.get(f"{api.url}/geographies").json()
    GEOGRAPHIES.validate(everything)
    ids = {geography["geography_id"] for geography in everything["geographies"]}
    assert {zone_geography_id(examples.TRIPS), area(examples.TRIPS, "downtown")} <= ids
    one_area = httpx.get(f"{api.url}/geographies/{area(examples.TRIPS, 'downtown')}").json()
    GEOGRAPHY.validate(one_area)
    assert one_area["geography"]["name"] == "Downtown"
    assert httpx.get(f"{api.url}/geographies/{zone_geography_id('nowhere')}").status_code == 404


def test_the_pieces_roll_up_to_the_hourly_marts(api: Api) -> None:
    """One definition: by the hour, the 15-minute pieces give occupancy_hourly's seconds, fewest and most,
    events_hourly's counts and area_trips_hourly's counts and sums, every zone, area, state and type; and the API's
    hourly dockless.deployed figures are the mart's (and so the city report's, which reads them)."""
    path = api.warehouse
    # Each pair holds the same rows (set difference both ways; EXCEPT takes two nulls as equal).
    pairs = {
        "occupancy": (
            "select zone_id, scope, area_id, vehicle_state, hour, round(state_seconds, 3), min_vehicles, max_vehicles "
            "from occupancy_hourly where state_seconds > 0 or max_vehicles > 0",
            "select zone_id, scope, area_id, vehicle_state, time_bucket(interval 1 hour, interval_start) as hour, "
            "round(sum(state_seconds), 3), if(count(*) = 4, min(min_vehicles), 0), max(max_vehicles) "
            "from core.int_metrics_vehicles where vehicle_type = '*' group by all",
        ),
        "events": (
            "select zone_id, scope, area_id, event_type, hour, event_count from events_hourly",
            "select zone_id, scope, area_id, event_type, time_bucket(interval 1 hour, interval_start), "
            "sum(event_count) from core.int_metrics_events where vehicle_type = '*' group by all",
        ),
        "trips": (
            "select zone_id, location, scope, area_id, hour, trip_count, round(coalesce(duration_sum_s, 0), 3), "
            "round(coalesce(distance_sum_m, 0), 3) from area_trips_hourly",
            "select zone_id, location, scope, area_id, time_bucket(interval 1 hour, interval_start), sum(trip_count), "
            "round(sum(duration_sum_s), 3), round(sum(distance_sum_m), 3) from core.int_metrics_trips "
            "where vehicle_type = '*' group by all",
        ),
    }
    differences = {
        name: f"select count(*) from (({mart}) except ({pieces}) union all (({pieces}) except ({mart})))"
        for name, (mart, pieces) in pairs.items()
    }
    with duckdb.connect(str(path), read_only=True) as con:
        assert {name: con.sql(sql).fetchone() for name, sql in differences.items()} == dict.fromkeys(differences, (0,))
        assert con.sql("select count(*) from core.int_metrics_vehicles").fetchone() != (0,)
        mart = con.execute(
            "select avg_vehicles, min_vehicles, max_vehicles from occupancy_hourly where zone_id = $zone "
            "and scope = 'zone' and vehicle_state = 'deployed' order by hour",
            {"zone": examples.DEPLOYED},
        ).fetchall()
    body = {
        "measures": ["dockless.deployed.avg", "dockless.deployed.min", "dockless.deployed.max"],
        "interval": "PT1H",
        "start_date": "2026-03-10T09:00",
        "end_date": "2026-03-10T11:00",
        "filters": one(zone_geography_id(examples.DEPLOYED)),
    }
    assert [tuple(row[1:]) for row in api.rows(body)] == [(pytest.approx(a), b, c) for a, b, c in mart]


def test_answers_equal_the_simulators_truth(built_warehouse: BuiltWarehouse) -> None:
    """The shared city (two zones, ingested over HTTP and built): trips started per zone, vehicle type and hour, and
    their summed durations, as the simulator made them (a count below k = 1, i.e. zero, is -1)."""
    truth = (
        truth_frames(built_warehouse.provider)["trips"]
        .with_columns(pl.col("start_time").dt.truncate("1h").alias("hour"))
        .group_by("zone_id", "vehicle_type", "hour")
        .agg(pl.len().alias("trips"), pl.col("duration_s").sum().alias("seconds"))
    )
    expected = {
        (zone_geography_id(zone), vehicle_type, hour): (trips, seconds)
        for zone, vehicle_type, hour, trips, seconds in truth.iter_rows()
    }
    body = {
        "measures": ["trips.start_loc.count", "trips.start_loc.duration.sum"],
        "interval": "PT1H",
        "start_date": f"{START:%Y-%m-%dT%H:%M}",
        "end_date": f"{END - timedelta(hours=1):%Y-%m-%dT%H:%M}",
        "dimensions": ["geography_id", "vehicle_type"],
        "filters": [{"name": "geography_type", "values": ["zone"]}],
    }
    service = MetricsService(built_warehouse.warehouse.path, built_warehouse.lake, SECRET, k=1)
    with running(service) as url:
        response = Api(url, url, built_warehouse.warehouse.path, built_warehouse.lake).post(body)
    assert response.status_code == 200, response.text
    found = {
        (geography, vehicle_type, datetime.fromisoformat(start)): (count, seconds)
        for start, geography, vehicle_type, count, seconds in response.json()["rows"]
        if count != -1
    }
    assert len(found) > 20
    assert found.keys() == expected.keys()
    for key, (count, seconds) in found.items():
        assert count == expected[key][0], key
        assert seconds == pytest.approx(expected[key][1], abs=count), key  # reported in whole seconds


def simulated_activity(
    built_warehouse: BuiltWarehouse, every: str, length: timedelta, offset: timedelta
) -> dict[Any, float]:
    """dockless.active.avg of each zone and interval of the second day, from the simulator's own state timeline: the
    vehicles on a trip at some time of the interval are active, their seconds in the right of way over the interval's
    are the average. Intervals of `every` ("15m", "1h", "1d": `length` long) starting `offset` after UTC's."""
    day = START + timedelta(days=1)
    states = (
        truth_frames(built_warehouse.provider)["vehicle_states"]
        .filter(pl.col("vehicle_state").is_in(["available", "reserved", "non_operational", "on_trip"]))
        .with_columns(
            pl.col("start_time").clip(lower_bound=day),
            pl.col("end_time").fill_null(END).clip(upper_bound=END),
        )
        .filter(pl.col("end_time") > pl.col("start_time"))
        .with_columns(
            pl.datetime_ranges(
                (pl.col("start_time") - offset).dt.truncate(every) + offset, "end_time", every, closed="left"
            ).alias("interval")
        )
        .explode("interval")
        .with_columns(
            (pl.min_horizontal("end_time", pl.col("interval") + length) - pl.max_horizontal("start_time", "interval"))
            .dt.total_milliseconds()
            .alias("ms")
        )
    )
    riders = states.filter(pl.col("vehicle_state") == "on_trip", pl.col("ms") > 0).select(
        "zone_id", "device_id", "interval"
    )
    active = (
        states.join(riders.unique(), on=["zone_id", "device_id", "interval"], how="semi")
        .group_by("zone_id", "interval")
        .agg((pl.col("ms").sum() / length.total_seconds() / 1000).alias("active"))
    )
    return {(zone_geography_id(zone), start): value for zone, start, value in active.iter_rows()}


def test_activity_equals_the_simulators_truth(built_warehouse: BuiltWarehouse) -> None:
    """The shared city by zone and hour, from the simulator's own state timeline (simulated_activity); active and
    inactive add up to dockless.deployed.avg, and active.percent is active over deployed. The second day only: on
    the first, a vehicle's state before its first event is known to the simulator, not to the data."""
    day = START + timedelta(days=1)
    expected = simulated_activity(built_warehouse, "1h", timedelta(hours=1), timedelta(0))
    body = {
        "measures": [
            "dockless.active.avg",
            "dockless.inactive.avg",
            "dockless.deployed.avg",
            "dockless.utilization.active.percent",
        ],
        "interval": "PT1H",
        "start_date": f"{day:%Y-%m-%dT%H:%M}",
        "end_date": f"{END - timedelta(hours=1):%Y-%m-%dT%H:%M}",
        "dimensions": ["geography_id"],
        "filters": [{"name": "geography_type", "values": ["zone"]}],
    }
    service = MetricsService(built_warehouse.warehouse.path, built_warehouse.lake, SECRET, k=10)
    with running(service) as url:
        client = Api(url, url, built_warehouse.warehouse.path, built_warehouse.lake)
        rows = client.rows(body)
        by_type = client.rows({**body, "dimensions": ["geography_id", "vehicle_type"]})
    assert len(rows) == 2 * 24
    # Each vehicle type's share adds up to the whole.
    summed: dict[tuple[Any, ...], list[float]] = {}
    for start, geography, _, active, inactive, deployed, _ in by_type:
        totals = summed.setdefault((start, geography), [0.0, 0.0, 0.0])
        for i, value in enumerate((active, inactive, deployed)):
            totals[i] += value
    assert {key: pytest.approx(value) for key, value in summed.items()} == {
        (start, geography): [active, inactive, deployed] for start, geography, active, inactive, deployed, _ in rows
    }
    assert len({row[2] for row in by_type}) > 1
    found = {(geography, datetime.fromisoformat(start)): active for start, geography, active, *_ in rows}
    assert found == pytest.approx({key: expected.get(key, 0.0) for key in found}, abs=1e-6)
    starts = {start for _, start in found}  # and no geography the truth saw riding then is missing
    assert {key for key, value in expected.items() if value > 0 and key[1] in starts} <= found.keys()
    assert sum(1 for value in found.values() if value > 0) > 30
    for _, _, active, inactive, deployed, share in rows:
        assert active + inactive == pytest.approx(deployed)
        assert share == (pytest.approx(active / deployed) if deployed > 0 else "")
    assert any(0 < active < deployed for _, _, active, _, deployed, _ in rows)


def test_activity_of_every_interval_equals_the_simulators_truth(built_warehouse: BuiltWarehouse) -> None:
    """dockless.active.avg of the shared city by zone equals the simulator's truth (simulated_activity) for every
    interval: 15 minutes and hours starting on each other quarter (Asia/Kathmandu's hours start at a quarter past
    UTC's, Asia/Kolkata's at half past), summed from the stored pieces, and days, read from the state timeline."""
    day = START + timedelta(days=1)
    cases = [
        ("PT15M", "UTC", "15m", timedelta(minutes=15), timedelta(0)),
        ("PT1H", "Asia/Kathmandu", "1h", timedelta(hours=1), timedelta(minutes=15)),
        ("PT1H", "Asia/Kolkata", "1h", timedelta(hours=1), timedelta(minutes=30)),
        ("P1D", "UTC", "1d", timedelta(days=1), timedelta(0)),
    ]
    service = MetricsService(built_warehouse.warehouse.path, built_warehouse.lake, SECRET, k=10)
    with running(service) as url:
        client = Api(url, url, built_warehouse.warehouse.path, built_warehouse.lake)
        for interval, timezone, every, length, offset in cases:
            local = ZoneInfo(timezone)
            body = {
                "measures": ["dockless.active.avg", "dockless.inactive.avg", "dockless.deployed.avg"],
                "interval": interval,
                "timezone": timezone,
                "start_date": f"{(day + offset).astimezone(local):%Y-%m-%dT%H:%M}",
                "end_date": f"{(END - length).astimezone(local):%Y-%m-%dT%H:%M}",
                "dimensions": ["geography_id"],
                "filters": [{"name": "geography_type", "values": ["zone"]}],
            }
            rows = client.rows(body)
            # Two zones, each interval of the second day that the data covers whole.
            assert len(rows) == 2 * ((END - day - offset) // length), interval
            expected = simulated_activity(built_warehouse, every, length, offset)
            found = {(geography, datetime.fromisoformat(start)): active for start, geography, active, *_ in rows}
            assert found == pytest.approx({key: expected.get(key, 0.0) for key in found}, abs=1e-6), interval
            starts = {start for _, start in found}  # and no geography the truth saw riding then is missing
            assert {key for key, value in expected.items() if value > 0 and key[1] in starts} <= found.keys()
            assert sum(1 for value in found.values() if value > 0) >= len(found) // 2, interval
            for _, _, active, inactive, deployed in rows:
                assert active + inactive == pytest.approx(deployed)


def test_the_activity_pieces_equal_the_state_timeline(
    built_warehouse: BuiltWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two ways the activity measures are answered agree: every hour of the shared city in every zone and area,
    from core.int_metrics_activity's pieces and from each vehicle's state timeline at query time (the way of days
    and months, here over 48 intervals, states running over several of them)."""
    body = {
        "measures": ["dockless.active.avg", "dockless.inactive.avg", "dockless.utilization.active.percent"],
        "interval": "PT1H",
        "start_date": f"{START:%Y-%m-%dT%H:%M}",
        "end_date": f"{END - timedelta(hours=1):%Y-%m-%dT%H:%M}",
        "dimensions": ["geography_id"],
    }
    service = MetricsService(built_warehouse.warehouse.path, built_warehouse.lake, SECRET, k=10)
    from_pieces = service.query(body, Grant(provider_id=None))["rows"]
    monkeypatch.setattr(metrics_query, "ACTIVE_PIECE_INTERVALS", ())
    from_timeline = service.query(body, Grant(provider_id=None))["rows"]
    assert len(from_pieces) > 100
    assert [row[:2] for row in from_pieces] == [row[:2] for row in from_timeline]
    for pieces_row, timeline_row in zip(from_pieces, from_timeline, strict=True):
        # The timeline's seconds are differences of epoch doubles, the pieces' whole milliseconds.
        expected = [value if value == "" else pytest.approx(value, rel=1e-6, abs=1e-9) for value in timeline_row[2:]]
        assert pieces_row[2:] == expected, pieces_row[:2]
    assert sum(1 for row in from_pieces if 0 < row[2] < row[2] + row[3]) > 50


LAGGING_ZONE = "145"  # the shared city's second zone, its last three hours not yet delivered
LAGGING_HORIZON = END - timedelta(hours=3)


def kathmandu_hours_by_zone(first: datetime, last: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every kind of measure by zone, PT1H in Asia/Kathmandu (its hours start at a quarter past UTC's) from the hour
    starting at `first` to the one starting at `last`; and the same summed over both zones in one row (a minimum
    over two zones is refused: it is not the sum of theirs, so dockless.deployed.min is left out)."""
    kathmandu = ZoneInfo("Asia/Kathmandu")
    by_zone: dict[str, Any] = {
        "measures": [
            "dockless.active.avg",
            "dockless.inactive.avg",
            "dockless.deployed.avg",
            "dockless.deployed.min",
            "dockless.utilization.active.percent",
            "vehicles.available.duration.sum",
            "events.trip_start.count",
            "trips.end_loc.count",
        ],
        "interval": "PT1H",
        "timezone": "Asia/Kathmandu",
        "start_date": f"{first.astimezone(kathmandu):%Y-%m-%dT%H:%M}",
        "end_date": f"{last.astimezone(kathmandu):%Y-%m-%dT%H:%M}",
        "dimensions": ["geography_id"],
        "filters": [{"name": "geography_type", "values": ["zone"]}],
    }
    measures = [measure for measure in by_zone["measures"] if measure != "dockless.deployed.min"]
    return by_zone, {**by_zone, "measures": measures, "dimensions": [], "filters": []}


@pytest.fixture(scope="module")
def lagging_city(built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared city as it stands when zone 145's last three hours are late (every hourly dataset of them, raw
    and quarantine included, not yet in the lake) while zone 1's are in: built in full, the warehouse file."""
    root = tmp_path_factory.mktemp("lagging-city")
    lake = Path(shutil.copytree(built_warehouse.lake, root / "lake"))
    late = [LAGGING_HORIZON + timedelta(hours=i) for i in range(3)]
    for hour in late:
        for folder in lake.rglob(f"zone_id={LAGGING_ZONE}/date={hour:%Y-%m-%d}/hour={hour:%H}"):
            shutil.rmtree(folder)
    warehouse = Warehouse(root / "warehouse.duckdb", lake)
    warehouse.build()
    horizons = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        found = dict(horizons.sql("select zone_id, horizon from core.int_zone_horizons").fetchall())
    finally:
        horizons.close()
    assert found == {"1": END, LAGGING_ZONE: LAGGING_HORIZON}
    return warehouse.path


@pytest.mark.slow
def test_an_interval_a_zone_has_not_wholly_delivered_is_not_known_there(
    built_warehouse: BuiltWarehouse, lagging_city: Path
) -> None:
    """Unknown is not zero: with zone 145 three hours behind zone 1, every measure of every interval zone 145 has
    not wholly delivered (Asia/Kathmandu's hours start at a quarter past UTC's, so one straddles its horizon) is ""
    for zone 145, and for every row that sums it with zone 1; zone 1's rows and zone 145's whole intervals are what
    the city answers once every hour is in (its activity the simulator's); an interval after every zone's horizon is
    still left out, as before."""
    first = START + timedelta(days=1, minutes=15)
    body, summed = kathmandu_hours_by_zone(first, END - timedelta(minutes=45))
    lagging = zone_geography_id(LAGGING_ZONE)
    with (
        running(MetricsService(built_warehouse.warehouse.path, built_warehouse.lake, SECRET, k=1)) as complete_url,
        running(MetricsService(lagging_city, built_warehouse.lake, SECRET, k=1)) as lagging_url,
    ):
        client = Api(lagging_url, lagging_url, lagging_city, built_warehouse.lake)
        rows, complete = client.rows(body), client.rows(body, url=complete_url)
        rows_summed, complete_summed = client.rows(summed), client.rows(summed, url=complete_url)
    starts = [first + timedelta(hours=i) for i in range(23)]  # 00:15 to 22:15 UTC: 23:15 runs past every horizon
    assert [datetime.fromisoformat(row[0]) for row in rows[::2]] == starts
    assert [row[:2] for row in rows] == [row[:2] for row in complete if datetime.fromisoformat(row[0]) in starts]
    unknown = [LAGGING_HORIZON - timedelta(minutes=45) + timedelta(hours=i) for i in range(3)]  # 20:15 to 22:15
    not_known = [[""] * len(body["measures"])] * len(unknown)
    assert [row[2:] for row in rows if row[1] == lagging and datetime.fromisoformat(row[0]) in unknown] == not_known
    summed_not_known = [[""] * len(summed["measures"])] * len(unknown)
    assert [row[1:] for row in rows_summed if datetime.fromisoformat(row[0]) in unknown] == summed_not_known
    known = [row for row in rows if row[1] != lagging or datetime.fromisoformat(row[0]) not in unknown]
    assert len(known) == 2 * len(starts) - len(unknown)
    assert all("" not in row[2:5] for row in known)
    assert known == [row for row in complete if row[:2] in [found[:2] for found in known]]
    assert [row for row in rows_summed if datetime.fromisoformat(row[0]) not in unknown] == [
        row for row in complete_summed if datetime.fromisoformat(row[0]) in starts[: -len(unknown)]
    ]
    expected = simulated_activity(built_warehouse, "1h", timedelta(hours=1), timedelta(minutes=15))
    active = {(geography, datetime.fromisoformat(start)): value for start, geography, value, *_ in known}
    assert active == pytest.approx({key: expected.get(key, 0.0) for key in active}, abs=1e-6)
    assert sum(1 for key, value in active.items() if key[0] == lagging and value > 0) > 10


GAP_HOUR = START + timedelta(hours=30)  # an hour zone 145 never delivered, in the middle of its history
QUIET_HOUR = START + timedelta(hours=20)  # an hour zone 145 delivered without a trip


@pytest.fixture(scope="module")
def gapped_city(built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared city with zone 145's first two hours and one hour of its second day never delivered (every hourly
    dataset of them, raw and quarantine included, not in the lake), and its trips of another hour delivered empty:
    built in full, the warehouse file."""
    root = tmp_path_factory.mktemp("gapped-city")
    lake = Path(shutil.copytree(built_warehouse.lake, root / "lake"))
    for hour in (START, START + timedelta(hours=1), GAP_HOUR):
        for folder in lake.rglob(f"zone_id={LAGGING_ZONE}/date={hour:%Y-%m-%d}/hour={hour:%H}"):
            shutil.rmtree(folder)
    quiet = list((lake / "mds_trips").glob(f"zone_id={LAGGING_ZONE}/date={QUIET_HOUR:%Y-%m-%d}/hour={QUIET_HOUR:%H}/*"))
    assert quiet
    for path in quiet:
        trips = pq.read_table(path)
        assert trips.num_rows > 0
        pq.write_table(trips.slice(0, 0), path)
    warehouse = Warehouse(root / "warehouse.duckdb", lake)
    warehouse.build()
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        found = con.sql("select zone_id, first_hour, horizon from core.int_zone_horizons order by zone_id").fetchall()
        quiet_trips = con.sql(
            "select records from core.int_hourly_partitions where dataset = 'mds_trips' and zone_id = $zone "
            "and partition_hour = $hour",
            params={"zone": LAGGING_ZONE, "hour": QUIET_HOUR},
        ).fetchall()
    finally:
        con.close()
    assert found == [("1", START, END), (LAGGING_ZONE, START + timedelta(hours=2), END)]
    assert quiet_trips == [(0,)]
    return warehouse.path


@pytest.mark.slow
def test_an_interval_overlapping_an_hour_a_zone_never_delivered_is_not_known_there(
    built_warehouse: BuiltWarehouse, gapped_city: Path
) -> None:
    """Unknown is not zero, within a zone's history too: every measure of every interval overlapping an hour zone
    145 did not deliver (Asia/Kathmandu's hours start at a quarter past UTC's, so two overlap it), or before its first
    delivered hour while zone 1 had delivered it, is "" for zone 145 and for the rows that sum it with zone 1; an
    hour it delivered without a trip stays known; zone 1's rows are what the complete city answers."""
    first = START + timedelta(minutes=15)
    body, summed = kathmandu_hours_by_zone(first, first + timedelta(hours=35))
    gapped = zone_geography_id(LAGGING_ZONE)
    with (
        running(MetricsService(built_warehouse.warehouse.path, built_warehouse.lake, SECRET, k=1)) as complete_url,
        running(MetricsService(gapped_city, built_warehouse.lake, SECRET, k=1)) as gapped_url,
    ):
        client = Api(gapped_url, gapped_url, gapped_city, built_warehouse.lake)
        rows, complete = client.rows(body), client.rows(body, url=complete_url)
        rows_summed = client.rows(summed)
    starts = [first + timedelta(hours=i) for i in range(36)]
    assert [datetime.fromisoformat(row[0]) for row in rows[::2]] == starts
    assert [row[:2] for row in rows] == [row[:2] for row in complete]
    # Before zone 145's first delivered hour (00:00 to 02:00 UTC), and around the hour it never delivered.
    unknown = [first, first + timedelta(hours=1), GAP_HOUR - timedelta(minutes=45), GAP_HOUR + timedelta(minutes=15)]
    in_unknown = [datetime.fromisoformat(row[0]) in unknown for row in rows_summed]
    assert [row[1:] for row, hidden in zip(rows_summed, in_unknown, strict=True) if hidden] == [
        [""] * len(summed["measures"])
    ] * len(unknown)
    assert all("" not in row[1:4] for row, hidden in zip(rows_summed, in_unknown, strict=True) if not hidden)
    of_gapped = {datetime.fromisoformat(row[0]): row[2:] for row in rows if row[1] == gapped}
    assert {start for start, values in of_gapped.items() if values == [""] * len(body["measures"])} == set(unknown)
    assert all("" not in values[:3] for start, values in of_gapped.items() if start not in unknown)
    # The hour delivered without a trip is known, in each interval it overlaps.
    quiet = QUIET_HOUR + timedelta(minutes=15)
    assert "" not in of_gapped[quiet] + of_gapped[quiet - timedelta(hours=1)]
    assert [row for row in rows if row[1] != gapped] == [row for row in complete if row[1] != gapped]


@pytest.mark.slow
def test_fleetlake_serve_answers_from_the_command_line(api: Api, tmp_path: Path) -> None:
    """The real command: `fleetlake serve` started in its own process over the examples' warehouse answers
    discovery and a query with the k configured, refuses a request without a token, and stops on Ctrl-C."""
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("FLEETLAKE_")},
        "FLEETLAKE_WAREHOUSE": str(api.warehouse),
        "FLEETLAKE_LAKE_DIR": str(api.lake),
        "FLEETLAKE_METRICS_JWT_SECRET": SECRET,
        "FLEETLAKE_METRICS_K": "3",
        "FLEETLAKE_LOG_FILE": str(tmp_path / "fleetlake.log"),
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "fleetlake"), "serve", "--port", "0"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    said: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not (started := re.search(r"MDS Metrics API on (http://[\d.]+:\d+)/metrics", "".join(said))):
            assert process.poll() is None and time.monotonic() < deadline, "".join(said)
            with contextlib.suppress(queue.Empty):
                said.append(lines.get(timeout=0.1))
        url = started.group(1)
        token = {"Authorization": f"Bearer {issue_token(SECRET)}"}
        discovery = httpx.get(f"{url}/metrics", headers=token, timeout=60)
        assert discovery.status_code == 200
        DISCOVERY.validate(discovery.json())
        body = {
            "measures": ["dockless.deployed.avg", "trips.start_loc.count"],
            "interval": "PT15M",
            "start_date": "2026-03-10T10:00",
            "filters": one(area(examples.DEPLOYED)),
        }
        answer = Api(url, url, api.warehouse, api.lake).post(body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["query"]["k_value"] == 3
        assert answer.json()["rows"][0][1:] == [pytest.approx(2.2), -1]
        assert httpx.post(f"{url}/metrics", json=body, timeout=60).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=60)
    reader.join(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
    while not lines.empty():
        said.append(lines.get())
    output = "".join(said)
    # Stopped as Ctrl-C stops it: a clean shutdown, then the status of a program ended by SIGINT (128 + 2).
    assert returncode == 128 + signal.SIGINT, output
    assert "Finished server process" in output and "Traceback" not in output
    assert "MDS Metrics API on http://127.0.0.1" in output


def test_percentages_are_fractions_the_daily_mart_gives_in_percent(built_warehouse: BuiltWarehouse) -> None:
    """The shared city's whole local day (29 March, 23 hours in its time zone): the API's idle share is the
    fraction the methodology prints (0.98), fleet_utilization_daily's idle_percent the same in percent; trips per
    vehicle agree too."""
    with duckdb.connect(str(built_warehouse.warehouse.path), read_only=True) as con:
        days = con.sql(
            "select zone_id, timezone, idle_percent, trips_per_vehicle_avg from fleet_utilization_daily "
            "where local_date = '2026-03-29' order by zone_id"
        ).fetchall()
    assert len(days) == 2
    service = MetricsService(built_warehouse.warehouse.path, built_warehouse.lake, SECRET, k=1)
    with running(service) as url:
        client = Api(url, url, built_warehouse.warehouse.path, built_warehouse.lake)
        for zone, timezone, idle_percent, trips_per_vehicle in days:
            body = {
                "measures": ["dockless.utilization.idle.percent", "dockless.utilization.trips_per_vehicle.avg"],
                "interval": "P1D",
                "start_date": "2026-03-29T00:00",
                "timezone": timezone,
                "filters": one(zone_geography_id(zone)),
            }
            (row,) = client.rows(body)
            assert 0 < row[1] < 1
            assert 100 * row[1] == pytest.approx(idle_percent)
            assert row[2] == pytest.approx(trips_per_vehicle)


def test_an_answer_cell_is_the_number_minus_one_where_redacted_and_empty_where_not_known() -> None:
    """The JSON text of a measure's column: each number reads back as itself, a redacted cell is -1 whatever it
    holds (a NaN behind it included), an unknown one is "", and a number shown that is not finite is refused."""
    values = pl.Series([1.5, float("nan"), None, 1e-5, 1e16, 0.1 + 0.2])
    text = _as_json(values, pl.Series([False, True, False, False, False, False]))
    assert [json.loads(cell) for cell in text] == [1.5, -1, "", 1e-5, 1e16, 0.1 + 0.2]
    with pytest.raises(ValueError, match="not JSON compliant"):
        _as_json(pl.Series([1.0, float("inf")]), None)
