"""End to end: a city ingested through Dagster with the insurance trips switched on, its marts built and its reports
exported; then every place a city (or anyone reading logs and Dagster) sees is read for every insurance value, and
none is found. Deliberately end to end (real loopback HTTP, real Dagster runs, DuckDB files): marked slow.

What is searched for: every licence plate and licence plate id the insurance warehouse holds (values no city
dataset has), and the names of the fields only insurers receive (PERSONAL_FIELDS) as column names or keys. The
other fields of an insurance trip (trip and device ids, times, places, the vehicle's short id) are the city's own
MDS data too, so finding them proves nothing. Where it is searched: every table and view of the city's warehouse,
every file of the city's lake, every exported report file (HTML, XLSX, CSV, Parquet, GeoJSON), the command line's
log file, everything logged or printed while it ran, and every event, metadata entry, tag and compute log of the
Dagster instance. The same reader, pointed at the insurance area, finds them all: it can see what it looks for.
"""

import gzip
import json
import logging
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.definitions import defs
from assets.insurance import insurance_definitions, insurance_trips
from assets.launch import run_job
from assets.partition_keys import range_tags
from assets.resources import resources_for
from assets.run_limits import INGEST_TAG, INGEST_TAG_VALUE
from fleetlake_provider.app import ProviderApp
from fleetlake_provider.faults import Faults
from fleetlake_provider.server import running
from pipelines.config import Settings
from pipelines.insurance.trips import PERSONAL_FIELDS
from pipelines.reports.export import export_report
from tests.conftest import CREDENTIALS, START, loopback_settings, make_provider

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ZONES = ("145",)
FIRST_HOUR = START + timedelta(hours=10)  # three hours: 31 insurance trips of 22 vehicles
LAST_HOUR = START + timedelta(hours=12)
EVENTS_IN_MEMORY = {
    "event_log_storage": {"module": "dagster._core.storage.event_log", "class": "InMemoryEventLogStorage"}
}


@dataclass(frozen=True)
class Scene:
    settings: Settings
    instance_dir: Path
    instance: dg.DagsterInstance
    run_ids: list[str]
    logged: str


def texts_of_file(path: Path) -> Iterator[str]:
    """What a file says, decoded: Parquet cell by cell, gzip and XLSX unpacked, DuckDB table by table, else text."""
    name = path.name
    if name.endswith(".parquet"):
        frame = pl.read_parquet(path)
        yield " ".join(frame.columns)
        yield str(frame.rows())
    elif name.endswith(".gz"):
        yield gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    elif name.endswith(".xlsx"):
        with zipfile.ZipFile(path) as book:
            yield from (book.read(member).decode("utf-8", "replace") for member in book.namelist())
    elif name.endswith(".duckdb"):
        yield from texts_of_warehouse(path)
    else:
        yield path.read_bytes().decode("utf-8", "replace")


def texts_of_warehouse(path: Path) -> Iterator[str]:
    """Every table and view of every schema of a DuckDB file: its column names and every value as text."""
    with duckdb.connect(str(path), read_only=True) as con:
        relations = con.sql(
            "select schema_name, table_name from duckdb_tables() union all "
            "select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()
        assert relations
        for schema, table in relations:
            try:
                frame = con.sql(f'select * from "{schema}"."{table}"').pl()
            except duckdb.Error as e:  # a lake view whose files this test did not ingest (a snapshot never taken)
                assert "No files found" in str(e), e
                continue
            yield f"{schema}.{table}: " + " ".join(frame.columns)
            yield str(frame.rows())


def texts_under(folder: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix in (".wal", ".lock", ".tmp") or path.name.endswith((".db-wal", ".db-shm")):
            continue
        for text in texts_of_file(path):
            yield path, text


def texts_of_dagster(instance: dg.DagsterInstance, run_ids: list[str]) -> Iterator[str]:
    """Every event of every run (messages, metadata, check results, failures), and every run's tags and config."""
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        yield json.dumps(run.tags) + json.dumps(run.run_config, default=str)
        for entry in instance.all_logs(run_id):
            yield dg.serialize_value(entry)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("privacy")
    # Damaged and repeated records too: their quarantine reasons and warnings take the paths a leak would take.
    provider = make_provider(days=1, vehicles=40, zones=ZONES, faults=Faults(malformed_rate=0.05, duplicate_rate=0.05))
    handler = _Collect()
    logging.getLogger().addHandler(handler)
    previous_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        with running(ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000)) as url:
            base = loopback_settings(url, root, ZONES)
            settings = Settings(
                **base.model_dump(
                    exclude={"insurance_trips", "insurance_dir", "insurance_retention_days", "reports_dir", "log_file"}
                ),
                insurance_trips=True,
                insurance_dir=root / "insurance",
                reports_dir=root / "reports",
                log_file=root / "fleetlake.log",
                insurance_retention_days=3650,  # the simulated days lie in the past: kept, not purged at once
            )
            instance_dir = root / "dagster"
            instance_dir.mkdir()
            # Compute logs on disk, under instance_dir, where the search reads them; the events in memory (read
            # through the instance's API all the same): SQLite on disk writes each event through to its file.
            with dg.instance_for_test(temp_dir=str(instance_dir), overrides=EVENTS_IN_MEMORY) as instance:
                # The insurance trips first: the city's marts are then built while they are there to be read.
                runs = [
                    run_job("zone_geometry_job", settings, dagster_instance=instance),
                    dg.materialize(
                        [insurance_trips],
                        resources=resources_for(settings),
                        instance=instance,
                        tags=range_tags(FIRST_HOUR, LAST_HOUR),
                    ),
                    run_job(
                        "mds_hourly_job",
                        settings,
                        first_hour=FIRST_HOUR,
                        last_hour=LAST_HOUR,
                        dagster_instance=instance,
                    ),
                ]
                assert all(r.success for r in runs), [r.run_id for r in runs if not r.success]
                for zone in ZONES:
                    export_report(settings.warehouse, zone, START.date(), START.date(), settings.reports_dir, k=1)
                yield Scene(settings, instance_dir, instance, [r.run_id for r in runs], handler.text())
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(previous_level)


class _Collect(logging.Handler):
    """Every record logged in this process while the scene is made, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)


def needles(scene: Scene) -> set[str]:
    """Values only the insurance trips carry: every licence plate and plate id of the insurance warehouse."""
    with duckdb.connect(str(scene.settings.insurance_dir / "insurance.duckdb"), read_only=True) as con:
        rows = con.sql("select license_plate, license_plate_id from insurance_trips").fetchall()
    found = {value for row in rows for value in row if value}
    assert len(found) > 20, "the insurance warehouse holds the window's trips"
    return found


def leaks(texts: Iterator[tuple[str, str]], values: set[str]) -> list[str]:
    """Each place whose text holds an insurance value, or an insurance-only field's name."""
    found = []
    for where, text in texts:
        hits = {v for v in values if v in text} | {f for f in PERSONAL_FIELDS if f in text}
        if hits:
            found.append(f"{where}: {sorted(hits)[:3]}")
    return found


def everything_a_city_sees(scene: Scene) -> Iterator[tuple[str, str]]:
    s = scene.settings
    assert s.warehouse.exists() and any(s.reports_dir.rglob("*.xlsx")) and any(s.lake_dir.rglob("*.parquet"))
    yield from ((f"warehouse {s.warehouse.name}", t) for t in texts_of_warehouse(s.warehouse))
    yield from ((str(p), t) for p, t in texts_under(s.lake_dir))
    yield from ((str(p), t) for p, t in texts_under(s.reports_dir))
    if s.log_file.exists():
        yield from ((str(s.log_file), t) for t in texts_of_file(s.log_file))
    yield "logged in this process", scene.logged
    yield from (("dagster event log", t) for t in texts_of_dagster(scene.instance, scene.run_ids))
    compute_logs = [p for p in scene.instance_dir.rglob("*") if p.is_file() and p.suffix in (".out", ".err", ".log")]
    assert compute_logs, "the runs' captured output is on disk to be read"
    yield from ((str(p), t) for p in compute_logs for t in texts_of_file(p))


def test_no_insurance_value_reaches_marts_lake_exports_logs_or_dagster(scene: Scene) -> None:
    assert leaks(everything_a_city_sees(scene), needles(scene)) == []


def test_the_reader_finds_them_where_they_are(scene: Scene) -> None:
    """The insurance area itself: the same reader finds the plates in its warehouse, lake and raw responses."""
    values = needles(scene)
    area = scene.settings.insurance_dir
    found = leaks(((str(p), t) for p, t in texts_under(area)), values)
    kinds = {Path(line.split(":")[0]).suffix for line in found}
    assert {".duckdb", ".parquet", ".gz"} <= kinds
    # And the metadata the insurance run reported is counts, the purge included.
    materializations = scene.instance.fetch_materializations(dg.AssetKey("insurance_trips"), limit=1).records
    materialization = materializations[0].asset_materialization
    assert materialization is not None
    with duckdb.connect(str(area / "insurance.duckdb"), read_only=True) as con:
        held = con.sql("select count(*) from insurance_trips").fetchone()
    assert held is not None and materialization.metadata["trips_kept"].value == held[0] > 0
    assert set(materialization.metadata) == {
        "rows", "quarantined", "partitions_written", "future_hours_skipped", "zones", "purged_partitions",
        "purged_files", "purge_cutoff", "trips_kept",
    }  # fmt: skip


def test_switched_on_the_code_location_gains_the_insurance_asset_job_and_schedule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert not list(insurance_definitions(Settings()).assets or [])
    switched_on = dg.Definitions.merge(defs, insurance_definitions(Settings(insurance_trips=True)))
    dg.Definitions.validate_loadable(switched_on)
    graph = switched_on.resolve_asset_graph()
    node = graph.get(dg.AssetKey("insurance_trips"))
    assert node.group_name == "insurance" and not node.child_keys and not node.parent_keys  # read by no city asset
    job = switched_on.resolve_job_def("insurance_hourly_job")
    assert {k.path[-1] for k in job.asset_layer.selected_asset_keys} == {"insurance_trips"}
    assert job.tags[INGEST_TAG] == INGEST_TAG_VALUE  # one ingestion at a time: they share the account's rate limit
    # At 10:10 the schedule asks for 09:00 and the lookback before it (FLEETLAKE_LOOKBACK_HOURS, read at the tick).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLEETLAKE_LOOKBACK_HOURS", "3")
    schedule = switched_on.resolve_schedule_def("insurance_hourly_schedule")
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 3, 28, 10, 10, tzinfo=UTC),
            repository_def=switched_on.get_repository_def(),
        )
        requests = schedule.evaluate_tick(context).run_requests or []
    assert [{k: v for k, v in r.tags.items() if k != "dagster/schedule_name"} for r in requests] == [
        range_tags(datetime(2026, 3, 28, 7, tzinfo=UTC), datetime(2026, 3, 28, 9, tzinfo=UTC))
    ]


def test_a_run_that_cannot_reach_the_provider_still_purges(scene: Scene, tmp_path: Path) -> None:
    """The retention does not wait for the provider: the run fails, the expired trips are gone all the same."""
    area = Path(shutil.copytree(scene.settings.insurance_dir, tmp_path / "insurance"))
    assert any(area.glob("lake/insurance_trips/**/*.parquet"))
    settings = Settings(
        api_base_url="http://127.0.0.1:9",  # nothing listens on the discard port
        zones=ZONES,
        insurance_trips=True,
        insurance_dir=area,
        insurance_retention_days=1,
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [insurance_trips],
            resources=resources_for(settings),
            instance=instance,
            tags=range_tags(FIRST_HOUR, LAST_HOUR),
            raise_on_error=False,
        )
    assert not result.success
    assert not [p for p in (area / "lake").rglob("*") if p.is_file()]
    with duckdb.connect(str(area / "insurance.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from insurance_trips").fetchone() == (0,)
