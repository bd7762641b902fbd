"""The embedded provider's insurance trips (`/v1/partner-apis/insurance/{zone}/trips`): the seed's shape, media type
and auth, the same trips as MDS 2.0 serves for the hour, and every field equal to the ground truth."""

from datetime import timedelta
from typing import Any

import httpx
import polars as pl
import pytest
from jsonschema import Draft7Validator

from fleetlake_provider import insurance
from fleetlake_provider.service import SimulatedProvider
from tests.conftest import MDS_ACCEPT, START, bearer, make_provider

Json = dict[str, Any]
HOUR = START + timedelta(hours=10)
HOUR_PARAM = f"{HOUR:%Y-%m-%dT%H}"
ACCEPT = "application/vnd.insurance+json;version=2.0"
LOCATION = {
    "type": "object",
    "required": ["lat", "lng"],
    "properties": {"lat": {"type": "number"}, "lng": {"type": "number"}},
}
SEED_TRIP = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "accessibility_attributes", "city", "country", "device_id", "duration", "start_location", "start_time",
        "end_location", "end_time", "is_group_ride", "license_plate", "license_plate_id", "provider_id",
        "ride_type", "trip_id", "trip_type", "user_ride_count", "vehicle_short_id",
    ],
    "properties": {
        "accessibility_attributes": {"type": "array"},
        "city": {"type": "string"},
        "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "device_id": {"type": "string", "format": "uuid"},
        "duration": {"type": "integer", "minimum": 0},
        "start_location": LOCATION,
        "start_time": {"type": "integer"},
        "end_location": LOCATION,
        "end_time": {"type": "integer"},
        "is_group_ride": {"type": "boolean"},
        "license_plate": {"type": "string"},
        "license_plate_id": {"type": "string", "format": "uuid"},
        "provider_id": {"type": "string", "format": "uuid"},
        "ride_type": {"enum": ["solo", "group-host", "group-guest"]},
        "trip_id": {"type": "string", "format": "uuid"},
        "trip_type": {"type": "array", "items": {"enum": ["rider", "voi", "maas"]}},
        "user_ride_count": {"type": "integer", "minimum": 1},
        "vehicle_short_id": {"type": "string"},
    },
}  # fmt: skip
"""The seed's "Insurance providers" trips table as a JSON Schema (every field it lists, with its type)."""
SEED_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["last_updated", "version", "trips"],
    "properties": {
        "last_updated": {"type": "integer"},
        "version": {"const": "2.0.0"},
        "trips": {"type": "array", "items": SEED_TRIP},
    },
}


def get(http: httpx.Client, path: str, accept: str = ACCEPT, **params: str) -> httpx.Response:
    headers = bearer(http) | {"Accept": accept}
    return http.get(path, params=params, headers=headers)


def test_trips_have_the_seeds_shape_and_media_type(http: httpx.Client) -> None:
    response = get(http, "/v1/partner-apis/insurance/145/trips", end_time=HOUR_PARAM)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ACCEPT
    body: Json = response.json()
    validator = Draft7Validator(SEED_BODY, format_checker=Draft7Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(body)] == []
    assert body["trips"], "a busy Berlin hour has trips"
    assert {t["city"] for t in body["trips"]} == {"Berlin"}
    assert {t["country"] for t in body["trips"]} == {"DE"}
    assert all(t["trip_type"] == ["rider", "voi"] for t in body["trips"])


def test_other_media_types_no_token_and_a_future_hour_are_refused(http: httpx.Client) -> None:
    path = "/v1/partner-apis/insurance/1/trips"
    assert get(http, path, accept=MDS_ACCEPT, end_time=HOUR_PARAM).status_code == 406
    assert get(http, path, accept="application/json", end_time=HOUR_PARAM).status_code == 406
    no_token = http.get(path, params={"end_time": HOUR_PARAM}, headers={"Accept": ACCEPT})
    assert no_token.status_code == 401
    assert get(http, path, end_time="2030-01-01T00").status_code == 404
    assert get(http, path).status_code == 400


def test_the_same_trips_as_mds_with_the_truths_insurance_fields(
    http: httpx.Client, provider: SimulatedProvider
) -> None:
    truth = insurance.insurance_truth(provider)
    for zone in ("1", "145"):
        served = get(http, f"/v1/partner-apis/insurance/{zone}/trips", end_time=HOUR_PARAM).json()["trips"]
        mds = get(http, f"/v1/partner-apis/mds/{zone}/trips", accept=MDS_ACCEPT, end_time=HOUR_PARAM).json()
        assert sorted(t["trip_id"] for t in served) == sorted(t["trip_id"] for t in mds["trips"])
        by_id = {t["trip_id"]: t for t in mds["trips"]}
        for trip in served:
            twin = by_id[trip["trip_id"]]
            for field in ("device_id", "provider_id", "start_time", "end_time", "start_location", "end_location"):
                assert trip[field] == twin[field], field
            assert trip["duration"] == round(twin["duration"])
        expected = truth.filter(zone_id=zone).filter(
            pl.col("end_time").is_between(HOUR, HOUR + timedelta(hours=1), "left")
        )
        assert expected.height == len(served)
        for row in expected.iter_rows(named=True):
            trip = next(t for t in served if t["trip_id"] == row["trip_id"])
            for field in insurance.RIDER_COLUMNS:
                assert trip[field] == row[field], field
            assert trip["end_time"] == int(row["end_time"].timestamp() * 1000)


def test_a_vehicle_keeps_its_plate_and_every_ride_count_is_positive(provider: SimulatedProvider) -> None:
    truth = insurance.insurance_truth(provider)
    plates = truth.group_by("device_id").agg(
        pl.col("license_plate").n_unique().alias("plates"), pl.col("license_plate_id").n_unique().alias("ids")
    )
    assert plates["plates"].max() == 1 and plates["ids"].max() == 1
    assert truth["license_plate"].n_unique() == truth["device_id"].n_unique()
    assert truth["license_plate"].str.contains(r"^\d{4}-[a-zü]+\d-\d{3}[a-z]{3}$").all()
    assert (truth["user_ride_count"] >= 1).all()
    assert set(truth["ride_type"]) == {"solo"} and not truth["is_group_ride"].any()


def test_group_rides_are_an_option() -> None:
    grouped = insurance.insurance_truth(make_provider(days=1, vehicles=40, insurance_group_share=0.3))
    share = grouped["is_group_ride"].mean()
    assert isinstance(share, float) and 0.2 < share < 0.4
    assert set(grouped.filter(is_group_ride=True)["ride_type"]) == {"group-host", "group-guest"}
    assert set(grouped.filter(is_group_ride=False)["ride_type"]) == {"solo"}


@pytest.mark.parametrize("timezone, country", [("Europe/Stockholm", "SE"), ("Europe/Paris", "FR"), ("Mars/Base", None)])
def test_country_comes_from_the_time_zone_database(timezone: str, country: str | None) -> None:
    assert insurance.country_of(timezone) == country


def test_the_feed_is_the_same_story_at_every_call() -> None:
    first, second = (make_provider(days=1, vehicles=30) for _ in range(2))
    assert insurance.insurance_truth(first).equals(insurance.insurance_truth(second))
