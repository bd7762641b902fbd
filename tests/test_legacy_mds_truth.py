"""The same simulated city ingested in MDS 1.2 and in 0.4 gives the warehouse MDS 2.0 gives it: the same trips,
state intervals, occupancy and violations, equal to the provider's ground truth, except what a version cannot say
(docs/mds_versions.md). 0.4 cannot say a reservation that is not a ride: its truth is the city's with every hold
(`reserved`) seen as `available`, the vehicle never having left the street."""

from dataclasses import dataclass

import polars as pl
import pytest

from fleetlake_provider.service import SimulatedProvider
from fleetlake_provider.truth import truth_frames
from pipelines.lake.mds_versions import MdsVersion
from tests.conftest import BuiltWarehouse, ingest_and_build
from tests.scenario import query
from tests.test_warehouse_compliance import truth_trip_end_violations
from tests.test_warehouse_occupancy import DEPLOYED, PARKED, _compare, _truth_hourly
from tests.test_warehouse_truth import query as query_ms

# Two ingests and builds of the two-day city beside the shared 2.0 one, each zone read in a legacy version and the
# versions swapped between them: every zone in 1.2 and in 0.4, and each lake holding two versions at once.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

READINGS: tuple[dict[str, MdsVersion], ...] = ({"1": "1.2", "145": "0.4"}, {"1": "0.4", "145": "1.2"})


@dataclass(frozen=True)
class Ingested:
    built: BuiltWarehouse
    versions: dict[str, MdsVersion]
    """Each zone and the MDS version it was read in."""
    quarantined: int


@pytest.fixture(scope="module", params=READINGS, ids=lambda versions: "-".join(versions.values()))
def legacy(
    request: pytest.FixtureRequest, provider: SimulatedProvider, tmp_path_factory: pytest.TempPathFactory
) -> Ingested:
    """Every hour and snapshot of both zones, each zone read in its version of `READINGS`, through the provider's
    app, then a full build."""
    versions: dict[str, MdsVersion] = request.param
    root = tmp_path_factory.mktemp("mds-" + "-".join(versions.values()))
    built, quarantined = ingest_and_build(
        provider, root, mds_versions=tuple(versions.items()), legacy_mds_base_url="http://mds-legacy"
    )
    return Ingested(built, versions, quarantined)


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


def in_zone(frame: pl.DataFrame, zone: str) -> pl.DataFrame:
    return frame.filter(pl.col("zone_id") == zone)


def test_the_lake_says_the_version_and_loses_no_record(legacy: Ingested) -> None:
    lake = legacy.built.lake
    assert legacy.quarantined == 0  # a fault-free city: every record of the version has a 2.0 meaning
    events = query(legacy.built.warehouse, "select zone_id, count(*) as n from staging.stg_mds__events group by all")
    truth = truth_frames(legacy.built.provider)["events"]
    for zone, version in legacy.versions.items():
        versions = query(
            legacy.built.warehouse,
            f"select distinct mds_version from read_parquet('{lake}/mds_events/zone_id={zone}/**/*.parquet') "
            f"union select distinct mds_version from read_parquet('{lake}/mds_trips/zone_id={zone}/**/*.parquet')",
        )
        assert versions["mds_version"].to_list() == [version], zone
        said = in_zone(truth, zone)
        if version == "0.4":
            said = said.filter(~pl.col("event_type").str.starts_with("reservation_"))
        assert in_zone(events, zone)["n"].to_list() == [said.height], zone


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
    for zone, version in legacy.versions.items():
        assert set(in_zone(trips, zone)["mds_version"]) == {version}, zone


def test_trips_equal_the_20_build_but_for_what_the_version_lacks(
    legacy: Ingested, built_warehouse: BuiltWarehouse
) -> None:
    """Both zones at once, each read in its own version: each zone's trips are the 2.0 build's."""
    differing = ["trip_type", "mds_version", "delivery_hour"]
    legacy_trips = query(legacy.built.warehouse, "select * from trips order by trip_id").drop(differing)
    trips = query(built_warehouse.warehouse, "select * from trips order by trip_id").drop(differing)
    assert legacy_trips.equals(trips)


def test_state_intervals_follow_the_true_timeline(legacy: Ingested) -> None:
    every = query_ms(legacy.built, "select * from vehicle_state_intervals")
    by_zone = query(
        legacy.built.warehouse,
        "select zone_id, list(distinct mds_version) as versions from vehicle_state_intervals group by zone_id "
        "order by zone_id",
    )
    assert by_zone.rows() == [(zone, [version]) for zone, version in sorted(legacy.versions.items())]
    for zone, version in legacy.versions.items():
        truth = in_zone(true_states(legacy.built.provider, version), zone)
        intervals = in_zone(every, zone)
        assert intervals.height == truth.height, zone
        joined = truth.join(
            intervals, left_on=["device_id", "start_time"], right_on=["device_id", "started_at"], how="inner"
        )
        assert joined.height == truth.height, zone
        assert (joined["vehicle_state"] == joined["vehicle_state_right"]).all(), zone
        if version == "0.4":
            assert "reserved" not in set(intervals["vehicle_state"]), zone


def test_zone_occupancy_equals_the_truth(legacy: Ingested) -> None:
    occupancy = query(legacy.built.warehouse, "select * from occupancy_hourly where area_type = 'zone'")
    for zone, version in legacy.versions.items():
        truth = in_zone(true_states(legacy.built.provider, version), zone).select(
            "zone_id", "device_id", "vehicle_state", "start_time", "end_time", "parking_spot_id"
        )
        deployed = truth.filter(pl.col("vehicle_state").is_in(DEPLOYED)).with_columns(vehicle_state=pl.lit("deployed"))
        parked = truth.filter(pl.col("vehicle_state").is_in(PARKED)).with_columns(vehicle_state=pl.lit("parked"))
        expected = _truth_hourly(pl.concat([truth, deployed, parked]), ["zone_id", "vehicle_state"])
        _compare(
            expected.filter(pl.col("hour") < pl.col("hour").max().over("zone_id") + pl.duration(hours=1)),
            in_zone(occupancy, zone),
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
    assert set(ours["zone_id"]) == set(legacy.versions)
    assert ours.equals(theirs)
