"""The instance's event log kept open (assets/instance_storage.py): the repo's dagster.yaml opens it, it records what
Dagster's stock SQLite event log records, in the same files, and a finished process leaves each database whole."""

import contextlib
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log import SqliteEventLogStorage

from assets.instance_storage import KeptOpenSqliteEventLogStorage

REPO_ROOT = Path(__file__).resolve().parents[1]

RUN = """
import sys
import dagster as dg

@dg.multi_asset(
    specs=[dg.AssetSpec("trips"), dg.AssetSpec("events")],
    check_specs=[dg.AssetCheckSpec("rows_sane", asset="trips")],
)
def lake():
    yield dg.MaterializeResult(asset_key="trips", metadata={"rows": 12})
    yield dg.MaterializeResult(asset_key="events", metadata={"rows": 34})
    yield dg.AssetCheckResult(asset_key="trips", check_name="rows_sane", passed=True)

job = dg.Definitions(assets=[lake], jobs=[dg.define_asset_job("lake_job")]).resolve_job_def("lake_job")
instance = dg.DagsterInstance.get()  # as the command line does: never disposed, the process just ends
print(type(instance.event_log_storage).__name__)
for _ in range(2):
    print(job.execute_in_process(instance=instance).run_id)
"""


@pytest.mark.slow
def test_runs_recorded_through_the_kept_event_log_read_the_same_with_dagsters_own(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", RUN], cwd=home, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    storage_class, *run_ids = done.stdout.split()
    assert storage_class == KeptOpenSqliteEventLogStorage.__name__
    assert len(run_ids) == 2

    # Every database closed at the process's end: its write-ahead log folded back, one file each.
    databases = sorted(p.name for p in (home / "history" / "runs").iterdir())
    assert databases == sorted(["index.db", *(f"{run_id}.db" for run_id in run_ids)])

    stock = SqliteEventLogStorage(str(home / "history" / "runs"))
    for run_id in run_ids:
        types = [record.event_log_entry.dagster_event_type for record in stock.get_records_for_run(run_id).records]
        assert types.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 2
        assert types.count(dg.DagsterEventType.ASSET_CHECK_EVALUATION) == 1
        assert types[-1] == dg.DagsterEventType.RUN_SUCCESS
    # The index: each asset's latest materialization (the second run's), and the check's.
    keys = [dg.AssetKey("trips"), dg.AssetKey("events")]
    latest = {record.asset_entry.asset_key: record.asset_entry for record in stock.get_asset_records(keys)}
    assert set(latest) == set(keys)
    for entry in latest.values():
        assert entry.last_materialization_record is not None
        assert entry.last_materialization_record.run_id == run_ids[1]
    trips = latest[dg.AssetKey("trips")].last_materialization
    assert trips is not None and trips.asset_materialization is not None
    assert trips.asset_materialization.metadata["rows"].value == 12
    check = dg.AssetCheckKey(dg.AssetKey("trips"), "rows_sane")
    assert stock.get_asset_check_execution_history(check, limit=5)[0].run_id == run_ids[1]

    # And the other way: Dagster's own instance on the same folder writes, the kept one reads.
    stock_config = tmp_path / "stock"
    stock_config.mkdir()
    (stock_config / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(stock_config))) as own:
        assert type(own.event_log_storage) is SqliteEventLogStorage
        own.report_runless_asset_event(dg.AssetMaterialization("trips", metadata={"rows": 56}))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, KeptOpenSqliteEventLogStorage)
        event = instance.get_latest_materialization_event(dg.AssetKey("trips"))
        assert event is not None and event.asset_materialization is not None
        assert event.asset_materialization.metadata["rows"].value == 56
        for run_id in run_ids:
            assert len(instance.get_records_for_run(run_id).records) == len(stock.get_records_for_run(run_id).records)


def test_a_run_watched_as_the_webserver_does_streams_every_event_as_it_is_stored(tmp_path: Path) -> None:
    """The webserver streams a run's events when the run's database file changes (Dagster's SQLite watchdog): each
    event stored reaches the watcher, not only those before the database's first write-ahead log checkpoint."""
    (tmp_path / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    seen: list[str] = []
    arrived = threading.Condition()

    def heard(entry: dg.EventLogEntry, _cursor: str) -> None:
        with arrived:
            seen.append(entry.message)
            arrived.notify_all()

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.event_log_storage, KeptOpenSqliteEventLogStorage)
        run = instance.add_run(dg.DagsterRun(job_name="watched", run_id=str(uuid.uuid4())))
        instance.report_engine_event("first", dagster_run=run)
        instance.watch_event_logs(run.run_id, None, heard)
        for message in ("second", "third", "fourth"):
            instance.report_engine_event(message, dagster_run=run)
            with arrived:
                assert arrived.wait_for(lambda m=message: m in seen, timeout=10), (message, seen)  # type: ignore[misc]
        instance.end_watch_event_logs(run.run_id, heard)
    assert seen[-3:] == ["second", "third", "fourth"]


WORKER = """
import sys
import dagster as dg

instance = dg.DagsterInstance.get()  # never disposed: the process just ends, as a run worker's
run = instance.get_run_by_id(sys.argv[1])
for i in range(5):
    instance.report_engine_event(f"event {i}", dagster_run=run)
instance.report_runless_asset_event(dg.AssetMaterialization("trips", metadata={"rows": 78}))
"""


@pytest.mark.slow
def test_a_run_worker_that_ends_while_the_webserver_runs_leaves_its_events_in_the_database_files(
    tmp_path: Path,
) -> None:
    """The webserver (or the daemon) keeps its storage open as long as it runs: a run worker that ends meanwhile
    leaves its run's database one file, as Dagster's storage does, and the asset events it stored in index.db itself
    (the index stays open in the webserver, so its write-ahead log stays beside it, folded back after each write)."""
    (tmp_path / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    with dg.DagsterInstance.from_config(str(tmp_path)) as webserver:
        assert isinstance(webserver.event_log_storage, KeptOpenSqliteEventLogStorage)
        run = webserver.add_run(dg.DagsterRun(job_name="watched", run_id=str(uuid.uuid4())))
        webserver.report_engine_event("queued", dagster_run=run)  # the webserver has written the run and the index
        webserver.report_runless_asset_event(dg.AssetMaterialization("trips", metadata={"rows": 56}))
        done = subprocess.run(
            [sys.executable, "-c", WORKER, run.run_id], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]

        runs = tmp_path / "history" / "runs"
        assert sorted(p.name for p in runs.iterdir() if p.name.startswith(run.run_id)) == [f"{run.run_id}.db"]
        assert len(webserver.get_records_for_run(run.run_id).records) == 6

        # index.db alone, without the write-ahead log the webserver's open connection keeps beside it.
        alone = tmp_path / "index-alone"
        alone.mkdir()
        shutil.copyfile(runs / "index.db", alone / "index.db")
        with contextlib.closing(sqlite3.connect(f"file:{alone / 'index.db'}?immutable=1", uri=True)) as index:
            stored = index.execute(
                "select count(*) from event_logs where asset_key = ?", (dg.AssetKey("trips").to_string(),)
            ).fetchone()
        assert stored == (2,)
