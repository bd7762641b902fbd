"""GBFS 2.3 through the pipeline: the setting, the account-wide lake datasets (raw delivery kept), vehicles placed in
zones by geometry (one beyond every zone counted, not dropped), and the occupancy marts equal to GBFS 3.0's for the
same city and instants; the real Voi Marseille GBFS 2.3 feed parses with no record lost."""

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import shapely
from shapely.geometry import box

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import SimulatedProvider
from pipelines.config import Settings, SettingsError
from pipelines.gbfs_v2 import ACCOUNT, GBFS_V2_DATASETS, gbfs_datasets, parse_gbfs_versions, snapshot_targets
from pipelines.ingest import GBFS_DATASETS, ZONE_DATASETS, ingest_snapshots
from pipelines.lake.datasets import DATASETS, parse
from pipelines.lake.store import Lake, Partition, snapshot_stem
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.gbfs_v2 import place_in_zones
from tests.conftest import CREDENTIALS, NOW, SHARED, START, loopback_settings, make_provider

ZONES = ("1", "145")
# Three captures in two hours of the simulated window (Saturday's evening, both cities busy).
CAPTURES = (
    START + timedelta(hours=17, minutes=10),
    START + timedelta(hours=17, minutes=40),
    START + timedelta(hours=18, minutes=5),
)
MARSEILLE = SHARED / "specs" / "samples" / "voi-marseille-gbfs2.3" / "free_bike_status.json"


# -- the setting ------------------------------------------------------------------------------------------


def test_setting_chooses_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().gbfs_versions == ("3.0",)
    assert parse_gbfs_versions("") == ("3.0",)
    assert parse_gbfs_versions("2.3") == ("2.3",)
    assert parse_gbfs_versions("2.3, 3.0") == ("3.0", "2.3")
    assert parse_gbfs_versions("both") == ("3.0", "2.3")
    monkeypatch.setenv("FLEETLAKE_GBFS_VERSIONS", "2.3")
    assert Settings.from_env().gbfs_versions == ("2.3",)
    monkeypatch.setenv("FLEETLAKE_GBFS_VERSIONS", "2.2")
    with pytest.raises(SettingsError, match=r"FLEETLAKE_GBFS_VERSIONS='2\.2'"):
        Settings.from_env()
    assert gbfs_datasets(("2.3",), GBFS_DATASETS) == GBFS_V2_DATASETS
    assert gbfs_datasets(("3.0", "2.3"), GBFS_DATASETS) == (*GBFS_DATASETS, *GBFS_V2_DATASETS)


def test_account_wide_datasets_are_captured_once() -> None:
    assert snapshot_targets(("1", "145"), ("gbfs_vehicle_status", "gbfs_v2_free_bike_status")) == [
        ("gbfs_vehicle_status", "1"),
        ("gbfs_vehicle_status", "145"),
        ("gbfs_v2_free_bike_status", ACCOUNT),
    ]


# -- placing vehicles in zones, by hand -----------------------------------------------------------------------


def test_vehicles_placed_in_zones_by_geometry_by_hand() -> None:
    """Zone A: one 1x1 degree area at (10..11, 50..51); zone B: one at (20..21, 50..51). A vehicle inside A's
    area is 'inside' A; one 0.1 degree east of it (within A's extent, 50 km around its areas) is 'near' A; one at
    (15, 50.5) is beyond both extents (about 280 km from each): no zone, 'outside', still listed."""
    valid_from = datetime(2026, 3, 1, tzinfo=UTC)
    areas = pl.DataFrame(
        {
            "zone_id": ["A", "B"],
            "area_id": ["a1", "b1"],
            "area_type": ["operations", "operations"],
            "geometry": [shapely.to_wkb(box(10, 50, 11, 51)), shapely.to_wkb(box(20, 50, 21, 51))],
            "valid_from": [valid_from, valid_from],
        }
    )
    at = datetime(2026, 3, 2, tzinfo=UTC)
    sightings = pl.DataFrame(
        {
            "captured_at": [at] * 4,
            "vehicle_id": ["in-a", "near-a", "far", "in-b"],
            "lng": [10.5, 11.1, 15.0, 20.2],
            "lat": [50.5, 50.5, 50.5, 50.9],
        }
    )
    placed = place_in_zones(sightings, areas).sort("vehicle_id")
    assert placed.select("vehicle_id", "zone_id", "zone_placement").rows() == [
        ("far", None, "outside"),
        ("in-a", "A", "inside"),
        ("in-b", "B", "inside"),
        ("near-a", "A", "near"),
    ]


# -- the real Voi Marseille feed ---------------------------------------------------------------------------------


def test_voi_marseille_gbfs_2_3_parses_with_no_record_lost(provider: SimulatedProvider) -> None:
    body = MARSEILLE.read_bytes()
    bikes = json.loads(body)["data"]["bikes"]
    captured = datetime.fromtimestamp(json.loads(body)["last_updated"], UTC)
    parsed = parse(DATASETS["gbfs_v2_free_bike_status"], [body], clock=captured)
    assert parsed.received == len(bikes) == 1466
    assert parsed.quarantined == [] and parsed.duplicates == 0 and parsed.conflicts == 0
    assert parsed.frame.height == 1466
    assert parsed.frame["vehicle_id"].to_list() == [b["bike_id"] for b in bikes]
    # POSIX seconds become UTC milliseconds: the first bike reported at 1699003875 s.
    assert parsed.frame["last_reported"][0] == datetime(2023, 11, 3, 9, 31, 15, tzinfo=UTC)
    assert parsed.frame["pricing_plan_id"].unique().to_list() == ["plan-scooter-66"]
    # Placed among the simulated Stockholm and Berlin: every vehicle is kept. The real feed lists one vehicle at
    # Berlin's centre (52.520271, 13.404841), which lands in the simulated Berlin; the other 1465 (Marseille, and
    # one at 42.11, 11.77 in Italy) lie beyond both zones and are counted outside.
    areas = pl.DataFrame(
        {
            "zone_id": [z for z, index in provider.zones.items() for _ in index.city.areas],
            "area_id": [a.area_id for index in provider.zones.values() for a in index.city.areas],
            "area_type": [a.area_type for index in provider.zones.values() for a in index.city.areas],
            "geometry": [shapely.to_wkb(a.geometry) for index in provider.zones.values() for a in index.city.areas],
            "valid_from": [captured] * sum(len(index.city.areas) for index in provider.zones.values()),
        }
    )
    placed = place_in_zones(parsed.frame.rename({"lon": "lng"}).with_columns(captured_at=pl.lit(captured)), areas)
    assert placed.height == 1466
    assert placed["zone_placement"].value_counts(sort=True).rows() == [("outside", 1465), ("inside", 1)]
    stray = placed.filter(pl.col("zone_id").is_not_null())
    assert stray.select("zone_id", "lat", "lng").rows() == [("145", 52.520271, 13.404841)]


# -- the same city through GBFS 3.0, 2.3 and both -------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    lake: Path
    warehouse: Warehouse

    def query(self, sql: str) -> pl.DataFrame:
        con = self.warehouse.connect(read_only=True)
        try:
            return pl.DataFrame(pl.from_arrow(con.execute(sql).to_arrow_table()))
        finally:
            con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built]]:
    """One provider, captured at the same three instants into three lakes (GBFS 3.0, 2.3, both), each built. Its
    2.3 feed also lists two vehicles far beyond both zones (`gbfs_v2_strays`), as real account-wide feeds do."""
    clock = FixedClock(NOW)
    provider = make_provider(clock=clock, gbfs_v2_strays=2)
    root = tmp_path_factory.mktemp("gbfs_v2")
    choices: dict[str, Sequence[str]] = {
        "3.0": GBFS_DATASETS,
        "2.3": GBFS_V2_DATASETS,
        "both": (*GBFS_DATASETS, *GBFS_V2_DATASETS),
    }
    with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        for name, datasets in choices.items():
            settings = loopback_settings(url, root / name, ZONES)

            async def ingest(settings: Settings = settings, datasets: Sequence[str] = datasets) -> None:
                async with VoiClient(settings) as client:
                    lake = Lake(settings.lake_dir)
                    for index, at in enumerate(CAPTURES):
                        clock.set(at)
                        captured = (*datasets, *ZONE_DATASETS) if index == 0 else datasets
                        report = await ingest_snapshots(client, lake, ZONES, captured, captured_at=at)
                        assert not report.with_status("failed"), report.with_status("failed")

            asyncio.run(ingest())
    out = {}
    for name in choices:
        warehouse = Warehouse(root / name / "warehouse.duckdb", root / name / "lake", lead_in_hours=48)
        warehouse.build()
        out[name] = Built(root / name / "lake", warehouse)
    yield out


OCCUPANCY = (
    "select zone_id, scope, area_id, area_type, hour, vehicle_state, snapshots, avg_vehicles, min_vehicles, "
    "max_vehicles from gbfs_occupancy_hourly order by all"
)


@pytest.mark.slow  # the first reader of `built`: it pays the three lakes' ingests and builds
def test_lake_keeps_the_account_wide_delivery(built: dict[str, Built]) -> None:
    lake = Lake(built["2.3"].lake)
    for dataset in GBFS_V2_DATASETS:
        for at in CAPTURES:
            partition = Partition(dataset, ACCOUNT, at.replace(minute=0))
            raw = lake.read_raw(partition, stem=snapshot_stem(at))
            assert len(raw) == 1 and json.loads(raw[0])["version"] == "2.3"
            assert lake.data_path(partition, snapshot_stem(at)).exists()
    assert not (built["2.3"].lake / "gbfs_vehicle_status").exists()
    regions = pl.read_parquet(built["2.3"].lake / "gbfs_v2_system_regions" / f"zone_id={ACCOUNT}" / "**" / "*.parquet")
    assert sorted(set(zip(regions["region_id"], regions["name"], strict=True))) == [
        ("1", "Stockholm"),
        ("145", "Berlin"),
    ]


def test_every_sighting_is_placed_in_its_zone(built: dict[str, Built]) -> None:
    """Each 2.3 sighting lands in the zone whose 3.0 feed lists the same vehicle at the same capture; the two
    strays, beyond both zones, are kept at every capture with no zone: 2 x 3 sightings counted outside."""
    v2 = built["2.3"].query(
        "select zone_id, captured_at, vehicle_id, zone_placement from core.int_gbfs_v2_vehicle_zones"
    )
    v3 = built["3.0"].query("select zone_id, captured_at, vehicle_id from core.int_gbfs_vehicle_positions")
    placed = v2.filter(pl.col("zone_id").is_not_null())
    assert placed.height == v3.height > 3 * 200
    assert placed["zone_placement"].is_in(["inside", "near"]).all()
    assert placed.select("zone_id", "captured_at", "vehicle_id").sort(pl.all()).equals(v3.sort(pl.all()))
    outside = v2.filter(pl.col("zone_id").is_null())
    assert outside.height == 6 and outside["zone_placement"].unique().to_list() == ["outside"]
    assert outside["vehicle_id"].n_unique() == 2


def test_gbfs_2_3_occupancy_equals_gbfs_3_0(built: dict[str, Built]) -> None:
    v3 = built["3.0"].query(OCCUPANCY)
    v23 = built["2.3"].query(OCCUPANCY)
    assert v3.height > 0
    assert v23.equals(v3)
    # Reading both versions counts each vehicle once: the zone's own 3.0 feed wins where it has a snapshot.
    assert built["both"].query(OCCUPANCY).equals(v3)
    # Hand check: three captures, two in hour 17 and one in hour 18; zone scope, every listed vehicle ('parked').
    parked = v23.filter((pl.col("scope") == "zone") & (pl.col("vehicle_state") == "parked")).sort("zone_id", "hour")
    assert parked["snapshots"].to_list() == [2, 1, 2, 1]
    listed = built["2.3"].query(
        "select zone_id, captured_at, count(*) as n from core.int_gbfs_v2_vehicle_zones group by all order by all"
    )
    counts = {(z, c): n for z, c, n in listed.rows()}
    for zone in ZONES:
        first, second, third = (counts[(zone, at)] for at in CAPTURES)
        row17, row18 = parked.filter(pl.col("zone_id") == zone).rows(named=True)
        assert row17["avg_vehicles"] == (first + second) / 2
        assert (row17["min_vehicles"], row17["max_vehicles"]) == (min(first, second), max(first, second))
        assert row18["avg_vehicles"] == third


# -- the Dagster snapshot asset follows the setting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (("2.3",), {*GBFS_V2_DATASETS, "zone_area_occupancy"}),
        (("3.0",), {*GBFS_DATASETS, "zone_area_occupancy"}),
    ],
)
def test_snapshot_asset_captures_the_configured_versions(
    served: str, tmp_path: Path, versions: tuple[str, ...], expected: set[str]
) -> None:
    from assets.resources import resources_for
    from assets.snapshots import gbfs_snapshot

    settings = loopback_settings(served, tmp_path, ZONES).model_copy(update={"gbfs_versions": versions})
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([gbfs_snapshot], resources=resources_for(settings), instance=instance)
    assert result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key}
    assert materialized == expected
    written = {p.name for p in settings.lake_dir.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert written >= expected - {"zone_area_occupancy"}
    assert not written & ({*GBFS_DATASETS, *GBFS_V2_DATASETS} - expected)


def test_placement_mart_counts_vehicles_outside_every_zone(built: dict[str, Built]) -> None:
    """gbfs_v2_zone_placement_hourly by hand: hour 17 has two captures, hour 18 one; the two strays are outside at
    each (4 and 2 sightings, 2 vehicles on average), and each zone's average equals its parked average in
    gbfs_occupancy_hourly."""
    placement = built["2.3"].query(
        "select hour, zone_id, snapshots, sightings, avg_vehicles, inside_sightings + near_sightings as placed, "
        "outside_sightings from gbfs_v2_zone_placement_hourly order by hour, zone_id nulls last"
    )
    outside = placement.filter(pl.col("zone_id").is_null())
    assert outside.select("snapshots", "sightings", "avg_vehicles", "placed", "outside_sightings").rows() == [
        (2, 4, 2.0, 0, 4),
        (1, 2, 2.0, 0, 2),
    ]
    zones = placement.filter(pl.col("zone_id").is_not_null())
    assert (
        zones.height == 4 and (zones["placed"] == zones["sightings"]).all() and (zones["outside_sightings"] == 0).all()
    )
    parked = built["2.3"].query(
        "select hour, zone_id, avg_vehicles from gbfs_occupancy_hourly "
        "where scope = 'zone' and vehicle_state = 'parked' order by hour, zone_id"
    )
    assert zones.select("hour", "zone_id", "avg_vehicles").equals(parked)
    # Nothing of 2.3 reaches the mart when only 3.0 is read.
    assert built["3.0"].query("select count(*) as n from gbfs_v2_zone_placement_hourly")["n"][0] == 0
