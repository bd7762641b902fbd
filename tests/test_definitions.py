"""The code location loads as `dagster dev` loads it, with the graph, checks and schedules it promises."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import yaml

from assets.definitions import defs
from assets.partition_keys import run_window
from assets.settings import schedule_status
from assets.warehouse import model_key
from pipelines.config import Settings
from pipelines.warehouse.models import discover

REPO = Path(__file__).resolve().parents[1]
DATASETS = {
    "mds_trips", "mds_events", "mds_vehicles", "mds_vehicle_status", "gbfs_vehicle_status", "gbfs_station_status",
    "gbfs_station_information", "gbfs_geofencing_zones", "gbfs_vehicle_types", "gbfs_system_information",
    "gbfs_pricing_plans", "zone_info", "zone_areas", "zone_area_occupancy", "gbfs_v2_free_bike_status",
    "gbfs_v2_system_regions",
}  # fmt: skip
LAKE_GROUPS = {"lake"}


def test_workspace_points_at_the_definitions() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    assert (target["module_name"], target["attribute"]) == ("assets.definitions", "defs")
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_covers_every_dataset_with_checks() -> None:
    graph = defs.resolve_asset_graph()
    lake_keys = {k.path[-1] for k in graph.get_all_asset_keys() if graph.get(k).group_name in LAKE_GROUPS}
    assert lake_keys == DATASETS
    checks = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys}
    for dataset in DATASETS:
        assert (dataset, "schema_matches") in checks
        assert (dataset, "no_duplicate_ids") in checks
    for dataset in ("mds_trips", "mds_events"):
        assert (dataset, "timestamps_in_window") in checks
        assert (dataset, "row_count_sane") in checks
        assert graph.get(dg.AssetKey(dataset)).backfill_policy == dg.BackfillPolicy.single_run()


def test_every_model_is_an_asset_downstream_of_what_it_reads() -> None:
    graph = defs.resolve_asset_graph()
    models = discover()
    for name, model in models.items():
        key = model_key(name, model.schema)
        assert graph.has(key), name
        upstream = {k.path[-1] for k in graph.get(key).parent_keys}
        # A dataset's superseded records come from the dataset's own asset.
        expected = {i.removeprefix("lake.").removeprefix("superseded_") for i in model.inputs if i != "lake.quarantine"}
        assert upstream == expected, name
    # Models are unpartitioned: a run rebuilds the window its partition tags name (see assets/warehouse.py).
    assert graph.get(dg.AssetKey("trips")).partitions_def is None
    assert run_window(
        {
            "dagster/asset_partition_range_start": "2026-03-29-00:00",
            "dagster/asset_partition_range_end": "2026-03-29-05:00",
        }
    ) == (datetime(2026, 3, 29, tzinfo=UTC), datetime(2026, 3, 29, 6, tzinfo=UTC))
    assert run_window({"dagster/partition": "2026-03-29-05:00"}) == (
        datetime(2026, 3, 29, 5, tzinfo=UTC),
        datetime(2026, 3, 29, 6, tzinfo=UTC),
    )
    assert run_window({}) is None
    job = defs.resolve_job_def("mds_hourly_job")
    assert {"mds_trips", "trips", "vehicle_state_intervals"} <= {
        k.path[-1] for k in job.asset_layer.selected_asset_keys
    }


def test_city_report_is_monthly_and_downstream_of_the_marts_it_reads() -> None:
    graph = defs.resolve_asset_graph()
    report = graph.get(dg.AssetKey("city_report"))
    assert isinstance(report.partitions_def, dg.MonthlyPartitionsDefinition)
    assert report.partitions_def.get_first_partition_key() == "2024-01-01"
    upstream = {k.path[-1] for k in report.parent_keys}
    assert {"trips", "occupancy_hourly", "compliance_daily", "stg_zone__areas", "zone_info"} <= upstream
    job = defs.resolve_job_def("city_report_job")
    assert {k.path[-1] for k in job.asset_layer.selected_asset_keys} == {"city_report"}
    # On 2 April the schedule asks for March.
    schedule = defs.resolve_schedule_def("city_report_schedule")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 4, 2, 6, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        requests = schedule.evaluate_tick(context).run_requests or []
    assert [r.partition_key for r in requests] == ["2026-03-01"]


def test_schedules_and_instance_config() -> None:
    schedules = {s.name: defs.resolve_schedule_def(s.name).cron_schedule for s in defs.schedules or []}
    assert schedules == {
        "mds_hourly_schedule": "5 * * * *",
        "gbfs_snapshot_schedule": "*/5 * * * *",
        "mds_vehicle_snapshot_schedule": "2 * * * *",
        "zone_geometry_schedule": "15 3 * * *",
        "city_report_schedule": "0 6 2 * *",
    }
    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())
    limits = instance["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": "fleetlake/ingest", "limit": 1} in limits
    assert "storage" not in instance  # everything under DAGSTER_HOME (tests/test_run_queue.py)


def test_asset_groups_read_as_layers_from_the_providers_apis() -> None:
    graph = defs.resolve_asset_graph()
    city = {key for key in graph.get_all_asset_keys() if graph.get(key).group_name != "insurance"}
    assert {graph.get(key).group_name for key in city} == {"sources", "lake", "staging", "core", "marts", "reports"}
    sources = {key for key in city if graph.get(key).group_name == "sources"}
    assert sources == {dg.AssetKey(["voi", name]) for name in ("mds_api", "gbfs", "zone_api")}
    assert not any(graph.get(key).is_materializable for key in sources)  # external: nothing here makes them
    for key in city:
        if graph.get(key).group_name == "lake":
            (parent,) = graph.get(key).parent_keys
            assert parent in sources, key
    assert graph.get(dg.AssetKey("zone_areas")).parent_keys == {dg.AssetKey(["voi", "zone_api"])}
    assert (graph.get(dg.AssetKey("trips")).description or "").startswith("Trips with local times")


def test_every_job_and_schedule_says_what_it_does() -> None:
    jobs = [defs.resolve_job_def(job.name) for job in defs.jobs or []]
    assert len(jobs) == 7 and all(job.description for job in jobs), [job.name for job in jobs if not job.description]
    schedules = [defs.resolve_schedule_def(s.name) for s in defs.schedules or []]
    assert all(s.description for s in schedules), [s.name for s in schedules if not s.description]
    # Stopped until switched on in the UI, unless FLEETLAKE_SCHEDULES_RUNNING starts them all with the daemon.
    assert {s.default_status for s in schedules} == {dg.DefaultScheduleStatus.STOPPED}
    assert schedule_status(Settings(schedules_running=True)) == dg.DefaultScheduleStatus.RUNNING
    assert schedule_status(Settings()) == dg.DefaultScheduleStatus.STOPPED
