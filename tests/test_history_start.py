"""History starts where the city's does: the hourly and monthly partitions begin at FLEETLAKE_HISTORY_START, so an
archive older than the default loads, and a backfill before the start is refused with the setting's name."""

import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from assets.partitions import hourly_partitions, monthly_partitions
from cli.backfill import run_backfill
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from pipelines.config import Settings
from tests.conftest import CREDENTIALS

REPO = Path(__file__).resolve().parents[1]
DAGSTER_YAML = """
event_log_storage:
  module: dagster._core.storage.event_log
  class: InMemoryEventLogStorage
telemetry:
  enabled: false
"""


def test_the_history_start_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().history_start == date(2024, 1, 1)  # the default, when unset
    monkeypatch.setenv("FLEETLAKE_HISTORY_START", "2019-03-01")
    assert Settings.from_env().history_start == date(2019, 3, 1)
    monkeypatch.setenv("FLEETLAKE_HISTORY_START", "March 2019")
    with pytest.raises(ValueError, match="FLEETLAKE_HISTORY_START must be a date, YYYY-MM-DD, got 'March 2019'"):
        Settings.from_env()


def test_partitions_start_where_the_history_does() -> None:
    hourly = hourly_partitions(date(2019, 3, 1))
    assert hourly.get_first_partition_key() == "2019-03-01-00:00"
    # Two whole days of hours before 2019-03-03 00:00 UTC: 48 partitions, none missing before the history.
    assert len(hourly.get_partition_keys(current_time=datetime(2019, 3, 3, tzinfo=UTC))) == 48
    # Reports are monthly: the history's month, from its first day.
    monthly = monthly_partitions(date(2019, 3, 15))
    assert monthly.get_first_partition_key() == "2019-03-01"
    assert monthly.get_partition_keys(current_time=datetime(2019, 6, 2, tzinfo=UTC)) == [
        "2019-03-01",
        "2019-04-01",
        "2019-05-01",
    ]


def test_a_backfill_before_the_history_start_names_the_setting() -> None:
    out = io.StringIO()
    settings = Settings(history_start=date(2024, 1, 1), zones=("1",))
    start = datetime(2019, 3, 1, tzinfo=UTC)
    assert not run_backfill(settings, start, start + timedelta(hours=2), Console(file=out, width=200))
    assert (
        "--start 2019-03-01T00:00Z is before the history start 2024-01-01 (FLEETLAKE_HISTORY_START), where the "
        "hourly partitions begin; set FLEETLAKE_HISTORY_START=2019-03-01 (or earlier) to load older hours"
    ) in out.getvalue()


@pytest.mark.integration
@pytest.mark.slow
def test_a_2019_archive_loads_when_the_history_starts_there(tmp_path: Path) -> None:
    """`fleetlake backfill` of 2019 hours, as a user runs it (a fresh process reading its environment, so the
    partitions are defined from FLEETLAKE_HISTORY_START=2019-03-01): snapshots first, the lead-in cut at the start.
    With the default start the same command is refused (test above)."""
    start = datetime(2019, 3, 1, tzinfo=UTC)
    options = ProviderOptions(zones=("1",), vehicles=20, start=start, days=1, seed=3)
    provider = SimulatedProvider(options, FixedClock(start + timedelta(days=1, minutes=15)))
    (tmp_path / "dagster_home").mkdir()
    # Its runs recorded on disk (history/runs.db), their events kept in the command's memory: SQLite on disk writes
    # each of the hundreds of events of its four runs through to a file, which is not what this test is about.
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(DAGSTER_YAML)
    with running(ProviderApp(provider, CREDENTIALS)) as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FLEETLAKE_", "VOI_", "DAGSTER_"))},
            "VOI_API_BASE_URL": url,
            "FLEETLAKE_LAKE_DIR": str(tmp_path / "lake"),
            "FLEETLAKE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "FLEETLAKE_HISTORY_START": "2019-03-01",
            # Its runs in an instance of its own (else the checkout's, beside its dagster.yaml).
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "PYTHONPATH": str(REPO),
            "COLUMNS": "200",
        }
        cli = ["backfill", "--start", "2019-03-01T00:00", "--end", "2019-03-01T03:00", "--zones", "1"]
        loaded = subprocess.run(
            [sys.executable, "-c", "from cli.app import main; main()", *cli],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert loaded.returncode == 0, loaded.stderr
    assert (tmp_path / "dagster_home" / "history" / "runs.db").is_file()
    assert "zone 1: the lake has no zone_info, zone_areas" in loaded.stderr
    assert "lead-in: 0 h before the window, cut at the history start (FLEETLAKE_HISTORY_START)" in loaded.stderr
    events = sorted((tmp_path / "lake" / "mds_events" / "zone_id=1").glob("date=*/hour=*/part-0.parquet"))
    assert [p.parent.parent.name + "/" + p.parent.name for p in events] == [
        "date=2019-03-01/hour=00",
        "date=2019-03-01/hour=01",
        "date=2019-03-01/hour=02",
    ]
    assert pl.read_parquet(events).height > 0
    assert list((tmp_path / "lake" / "zone_areas" / "zone_id=1").rglob("snapshot-*.parquet"))
