"""Runs never stop the queue: one Dagster instance from any directory, one ingestion at a time, dead runs failed.

The slow tests run the real thing: `dagster-daemon run` (run queue, run monitoring) with its code server and run
workers, the command line's backfills, the simulated provider on loopback, and kill -9.
"""

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.origin import JobPythonOrigin
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.remote_representation.external import RemoteRepository
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

from assets.launch import REPO_ROOT, dagster_home, run_job
from assets.run_limits import (
    HOURLY_MAX_RUNTIME_S,
    INGEST_TAG,
    MAX_RUNTIME_TAG,
    ingest_max_runtime_seconds,
)
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from pipelines.config import Settings
from pipelines.ingest import GBFS_DATASETS, MDS_SNAPSHOT_DATASETS, ZONE_DATASETS, ingest_snapshots
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.connection import connect
from tests.comparable_rows import comparable
from tests.conftest import CREDENTIALS, loopback_settings, make_provider

BIN = Path(sys.executable).parent
WORKSPACE = REPO_ROOT / "workspace.yaml"
IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}


def instance_config() -> dict[str, object]:
    return yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def instance_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory (/dev/shm) for a Dagster instance that several processes share, else tmp_path. SQLite
    syncs each of the ~1,000 commits of a run to the disk; in memory the processes share its files exactly as on
    disk (and a kill -9 loses nothing the page cache holds) without waiting for the disk."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="fleetlake-instance-") as folder:
        yield Path(folder)


# --- the instance's configuration -------------------------------------------------------------------------------


def test_instance_config_has_no_relative_paths_and_monitors_runs(instance_folder: Path) -> None:
    config = instance_config()

    def paths(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"base_dir", "path", "dir"} and isinstance(value, str):
                    yield value
                yield from paths(value)
        elif isinstance(node, list):
            for value in node:
                yield from paths(value)

    assert list(paths(config)) == []  # storage, compute logs and artifacts all live under DAGSTER_HOME
    monitoring = config["run_monitoring"]
    assert isinstance(monitoring, dict)
    assert monitoring["enabled"] is True
    assert monitoring["start_timeout_seconds"] == 300
    assert monitoring["cancel_timeout_seconds"] == 300
    assert monitoring["max_runtime_seconds"] == 6 * 3600
    assert monitoring["max_resume_run_attempts"] == 0
    with dg.instance_for_test(overrides={"run_monitoring": monitoring}, temp_dir=str(instance_folder)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 6 * 3600


def test_every_ingesting_run_carries_the_ingest_tag_and_a_maximum_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.definitions import defs

    monkeypatch.delenv("FLEETLAKE_MAX_RUNTIME_SECONDS", raising=False)
    job = defs.resolve_job_def("mds_hourly_job")
    assert job.run_tags[INGEST_TAG] == "voi"
    assert job.run_tags[MAX_RUNTIME_TAG] == str(2 * 3600)
    # Snapshot jobs are not ingestion runs (never delayed behind a backfill) but have a short maximum runtime.
    for name in ("gbfs_snapshot_job", "mds_vehicle_snapshot_job"):
        tags = defs.resolve_job_def(name).run_tags
        assert INGEST_TAG not in tags
        assert tags[MAX_RUNTIME_TAG] == str(15 * 60)
    # A backfill of 30 days: 2 h, and 2 minutes for each hour after the first.
    assert ingest_max_runtime_seconds(720) == HOURLY_MAX_RUNTIME_S + 719 * 120 == 93_480
    # FLEETLAKE_MAX_RUNTIME_SECONDS, when set, is every ingesting run's; 0 is refused, naming it.
    assert ingest_max_runtime_seconds(720, override=3600) == 3600
    monkeypatch.setenv("FLEETLAKE_MAX_RUNTIME_SECONDS", "0")
    with pytest.raises(ValueError, match="FLEETLAKE_MAX_RUNTIME_SECONDS must be a positive whole number of seconds"):
        Settings.from_env()


@pytest.mark.slow
@pytest.mark.integration
def test_the_queue_tags_any_run_that_ingests(instance_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A materialization or asset backfill from the asset graph runs the implicit asset job, which has no tags of
    its own: the instance's run coordinator adds them when the run is queued."""
    from assets.definitions import defs

    monkeypatch.delenv("FLEETLAKE_MAX_RUNTIME_SECONDS", raising=False)
    config = instance_config()
    asset_job = defs.resolve_implicit_global_asset_job_def()
    # Three hours across midnight (a month would do as well, but Dagster records a planned materialization per
    # partition when it creates a run: ~50 s over 720 partitions).
    three_hours = {
        "dagster/asset_partition_range_start": "2026-03-01-23:00",
        "dagster/asset_partition_range_end": "2026-03-02-01:00",
    }
    location = code_location()
    target = location.loadable_target_origin
    assert target.module_name is not None and target.attribute is not None
    code = ReconstructableRepository.for_module(target.module_name, target.attribute)
    with dg.instance_for_test(
        overrides={"run_coordinator": config["run_coordinator"]}, temp_dir=str(instance_folder)
    ) as inst:

        def submitted(job: dg.JobDefinition, assets: set[str] | None, tags: dict[str, str]) -> dg.DagsterRun:
            run = inst.create_run_for_job(
                job,
                asset_selection={dg.AssetKey(a) for a in assets} if assets else None,
                tags=tags,
                status=dg.DagsterRunStatus.NOT_STARTED,
                remote_job_origin=RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job.name),
                job_code_origin=JobPythonOrigin(job.name, code.get_python_origin()),
            )
            # The queued run coordinator reads the run and its plan from the instance, not the workspace.
            inst.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
            queued = inst.get_run_by_id(run.run_id)
            assert queued is not None
            return queued

        backfill = submitted(asset_job, {"mds_trips"}, three_hours)
        assert backfill.status == dg.DagsterRunStatus.QUEUED
        assert backfill.tags[INGEST_TAG] == "voi"
        # 3 hours: 2 h + 2 × 2 min.
        assert backfill.tags[MAX_RUNTIME_TAG] == str(2 * 3600 + 2 * 120) == "7440"
        one_hour = submitted(asset_job, {"mds_events"}, {"dagster/partition": "2026-03-01-05:00"})
        assert one_hour.tags[INGEST_TAG] == "voi"
        assert one_hour.tags[MAX_RUNTIME_TAG] == str(2 * 3600)
        chosen = submitted(asset_job, {"mds_trips"}, {**three_hours, MAX_RUNTIME_TAG: "600"})
        assert (chosen.tags[INGEST_TAG], chosen.tags[MAX_RUNTIME_TAG]) == ("voi", "600")
        # Runs that do not ingest are left as they are.
        for job, assets in ((asset_job, {"trips"}), (defs.resolve_job_def("gbfs_snapshot_job"), None)):
            run = submitted(job, assets, {})
            assert run.status == dg.DagsterRunStatus.QUEUED
            assert INGEST_TAG not in run.tags


def test_the_command_line_uses_the_repo_instance_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    assert dagster_home() == REPO_ROOT
    monkeypatch.setenv("DAGSTER_HOME", "relative/home")
    assert dagster_home() == tmp_path / "relative" / "home"


@pytest.mark.slow
@pytest.mark.integration
def test_processes_started_in_different_directories_share_one_instance(
    tmp_path: Path, instance_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the daemon, the webserver and the command line do: open $DAGSTER_HOME with the repo's dagster.yaml. A
    process started in the instance's folder records a run; this one, working in another folder, reads it."""
    home, elsewhere = instance_folder / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    script = (
        "import sys, dagster as dg\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    instance.add_run(dg.DagsterRun(job_name='written_elsewhere', run_id=sys.argv[1]))\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": checkout_first_path()}
    run_id = "a" * 8 + "-0000-4000-8000-" + "0" * 12
    write = subprocess.run([sys.executable, "-c", script, run_id], cwd=home, env=env, capture_output=True, text=True)
    assert write.returncode == 0, write.stderr[-2000:]
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(elsewhere)
    with dg.DagsterInstance.get() as instance:
        assert sorted(r.job_name for r in instance.get_runs()) == ["written_elsewhere"]
    assert (home / "history" / "runs.db").is_file()
    assert not list(elsewhere.iterdir())  # nothing created where the second process started


# --- a real daemon ------------------------------------------------------------------------------------------------


def write_instance(home: Path) -> Path:
    """The repo's dagster.yaml, polled every second instead of every minute (a test cannot wait minutes)."""
    config = instance_config()
    monitoring = config["run_monitoring"]
    coordinator = config["run_coordinator"]
    assert isinstance(monitoring, dict)
    assert isinstance(coordinator, dict)
    monitoring["poll_interval_seconds"] = 1
    coordinator["config"]["dequeue_interval_seconds"] = 1
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def checkout_first_path() -> str:
    """A PYTHONPATH with this checkout's code first, whichever checkout the environment's editable install names:
    a process opening the instance imports the instance class dagster.yaml names (assets/instance_storage.py)."""
    return os.pathsep.join(filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH"))))


def pipeline_env(url: str, root: Path, **extra: str) -> dict[str, str]:
    """What the daemon, its code server and run workers (or the command line) need to ingest from `url`: this
    checkout's code first on their path (checkout_first_path)."""
    return {
        **os.environ,
        "PYTHONPATH": checkout_first_path(),
        "VOI_API_BASE_URL": url,
        "VOI_MAAS_BASE_URL": url,
        "FLEETLAKE_ZONES": "1,145",
        "FLEETLAKE_LAKE_DIR": str(root / "lake"),
        "FLEETLAKE_WAREHOUSE": str(root / "warehouse.duckdb"),
        "FLEETLAKE_LOOKBACK_HOURS": "1",
        **extra,
    }


DAEMON_HEARTBEAT_S = 1
DAEMONS = ("QUEUED_RUN_COORDINATOR", "MONITORING")
DAEMON = (
    "import functools, sys\n"
    "from dagster._daemon import cli, controller\n"
    "def daemons(instance):\n"
    f"    return [controller.create_daemon_of_type(kind, instance) for kind in {DAEMONS!r}]\n"
    "cli.daemon_controller_from_instance = functools.partial(\n"
    "    controller.daemon_controller_from_instance,\n"
    f"    heartbeat_interval_seconds={DAEMON_HEARTBEAT_S},\n"
    "    gen_daemons=daemons,\n"
    ")\n"
    "sys.exit(cli.main())\n"
)
"""`dagster-daemon run` itself with the daemons the tests watch, the run queue and run monitoring, each writing its
heartbeat (which a test reads as "one more pass of the run queue") every second instead of every 30 s: Dagster has
no setting for the interval, only this argument. The scheduler's iteration runs in the test (`Scheduler`, with a
chosen "now"); the other daemons (sensors, backfills, automation, freshness) would only poll the instance."""


@contextlib.contextmanager
def daemon(home: Path, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` in its own process group (it, its code server and the run workers it starts)."""
    log = (home / "daemon.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-c", DAEMON, "run", "-w", str(WORKSPACE)],
        env={**env, "DAGSTER_HOME": str(home)},
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 120, home: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            log = (home / "daemon.log").read_text()[-4000:] if home and (home / "daemon.log").exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{log}")
        time.sleep(0.2)


def status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def daemon_iterations(instance: dg.DagsterInstance, daemon_type: str) -> float:
    beats = instance.get_daemon_heartbeats()
    return beats[daemon_type].timestamp if daemon_type in beats else 0.0


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid, from the engine event its code server logs when it starts the process."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if record.message.startswith("Started process for run"):
            data = record.dagster_event.engine_event_data  # type: ignore[union-attr]
            return int(str(data.metadata["pid"].value))
    return None


def code_location() -> InProcessCodeLocationOrigin:
    """The code location workspace.yaml names, under its name, to be loaded in this process."""
    workspace_file = yaml.safe_load(WORKSPACE.read_text())["load_from"][0]["python_module"]
    return InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=workspace_file["module_name"],
            attribute=workspace_file["attribute"],
        ),
        location_name=workspace_file["location_name"],
    )


@contextlib.contextmanager
def in_process_workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The code location loaded in this process (no code server)."""
    origin = code_location()
    with warnings.catch_warnings():
        # Dagster's own snapshot of a schedule reads its deprecated `environment_vars` property.
        warnings.simplefilter("ignore", DeprecationWarning)
        context = WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin))
    with context:
        yield context


def repository_of(context: WorkspaceProcessContext) -> RemoteRepository:
    location = context.create_request_context().get_code_location("fleetlake")
    return next(iter(location.get_repositories().values()))


def next_tick(after: datetime) -> datetime:
    """The hourly schedule's first tick (minute 5) after `after`."""
    tick = after.replace(minute=5, second=0, microsecond=0)
    return tick if tick > after else tick + timedelta(hours=1)


class Scheduler:
    """The scheduler daemon's own iteration, run here with a chosen "now", so an hourly tick needs no hour. The
    code location is loaded in this process (the one workspace.yaml names, under its name): the runs it submits
    are launched by the daemon in its own code server."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.stack = contextlib.ExitStack()
        self.context = self.stack.enter_context(in_process_workspace(instance))
        self.schedule = repository_of(self.context).get_schedule("mds_hourly_schedule")
        instance.start_schedule(self.schedule)
        self.iteration_times: dict[str, object] = {}

    def tick(self, now: datetime) -> list[dg.DagsterRun]:
        """The runs the schedule's latest tick at or before `now` submits (no catch-up: the job is not
        partitioned, the schedule names its range in tags), as the tick records them: other processes may be
        creating runs of their own meanwhile."""
        from dagster._scheduler.scheduler import launch_scheduled_runs  # after dagster._daemon, which it needs

        logger = dg.get_dagster_logger("scheduler")
        list(launch_scheduled_runs(self.context, logger, now, self.iteration_times))  # type: ignore[arg-type]
        scheduled = next_tick(now - timedelta(hours=1))
        ticks = self.instance.get_ticks(self.schedule.get_remote_origin_id(), self.schedule.selector_id)
        (tick,) = [t for t in ticks if t.timestamp == scheduled.timestamp()]
        runs = [self.instance.get_run_by_id(run_id) for run_id in tick.run_ids]
        return [run for run in runs if run is not None]

    def close(self) -> None:
        self.stack.close()


# --- chaos: kill -9 during ingestion and during the warehouse build ------------------------------------------------

CHAOS_SEED = 12
# When each delivery was ingested: the clean run's and the rerun's differ, as they should.
DELIVERY_STAMPS = ("ingested_at", "delivered_at", "delivery")
CHAOS_HOURS = 3
RUN_MAX_RUNTIME_S = 5


def lake_frame(root: Path, dataset: str, key: str) -> pl.DataFrame:
    files = sorted(root.glob(f"{dataset}/zone_id=*/date=*/hour=*/*.parquet"))
    frame = pl.read_parquet(files, hive_partitioning=True).with_columns(pl.col("zone_id").cast(pl.String))
    return frame.drop(*DELIVERY_STAMPS, strict=False).sort("zone_id", key)


def marts(path: Path, lake: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table and view of the warehouse, all rows, comparable (tests/comparable_rows.py); the lake's own folder
    (in the file names of the partitions a model read) written as <lake>, and the delivery stamps left out."""
    with connect(path) as con:  # the lake views name their files relative to the warehouse's folder
        relations = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
            "union all select schema_name, view_name from duckdb_views() "
            "where database_name = current_database() and not internal order by all"
        ).fetchall()
        columns = con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and column_name in $stamps",
            {"stamps": list(DELIVERY_STAMPS)},
        ).fetchall()

        def excluded(schema: str, name: str) -> str:
            return ", ".join(f'"{c}"' for s, t, c in columns if (s, t) == (schema, name))

        return {
            f"{schema}.{name}": comparable(
                tuple(v.replace(str(lake), "<lake>") if isinstance(v, str) else v for v in row)
                for row in con.execute(
                    f'select * exclude ({excluded(schema, name)}) from "{schema}"."{name}" order by all'
                    if excluded(schema, name)
                    else f'select * from "{schema}"."{name}" order by all'
                ).fetchall()
            )
            for schema, name in relations
        }


def take_snapshots(settings: Settings, captured_at: datetime) -> None:
    import asyncio

    async def take() -> None:
        async with VoiClient(settings) as client:
            datasets = (*GBFS_DATASETS, *MDS_SNAPSHOT_DATASETS, *ZONE_DATASETS)
            await ingest_snapshots(client, Lake(settings.lake_dir), settings.zones, datasets, captured_at=captured_at)

    asyncio.run(take())


def kill_when(process: subprocess.Popen[bytes], moment: Callable[[], bool], timeout: float = 120) -> bool:
    """kill -9 the process group at the first instant `moment()` holds; False if the process ended before."""
    deadline = time.monotonic() + timeout
    while not moment():
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return True


@pytest.mark.slow
@pytest.mark.integration
def test_chaos_kill_nine_during_ingestion_and_build_then_rerun_equals_a_clean_run(
    tmp_path: Path, instance_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backfills killed with -9 at seeded random moments of the ingestion and of the warehouse build, then run
    again: the lake and every relation of the warehouse equal a clean run's. Then a real daemon: the killed runs,
    left "started" in the instance, are failed by run monitoring; of two scheduled hourly runs the second stays
    queued while the first runs (one ingestion at a time); kill -9 of the first's worker fails it and frees its
    slot, and the second is launched and succeeds."""
    rng = random.Random(CHAOS_SEED)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    yesterday = now.replace(hour=0) - timedelta(days=1)
    first_hour = yesterday + timedelta(hours=12)  # an afternoon in Stockholm and Berlin: trips to ingest
    clock = FixedClock(now + timedelta(minutes=20))  # every hour before now is compiled
    # Three days: the scheduled runs ask for the hours now and now + 1, which may be tomorrow's.
    provider = make_provider(clock, start=yesterday, days=3, vehicles=40, zones=("1", "145"))
    home = write_instance(instance_folder / "home")
    clean, chaos = tmp_path / "clean", tmp_path / "chaos"
    with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
        for root in (clean, chaos):
            take_snapshots(loopback_settings(url, root), captured_at=now)
        with dg.DagsterInstance.ephemeral() as reference:  # in memory: half the CPU of SQLite on disk
            started = time.monotonic()
            clean_run = run_job(
                "mds_hourly_job",
                loopback_settings(url, clean),
                first_hour=first_hour,
                last_hour=first_hour + timedelta(hours=CHAOS_HOURS - 1),
                dagster_instance=reference,
            )
            clean_seconds = time.monotonic() - started
        assert clean_run.success
        build_seconds = sum(
            float(e.materialization.metadata["seconds"].value)  # type: ignore[arg-type,misc]
            for e in clean_run.get_asset_materialization_events()
            if "seconds" in e.materialization.metadata
        )
        assert 0 < build_seconds < clean_seconds
        partitions = len(list((clean / "lake").glob("mds_*/zone_id=*/date=*/hour=*/part-0.parquet")))
        assert partitions == CHAOS_HOURS * 2 * 2

        env = pipeline_env(url, chaos, DAGSTER_HOME=str(home), FLEETLAKE_MAX_RUNTIME_SECONDS=str(RUN_MAX_RUNTIME_S))
        command = [
            str(BIN / "fleetlake"),
            "backfill",
            "--start",
            first_hour.isoformat(),
            "--end",
            (first_hour + timedelta(hours=CHAOS_HOURS)).isoformat(),
            # The clean run ingests the window alone: so does this one (the lead-in has tests of its own).
            "--lead-in-hours",
            "0",
        ]

        def backfill() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                env=env,
                cwd=tmp_path,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        def lake_files() -> int:
            return len(list((chaos / "lake").glob("mds_*/zone_id=*/date=*/hour=*/part-0.parquet")))

        def steps(instance: dg.DagsterInstance, run_id: str, event: dg.DagsterEventType) -> set[str]:
            return {e.step_key for e in instance.all_logs(run_id, of_type=event) if e.step_key}

        with dg.DagsterInstance.from_config(str(home)) as instance:

            def newest_run() -> str | None:
                runs = [r.run_id for r in instance.get_runs() if r.run_id not in killed]
                return runs[0] if runs else None

            killed: list[str] = []
            # 1. During ingestion: once a random number of the run's lake partitions has landed.
            landed = rng.randint(1, partitions - 1)
            assert kill_when(backfill(), lambda: lake_files() >= landed), "the backfill ended before its kill"
            # The command fetches its hours from its start, before its run is recorded (pipelines/backfill.py): the
            # kill may come before there is a run; a run there is was killed before its ingestion step ended.
            run_id = newest_run()
            if run_id is not None:
                killed.append(run_id)
                assert not steps(instance, run_id, dg.DagsterEventType.STEP_SUCCESS), "killed after the ingestion"
            visible = list((chaos / "lake").glob("mds_*/zone_id=*/date=*/hour=*/*.parquet"))
            assert len(visible) >= landed
            for path in visible:  # whatever a killed ingestion left visible is whole
                pl.read_parquet(path)
            # 2. During the warehouse build: a random instant within the clean build's duration after the build
            # created the warehouse (no earlier run got that far).
            warehouse = chaos / "warehouse.duckdb"
            assert not warehouse.exists()
            delay = rng.uniform(0.1, 0.8) * build_seconds
            began: list[float] = []

            def during_build() -> bool:
                if not began and warehouse.exists():
                    began.append(time.monotonic())
                return bool(began) and time.monotonic() - began[0] >= delay

            assert kill_when(backfill(), during_build), "the build ended before its kill"
            run_id = newest_run()
            assert run_id is not None
            killed.append(run_id)
            assert steps(instance, run_id, dg.DagsterEventType.STEP_SUCCESS) == {"mds_hourly"}, "not in the build"
        # The warehouse a killed build leaves behind opens (DuckDB replays its write-ahead log) and every relation
        # in it reads; the models the build had not reached yet are absent (a first build) or as they were.
        partial = marts(chaos / "warehouse.duckdb", chaos / "lake")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
        # The killed runs are "started" for ever as far as the instance knows, and hold the ingestion slot.
        assert {r.run_id for r in runs} == set(killed)
        assert all(r.status == dg.DagsterRunStatus.STARTED and r.tags[INGEST_TAG] == "voi" for r in runs)

        # 3. Run again, to the end, while a real daemon starts: run monitoring fails the killed runs once their
        # maximum runtime has passed. The rerun's own run is under the daemon's watch too, so its maximum runtime is
        # one the run monitoring does not cut short. Meanwhile the hourly schedule ticks twice and the queue
        # launches its runs, one ingestion at a time. The first asks for an hour the provider has not compiled yet
        # (202): it waits to retry, holding its slot, and the second stays queued (it has free run slots, not the
        # tag). kill -9 of the first's run worker fails it (its code server sees the process die) and the queue
        # launches the second, which succeeds once the provider has compiled its hours.
        monkeypatch.setenv("FLEETLAKE_LOOKBACK_HOURS", "1")  # each scheduled run asks for its hour alone
        # The hour `now` has ended, not yet compiled; the rerun's hours, a day old, are served as they were.
        clock.set(now + timedelta(hours=1, minutes=4))
        waiting = {**env, "FLEETLAKE_NOT_READY_RETRY_SECONDS": "600"}
        rerun_env = {**env, "FLEETLAKE_MAX_RUNTIME_SECONDS": str(HOURLY_MAX_RUNTIME_S)}
        rerun_log = tmp_path / "rerun.log"
        with (
            dg.DagsterInstance.from_config(str(home)) as instance,
            daemon(home, waiting, cwd=tmp_path),
            rerun_log.open("wb") as log,
        ):
            rerun = subprocess.Popen(
                command, env=rerun_env, cwd=tmp_path, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                scheduler = Scheduler(instance)
                try:
                    # The ticks after the hours `now` (202 at the provider's clock) and now + 1.
                    (first,) = scheduler.tick(now + timedelta(hours=1, minutes=6))
                    (second,) = scheduler.tick(now + timedelta(hours=2, minutes=6))
                finally:
                    scheduler.close()
                rerun.wait(timeout=300)
            finally:
                if rerun.poll() is None:
                    os.killpg(rerun.pid, signal.SIGKILL)
                    rerun.wait(timeout=30)
            assert rerun.returncode == 0, rerun_log.read_text()[-3000:]
            scheduled = {first.run_id, second.run_id}
            runs = [r for r in instance.get_runs() if r.run_id not in {*killed, *scheduled}]
            assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]  # the rerun's

            for dataset, key in (("mds_trips", "trip_id"), ("mds_events", "event_id")):
                chaos_frame, clean_frame = (lake_frame(root / "lake", dataset, key) for root in (chaos, clean))
                assert chaos_frame.equals(clean_frame), dataset
            assert not list((chaos / "lake").rglob("*.tmp")), "temporary files left behind"
            clean_marts, chaos_marts = (marts(root / "warehouse.duckdb", root / "lake") for root in (clean, chaos))
            assert clean_marts.keys() == chaos_marts.keys()
            assert partial.keys() <= clean_marts.keys()
            assert clean_marts["main.trips"]
            for name, rows in clean_marts.items():
                assert chaos_marts[name] == rows, name

            for run in (first, second):
                assert run.tags[INGEST_TAG] == "voi"
                assert run.tags[MAX_RUNTIME_TAG] == str(HOURLY_MAX_RUNTIME_S)
                assert run.tags["dagster/schedule_name"] == "mds_hourly_schedule"
            wait_for(
                "run monitoring to fail the killed runs",
                lambda: all(status(instance, run_id) == dg.DagsterRunStatus.FAILURE for run_id in killed),
                timeout=RUN_MAX_RUNTIME_S + 90,
                home=home,
            )
            for run_id in killed:
                messages = [r.message for r in instance.all_logs(run_id)]
                assert any(f"maximum runtime of {RUN_MAX_RUNTIME_S} seconds" in m for m in messages)
            wait_for("the first run to start", lambda: status(instance, first.run_id) in IN_PROGRESS, home=home)
            wait_for("its worker", lambda: worker_pid(instance, first.run_id) is not None, home=home)
            # Two more passes of the run queue: the second run is still queued.
            seen = daemon_iterations(instance, "QUEUED_RUN_COORDINATOR")
            wait_for("a queue pass", lambda: daemon_iterations(instance, "QUEUED_RUN_COORDINATOR") > seen)
            seen = daemon_iterations(instance, "QUEUED_RUN_COORDINATOR")
            wait_for("a queue pass", lambda: daemon_iterations(instance, "QUEUED_RUN_COORDINATOR") > seen)
            assert status(instance, second.run_id) == dg.DagsterRunStatus.QUEUED
            assert status(instance, first.run_id) in IN_PROGRESS

            pid = worker_pid(instance, first.run_id)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            clock.set(now + timedelta(hours=2, minutes=20))  # the second run's hour, now + 1, is compiled
            wait_for(
                "the killed run to fail",
                lambda: status(instance, first.run_id) == dg.DagsterRunStatus.FAILURE,
                home=home,
            )
            messages = [r.message for r in instance.all_logs(first.run_id)]
            assert any("was terminated by signal 9 (SIGKILL)" in m for m in messages)
            wait_for(
                "the second run to be launched",
                lambda: status(instance, second.run_id) != dg.DagsterRunStatus.QUEUED,
                home=home,
            )
            wait_for(
                "the second run to succeed",
                lambda: status(instance, second.run_id) == dg.DagsterRunStatus.SUCCESS,
                timeout=300,
                home=home,
            )
