"""`fleetlake backfill` brings what its marts need: the zone, GBFS and MDS vehicle snapshots of a zone the lake has
none of are taken first (and the output says so); `fleetlake snapshot` takes them on demand."""

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli.app import app
from cli.backfill import run_backfill
from cli.snapshots import take_snapshots
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from pipelines.needed_snapshots import NEEDED_BY_MARTS, missing_snapshots
from pipelines.warehouse.build import Warehouse
from tests.conftest import CREDENTIALS, loopback_settings
from tests.scenario import query, write_system_information, write_zone_areas

T0 = datetime(2026, 3, 10, 6, tzinfo=UTC)


def test_missing_snapshots_are_listed_per_zone(tmp_path: Path) -> None:
    write_zone_areas(tmp_path, "1", T0, [])  # an empty capture still counts: the zone has no areas
    write_system_information(tmp_path, "1", T0)
    assert missing_snapshots(tmp_path, ["1", "145"]) == {
        "1": ("zone_info", "gbfs_vehicle_types", "gbfs_geofencing_zones", "mds_vehicles"),
        "145": NEEDED_BY_MARTS,
    }
    assert missing_snapshots(tmp_path, []) == {}


def test_the_snapshot_command_refuses_unknown_datasets() -> None:
    result = CliRunner().invoke(app, ["snapshot", "--datasets", "zone_areas,mds_trips"])
    assert result.exit_code == 2
    assert "unknown dataset(s) ['mds_trips']; the snapshot datasets are" in result.output


START = datetime(2026, 3, 28, tzinfo=UTC)


@pytest.mark.integration
@pytest.mark.slow
def test_a_backfill_takes_the_snapshots_it_lacks_first(tmp_path: Path) -> None:
    options = ProviderOptions(zones=("1", "145"), vehicles=20, start=START, days=1, seed=5)
    provider = SimulatedProvider(options, FixedClock(START + timedelta(days=1, minutes=15)))
    # An in-memory instance: the runs' bookkeeping is not what this test is about, and on disk (SQLite) it
    # costs each run about twice the CPU.
    with running(ProviderApp(provider, CREDENTIALS)) as url, dg.DagsterInstance.ephemeral() as instance:
        settings = loopback_settings(url, tmp_path)
        # `fleetlake snapshot --zones 145 --datasets zone_areas`: that one dataset of that one zone.
        runs = take_snapshots(settings, ["145"], ["zone_areas"], dagster_instance=instance)
        assert [(r.job, r.zones, r.datasets, r.success) for r in runs] == [
            ("zone_geometry_job", ("145",), ("zone_areas",), True)
        ]
        assert sorted(p.name for p in settings.lake_dir.iterdir() if not p.name.startswith("_")) == ["zone_areas"]
        assert missing_snapshots(settings.lake_dir, ["145"])["145"] == tuple(
            d for d in NEEDED_BY_MARTS if d != "zone_areas"
        )

        def backfill(start: datetime, hours: int) -> str:
            out = io.StringIO()
            ok = run_backfill(
                settings,
                start,
                start + timedelta(hours=hours),
                Console(file=out, width=300),
                lead_in_hours=2,
                dagster_instance=instance,
            )
            assert ok, out.getvalue()
            return out.getvalue()

        first = backfill(START + timedelta(hours=2), 2)
        assert (
            "zone 1: the lake has no zone_info, zone_areas, gbfs_system_information, gbfs_vehicle_types, "
            "gbfs_geofencing_zones, mds_vehicles; taking its snapshots first"
        ) in first
        assert (
            "zone 145: the lake has no zone_info, gbfs_system_information, gbfs_vehicle_types, gbfs_geofencing_zones, "
            "mds_vehicles; taking its snapshots first"
        ) in first
        assert "lead-in: 2 h before the window (from 2026-03-28T00:00Z), 0 already in the lake" in first
        # Every long step shows its progress: each snapshot job's bar, the ingestion's, then the warehouse build's.
        snapshot_bars = re.findall(r"snapshots: (\w+) \(1 of 1\).*? (\d+)/(\d+) ", first)
        jobs = {"zone_geometry_job", "gbfs_snapshot_job", "mds_vehicle_snapshot_job"}
        assert {job for job, _, _ in snapshot_bars} == jobs, first
        assert all(done == total != "0" for _, done, total in snapshot_bars), snapshot_bars
        built_bar = re.search(r"warehouse build .*? (\d+)/(\d+) ", first)
        assert built_bar and built_bar[1] == built_bar[2] and int(built_bar[1]) > 20, first
        assert missing_snapshots(settings.lake_dir, ["1", "145"]) == {}
        # The next hours: nothing to snapshot, and the lead-in is the hours just backfilled.
        second = backfill(START + timedelta(hours=4), 1)
        assert "taking its snapshots first" not in second
        assert "lead-in: 2 h before the window (from 2026-03-28T02:00Z), 2 already in the lake" in second
        assert "ingesting from" not in second
    # The marts have what the snapshots bring: each zone's time zone.
    built = Warehouse(settings.warehouse, settings.lake_dir)
    zones = query(built, "select zone_id, any_value(timezone) as tz from occupancy_hourly group by 1 order by 1")
    assert zones.rows() == [("1", "Europe/Stockholm"), ("145", "Europe/Berlin")]
    quality = query(built, "select min(hour) as first, count(*) as hours from data_quality_hourly")
    assert quality.rows() == [(START, 10)]  # 5 hours (00:00-05:00 UTC) of 2 zones
