"""The same simulated city ingested in MDS 1.2 and in 0.4 gives the warehouse MDS 2.0 gives it: the same trips,
state intervals, occupancy and violations, equal to the provider's ground truth, except what a version cannot say
(docs/mds_versions.md). 0.4 cannot say a reservation that is not a ride: its truth is the city's with every hold
(`reserved`) seen as `available`, the vehicle never having left the street."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.service import SimulatedProvider
from fleetlake_provider.truth import truth_frames
from pipelines.config import Settings
from pipelines.ingest import (
    GBFS_DATASETS,
    MDS_SNAPSHOT_DATASETS,
    ZONE_DATASETS,
    hours_between,
    ingest_hours,
    ingest_snapshots,
)
from pipelines.lake.mds_versions import MdsVersion
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from tests.conftest import CREDENTIALS, END, NOW, START, BuiltWarehouse
from tests.scenario import query
from tests.test_warehouse_compliance import truth_trip_end_violations
from tests.test_warehouse_occupancy import DEPLOYED, PARKED, _compare, _truth_hourly
from tests.test_warehouse_truth import query as query_ms

# Three ingests and builds of the two-day city (1.2, 0.4, both at once) beside the shared 2.0 one.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

ZONES = ("1", "145")
LEGACY_VERSIONS: tuple[MdsVersion, ...] = ("1.2", "0.4")


@dataclass(frozen=True)
class Ingested:
    built: BuiltWarehouse
    version: MdsVersion
    quarantined: int


def ingest_in(
    provider: SimulatedProvider, version: MdsVersion, root: Path, per_zone: dict[str, MdsVersion] | None = None
) -> Ingested:
    """Every hour of the window and every snapshot of both zones, read in `version` (or each zone in its own,
    `per_zone`) through the provider's app."""
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)
    settings = Settings(
        api_base_url="http://provider",
        maas_base_url="http://provider",
        zones=ZONES,
        lake_dir=root / "lake",
        mds_versions=tuple((per_zone or dict.fromkeys(ZONES, version)).items()),
        legacy_mds_base_url="http://mds-legacy",
    )

    async def ingest() -> int:
        async with VoiClient(settings, transport=httpx.ASGITransport(app.app)) as client:
            hourly = await ingest_hours(client, Lake(settings.lake_dir), ZONES, hours_between(START, END))
            snapshots = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
            taken = await ingest_snapshots(client, Lake(settings.lake_dir), ZONES, snapshots, captured_at=NOW)
        assert not hourly.with_status("failed") and not taken.with_status("failed")
        assert not hourly.with_status("not_ready") and not hourly.with_status("future")
        return hourly.summary()["quarantined"]

    quarantined = asyncio.run(ingest())
    warehouse = Warehouse(root / "warehouse.duckdb", settings.lake_dir)
    warehouse.build()
    return Ingested(BuiltWarehouse(provider, settings.lake_dir, warehouse), version, quarantined)


@pytest.fixture(scope="module", params=LEGACY_VERSIONS)
def legacy(
    request: pytest.FixtureRequest, provider: SimulatedProvider, tmp_path_factory: pytest.TempPathFactory
) -> Ingested:
    version: MdsVersion = request.param
    return ingest_in(provider, version, tmp_path_factory.mktemp(f"mds-{version}"))


def true_states(provider: SimulatedProvider, version: MdsVersion) -> pl.DataFrame:
    """The true state timeline as the version can say it: 0.4 sees a hold as `available`, one interval with the
    availability before it (and after it, when the hold was cancelled)."""
    truth = truth_frames(provider)["vehicle_states"]
    if version != "0.4":
        return truth
    seen = truth.with_columns(pl.col("vehicle_state").replace("reserved", "available"))
    run = (pl.col("vehicle_state") != pl.col("vehicle_state").shift(1).over("device_id")).fill_null(True)
    return (
        seen.with_columns(run.cum_sum().over("device_id").alias("run"))
        .group_by("zone_id", "device_id", "run", maintain_order=True)
        .agg(pl.all().exclude("end_time").first(), pl.col("end_time").last())
        .drop("run")
        .select(truth.columns)
    )


def test_the_lake_says_the_version_and_loses_no_record(legacy: Ingested) -> None:
    lake = legacy.built.lake
    versions = query(
        legacy.built.warehouse,
        f"select distinct mds_version from read_parquet('{lake}/mds_events/**/*.parquet') "
        f"union select distinct mds_version from read_parquet('{lake}/mds_trips/**/*.parquet')",
    )
    assert versions["mds_version"].to_list() == [legacy.version]
    assert legacy.quarantined == 0  # a fault-free city: every record of the version has a 2.0 meaning
    events = query(legacy.built.warehouse, "select count(*) as n from staging.stg_mds__events")["n"][0]
    truth = truth_frames(legacy.built.provider)["events"]
    said = truth if legacy.version == "1.2" else truth.filter(~pl.col("event_type").str.starts_with("reservation_"))
    assert events == said.height


def test_trips_are_the_true_trips(legacy: Ingested) -> None:
    truth = truth_frames(legacy.built.provider)["trips"].sort("trip_id")
    trips = query(legacy.built.warehouse, "select * from trips order by trip_id")
    assert trips["trip_id"].to_list() == truth["trip_id"].to_list()
    for column in ("device_id", "vehicle_type", "zone_id", "start_lat", "start_lng", "end_lat", "end_lng"):
        assert trips[column].to_list() == truth[column].to_list(), column
    assert trips["start_time"].to_list() == truth["start_time"].to_list()
    assert trips["end_time"].to_list() == truth["end_time"].to_list()
    assert trips["reported_duration_s"].to_list() == truth["duration_s"].cast(pl.Float64).to_list()
    assert trips["distance_m"].to_list() == truth["distance_m"].cast(pl.Float64).to_list()
    assert trips["trip_type"].null_count() == trips.height  # not carried by 1.2 or 0.4: not known, not "rider"
    assert set(trips["mds_version"]) == {legacy.version}


def test_trips_equal_the_20_build_but_for_what_the_version_lacks(
    legacy: Ingested, built_warehouse: BuiltWarehouse
) -> None:
    differing = ["trip_type", "mds_version", "delivery_hour"]
    legacy_trips = query(legacy.built.warehouse, "select * from trips order by trip_id").drop(differing)
    trips = query(built_warehouse.warehouse, "select * from trips order by trip_id").drop(differing)
    assert legacy_trips.equals(trips)


def test_state_intervals_follow_the_true_timeline(legacy: Ingested) -> None:
    truth = true_states(legacy.built.provider, legacy.version)
    intervals = query_ms(legacy.built, "select * from vehicle_state_intervals")
    assert intervals.height == truth.height
    joined = truth.join(
        intervals, left_on=["device_id", "start_time"], right_on=["device_id", "started_at"], how="inner"
    )
    assert joined.height == truth.height
    assert (joined["vehicle_state"] == joined["vehicle_state_right"]).all()
    assert set(intervals["mds_version"]) == {legacy.version}
    if legacy.version == "0.4":
        assert "reserved" not in set(intervals["vehicle_state"])


def test_zone_occupancy_equals_the_truth(legacy: Ingested) -> None:
    truth = true_states(legacy.built.provider, legacy.version).select(
        "zone_id", "device_id", "vehicle_state", "start_time", "end_time", "parking_spot_id"
    )
    deployed = truth.filter(pl.col("vehicle_state").is_in(DEPLOYED)).with_columns(vehicle_state=pl.lit("deployed"))
    parked = truth.filter(pl.col("vehicle_state").is_in(PARKED)).with_columns(vehicle_state=pl.lit("parked"))
    expected = _truth_hourly(pl.concat([truth, deployed, parked]), ["zone_id", "vehicle_state"])
    mart = query(legacy.built.warehouse, "select * from occupancy_hourly where area_type = 'zone'")
    _compare(
        expected.filter(pl.col("hour") < pl.col("hour").max().over("zone_id") + pl.duration(hours=1)),
        mart,
        ["zone_id", "vehicle_state"],
    )


def test_violations_equal_the_20_build(legacy: Ingested, built_warehouse: BuiltWarehouse) -> None:
    found = query(
        legacy.built.warehouse,
        "select rule, trip_id from compliance_violations "
        "where rule in ('parking_in_forbidden_area', 'parking_outside_operations', 'parking_outside_spot')",
    )
    assert set(found.rows()) == truth_trip_end_violations(legacy.built)
    columns = "rule, zone_id, trip_id, device_id, evidence_at"
    ours = query(legacy.built.warehouse, f"select {columns} from compliance_violations order by all")
    theirs = query(built_warehouse.warehouse, f"select {columns} from compliance_violations order by all")
    assert ours.height > 0
    assert ours.equals(theirs)


def test_one_city_read_in_several_versions_at_once(
    provider: SimulatedProvider, built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    """Zone 1 read in 1.2 and zone 145 in 0.4 from the same provider, at the same time, into one lake: each zone's
    trips are the 2.0 build's, and every row says the version its zone was read in."""
    mixed = ingest_in(provider, "1.2", tmp_path, per_zone={"1": "1.2", "145": "0.4"})
    differing = ["trip_type", "mds_version", "delivery_hour"]
    trips = query(mixed.built.warehouse, "select * from trips order by trip_id")
    expected = query(built_warehouse.warehouse, "select * from trips order by trip_id")
    assert trips.drop(differing).equals(expected.drop(differing))
    by_zone = query(
        mixed.built.warehouse,
        "select zone_id, list(distinct mds_version) as versions from vehicle_state_intervals group by zone_id "
        "order by zone_id",
    )
    assert by_zone.rows() == [("1", ["1.2"]), ("145", ["0.4"])]
    assert set(trips.filter(pl.col("zone_id") == "145")["mds_version"]) == {"0.4"}
