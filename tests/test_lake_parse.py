"""Parsing: every record of a response is kept, quarantined with its reason, or counted as a duplicate.

The real samples (Voi Marseille GBFS 2.3, TIER Oslo GBFS 2.3, Check Almere GBFS 3.0, the gbfs-json-schema test
fixtures) must go through with nothing lost; the Voi documentation examples (MDS 2.0 and the zone API) must land in
the right columns; hand-made bad records must be quarantined one by one without harming their neighbours.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
import shapely
from polars.testing import assert_frame_equal

from pipelines.lake.datasets import DATASETS, UTC_MS, Parsed, PayloadError, parse, raw_records
from tests.conftest import SPECS

SAMPLES = SPECS / "samples"
GBFS_SAMPLE_DIRS = (
    "voi-marseille-gbfs2.3",
    "otp-tier-oslo-gbfs2.3",
    "otp-ridecheck-almere-gbfs3.0",
    "gbfs-json-schema-testFixtures/v2.3",
    "gbfs-json-schema-testFixtures/v3.0",
)
# GBFS file name -> the lake dataset it feeds.
FEEDS = {
    "free_bike_status": "gbfs_vehicle_status",
    "vehicle_status": "gbfs_vehicle_status",
    "station_status": "gbfs_station_status",
    "station_information": "gbfs_station_information",
    "geofencing_zones": "gbfs_geofencing_zones",
    "vehicle_types": "gbfs_vehicle_types",
    "system_information": "gbfs_system_information",
    "system_pricing_plans": "gbfs_pricing_plans",
}
# GBFS files we do not ingest: discovery documents and feeds the lake has no dataset for.
NOT_INGESTED = frozenset(
    {"gbfs", "gbfs_versions", "manifest", "system_alerts", "system_calendar", "system_hours", "system_regions"}
)
# Where the records sit in each dataset's documents, read with the standard library (independently of the parser).
RECORD_LISTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "gbfs_vehicle_status": (("data", "vehicles"), ("data", "bikes")),
    "gbfs_station_status": (("data", "stations"),),
    "gbfs_station_information": (("data", "stations"),),
    "gbfs_geofencing_zones": (("data", "geofencing_zones", "features"),),
    "gbfs_vehicle_types": (("data", "vehicle_types"),),
    "gbfs_pricing_plans": (("data", "plans"),),
}

HOUR = datetime(2026, 3, 28, 10, tzinfo=UTC)
WINDOW = (HOUR, HOUR + timedelta(hours=1))
HOUR_MS = int(HOUR.timestamp() * 1000)


def sample_files() -> list[Path]:
    return sorted(f for d in GBFS_SAMPLE_DIRS for f in (SAMPLES / d).glob("*.json"))


def ingested_samples() -> list[Path]:
    return [f for f in sample_files() if f.stem in FEEDS]


def sample_id(path: Path) -> str:
    return str(path.relative_to(SAMPLES))


def source_records(dataset: str, document: dict[str, Any]) -> list[Any]:
    if dataset == "gbfs_system_information":
        return [document["data"]]
    for path in RECORD_LISTS[dataset]:
        node: Any = document
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            assert isinstance(node, list)
            records: list[Any] = node
            if dataset == "gbfs_geofencing_zones" and "global_rules" in document["data"]:
                # GBFS 3.0 global rules land as one more row, without geometry (scope "global").
                records = [
                    *records,
                    {
                        "type": "GlobalRules",
                        "geometry": None,
                        "properties": {"rules": document["data"]["global_rules"]},
                    },
                ]
            return records
    raise AssertionError(f"no record list for {dataset}")


def parse_sample(relative: str) -> tuple[Parsed, list[Any]]:
    path = SAMPLES / relative
    dataset = FEEDS[path.stem]
    parsed = parse(DATASETS[dataset], [path.read_bytes()])
    return parsed, source_records(dataset, json.loads(path.read_bytes()))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def from_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def same_shape(wkb: bytes | None, geojson: dict[str, Any]) -> bool:
    assert wkb is not None
    return bool(shapely.equals_exact(shapely.from_wkb(wkb), shapely.from_geojson(json.dumps(geojson)), tolerance=0))


# --- Real samples: nothing lost -----------------------------------------------------------------------------------


def test_every_sample_file_is_either_ingested_or_explicitly_skipped() -> None:
    files = sample_files()
    assert files, f"no GBFS samples under {SAMPLES}"
    unknown = sorted(sample_id(f) for f in files if f.stem not in FEEDS and f.stem not in NOT_INGESTED)
    assert unknown == [], "map these sample files to a dataset or list them in NOT_INGESTED"
    covered = {FEEDS[f.stem] for f in ingested_samples()}
    assert covered == set(FEEDS.values())
    assert set(FEEDS.values()) <= set(DATASETS)


@pytest.mark.parametrize("path", ingested_samples(), ids=sample_id)
def test_real_sample_parses_without_losing_a_record(path: Path) -> None:
    dataset = FEEDS[path.stem]
    parsed = parse(DATASETS[dataset], [path.read_bytes()])
    expected = source_records(dataset, json.loads(path.read_bytes()))

    assert parsed.received == len(expected) > 0
    assert parsed.frame.height + len(parsed.quarantined) + parsed.duplicates == parsed.received
    # Every record of these real feeds is valid (quirks included): none may be rejected or deduplicated away.
    assert [(q.index, q.reason) for q in parsed.quarantined] == []
    assert parsed.duplicates == 0
    assert parsed.frame.height == len(expected)
    assert parsed.frame.schema == pl.Schema(DATASETS[dataset].schema)


def test_voi_marseille_free_bike_status_gbfs_2_3() -> None:
    parsed, bikes = parse_sample("voi-marseille-gbfs2.3/free_bike_status.json")
    frame = parsed.frame
    assert frame.height == len(bikes) == 1466

    first = frame.row(0, named=True)
    assert first == {
        "vehicle_id": "10a0f7c3-0507-447f-b5c4-c10c88b1081b",
        "lat": 43.294565,
        "lon": 5.383244,
        "is_reserved": False,
        "is_disabled": False,
        "vehicle_type_id": "voi_scooter",
        # GBFS 2.x POSIX seconds: 1699003875 is 2023-11-03T09:31:15Z.
        "last_reported": utc(2023, 11, 3, 9, 31, 15),
        "current_range_meters": 12250.0,
        "current_fuel_percent": None,
        "station_id": None,
        "pricing_plan_id": "plan-scooter-66",
    }
    # Column by column, every bike as sent.
    assert frame["vehicle_id"].to_list() == [b["bike_id"] for b in bikes]
    assert frame["lat"].to_list() == [b["lat"] for b in bikes]
    assert frame["lon"].to_list() == [b["lon"] for b in bikes]
    assert frame["is_disabled"].to_list() == [b["is_disabled"] for b in bikes]
    assert frame["is_reserved"].to_list() == [b["is_reserved"] for b in bikes]
    assert frame["last_reported"].to_list() == [from_seconds(b["last_reported"]) for b in bikes]
    assert frame["current_range_meters"].to_list() == [float(b["current_range_meters"]) for b in bikes]
    assert frame["station_id"].to_list() == [b.get("station_id") for b in bikes]
    assert frame["station_id"].drop_nulls().len() == 8
    assert frame["vehicle_id"].n_unique() == 1466


@pytest.mark.parametrize(
    "relative",
    [
        "otp-ridecheck-almere-gbfs3.0/vehicle_status.json",
        "gbfs-json-schema-testFixtures/v3.0/vehicle_status.json",
        "gbfs-json-schema-testFixtures/v2.3/free_bike_status.json",
    ],
)
def test_vehicle_status_values_match_the_source(relative: str) -> None:
    parsed, vehicles = parse_sample(relative)
    frame = parsed.frame
    assert frame["vehicle_id"].to_list() == [v.get("vehicle_id", v.get("bike_id")) for v in vehicles]
    assert frame["lat"].to_list() == [v["lat"] for v in vehicles]
    assert frame["lon"].to_list() == [v["lon"] for v in vehicles]
    assert frame["is_reserved"].to_list() == [v["is_reserved"] for v in vehicles]
    assert frame["is_disabled"].to_list() == [v["is_disabled"] for v in vehicles]
    assert frame["vehicle_type_id"].to_list() == [v["vehicle_type_id"] for v in vehicles]
    assert frame["current_range_meters"].to_list() == [float(v["current_range_meters"]) for v in vehicles]


def test_almere_vehicle_status_keeps_reserved_and_disabled_flags() -> None:
    parsed, _ = parse_sample("otp-ridecheck-almere-gbfs3.0/vehicle_status.json")
    frame = parsed.frame
    assert frame.filter(pl.col("is_reserved"))["vehicle_id"].to_list() == ["d0a4bf4e-81b4-479c-a9f6-712ee44564f3"]
    assert frame.filter(pl.col("is_disabled"))["vehicle_id"].to_list() == ["526774a3-6243-40b6-b632-a9e0e16745c6"]


@pytest.mark.parametrize(
    "relative",
    [
        "otp-tier-oslo-gbfs2.3/geofencing_zones.json",
        "otp-ridecheck-almere-gbfs3.0/geofencing_zones.json",
        "gbfs-json-schema-testFixtures/v2.3/geofencing_zones.json",
        "gbfs-json-schema-testFixtures/v3.0/geofencing_zones.json",
    ],
)
def test_geofencing_geometry_round_trips_through_wkb(relative: str) -> None:
    parsed, features = parse_sample(relative)
    rows = parsed.frame.to_dicts()
    assert len(rows) == len(features)
    for row, feature in zip(rows, features, strict=True):
        if feature["geometry"] is None:
            assert row["geometry"] is None
        else:
            assert same_shape(row["geometry"], feature["geometry"]), feature["properties"]
        assert len(row["rules"]) == len(feature["properties"].get("rules", []))


def test_almere_null_geometry_features_are_kept_with_null_wkb() -> None:
    parsed, features = parse_sample("otp-ridecheck-almere-gbfs3.0/geofencing_zones.json")
    frame = parsed.frame.filter(pl.col("scope") == "zone")
    assert frame.height == 16
    nulls = frame.with_row_index().filter(pl.col("geometry").is_null())
    assert nulls["index"].to_list() == [6, 7]
    assert nulls["name"].to_list() == ["Nobelhorst", "Almere Muziekwijk hubs"]
    assert nulls["rules"].to_list()[0] == [
        {
            "vehicle_type_ids": ["check_moped_almere_60"],
            "ride_start_allowed": True,
            "ride_end_allowed": True,
            "ride_through_allowed": True,
            "maximum_speed_kph": None,
            "station_parking": None,
        }
    ]
    # GBFS 3.0 localized names: the English text.
    assert frame["name"][13] == "Almere Stad"
    first = frame.row(0, named=True)
    assert first["name"] == "Hub Bergnet"
    assert first["rules"][0]["ride_end_allowed"] is False
    assert first["rules"][0]["ride_start_allowed"] is True
    assert shapely.from_wkb(first["geometry"]).geom_type == "MultiPolygon"
    assert same_shape(first["geometry"], features[0]["geometry"])


def test_global_rules_land_as_one_row_without_geometry() -> None:
    path = SAMPLES / "otp-ridecheck-almere-gbfs3.0/geofencing_zones.json"
    parsed = parse(DATASETS["gbfs_geofencing_zones"], [path.read_bytes()])
    (row,) = parsed.frame.filter(pl.col("scope") == "global").to_dicts()
    source = json.loads(path.read_bytes())["data"]["global_rules"]
    assert row["geometry"] is None and row["name"] is None
    assert len(row["rules"]) == len(source)
    assert [r["ride_end_allowed"] for r in row["rules"]] == [r["ride_end_allowed"] for r in source]
    assert parsed.frame.height == len(json.loads(path.read_bytes())["data"]["geofencing_zones"]["features"]) + 1


def test_oslo_gbfs_2_2_rule_spellings() -> None:
    """`vehicle_type_id` (singular) and `ride_allowed`, as in TIER's feed and Voi's documented example."""
    parsed, _ = parse_sample("otp-tier-oslo-gbfs2.3/geofencing_zones.json")
    rows = parsed.frame.to_dicts()
    assert [r["name"] for r in rows] == ["OSLO Summer 2021", "NP Frogner og vigelandsparken"]
    types = ["YTI:VehicleType:escooter_oslo", "YTI:VehicleType:ebicycle_oslo"]
    assert rows[0]["rules"] == [
        {
            "vehicle_type_ids": types,
            "ride_start_allowed": True,
            "ride_end_allowed": True,
            "ride_through_allowed": True,
            "maximum_speed_kph": None,
            "station_parking": None,
        }
    ]
    assert rows[1]["rules"][0]["vehicle_type_ids"] == types
    assert rows[1]["rules"][0]["ride_start_allowed"] is False
    assert rows[1]["rules"][0]["ride_end_allowed"] is False
    assert rows[1]["rules"][0]["ride_through_allowed"] is True
    assert all(r["starts_at"] is None and r["ends_at"] is None for r in rows)


def test_paris_geofencing_fixture_singular_vehicle_type_id_in_gbfs_3_0() -> None:
    parsed, features = parse_sample("gbfs-json-schema-testFixtures/v3.0/geofencing_zones.json")
    frame = parsed.frame.filter(pl.col("scope") == "zone")
    features = features[:-1]  # the last is the global rules
    assert frame.height == len(features) == 272
    assert frame["name"].to_list() == [f["properties"]["name"][0]["text"] for f in features]
    first_rule = frame["rules"][0].to_list()[0]
    assert first_rule["vehicle_type_ids"] == ["ebicycle_paris"]
    speeds = [r[0]["maximum_speed_kph"] for r in frame["rules"].to_list()]
    assert speeds == [f["properties"]["rules"][0].get("maximum_speed_kph") for f in features]


def test_station_status_gbfs_2_3_and_3_0() -> None:
    v23, stations23 = parse_sample("gbfs-json-schema-testFixtures/v2.3/station_status.json")
    rows = v23.frame.to_dicts()
    assert [r["station_id"] for r in rows] == ["TST:Station:1", "TST:Station:2"]
    # GBFS 2.x `num_bikes_available` lands in `num_vehicles_available`; `last_reported` is POSIX seconds.
    assert [r["num_vehicles_available"] for r in rows] == [s["num_bikes_available"] for s in stations23] == [1, 6]
    assert [r["num_docks_available"] for r in rows] == [3, 8]
    assert rows[0]["last_reported"] == from_seconds(1751437263) == utc(2025, 7, 2, 6, 21, 3)
    assert rows[1]["vehicle_types_available"] == [
        {"vehicle_type_id": "TST:VehicleType:Scooter", "count": 2},
        {"vehicle_type_id": "TST:VehicleType:CityBike", "count": 4},
    ]

    v30, _ = parse_sample("gbfs-json-schema-testFixtures/v3.0/station_status.json")
    row = v30.frame.row(0, named=True)
    assert row["station_id"] == "6efbec5a-6b8c-455b-bed2-8d66be6d6a4b"
    assert row["num_vehicles_available"] == 0
    assert row["is_installed"] is True
    # GBFS 3.0 RFC 3339 text, to the millisecond.
    assert row["last_reported"] == datetime(2019, 7, 4, 13, 33, 3, 969000, tzinfo=UTC)


def test_station_information_gbfs_3_0_station_area() -> None:
    parsed, stations = parse_sample("gbfs-json-schema-testFixtures/v3.0/station_information.json")
    rows = parsed.frame.to_dicts()
    assert len(rows) == 23
    first = rows[0]
    assert first["station_id"] == "6efbec5a-6b8c-455b-bed2-8d66be6d6a4b"
    assert first["name"] == "2 ROUES"
    assert (first["lat"], first["lon"]) == (48.8456017931977, 2.38465095280482)
    assert first["is_virtual_station"] is True
    for row, station in zip(rows, stations, strict=True):
        assert same_shape(row["station_area"], station["station_area"])
        assert row["capacity"] == station.get("capacity")

    v23, _ = parse_sample("gbfs-json-schema-testFixtures/v2.3/station_information.json")
    assert v23.frame.select("station_id", "name", "lat", "lon").rows() == [
        ("TST:Station:1", "Cool bikes", 12.34, 45.67),
        ("TST:Station:2", "Cooler bikes", 11.34, 44.67),
    ]
    assert v23.frame["station_area"].to_list() == [None, None]


def test_vehicle_types_pricing_plans_and_system_information() -> None:
    types, _ = parse_sample("otp-ridecheck-almere-gbfs3.0/vehicle_types.json")
    assert types.frame.row(0, named=True) == {
        "vehicle_type_id": "check_moped_almere_60",
        "form_factor": "moped",
        "propulsion_type": "electric",
        "name": None,
        "max_range_meters": 60000.0,
        "max_permitted_speed_kph": None,
        "rider_capacity": None,
        "default_pricing_plan_id": None,
    }
    types30, _ = parse_sample("gbfs-json-schema-testFixtures/v3.0/vehicle_types.json")
    assert types30.frame.select("vehicle_type_id", "name", "default_pricing_plan_id").row(0) == (
        "ebicycle_paris",
        "Electric Bicycle",
        "87c7ed6e-aecf-4900-9a85-2a78efbba65b",
    )

    plans, _ = parse_sample("gbfs-json-schema-testFixtures/v3.0/system_pricing_plans.json")
    assert plans.frame.select("plan_id", "name", "currency", "price", "is_taxable").rows() == [
        ("87c7ed6e-aecf-4900-9a85-2a78efbba65b", "bike-standard-pricing-paris", "EUR", 1.0, False),
        ("e1df7c5c-3232-422f-bf38-94cabb55fb99", "scooter-standard-pricing-paris", "EUR", 1.2, False),
    ]
    assert plans.frame["per_min_pricing"][0].to_list() == [{"start": 0.0, "rate": 0.28, "interval": 1.0, "end": None}]
    plans23, _ = parse_sample("gbfs-json-schema-testFixtures/v2.3/system_pricing_plans.json")
    assert plans23.frame.row(0, named=True)["description"] == "Start NOK 0, Per minute 3,50 NOK"

    oslo, _ = parse_sample("otp-tier-oslo-gbfs2.3/system_information.json")
    assert oslo.frame.row(0, named=True) == {
        "system_id": "tieroslo",
        "name": "Tier OSLO",
        "timezone": "Europe/Oslo",
        "languages": ["en"],  # GBFS 2.x single `language`
        "operator": "Tier",
        "email": None,
    }
    almere, _ = parse_sample("otp-ridecheck-almere-gbfs3.0/system_information.json")
    assert almere.frame.row(0, named=True) == {
        "system_id": "check_almere",
        "name": "Check Technologies",  # English of the localized list
        "timezone": "Europe/Amsterdam",
        "languages": ["en", "nl"],
        "operator": None,
        "email": "emailaddress@email.app",  # GBFS 3.0 `feed_contact_email`
    }


# --- The Voi documentation examples --------------------------------------------------------------------------------
# Copied from the Voi "Light Integrations" page (seed 002). As printed they are not valid JSON: the events and vehicles
# examples end their record list with a trailing comma (`},` before `]`). The only repair below is removing that comma.

VOI_TRIPS = b"""{
    "last_updated": {
        "last_updated": 1722932136606
    },
    "ttl": {
        "ttl": 0
    },
    "version": "2.0.0",
    "trips": [
        {
            "accessibility_attributes": [],
            "device_id": "d48ac4f0-d971-4cd0-be18-9658ebde9c75",
            "distance": 8329,
            "duration": 1652,
            "end_location": {
                "lat": 59.306113,
                "lng": 18.107582
            },
            "end_time": 1718272978417,
            "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
            "start_location": {
                "lat": 59.311543,
                "lng": 18.059523
            },
            "start_time": 1718271326209,
            "trip_id": "95ba3c85-8087-457d-9fed-8469ffb2dad7",
            "trip_type": [
                "rider"
            ]
        }
    ]
}"""

VOI_VEHICLES = b"""{
    "version": "2.0.0",
    "vehicles": [
        {
            "device_id": "703af7e8-ac8c-5543-b2ac-64ef52812d19",
            "maximum_speed": 20,
            "propulsion_types": [
                "electric"
            ],
            "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
            "vehicle_id": "b383",
            "vehicle_type": "scooter_standing"
        }
    ],
    "links": {}
}"""

VOI_VEHICLE_STATUS = b"""{
    "last_updated": {
        "last_updated": 0
    },
    "ttl": {
        "ttl": 0
    },
    "version": "2.0.0",
    "vehicles_status": [
        {
            "device_id": "6aca5a87-60e9-51eb-8147-c38b58100c83",
            "last_event": {
                "battery_percent": 54,
                "device_id": "6aca5a87-60e9-51eb-8147-c38b58100c83",
                "event_id": "276ced41-0b6d-482a-85b0-84755b7dc97f",
                "event_types": [
                    "trip_end"
                ],
                "location": {
                    "lat": 59.31385,
                    "lng": 18.075726
                },
                "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
                "timestamp": 1722841638075,
                "trip_ids": [
                    "9456de24-eb22-46bb-b8af-b114b29d496e"
                ],
                "vehicle_state": "available"
            },
            "last_telemetry": {
                "battery_percent": 50,
                "device_id": "6aca5a87-60e9-51eb-8147-c38b58100c83",
                "journey_id": null,
                "location": {
                    "lat": 59.31388,
                    "lng": 18.075653
                },
                "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
                "telemetry_id": "926adb5b-45a2-51e3-a9d4-dbd472f50d31",
                "timestamp": 1722932388272,
                "trip_ids": null
            },
            "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334"
        }
    ]
}"""

VOI_EVENTS_RECENT = b"""{
    "last_updated": {
        "last_updated": 1722935579741
    },
    "ttl": {
        "ttl": 0
    },
    "version": "2.0.0",
    "events": [
        {
            "battery_percent": 33,
            "device_id": "1786c844-82e7-5fcd-88cf-e2b0869030d5",
            "event_id": "222117b0-8cbb-4021-9eb7-799522ae9b54",
            "event_types": [
                "trip_start"
            ],
            "location": {
                "lat": 59.33512,
                "lng": 18.067327
            },
            "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
            "timestamp": 1722931201181,
            "trip_ids": [
                "504387ca-ac49-4198-845f-76e508fd5b73"
            ],
            "vehicle_state": "on_trip"
        }
    ],
    "links": {}
}"""

VOI_EVENTS_HISTORICAL = b"""{
    "last_updated": {
        "last_updated": 1722935878725
    },
    "ttl": {
        "ttl": 0
    },
    "version": "2.0.0",
    "events": [
        {
            "battery_percent": 84,
            "device_id": "5a90ff25-a0eb-5995-a7e5-dc2f29091cd0",
            "event_id": "5e61f822-46e1-462f-bbbe-9e8e8fd51191",
            "event_types": [
                "trip_start"
            ],
            "location": {
                "lat": 59.314285,
                "lng": 18.063965
            },
            "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
            "timestamp": 1718272800160,
            "trip_ids": [
                "f4249d42-80ae-467c-90cc-8b53bc070054"
            ],
            "vehicle_state": "on_trip"
        }
    ],
    "links": {}
}"""

# Voi GBFS 3.0 vehicle_status example from the same page (valid JSON as printed).
VOI_GBFS3_VEHICLE_STATUS = b"""{
    "data": {
        "vehicles": [
            {
                "current_fuel_percent": 0.47,
                "current_range_meters": 37600,
                "is_disabled": false,
                "is_reserved": false,
                "last_reported": "2025-02-17T13:19:04Z",
                "lat": 59.33863,
                "lon": 18.067764,
                "rental_uris": {
                    "android": "https://voi.com/deeplink?company=voiapp.io&vehicle_qr_code=gzpm",
                    "ios": "https://voi.com/deeplink?company=voiapp.io&vehicle_qr_code=gzpm"
                },
                "station_id": "31ecd9f9-7f10-4c32-89bc-7651dd1acbb2",
                "vehicle_id": "0858ba28-4404-4efb-a6aa-0dd65c8dce88",
                "vehicle_type_id": "172ef7a6-ee84-4320-9337-86235f2f67ac"
            }
        ]
    },
    "last_updated": "2025-02-17T12:58:33Z",
    "ttl": 30,
    "version": "3.0"
}"""


def test_voi_mds_trips_example() -> None:
    # The documented request is end_time=2024-06-13T10: the trip ends in that hour.
    hour = utc(2024, 6, 13, 10)
    parsed = parse(DATASETS["mds_trips"], [VOI_TRIPS], (hour, hour + timedelta(hours=1)))
    assert (parsed.received, len(parsed.quarantined), parsed.duplicates) == (1, 0, 0)
    assert parsed.frame.schema["start_time"] == UTC_MS
    assert parsed.frame.row(0, named=True) == {
        "trip_id": "95ba3c85-8087-457d-9fed-8469ffb2dad7",
        "device_id": "d48ac4f0-d971-4cd0-be18-9658ebde9c75",
        "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
        "start_time": datetime(2024, 6, 13, 9, 35, 26, 209000, tzinfo=UTC),  # 1718271326209 ms
        "end_time": datetime(2024, 6, 13, 10, 2, 58, 417000, tzinfo=UTC),  # 1718272978417 ms
        "start_lat": 59.311543,
        "start_lng": 18.059523,
        "end_lat": 59.306113,
        "end_lng": 18.107582,
        "duration_s": 1652.0,
        "distance_m": 8329.0,
        "trip_type": ["rider"],
        "accessibility_attributes": [],
        "vehicle_type": None,
        "mds_version": "2.0",
    }


@pytest.mark.parametrize(
    ("body", "window", "expected_time"),
    [
        # /events/historical?event_time=2024-06-13T10
        (
            VOI_EVENTS_HISTORICAL,
            (utc(2024, 6, 13, 10), utc(2024, 6, 13, 11)),
            utc(2024, 6, 13, 10, 0, 0) + timedelta(milliseconds=160),
        ),
        # /events/recent?start_time=1722931200000&end_time=1722934800000
        (
            VOI_EVENTS_RECENT,
            (utc(2024, 8, 6, 8), utc(2024, 8, 6, 9)),
            utc(2024, 8, 6, 8, 0, 1) + timedelta(milliseconds=181),
        ),
    ],
    ids=["historical", "recent"],
)
def test_voi_mds_events_examples(body: bytes, window: tuple[datetime, datetime], expected_time: datetime) -> None:
    parsed = parse(DATASETS["mds_events"], [body], window)
    assert (parsed.received, len(parsed.quarantined), parsed.duplicates) == (1, 0, 0)
    row = parsed.frame.row(0, named=True)
    source = json.loads(body)["events"][0]
    assert row["timestamp"] == expected_time
    assert row["timestamp"] == datetime.fromtimestamp(source["timestamp"] / 1000, UTC)
    assert row["publication_time"] is None
    assert row["event_id"] == source["event_id"]
    assert row["device_id"] == source["device_id"]
    assert row["event_types"] == ["trip_start"]
    assert row["vehicle_state"] == "on_trip"
    assert (row["lat"], row["lng"]) == (source["location"]["lat"], source["location"]["lng"])
    assert row["battery_percent"] == float(source["battery_percent"])
    assert row["trip_ids"] == source["trip_ids"]


def test_voi_mds_vehicles_example() -> None:
    parsed = parse(DATASETS["mds_vehicles"], [VOI_VEHICLES])
    assert parsed.received == 1
    assert parsed.frame.to_dicts() == [
        {
            "device_id": "703af7e8-ac8c-5543-b2ac-64ef52812d19",
            "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
            "vehicle_id": "b383",
            "vehicle_type": "scooter_standing",
            "propulsion_types": ["electric"],
            "maximum_speed_kph": 20.0,
        }
    ]


def test_voi_mds_vehicle_status_example_with_nested_envelope_quirk() -> None:
    """Voi nests the envelope (`last_updated: {last_updated: 0}`, `ttl: {ttl: 0}`); telemetry has `trip_ids: null`."""
    parsed = parse(DATASETS["mds_vehicle_status"], [VOI_VEHICLE_STATUS])
    assert (parsed.received, len(parsed.quarantined)) == (1, 0)
    assert parsed.frame.schema["event_time"] == UTC_MS
    assert parsed.frame.schema["telemetry_time"] == UTC_MS
    assert parsed.frame.row(0, named=True) == {
        "device_id": "6aca5a87-60e9-51eb-8147-c38b58100c83",
        "provider_id": "1f129e3f-158f-4df5-af9c-a80de238e334",
        "event_id": "276ced41-0b6d-482a-85b0-84755b7dc97f",
        "event_types": ["trip_end"],
        "vehicle_state": "available",
        "event_time": datetime(2024, 8, 5, 7, 7, 18, 75000, tzinfo=UTC),  # 1722841638075 ms
        "event_lat": 59.31385,
        "event_lng": 18.075726,
        "battery_percent": 54.0,
        "telemetry_time": datetime(2024, 8, 6, 8, 19, 48, 272000, tzinfo=UTC),  # 1722932388272 ms
        "telemetry_lat": 59.31388,
        "telemetry_lng": 18.075653,
        "trip_ids": [],
    }


def test_voi_gbfs_3_0_vehicle_status_example() -> None:
    parsed = parse(DATASETS["gbfs_vehicle_status"], [VOI_GBFS3_VEHICLE_STATUS])
    row = parsed.frame.row(0, named=True)
    assert row["vehicle_id"] == "0858ba28-4404-4efb-a6aa-0dd65c8dce88"
    assert row["last_reported"] == utc(2025, 2, 17, 13, 19, 4)
    assert row["current_fuel_percent"] == 0.47
    assert row["station_id"] == "31ecd9f9-7f10-4c32-89bc-7651dd1acbb2"


# Zone API examples (seed 001), valid JSON as printed except the occupancy fragment (see below).
VOI_ZONE_INFO = b"""{
  "data":{
    "id":"4EAC93B2-CB40-4FFD-B905-F4505E2E3BAD",
    "type":"zone",
    "attributes":{
      "zones":[
        {
          "zoneId":"1",
          "zoneName":"Stockholm",
          "parkingMode": "free-floating",
          "licenceVerificationRequired": false,
          "speedConfig": {
            "maxSpeed": 25,
            "minRequiredRides": 3,
            "reducedSpeed": 11,
            "speedUnit": "km/h"
          }
        },
        {
          "zoneId":"145",
          "zoneName":"Berlin",
          "parkingMode": "parking-spot",
          "licenceVerificationRequired": true
        }
      ]
    }
  }
}"""

# Printed as a fragment (`"data": [ {...},` with no outer braces and no closing bracket): wrapped in `{...}`, trailing
# comma removed, list closed.
VOI_OCCUPANCY = b"""{"data": [
        {
            "id": "044bb70b-8ac6-605c-984f-2244776800a5",
            "occupancy": 8,
            "capacity": 10
        }
]}"""


def test_voi_zone_info_and_occupancy_examples() -> None:
    info = parse(DATASETS["zone_info"], [VOI_ZONE_INFO])
    assert info.frame.select(
        "source_zone_id", "zone_name", "parking_mode", "max_speed", "min_required_rides"
    ).rows() == [
        ("1", "Stockholm", "free-floating", 25.0, 3),
        ("145", "Berlin", "parking-spot", None, None),
    ]
    occupancy = parse(DATASETS["zone_area_occupancy"], [VOI_OCCUPANCY])
    assert occupancy.frame.rows() == [("044bb70b-8ac6-605c-984f-2244776800a5", 8, 10)]


def test_voi_zone_areas_example_with_degenerate_ring_is_quarantined_naming_geometry() -> None:
    """The documented example abbreviates each ring to two points, which is no polygon: quarantined, not crashed."""
    good = {"type": "MultiPolygon", "coordinates": [[[[18.0, 59.0], [18.1, 59.0], [18.1, 59.1], [18.0, 59.0]]]]}
    degenerate = {"type": "MultiPolygon", "coordinates": [[[[18.04053783416748, 59.33789244534906]] * 2]]}
    body = json.dumps(
        {
            "data": {
                "id": "1",
                "type": "area",
                "attributes": {
                    "areas": [
                        {
                            "id": "651d1341-775d-4e0a-a5d3-310add50ef7f",
                            "area_type": "no-parking",
                            "geometry": degenerate,
                        },
                        {"id": "839073a2-a6fe-4d7b-8dce-7d1896d014a7", "area_type": "slow-zone", "geometry": good},
                        {"id": "x", "area_type": "moon-base", "geometry": good},
                    ]
                },
            }
        }
    ).encode()
    parsed = parse(DATASETS["zone_areas"], [body])
    assert parsed.frame["area_id"].to_list() == ["839073a2-a6fe-4d7b-8dce-7d1896d014a7"]
    assert same_shape(parsed.frame["geometry"][0], good)
    assert [q.index for q in parsed.quarantined] == [0, 2]
    assert parsed.quarantined[0].reason.startswith("invalid GeoJSON in `geometry`: ")
    assert "LinearRing" in parsed.quarantined[0].reason
    assert "unknown area_type 'moon-base'" in parsed.quarantined[1].reason


# --- Hand-made bad input: quarantined one by one -------------------------------------------------------------------


def trip_text(n: int, end_ms: int, **replace: str) -> str:
    """One MDS trip as compact JSON text, with `replace` applied to its text (to break it precisely)."""
    text = (
        '{"provider_id":"1f129e3f-158f-4df5-af9c-a80de238e334",'
        f'"device_id":"d48ac4f0-d971-4cd0-be18-{n:012d}",'
        f'"trip_id":"95ba3c85-8087-457d-9fed-{n:012d}",'
        f'"start_time":{end_ms - 600_000},"end_time":{end_ms},'
        '"start_location":{"lat":59.311543,"lng":18.059523},"end_location":{"lat":59.306113,"lng":18.107582},'
        '"duration":600,"distance":1200,"trip_type":["rider"]}'
    )
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def trips_body(records: list[str]) -> bytes:
    return ('{"version":"2.0.0","trips":[\n  ' + ",\n  ".join(records) + "\n]}").encode()


def test_bad_records_are_quarantined_with_reason_raw_and_index_and_good_ones_kept() -> None:
    inside = HOUR_MS + 30 * 60_000
    good = [trip_text(n, inside + n) for n in range(1, 4)]
    bad = {
        1: (trip_text(11, inside, **{'"duration":600': '"duration":"ten minutes"'}), "`$.duration`"),
        2: (trip_text(12, inside, **{'"trip_id":"95ba3c85-8087-457d-9fed-000000000012",': ""}), "`trip_id`"),
        3: (trip_text(13, inside, **{'"lat":59.311543': '"lat":123'}), "`$.start_location.lat`"),
        5: (trip_text(14, inside, **{"d48ac4f0-d971-4cd0-be18-000000000014": "scooter-14"}), "`$.device_id`"),
        6: ("42", "Expected `object`, got `int`"),
        # Non-ASCII text is kept as received.
        7: ('{"trip_id": "ünïcode", "note": "😀"}', "`$.trip_id`"),
        8: ("null", "Expected `object`, got `null`"),
    }
    records = [good[0], bad[1][0], bad[2][0], bad[3][0], good[1], bad[5][0], bad[6][0], bad[7][0], bad[8][0], good[2]]
    body = trips_body(records)

    parsed = parse(DATASETS["mds_trips"], [body], WINDOW)

    assert parsed.received == 10
    assert parsed.duplicates == 0
    assert parsed.frame["trip_id"].to_list() == [f"95ba3c85-8087-457d-9fed-{n:012d}" for n in (1, 2, 3)]
    assert [q.index for q in parsed.quarantined] == sorted(bad)
    for q in parsed.quarantined:
        raw, needle = bad[q.index]
        assert q.raw == raw  # byte for byte as it sat in the response
        assert q.raw == records[q.index]
        assert needle in q.reason, q.reason
    reasons = {q.index: q.reason for q in parsed.quarantined}
    assert reasons[1] == "Expected `float`, got `str` - at `$.duration`"
    assert reasons[2] == "Object missing required field `trip_id`"
    assert reasons[3] == "Expected `float` <= 90.0 - at `$.start_location.lat`"
    assert reasons[5] == "Expected a whole UUID as text (nothing around it, no final newline) - at `$.device_id`"
    assert parsed.frame.height + len(parsed.quarantined) + parsed.duplicates == parsed.received


def test_a_clean_page_decoded_whole_gives_what_record_by_record_gives() -> None:
    # A clean page is decoded in one call; one bad record sends its page record by record: the rows must agree.
    inside = HOUR_MS + 10 * 60_000
    good = [trip_text(n, inside + n) for n in range(1, 6)]
    implausible = trip_text(9, inside, **{'"lat":59.311543,"lng":18.059523': '"lat":0,"lng":0'})

    whole = parse(DATASETS["mds_trips"], [trips_body(good)], WINDOW)
    one_by_one = parse(DATASETS["mds_trips"], [trips_body([*good[:2], implausible, *good[2:]])], WINDOW)

    assert_frame_equal(whole.frame, one_by_one.frame)
    assert (whole.received, whole.quarantined) == (5, [])
    assert [(q.index, q.raw) for q in one_by_one.quarantined] == [(2, implausible)]
    assert one_by_one.quarantined[0].reason == "`start_location` is (0, 0), a placeholder for an unknown position"


def test_repeated_ids_are_kept_once_and_counted_as_duplicates_or_conflicts_across_pages() -> None:
    inside = HOUR_MS + 60_000
    a, b, c = (trip_text(n, inside) for n in (1, 2, 3))
    b_again_changed = trip_text(2, inside + 5)  # same id, other content: the later occurrence wins
    pages = [trips_body([a, b, a]), trips_body([c, b_again_changed, "[]"])]

    parsed = parse(DATASETS["mds_trips"], pages, WINDOW)

    assert parsed.received == 6
    assert (parsed.duplicates, parsed.conflicts) == (1, 1)  # a again (same), b again (changed)
    assert parsed.frame["trip_id"].to_list() == [f"95ba3c85-8087-457d-9fed-{n:012d}" for n in (1, 2, 3)]
    assert parsed.frame["end_time"][1] == datetime.fromtimestamp((inside + 5) / 1000, UTC)
    # The copies that lost: the first a (identical), the first b (its end 5 ms earlier).
    assert [(r.row["trip_id"][-1], r.row["end_time"], r.conflict) for r in parsed.repeats] == [
        ("1", inside, False),
        ("2", inside, True),
    ]
    # Indexes run on across pages: the non-object on page 2 is record 5 of the response.
    assert [(q.index, q.raw) for q in parsed.quarantined] == [(5, "[]")]
    assert parsed.frame.height + len(parsed.quarantined) + parsed.duplicates + parsed.conflicts == parsed.received


def test_records_outside_the_requested_hour_are_quarantined() -> None:
    end = HOUR_MS + 3_600_000
    records = [
        trip_text(1, HOUR_MS),  # first ms of the hour: inside
        trip_text(2, end - 1),  # last ms: inside
        trip_text(3, end),  # next hour
        trip_text(4, HOUR_MS - 1),  # previous hour
    ]
    parsed = parse(DATASETS["mds_trips"], [trips_body(records)], WINDOW)
    assert parsed.frame["trip_id"].to_list() == [f"95ba3c85-8087-457d-9fed-{n:012d}" for n in (1, 2)]
    assert parsed.frame["end_time"].to_list() == [HOUR, HOUR + timedelta(hours=1) - timedelta(milliseconds=1)]
    assert [(q.index, q.raw) for q in parsed.quarantined] == [(2, records[2]), (3, records[3])]
    for q in parsed.quarantined:
        assert q.reason.startswith("end_time ")
        assert f"outside the requested window [{HOUR_MS}, {end})" in q.reason

    # Events are windowed on `timestamp`.
    event = (
        '{"provider_id":"1f129e3f-158f-4df5-af9c-a80de238e334","device_id":"1786c844-82e7-5fcd-88cf-e2b0869030d5",'
        '"event_id":"222117b0-8cbb-4021-9eb7-799522ae9b54","vehicle_state":"on_trip","event_types":["trip_start"],'
        f'"timestamp":{end + 10}}}'
    )
    events = parse(DATASETS["mds_events"], [f'{{"events":[{event}]}}'.encode()], WINDOW)
    assert events.frame.height == 0
    assert events.quarantined[0].reason.startswith(f"timestamp {end + 10} is outside")

    # Without a window (snapshots, recent events) nothing is filtered.
    assert parse(DATASETS["mds_trips"], [trips_body(records)]).frame.height == 4


@pytest.mark.parametrize(
    ("dataset", "body", "message"),
    [
        ("mds_trips", b'{"version":"2.0.0","last_updated":{"last_updated":0}}', "the response has no `trips`"),
        ("mds_trips", b'{"trips":{"trip_id":"x"}}', "`trips` is not a list"),
        ("mds_events", b"<html>502 Bad Gateway</html>", "the response is not complete JSON"),
        ("mds_events", b'{"events": [1, 2', "the response is not complete JSON"),
        ("gbfs_vehicle_status", b'{"data":{"stations":[]}}', "the response has no `data.vehicles`"),
        ("gbfs_geofencing_zones", b'{"data":{"geofencing_zones":{}}}', "no `data.geofencing_zones.features`"),
        ("zone_area_occupancy", b'{"data":{"id":"x"}}', "`data` is not a list"),
        ("gbfs_system_information", b'{"version":"3.0"}', "the response has no `data`"),
    ],
)
def test_envelope_without_its_record_list_raises_payload_error(dataset: str, body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse(DATASETS[dataset], [body])


def test_empty_record_list_gives_an_empty_typed_frame() -> None:
    parsed = parse(DATASETS["mds_trips"], [b'{"trips":[]}'], WINDOW)
    assert (parsed.received, parsed.quarantined, parsed.duplicates) == (0, [], 0)
    assert parsed.frame.schema == pl.Schema(DATASETS["mds_trips"].schema)
    single = raw_records(DATASETS["gbfs_system_information"], b'{"data":{"system_id":"x"}}')
    # A single-object feed is one record.
    assert [bytes(r) if isinstance(r, msgspec.Raw) else r for r in single] == [b'{"system_id":"x"}']


def test_integer_too_large_for_int64_is_quarantined_not_crashing_the_partition() -> None:
    body = json.dumps(
        {
            "data": {
                "stations": [
                    {
                        "station_id": "a",
                        "num_vehicles_available": 2,
                        "is_installed": True,
                        "is_renting": 1,
                        "is_returning": 0,
                    },
                    {
                        "station_id": "b",
                        "num_vehicles_available": 2**64,
                        "is_installed": True,
                        "is_renting": True,
                        "is_returning": True,
                    },
                    {"station_id": "c", "is_installed": True, "is_renting": True, "is_returning": True},
                ]
            }
        }
    ).encode()
    parsed = parse(DATASETS["gbfs_station_status"], [body])
    assert parsed.frame.select("station_id", "num_vehicles_available", "is_renting", "is_returning").rows() == [
        ("a", 2, True, False)
    ]
    assert [q.index for q in parsed.quarantined] == [1, 2]
    assert "`$.num_vehicles_available`" in parsed.quarantined[0].reason
    assert "num_vehicles_available" in parsed.quarantined[1].reason


def test_gbfs_timestamps_posix_seconds_and_rfc3339_to_the_millisecond() -> None:
    def zone(start: object, end: object) -> dict[str, Any]:
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [5.38, 43.29]},
            "properties": {"name": "z", "start": start, "end": end, "rules": [{"ride_through_allowed": True}]},
        }

    features = [
        zone(1699003875, 1699007475),  # GBFS 2.x POSIX seconds
        zone("2023-11-03T09:31:15Z", "2023-11-03T11:31:15+01:00"),  # GBFS 3.0 RFC 3339
        # An instant where float seconds * 1000 lands one millisecond short.
        zone("2004-03-15T07:55:47.472Z", None),
        zone("2023-11-03T09:31:15", None),  # no offset: not RFC 3339
        zone("tomorrow", None),
    ]
    body = json.dumps({"data": {"geofencing_zones": {"type": "FeatureCollection", "features": features}}}).encode()
    parsed = parse(DATASETS["gbfs_geofencing_zones"], [body])

    assert parsed.frame.select("starts_at", "ends_at").rows() == [
        (utc(2023, 11, 3, 9, 31, 15), utc(2023, 11, 3, 10, 31, 15)),
        (utc(2023, 11, 3, 9, 31, 15), utc(2023, 11, 3, 10, 31, 15)),
        (datetime(2004, 3, 15, 7, 55, 47, 472000, tzinfo=UTC), None),
    ]
    assert parsed.frame["rules"][0].to_list()[0]["vehicle_type_ids"] == []
    assert [q.index for q in parsed.quarantined] == [3, 4]
    assert "has no UTC offset" in parsed.quarantined[0].reason
    assert "tomorrow" in parsed.quarantined[1].reason


def test_gbfs_vehicle_needs_an_id_and_a_place() -> None:
    vehicles = [
        {"vehicle_id": "v1", "lat": 1.0, "lon": 2.0, "is_reserved": 0, "is_disabled": 1},  # integer booleans (Voi docs)
        {"vehicle_id": "v2", "station_id": "s1", "is_reserved": False, "is_disabled": False},  # docked, no lat/lon
        {"lat": 1.0, "lon": 2.0, "is_reserved": False, "is_disabled": False},
        {"vehicle_id": "v4", "is_reserved": False, "is_disabled": False},
        {"vehicle_id": "v5", "lat": 1.0, "lon": 200.0, "is_reserved": False, "is_disabled": False},
    ]
    parsed = parse(DATASETS["gbfs_vehicle_status"], [json.dumps({"data": {"vehicles": vehicles}}).encode()])
    assert parsed.frame.select("vehicle_id", "is_reserved", "is_disabled", "station_id").rows() == [
        ("v1", False, True, None),
        ("v2", False, False, "s1"),
    ]
    assert [(q.index, q.reason) for q in parsed.quarantined] == [
        (2, "Object missing required field `vehicle_id` (or GBFS 2.x `bike_id`)"),
        (3, "a vehicle needs lat/lon or a station_id"),
        (4, "Expected `float` <= 180.0 - at `$.lon`"),
    ]


def test_mds_ids_are_lowercased_and_uppercase_uuids_accepted() -> None:
    upper = trip_text(1, HOUR_MS + 1).replace("95ba3c85", "95BA3C85").replace("d48ac4f0", "D48AC4F0")
    parsed = parse(DATASETS["mds_trips"], [trips_body([upper])], WINDOW)
    assert parsed.frame.select("trip_id", "device_id").row(0) == (
        "95ba3c85-8087-457d-9fed-000000000001",
        "d48ac4f0-d971-4cd0-be18-000000000001",
    )


def test_parse_is_deterministic() -> None:
    body = (SAMPLES / "otp-ridecheck-almere-gbfs3.0/geofencing_zones.json").read_bytes()
    assert_frame_equal(
        parse(DATASETS["gbfs_geofencing_zones"], [body]).frame, parse(DATASETS["gbfs_geofencing_zones"], [body]).frame
    )
