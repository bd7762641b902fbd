"""The code location loads as `dagster dev` loads it, with the graph, checks and schedules it promises."""

from pathlib import Path

import dagster as dg
import yaml

from assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]
DATASETS = {
    "mds_trips", "mds_events", "mds_vehicles", "mds_vehicle_status", "gbfs_vehicle_status", "gbfs_station_status",
    "gbfs_station_information", "gbfs_geofencing_zones", "gbfs_vehicle_types", "gbfs_system_information",
    "gbfs_pricing_plans", "zone_info", "zone_areas", "zone_area_occupancy",
}  # fmt: skip


def test_workspace_points_at_the_definitions() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    assert (target["module_name"], target["attribute"]) == ("assets.definitions", "defs")
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_covers_every_dataset_with_checks() -> None:
    graph = defs.resolve_asset_graph()
    assert {k.path[-1] for k in graph.get_all_asset_keys()} == DATASETS
    checks = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys}
    for dataset in DATASETS:
        assert (dataset, "schema_matches") in checks
        assert (dataset, "no_duplicate_ids") in checks
    for dataset in ("mds_trips", "mds_events"):
        assert (dataset, "timestamps_in_window") in checks
        assert (dataset, "row_count_sane") in checks
        assert graph.get(dg.AssetKey(dataset)).backfill_policy == dg.BackfillPolicy.single_run()


def test_schedules_and_instance_config() -> None:
    schedules = {s.name: s.cron_schedule for s in defs.schedules or []}  # type: ignore[union-attr]
    assert schedules == {
        "mds_hourly_schedule": "5 * * * *",
        "gbfs_snapshot_schedule": "*/5 * * * *",
        "mds_vehicle_snapshot_schedule": "2 * * * *",
        "zone_geometry_schedule": "15 3 * * *",
    }
    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())
    limits = instance["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": "fleetlake/ingest", "limit": 1} in limits
    assert instance["storage"]["sqlite"]["base_dir"].startswith(".dagster")
