"""Builds the DuckDB warehouse from the lake: raw-lake views, then every model in dependency order.

A full build recreates every table. A window build (`window=(start, end)`) rebuilds incremental models only for
rows whose incremental column falls in the window: it deletes them and inserts them again, so rebuilding an hour
touches that hour, not the whole history. Views are always recreated (they cost nothing).

SQL takes values as bound parameters (`$window_start`, `$window_end`, ...); only identifiers from the closed list
of model and dataset names, and the lake's folder as a quoted literal in view definitions, enter SQL text.
"""

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, cast

import duckdb
import polars as pl
import pyarrow as pa

from pipelines.config import Settings
from pipelines.lake.datasets import DATASETS, HOURLY_DATASETS
from pipelines.lake.filesystem import LakePath, attach_lake, is_remote, lake_root, uri
from pipelines.lake.footer import arrow_schema
from pipelines.lake.listing import LakeListing
from pipelines.lake.store import INGESTED_AT, QUARANTINE, QUARANTINE_SCHEMA, SUPERSEDED, SUPERSEDED_COLUMNS
from pipelines.voi.publication import READY_DELAY
from pipelines.warehouse.areas import COORDINATE_AREAS_SCHEMA, WINDOW_LOCATIONS, place_coordinates
from pipelines.warehouse.built_partitions import (
    changed_hours,
    lake_fingerprints,
    record,
    recorded,
    recorded_window,
    runs_of,
)
from pipelines.warehouse.compaction import compaction_due, skip_compaction
from pipelines.warehouse.connection import search_path, view_location
from pipelines.warehouse.dictionary import write_comments
from pipelines.warehouse.event_order import COLUMNS as EVENT_ORDER_COLUMNS
from pipelines.warehouse.event_order import build_event_order
from pipelines.warehouse.frames import query_frame, registered
from pipelines.warehouse.gbfs_v2 import build_gbfs_v2_vehicle_zones
from pipelines.warehouse.geofences import build_gbfs_vehicle_positions, build_trip_start_geofences
from pipelines.warehouse.lineage import PythonModelReads
from pipelines.warehouse.models import SQL_DIR, Model, build_order, discover
from pipelines.warehouse.partitions import build_hourly_partitions
from pipelines.warehouse.policy import RULE_IN_EFFECT, build_policy_geographies, build_policy_rules
from pipelines.warehouse.policy_geographies import build_policy_geography_points
from pipelines.warehouse.publish import DEFAULT_LOCK_TIMEOUT_S, build_aside, lock_path
from pipelines.warehouse.shared import PublishedBuild, SharedCatalog, pull
from pipelines.warehouse.shrinking import UNKNOWN, forget_withdrawn, keep_withdrawn, may_shrink, rebuild_whole
from pipelines.warehouse.spill import (
    REACHING,
    SPILLED_ZONE,
    SPILLED_ZONES,
    Spill,
    note_changed_reach,
    readers,
    spilled_windows,
    stranded_rows,
)
from pipelines.warehouse.sqltext import sql_text
from pipelines.warehouse.timezones import build_zone_timezones, read_zone_timezones
from pipelines.warehouse.views import unchanged_views
from pipelines.warehouse.window import FULL_WINDOW, Window, window_days, window_parameters
from pipelines.warehouse.zone_captures import ZoneCaptures, read_zone_captures
from pipelines.warehouse.zone_extents import build_zone_extents

log = logging.getLogger(__name__)
# The distinct places of the window's locations, each with the version of its zone's areas in force at its time.
COORDINATES = sql_text(
    """
with points as ({body})

select distinct versions.zone_id, versions.valid_from, points.lng, points.lat,
from points
inner join core.int_zone_area_versions as versions
    on points.zone_id = versions.zone_id and points.at >= versions.span_start and points.at < versions.span_end
where points.lng is not null and points.lat is not null
""",
    body=WINDOW_LOCATIONS,
)
# Those not placed before. An anti join hashes the window's few coordinates and streams the placed ones past them;
# EXCEPT hashed every placed coordinate (three times slower at a month of a 10,000-vehicle city).
NEW_COORDINATES = """
select * from ({body}) as window_coordinates
anti join core.int_coordinate_areas using (zone_id, valid_from, lng, lat)
"""
# Relations earlier versions built that nothing builds any more.
OBSOLETE = ("drop table if exists core.int_point_areas", "drop view if exists lake.hourly_partitions")
PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")
LAKE_VIEW = (
    "create or replace view {schema}.{name} as {body}select * from read_parquet({literal}, hive_partitioning = true, "
    "union_by_name = {union}, hive_types = {{'zone_id': 'VARCHAR', 'date': 'DATE', 'hour': 'INTEGER'}})"
)
EMPTY_VIEW = "create or replace view {schema}.{name} as {body}"
# The hive partition columns of a lake file, as a lake view reads them (after the file's own columns).
HIVE_COLUMNS = {"date": "DATE", "hour": "INTEGER", "zone_id": "VARCHAR"}
# The hourly MDS datasets, and the records their deliveries superseded, that window builds read only within the
# window's days (see Warehouse._window_views): view name -> folder under the lake.
WINDOWED = {
    **{name: name for name in HOURLY_DATASETS},
    **{f"{SUPERSEDED}_{name}": f"{SUPERSEDED}/{name}" for name in HOURLY_DATASETS},
}


@dataclass(frozen=True)
class ModelRun:
    name: str
    relation: str
    mode: str
    rows: int | None
    """Rows stored; None for a view (it stores none, and counting would compute it)."""
    seconds: float


@dataclass(frozen=True)
class BuildProgress:
    """How far a build is: `done` of its `total` models, `run` the one just built (None as the build starts)."""

    done: int
    total: int
    run: ModelRun | None = None


class _Progress:
    """Counts the models a build has run (a window build of several changed-hour runs runs each model once per
    run) and tells the build's listener, if any."""

    def __init__(self, total: int, listener: Callable[[BuildProgress], None] | None) -> None:
        self.total = total
        self.done = 0
        self.listener = listener
        self._tell(None)

    def built(self, run: ModelRun) -> None:
        self.done += 1
        self._tell(run)

    def _tell(self, run: ModelRun | None) -> None:
        if self.listener is not None:
            self.listener(BuildProgress(self.done, self.total, run))


def _edge_files(listing: LakeListing, folder: LakePath, levels: int) -> Iterator[LakePath]:
    """The oldest and the newest file under each partition of `folder` (its first `levels` levels; date and
    hour folders below them), found by listing only the folders on the way."""
    if levels:
        for child in sorted(listing.folders(folder)):
            yield from _edge_files(listing, child, levels - 1)
        return
    for pick in (min, max):
        here = folder
        while not here.name.startswith("hour=") and (folders := listing.folders(here)):
            here = pick(folders)
        files = sorted(listing.glob(here, "*.parquet"))
        if files:
            yield pick(files)


def edge_schemas(listing: LakeListing, folder: LakePath, levels: int) -> list[pa.Schema]:
    """The schemas of the oldest and the newest file of each partition of `folder`, each file's footer read once
    (a partition of one file has it as both); in a bucket, only the footer's bytes are fetched (footer.py)."""
    return [arrow_schema(path) for path in dict.fromkeys(_edge_files(listing, folder, levels))]


def one_schema(schemas: list[pa.Schema]) -> bool:
    """Whether the dataset's files seem to share one schema: its oldest and newest files per partition agree.

    Ingestion writes a dataset's schema whole, so files differ only across versions that changed it, and then the
    oldest and the newest do. Reading with union_by_name costs every file's footer at every query; without it
    DuckDB opens only the files a query keeps, and a file that does not match fails the query loudly.
    """
    return len({schema.remove_metadata() for schema in schemas}) <= 1


def lacks_columns(schemas: list[pa.Schema], names: Iterable[str]) -> bool:
    """Whether the oldest or newest file of a partition lacks one of `names` (written before they existed)."""
    wanted = set(names)
    return any(not wanted <= set(schema.names) for schema in schemas)


def lake_schemas(lake_dir: LakePath) -> dict[str, tuple[LakePath, dict[str, Any], bool]]:
    """Every lake view: its folder, its columns, and whether files of an older version must be read by name
    (hourly partitions gained `ingested_at`; their superseded records are read beside them)."""
    sources: dict[str, tuple[LakePath, dict[str, Any], bool]] = {}
    for name, dataset in DATASETS.items():
        if dataset.kind == "snapshot":
            sources[name] = (lake_dir / name, dataset.schema | {"captured_at": pl.Datetime("ms", "UTC")}, False)
            continue
        sources[name] = (lake_dir / name, dataset.schema | {INGESTED_AT: SUPERSEDED_COLUMNS[INGESTED_AT]}, True)
        sources[f"superseded_{name}"] = (lake_dir / SUPERSEDED / name, dataset.schema | SUPERSEDED_COLUMNS, True)
    sources[QUARANTINE] = (lake_dir / QUARANTINE, dict(QUARANTINE_SCHEMA), False)
    return sources


# DuckDB's name of each type a lake file's column has (as polars writes it and DuckDB reads it back).
DUCKDB_TYPES: dict[pl.datatypes.DataTypeClass | type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE",
    pl.Binary: "BLOB",
    pl.Date: "DATE",
}


def duckdb_type(dtype: pl.DataType | pl.datatypes.DataTypeClass) -> str:
    """The DuckDB type DuckDB reads a Parquet column of this polars type as."""
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    if isinstance(dtype, pl.Struct):
        fields = (f'"{field.name.replace(chr(34), chr(34) * 2)}" {duckdb_type(field.dtype)}' for field in dtype.fields)
        return "STRUCT(" + ", ".join(fields) + ")"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP WITH TIME ZONE" if dtype.time_zone else "TIMESTAMP"
    try:
        return DUCKDB_TYPES[dtype.base_type()]
    except KeyError:
        raise TypeError(f"no DuckDB type known for a lake column of type {dtype}") from None


def no_rows(schema: dict[str, Any]) -> str:
    """A select of no rows with a dataset's columns, typed as DuckDB reads them from its Parquet files, then the
    hive partition columns: what a lake view reads when the lake has no file of the dataset, and what pads the
    columns older files lack.

    It names no file, so the view answers wherever the warehouse is opened: a placeholder file written beside the
    warehouse is missing on every machine that pulled the build from a shared catalog (shared.py), and on one
    that was given the warehouse without it."""
    typed = [(name, duckdb_type(dtype)) for name, dtype in schema.items()]
    typed += [(name, kind) for name, kind in HIVE_COLUMNS.items() if name not in schema]
    selected = ", ".join(sql_text("cast(null as {body}) as {column}", body=kind, column=name) for name, kind in typed)
    return f"select {selected} where false"


def _bound(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters a statement actually uses (DuckDB refuses unused ones)."""
    return {name: values[name] for name in dict.fromkeys(PARAMETER.findall(sql)) if name in values}


def _columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> list[tuple[str, str]]:
    """Column names and types of a relation (identifiers from the closed list only)."""
    description = con.execute(sql_text("select * from {schema}.{name} limit 0", schema=schema, name=name)).description
    return [(column[0], str(column[1])) for column in description or []]


@dataclass
class Phase:
    """What one phase of a build took: wall seconds, and the CPU seconds of every thread of the process (DuckDB
    runs a query on several; on a shared machine the wall time says more about the neighbours)."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0


BUILD_PHASES = (
    "models read",
    "lock and working copy",
    "connect",
    "lake views",
    "catalog and zone context",
    "window views",
    "python models",
    "sql models",
    "row counts",
    "commit",
    "comments",
    "checkpoint and close",
    "publish",
)
"""The phases of a build, in order, that `Warehouse.phases` times (the benchmark prints them)."""

PythonModel = Callable[[duckdb.DuckDBPyConnection, Window | None], int]


@dataclass(frozen=True)
class Catalog:
    """What the warehouse held when a build began, read in two queries instead of two per model (a window build
    runs a few hundred statements; each costs a millisecond or more). SQL models are each built once per build,
    so their entries hold until their turn."""

    kinds: dict[tuple[str, str], str]
    """'BASE TABLE' or 'VIEW' by (schema, name)."""
    columns: dict[tuple[str, str], list[tuple[str, str]]]
    """Column names and types of each table, by (schema, name)."""
    views: dict[tuple[str, str], str]
    """Each view's definition as DuckDB keeps it, by (schema, name) (see views.py)."""

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> "Catalog":
        # This database's relations only, not the build's temporary or lake_window ones.
        kinds = con.execute(
            "select schema_name, table_name, 'BASE TABLE', null from duckdb_tables() "
            "where database_name = current_database() "
            "union all select schema_name, view_name, 'VIEW', sql from duckdb_views() "
            "where database_name = current_database() and not internal"
        ).fetchall()
        columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, name, column, data_type in con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns() "
            "where database_name = current_database() and table_oid in (select table_oid from duckdb_tables()) "
            "order by schema_name, table_name, column_index"
        ).fetchall():
            columns.setdefault((schema, name), []).append((column, data_type))
        return cls(
            {(schema, name): kind for schema, name, kind, _ in kinds},
            columns,
            {(schema, name): sql for schema, name, kind, sql in kinds if kind == "VIEW"},
        )


class Warehouse:
    # Models computed in Python (shapely), by name: their inputs and the method that builds them. A statement that
    # names a relation outside its inputs fails the build (lineage.PythonModelReads).
    PYTHON_MODELS: ClassVar[dict[str, tuple[tuple[str, ...], str]]] = {
        "int_coordinate_areas": (
            ("stg_mds__trips", "stg_mds__events", "stg_zone__areas", "int_zone_area_versions"),
            "_coordinate_areas",
        ),
        "policy_rules": ((), "_policy_rules"),
        "policy_geographies": ((), "_policy_geographies"),
        "int_policy_geography_points": (
            ("policy_geographies", "stg_mds__trips", "stg_mds__events"),
            "_policy_geography_points",
        ),
        "int_trip_start_geofences": (("stg_mds__trips", "lake.gbfs_geofencing_zones"), "_trip_start_geofences"),
        "int_gbfs_v2_vehicle_zones": (("stg_zone__areas", "lake.gbfs_v2_free_bike_status"), "_gbfs_v2_vehicle_zones"),
        "int_gbfs_vehicle_positions": (
            ("stg_zone__areas", "lake.gbfs_vehicle_status", "lake.gbfs_geofencing_zones", "int_gbfs_v2_vehicle_zones"),
            "_gbfs_vehicle_positions",
        ),
        "int_hourly_partitions": (tuple(f"lake.{name}" for name in HOURLY_DATASETS), "_hourly_partitions"),
        "int_zone_timezones": (
            (
                "int_hourly_partitions",
                "stg_gbfs__system_information",
                "stg_zone__areas",
                "lake.gbfs_system_information",
                "lake.zone_areas",
                "lake.zone_info",
            ),
            "_zone_timezones",
        ),
        "int_zone_extents": (("stg_zone__areas",), "_zone_extents"),
        "int_event_order": (("stg_mds__events",), "_event_order"),
    }
    PYTHON_MODEL_INPUTS: ClassVar[dict[str, tuple[str, ...]]] = {n: i for n, (i, _) in PYTHON_MODELS.items()}

    def __init__(
        self,
        path: Path,
        lake_dir: str | LakePath,
        sql_dir: Path = SQL_DIR,
        memory_limit: str | None = None,
        lead_in_hours: int | None = None,
        settings: Settings | None = None,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> None:
        """`settings` give the build's memory, lead-in, policy folder, idle limit and configured time zones (the
        environment's when None, read now); `memory_limit` and `lead_in_hours` override theirs."""
        self.path = Path(path)
        self.lake_dir = lake_root(lake_dir)
        self.sql_dir = sql_dir
        self.settings = Settings.from_env() if settings is None else settings
        self.memory_limit = memory_limit or self.settings.warehouse_memory
        # How long a zone's history (or its resumption after a gap) is flagged warm-up (core.int_warm_up_hours).
        self.lead_in_hours = self.settings.lead_in_hours if lead_in_hours is None else lead_in_hours
        # How long a build waits for another one to publish before it gives up (see publish.py).
        self.lock_timeout_s = lock_timeout_s
        # Which build is published, and the build lock, for every machine (None: this machine's file alone).
        self.shared = (
            SharedCatalog(self.settings.warehouse_catalog, self.lake_dir) if self.settings.warehouse_catalog else None
        )
        self.phases: dict[str, Phase] = {}
        """What each phase of the last build took (BUILD_PHASES)."""
        self._listing = LakeListing()
        """The lake's files as the build under way listed them (a new listing each build)."""
        self._zone_captures: ZoneCaptures | None = None
        """The lake's zone snapshots as the build's listing lists them, read once a build (see _captures)."""
        self.python_models: dict[str, tuple[tuple[str, ...], PythonModel]] = {
            name: (inputs, getattr(self, method)) for name, (inputs, method) in self.PYTHON_MODELS.items()
        }

    def _limit_threads(self, con: duckdb.DuckDBPyConnection) -> None:
        """The threads a build's queries run on, when the settings limit them. Set on the connection, not passed
        as its configuration: DuckDB refuses a second connection to an open file with another configuration."""
        if self.settings.duckdb_threads is not None:
            con.execute("set threads = $threads", {"threads": self.settings.duckdb_threads})

    def pull(self) -> PublishedBuild | None:
        """With a shared catalog, make this machine's file the build published last on any machine (downloaded
        when it is another); returns that build, None when there is no catalog or no build yet."""
        if self.shared is None:
            return None
        return pull(self.path, self.shared, lock_path(self.path), self.lock_timeout_s)

    def connect(self, read_only: bool = False, path: Path | None = None) -> duckdb.DuckDBPyConnection:
        """A connection to the published warehouse (read-only: the current build, pulled first when the catalog is
        shared), or to the file at `path` (a build's working file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and path is None:
            self.pull()
        con = duckdb.connect(str(path or self.path), read_only=read_only)
        # No progress bar: builds run under Dagster and in scripts, where it would only clutter the logs.
        con.execute("set enable_progress_bar = false")
        if not read_only:  # a build's connection; readers (analysts, the Metrics API, checks) keep DuckDB's default
            self._limit_threads(con)
        # DuckDB would take 80% of the machine; a build shares it with Dagster and ingestion, and spills to disk.
        con.execute("set memory_limit = $limit", {"limit": self.memory_limit})
        # Where the lake views' relative paths resolve (see connection.py), and a bucket's httpfs and secret.
        con.execute("set file_search_path = $path", {"path": search_path(self.path)})
        attach_lake(con, self.lake_dir)
        if not read_only:
            con.execute(RULE_IN_EFFECT)  # the compliance marts' test of a policy rule's days and hours
        return con

    # -- the raw lake ---------------------------------------------------------------------------------

    def _lake_views(self, con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, bool]]:
        """The lake's views (`lake.<dataset>`); returns each one's union_by_name setting and whether it pads the
        columns older files lack (with `no_rows`: read by name, their missing columns are null)."""
        con.execute("create schema if not exists lake")
        for schema_name in ("staging", "core"):
            con.execute(sql_text("create schema if not exists {schema}", schema=schema_name))
        # A view is kept when its definition (kept as its comment) is unchanged: creating one reads the footer of
        # every file of the dataset, and a query through it lists the files anew anyway.
        defined = dict(
            con.execute("select view_name, comment from duckdb_views() where schema_name = 'lake'").fetchall()
        )
        unions: dict[str, tuple[str, bool]] = {}
        for name, (folder, schema, complete) in lake_schemas(self.lake_dir).items():
            pattern = (
                "dataset=*/zone_id=*/date=*/hour=*/*.parquet"
                if name == QUARANTINE
                else "zone_id=*/date=*/hour=*/*.parquet"
            )
            levels = pattern.count("/") - 2
            if not self._listing.any(folder, pattern):  # no file yet: the dataset's columns, no rows
                unions[name] = ("false", False)
                statement = sql_text(EMPTY_VIEW, body=no_rows(schema), schema="lake", name=name)
            else:
                schemas = edge_schemas(self._listing, folder, levels)
                padded = complete and lacks_columns(schemas, schema)
                union = "true" if padded or not one_schema(schemas) else "false"
                unions[name] = (union, padded)
                # Relative to the warehouse's folder, resolved when the warehouse is opened (see connection.py).
                literal = view_location(f"{uri(folder)}/{pattern}", self.path)
                padding = no_rows(schema) + " union all by name " if padded else ""
                statement = sql_text(LAKE_VIEW, body=padding, literal=literal, schema="lake", name=name, union=union)
            comment = "The lake's own files, as ingestion wrote them: " + statement
            if defined.get(name) != comment:
                con.execute(statement)
                con.execute(sql_text("comment on view lake.{name} is {literal}", literal=comment, name=name))
        return unions

    def _window_views(
        self, con: duckdb.DuckDBPyConnection, window: Window | None, unions: dict[str, tuple[str, bool]]
    ) -> None:
        """`lake_window.<dataset>`: the hourly MDS datasets' files of the window's UTC days (all of them in a full
        build), and the records their deliveries superseded, in a catalog that lives as long as the build's
        connection.

        A query through `lake.<dataset>` lists every folder of the dataset before it prunes (0.02 s a read at a
        month of history, ten times that at a year); the incremental models that read the lake within their
        window read these instead, so an hourly build's cost does not grow with the history.

        In a bucket, a window's view names each zone's day folder that the build's listing found holding files
        (`<dataset>/zone_id=1/date=2026-03-28/hour=*/*.parquet`): DuckDB expands a pattern at every query through
        the view by listing every key below its first wildcard, so `zone_id=*/date=...` listed the whole history
        of the dataset each time; a zone's day is one listing of its own hours, whose sizes DuckDB then knows (a
        list of the files themselves would cost a HEAD a file and query). On a local disk, and for a full build's
        every file, the view keeps the days' patterns (DuckDB lists a local folder level by level; a full build
        reads every file anyway).
        """
        con.execute("detach database if exists lake_window")  # the previous window's, when a build has several
        con.execute("attach ':memory:' as lake_window")
        schemas = lake_schemas(self.lake_dir)
        for name, relative in WINDOWED.items():
            folder = self.lake_dir / relative
            patterns = [f"zone_id=*/date={day}/hour=*/*.parquet" for day in window_days(window)]
            if window is not None and is_remote(folder):
                days = {path.parent.parent for pattern in patterns for path in self._listing.glob(folder, pattern)}
                files = sorted(f"{uri(day)}/hour=*/*.parquet" for day in days)
            else:
                files = [f"{uri(folder)}/{pattern}" for pattern in patterns if self._listing.any(folder, pattern)]
            union, padded = unions[name]
            if not files:  # nothing in the window (or the lake): the dataset's columns, no rows
                statement = sql_text(EMPTY_VIEW, body=no_rows(schemas[name][1]), schema="lake_window", name=name)
            else:
                padding = no_rows(schemas[name][1]) + " union all by name " if padded else ""
                statement = sql_text(
                    LAKE_VIEW, body=padding, literal=files, schema="lake_window", name=name, union=union
                )
            con.execute(statement)

    # -- models ---------------------------------------------------------------------------------------

    def models(self) -> dict[str, Model]:
        return discover(self.sql_dir)

    def build(
        self,
        window: Window | None = None,
        select: Iterable[str] | None = None,
        only_changed: bool = False,
        on_progress: Callable[[BuildProgress], None] | None = None,
    ) -> list[ModelRun]:
        """Build every model (or those in `select`) in dependency order; returns what each step did.

        `only_changed` (the hourly schedule's build): of `window`, only the hours whose lake partitions changed
        since they were built (see built_partitions.py), each run of consecutive hours as a window of its own;
        nothing at all when none changed. Every build records the fingerprints of the hours it built.
        `on_progress` is told as the models start and after each model (a full build takes minutes on a big
        lake). The seconds each phase of the build took are left in `self.phases` (see BUILD_PHASES)."""
        phases = self.phases = {phase: Phase() for phase in BUILD_PHASES}
        clock = (time.perf_counter(), time.process_time())

        def lap(phase: str) -> None:
            nonlocal clock
            now = (time.perf_counter(), time.process_time())
            phases[phase].seconds += now[0] - clock[0]
            phases[phase].cpu_seconds += now[1] - clock[1]
            clock = now

        models = self.models()
        order = build_order(models, {n: inputs for n, (inputs, _) in self.python_models.items()})
        chosen = set(select) if select is not None else None
        # Built aside and published whole (see publish.py); every model of a full build starts from nothing.
        fresh = window is None and (chosen is None or chosen >= set(order))
        # The lake as listed now serves the whole build (listing.py): its fingerprints are read before its files.
        listing = self._listing = LakeListing()
        self._zone_captures = None
        span = window if only_changed else recorded_window(listing, self.lake_dir, window)
        with duckdb.connect() as reader:
            self._limit_threads(reader)
            attach_lake(reader, self.lake_dir)
            fingerprints = lake_fingerprints(reader, listing, self.lake_dir, span) if span else pl.DataFrame()
        windows: list[Window | None] = [window]
        if only_changed and window is not None:
            windows = list(runs_of(self.changed_hours(window, fingerprints)))
            if not windows:
                log.info("no lake hour of %s to %s changed since it was built", *window)
                return []
        runs: dict[str, ModelRun] = {}
        lap("models read")
        with self.building(fresh, lap) as con:
            unions = self._lake_views(con)
            lap("lake views")
            for statement in OBSOLETE:
                con.execute(statement)
            # What the warehouse holds now (the window views go to a catalog of their own).
            catalog = Catalog.read(con)
            if window is not None and self._zone_context_changed(con, catalog):
                windows = [None]  # see _zone_context_changed
                span = recorded_window(listing, self.lake_dir, None)
                fingerprints = lake_fingerprints(con, listing, self.lake_dir, span) if span else pl.DataFrame()
            per_window = sum(1 for name in order if chosen is None or name in chosen)
            progress = _Progress(per_window * len(windows), on_progress)
            lap("catalog and zone context")
            for number, built in enumerate(windows):
                self._window_views(con, built, unions)
                lap("window views")
                # A window build is one transaction: its deletes and inserts are committed once rather than model
                # by model (each commit writes and syncs the write-ahead log). All-or-nothing is the publishing's
                # (a failed build is never published), so nothing is lost by committing late. A full build commits
                # as it goes, so that no table's undo is held for the whole build.
                if built is not None:
                    con.execute("begin transaction")
                # The first pass starts from the catalog read above; each later one reads what the one before left.
                known = catalog if number == 0 else None
                passes = self._build_models(con, built, models, order, chosen, progress, lap, catalog=known)
                if built is not None:
                    con.execute("commit")
                    lap("commit")
                    # A state the window changed ran on past its end: the later hours, a day at a time (spill.py).
                    spill = spilled_windows(con, built)
                    if spill:
                        log.info(
                            "window %s to %s changed states up to %s: rebuilding its readers in %d windows",
                            *built,
                            spill[-1].window[1],
                            len(spill),
                        )
                    for spilled in spill:
                        passes += self._spilled_pass(con, spilled, models, order, chosen, progress, unions, lap)
                for run in passes:
                    earlier = runs.get(run.name)
                    runs[run.name] = run if earlier is None else replace(run, seconds=earlier.seconds + run.seconds)
                recorded_span = built or span
                if recorded_span is not None and not fingerprints.is_empty():
                    record(con, recorded_span, fingerprints)
            write_comments(con, models.values())  # in a transaction of its own
            lap("comments")
            counted = ((r.relation, r.rows) for r in runs.values() if r.mode != "python" and r.rows is not None)
            if window is not None and not compaction_due(con, counted):
                skip_compaction(con)  # its checkpoint writes the deletes, merging no row groups (see compaction.py)
        lap("publish")
        return list(runs.values())

    def changed_hours(self, window: Window, fingerprints: pl.DataFrame | None = None) -> list[datetime]:
        """The hours of `window` whose lake partitions changed since the published warehouse built them (see
        built_partitions.py); `fingerprints`: the lake's, if read already."""
        if fingerprints is None:
            with duckdb.connect() as reader:
                self._limit_threads(reader)
                attach_lake(reader, self.lake_dir)
                fingerprints = lake_fingerprints(reader, LakeListing(), self.lake_dir, window)
        built: pl.DataFrame | None = None
        if self.path.exists():
            with duckdb.connect(str(self.path), read_only=True) as con:
                built = recorded(con, window)
        return changed_hours(fingerprints, built, window)

    def _build_models(
        self,
        con: duckdb.DuckDBPyConnection,
        window: Window | None,
        models: dict[str, Model],
        order: list[str],
        chosen: set[str] | None,
        progress: _Progress,
        lap: Callable[[str], None],
        zones: tuple[str, ...] | None = None,
        catalog: Catalog | None = None,
    ) -> list[ModelRun]:
        """One pass over the models for one window (every time in a full build); `lap` marks each phase's end.
        `zones`: the SQL models replace only these zones' rows (a spill's, see spill.py), None every zone's.
        `catalog`: what the warehouse holds, when the caller read it after its last change."""
        runs = []
        catalog = catalog or Catalog.read(con)
        # Views whose definition is unchanged are kept, comments and all (see views.py).
        kept = unchanged_views(con, (models[n] for n in order if n in models), catalog.views)
        insertion_ordered = True
        grown: set[str] = set()  # the accumulating models this pass added rows to, and the models it rebuilt whole
        # The inputs of accumulating models, and the columns of those whose withdrawn rows the pass kept (see
        # shrinking.py; UNKNOWN: rebuilt whole).
        feeding = {
            i for n in order if n in models and models[n].materialized == "accumulating" for i in models[n].inputs
        }
        withdrawn: dict[str, list[str] | None] = {}
        for name in order:
            if chosen is not None and name not in chosen:
                continue
            began = time.perf_counter()
            if name in kept:
                runs.append(ModelRun(name, models[name].relation, "view", None, time.perf_counter() - began))
                progress.built(runs[-1])
                lap("sql models")
                continue
            # SQL models may be written in parallel, in any row order (readers never rely on it); Python models
            # read feeds whose row order is their precedence order, so the default holds for them. Set when the
            # kind of model changes, not around each model (two statements a model).
            ordered = name in self.python_models
            if ordered != insertion_ordered:
                con.execute("reset preserve_insertion_order" if ordered else "set preserve_insertion_order = false")
                insertion_ordered = ordered
            if name in self.python_models:
                inputs, builder = self.python_models[name]
                placed = builder(cast(duckdb.DuckDBPyConnection, PythonModelReads(con, name, inputs)), window)
                runs.append(ModelRun(name, "core." + name, "python", placed, time.perf_counter() - began))
                progress.built(runs[-1])
                lap("python models")
                continue
            model = models[name]
            # A set its every window reads gained rows: the model is rebuilt whole (see models.py).
            whole = window is not None and not grown.isdisjoint(model.whole_when_grows)
            mode = self._run(
                con, model, None if whole else window, catalog, grown, zones, withdrawn, feeds_a_set=name in feeding
            )
            if window is not None and mode == "full" and name in feeding:
                withdrawn[name] = UNKNOWN
            if window is not None and mode == "full" and (whole or model.materialized == "accumulating"):
                grown.add(name)  # rows outside the window may have changed: its readers may need rebuilding too
            lap("sql models")
            rows: int | None = None
            if mode != "view":
                count = sql_text("select count(*) from {schema}.{name}", schema=model.schema, name=model.name)
                rows = con.execute(count).fetchall()[0][0]
            lap("row counts")
            runs.append(ModelRun(name, model.relation, mode, rows, time.perf_counter() - began))
            progress.built(runs[-1])
        if not insertion_ordered:
            con.execute("reset preserve_insertion_order")
        forget_withdrawn(con, withdrawn)
        if window is not None:  # the rows each model staged (see _run), replaced model by model: dropped once
            con.execute("drop table if exists window_rows")
            con.execute("drop table if exists replaced_rows")
        return runs

    def _spilled_pass(
        self,
        con: duckdb.DuckDBPyConnection,
        spill: Spill,
        models: dict[str, Model],
        order: list[str],
        chosen: set[str] | None,
        progress: _Progress,
        unions: dict[str, tuple[str, bool]],
        lap: Callable[[str], None],
    ) -> list[ModelRun]:
        """The readers of the models with `reaches`, rebuilt for the hours after a window that its changes reached
        into (see spill.py), for the zones whose changes reached them; in a transaction of its own, as the window's
        lake views change between transactions."""
        reading = readers(models, self.PYTHON_MODEL_INPUTS) & (set(order) if chosen is None else chosen)
        progress.total += len(reading)
        self._window_views(con, spill.window, unions)
        lap("window views")
        con.execute("begin transaction")
        runs = self._build_models(con, spill.window, models, order, reading, progress, lap, spill.zones)
        con.execute("commit")
        lap("commit")
        return runs

    @contextmanager
    def building(self, fresh: bool, lap: Callable[[str], None]) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to build in, to a private copy of the warehouse (or an empty file when `fresh`) that is
        published whole when the block ends without an error (see publish.py); `lap` marks the end of a phase."""
        with build_aside(self.path, fresh, self.lock_timeout_s, shared=self.shared) as working:
            lap("lock and working copy")
            with self.connect(path=working) as con:
                lap("connect")
                yield con
                con.execute("checkpoint")  # the working file whole, without a write-ahead log, before it is published
            lap("checkpoint and close")

    def _run(
        self,
        con: duckdb.DuckDBPyConnection,
        model: Model,
        window: Window | None,
        catalog: Catalog,
        grown: set[str],
        zones: tuple[str, ...] | None = None,
        withdrawn: dict[str, list[str] | None] | None = None,
        feeds_a_set: bool = False,
    ) -> str:
        """Build `model` for `window` (whole when None); an accumulating model that gains rows, or loses some (see
        shrinking.py), joins `grown`. `zones`: only these zones' rows of the window are replaced (when the model has
        a zone_id column). `withdrawn`: the rows the pass withdrew from the inputs of accumulating models, which
        `model` adds to when `feeds_a_set`."""
        names = {"schema": model.schema, "name": model.name}  # identifiers for _sql
        values = self._parameters(window)
        columns = catalog.columns.get((model.schema, model.name)) or []
        zoned = zones is not None and any(column == "zone_id" for column, _ in columns)
        kind = self._replace_kind(con, model, catalog.kinds.get((model.schema, model.name)))
        if model.materialized == "view":
            con.execute(sql_text("create or replace view {schema}.{name} as\n{body}", body=model.sql, **names))
            return "view"
        if model.materialized == "table" or window is None or kind is None:
            self._create(con, model)
            return "full"
        stage = sql_text("create or replace temp table window_rows as select * from (\n{body}\n)", body=model.sql)
        in_window = staged = ""
        if model.incremental_column:
            in_window = sql_text(
                " where {column} >= $window_start and {column} < $window_end", column=model.incremental_column
            )
            if not model.unique_key:  # without a key to replace them by, rows outside the window would be doubled
                staged = in_window
        # The window alone, for conditions on replaced_rows: that table holds the spilled zones' rows only already,
        # and has no zone_id column unless the key has it (in the DELETE's subquery zone_id would name the target
        # table's column, and fail to bind where `deleted` is read alone).
        in_window_any_zone = in_window
        if zoned:  # a spill's zones: their rows are staged and replaced, another zone's stay as stored
            values[SPILLED_ZONES] = list(zones or ())
            staged += (" and " if staged else " where ") + SPILLED_ZONE
            in_window += (" and " if in_window else " where ") + SPILLED_ZONE
        stage += staged
        returned = con.execute(stage, _bound(stage, values)).fetchall()[0][0]
        if _columns(con, "temp", "window_rows") != catalog.columns.get((model.schema, model.name)):
            con.execute("drop table window_rows")  # the model's columns changed since the table was built
            self._create(con, model)
            return "full"
        if model.materialized == "accumulating":
            added = "insert into {schema}.{name} select * from window_rows except select * from {schema}.{name}"
            if returned and con.execute(sql_text(added, **names)).fetchall()[0][0]:
                grown.add(model.name)
            set_columns = [column for column, _ in columns]
            shrinks = bool(withdrawn) and may_shrink(con, set_columns, withdrawn or {}, model.inputs)
            if shrinks and rebuild_whole(con, model, _bound(model.sql, self._parameters(None))):
                grown.add(model.name)  # it lost a member: its readers drop that member's rows
            return "incremental"
        # The stored rows this build replaces: the window's, and with a unique key those sharing a key with a
        # returned row, wherever they lie (a row that moved here from another window leaves its old place). Their
        # row ids are read once and deleted by id: a DELETE by the condition itself cost twice that read, and
        # `keep: latest` a second read to find newer copies (0.23 -> 0.05 s for an hour of 3 M events).
        stored_rows = sql_text(
            "select rowid as row_id, {column}{body} from {schema}.{name}",
            body="".join(sql_text(", {c}", c=c) for c in (*model.unique_key, *filter(None, [model.newest_by]))),
            column=model.incremental_column or "",
            **names,
        )
        replaced = "create or replace temp table replaced_rows as " + stored_rows + in_window
        deleted = "select row_id from replaced_rows"
        if model.unique_key:
            in_returned = sql_text(" or {key} in (select {key} from window_rows)", key=model.unique_key)
            if set(model.unique_key) == set(model.grain_columns):
                # A key of the grain is stored once: a returned key that a stored row of the window holds is found
                # there, and only the others are looked for in the rest of the table. Rebuilding an hour whose
                # rows are stored then reads no key column whole (0.16 -> 0.07 s CPU for an hour of the 3 M
                # vehicle_state_intervals of a month), and new keys are looked for by a semi join rather than a
                # test of every stored row (0.15 -> 0.10-0.13 s).
                elsewhere = sql_text(
                    " where {key} in (select {key} from window_rows except select {key} from {schema}.{name}",
                    key=model.unique_key,
                    **names,
                )
                replaced += " union all " + stored_rows + elsewhere + in_window + ")"
            else:
                replaced += in_returned
            if model.keep_latest:  # a stored row newer than the returned one (a later delivery) stays, and so
                deleted += in_window_any_zone + in_returned  # only rows of the window and of keys returned go
        insert = sql_text("insert into {schema}.{name} by name select * from window_rows", **names)
        stored = con.execute(replaced, _bound(replaced, values)).fetchall()[0][0]
        if model.reaches and (stranded := stranded_rows(con, model, values)):
            # Rows before the window ended at rows it withdrew: the model returns them too, ended anew (spill.py).
            values = {**values, REACHING: stranded}
            returned = con.execute(stage, _bound(stage, values)).fetchall()[0][0]
            stored = con.execute(replaced, _bound(replaced, values)).fetchall()[0][0]
        # Each statement below has nothing to do when the window returns no row or replaces none (a window build
        # stages every incremental model, most of them with no row in a tiny window): the row counts the CREATE
        # statements report decide it, without another read.
        if not returned and not stored:
            return "incremental"
        if model.keep_latest and returned and stored:
            same_key = " and ".join(sql_text("stored.{c} = window_rows.{c}", c=c) for c in model.unique_key)
            newer = sql_text(
                "delete from window_rows using replaced_rows as stored "
                "where stored.{column} > window_rows.{column} and ",
                column=model.incremental_column or "",
            )
            if model.newest_by:  # newest by that column (a null is oldest), then by the incremental one
                newer = sql_text(
                    "delete from window_rows using replaced_rows as stored where ("
                    "coalesce(stored.{by}, '-infinity') > coalesce(window_rows.{by}, '-infinity') or ("
                    "coalesce(stored.{by}, '-infinity') = coalesce(window_rows.{by}, '-infinity') "
                    "and stored.{column} > window_rows.{column})) and ",
                    by=model.newest_by,
                    column=model.incremental_column or "",
                )
            con.execute(newer + same_key)
        if model.reaches:
            note_changed_reach(con, model, deleted, _bound(deleted, values))
        if feeds_a_set and withdrawn is not None and stored:
            keep_withdrawn(con, model, deleted, _bound(deleted, values))
            withdrawn[model.name] = [column for column, _ in columns]
        if stored:  # the rows deleted are some of those staged in replaced_rows
            delete = sql_text("delete from {schema}.{name} where rowid in ({body})", body=deleted, **names)
            con.execute(delete, _bound(delete, values))
        if returned:
            con.execute(insert)
        return "incremental"

    @staticmethod
    def _exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
        """Whether the warehouse holds a table of that name now (duckdb_views() would bind every view to list
        them, the lake's with their files: a few milliseconds a call)."""
        found = con.execute(
            "select 1 from duckdb_tables() where schema_name = $schema and table_name = $name",
            {"schema": schema, "name": name},
        ).fetchall()
        return bool(found)

    @staticmethod
    def _replace_kind(con: duckdb.DuckDBPyConnection, model: Model, kind: str | None) -> str | None:
        """Drop the relation (of `kind`) when a model changed between view and table (CREATE OR REPLACE cannot);
        returns what the warehouse then holds under the model's name."""
        wanted = "VIEW" if model.materialized == "view" else "BASE TABLE"
        if kind is not None and kind != wanted:
            statement = "drop view {schema}.{name}" if kind == "VIEW" else "drop table {schema}.{name}"
            con.execute(sql_text(statement, schema=model.schema, name=model.name))
            return None
        return kind

    def _create(self, con: duckdb.DuckDBPyConnection, model: Model) -> None:
        """The whole table; an incremental one in the order of its column, so that DuckDB skips the row groups
        outside a window when a later build reads or deletes one (window builds append in time order too)."""
        names = {"schema": model.schema, "name": model.name}
        if model.incremental_column:
            template = "create or replace table {schema}.{name} as\nselect * from (\n{body}\n) order by {column}"
            names["column"] = model.incremental_column
        else:
            template = "create or replace table {schema}.{name} as\n{body}"
        statement = sql_text(template, body=model.sql, **names)
        con.execute(statement, _bound(statement, self._parameters(None)))

    def _parameters(self, window: Window | None) -> dict[str, Any]:
        """The values a model's SQL may bind: the window's, and the settings models read."""
        return {
            **window_parameters(window),
            "lead_in_hours": self.lead_in_hours,
            "ready_delay": READY_DELAY,
            REACHING: [],  # none but the rows a window build finds stranded (see spill.py)
        }

    def _zone_context_changed(self, con: duckdb.DuckDBPyConnection, catalog: Catalog) -> bool:
        """Whether a zone's time zone, or its first capture of zone areas, differs from what the stored tables
        were built with: both hold for the zone's whole history (the first capture also governs earlier times), so
        a window build would leave every other window as it was. The build is then a full one, once."""
        stored = {("core", "int_zone_timezones"), ("core", "int_zone_area_versions")}
        if not stored <= set(catalog.kinds):
            return False
        built_timezones = dict(con.execute("select zone_id, timezone from core.int_zone_timezones").fetchall())
        configured = self.settings.zone_timezones
        captures = self._captures(con)
        timezones = dict(read_zone_timezones(con, configured, captures).select("zone_id", "timezone").iter_rows())
        built_areas = dict(
            con.execute("select zone_id, min(valid_from) from core.int_zone_area_versions group by zone_id").fetchall()
        )
        areas = captures.first_areas
        changed = sorted(
            zone
            for zone in set(built_timezones) | set(timezones) | set(built_areas) | set(areas)
            if built_timezones.get(zone) != timezones.get(zone) or built_areas.get(zone) != areas.get(zone)
        )
        if changed:
            log.info("zones %s: time zone or first zone areas changed; building everything", ", ".join(changed))
        return bool(changed)

    # -- python models --------------------------------------------------------------------------------

    def _policy_rules(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.policy_rules: MDS Policy rules from FLEETLAKE_POLICY_DIR and the defaults (see policy.py)."""
        return build_policy_rules(con, self.settings.policy_dir, self.settings.idle_limit_hours)

    def _policy_geographies(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.policy_geographies: the MDS Geography areas policy rules name (see policy_geographies.py)."""
        return build_policy_geographies(con, self.settings.policy_dir)

    def _policy_geography_points(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_policy_geography_points: the trip and event locations inside each policy geography."""
        return build_policy_geography_points(con, window)

    def _trip_start_geofences(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_trip_start_geofences: the GBFS geofencing rule at each trip start (see geofences.py)."""
        return build_trip_start_geofences(con, window)

    def _gbfs_vehicle_positions(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_gbfs_vehicle_positions: GBFS snapshot vehicles with area and geofencing rule."""
        built = self._exists(con, "core", "int_gbfs_vehicle_positions")
        return build_gbfs_vehicle_positions(con, window if built else None)

    def _gbfs_v2_vehicle_zones(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_gbfs_v2_vehicle_zones: GBFS 2.3 sightings placed in zones by geometry (see gbfs_v2.py)."""
        built = self._exists(con, "core", "int_gbfs_v2_vehicle_zones")
        return build_gbfs_v2_vehicle_zones(con, window if built else None)

    def _zone_extents(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_zone_extents: each zone's areas' bounding box widened by 50 km (see zone_extents.py)."""
        return build_zone_extents(con, window)

    def _hourly_partitions(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_hourly_partitions: the hourly lake files of the window, with their row counts."""
        return build_hourly_partitions(con, self._listing, self.lake_dir, window)

    def _zone_timezones(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_zone_timezones: each zone's time zone and its source (see timezones.py)."""
        return build_zone_timezones(con, self.settings.zone_timezones, self._captures(con))

    def _captures(self, con: duckdb.DuckDBPyConnection) -> ZoneCaptures:
        """What the zone-context check and core.int_zone_timezones read of the lake's zone snapshots: read once a
        build, from each zone's newest or oldest capture (see zone_captures.py)."""
        if self._zone_captures is None:
            self._zone_captures = read_zone_captures(con, self._listing, self.lake_dir)
        return self._zone_captures

    def _event_order(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_event_order: the order of a vehicle's events that share a timestamp (see event_order.py). A
        window build replaces the window's instants, unless the table was built by an older version."""
        add = (
            window is not None
            and self._exists(con, "core", "int_event_order")
            and [c for c, _ in _columns(con, "core", "int_event_order")] == list(EVENT_ORDER_COLUMNS)
        )
        return build_event_order(con, window, add)

    def _coordinate_areas(self, con: duckdb.DuckDBPyConnection, window: Window | None) -> int:
        """core.int_coordinate_areas: the most specific zone area of each distinct trip start or end and event
        location, per version of the zone's areas.

        Readers join on the coordinates: a vehicle's events repeat its spot and a trip starts where the last
        ended, so there are a quarter as many coordinates as points. A window build places only the window's
        coordinates not placed before.
        """
        # A window build adds to what is there, unless that was built by an older version.
        add = (
            window is not None
            and self._exists(con, "core", "int_coordinate_areas")
            and [c for c, _ in _columns(con, "core", "int_coordinate_areas")] == list(COORDINATE_AREAS_SCHEMA)
        )
        start, end = window if window is not None and add else FULL_WINDOW
        query = sql_text(NEW_COORDINATES, body=COORDINATES) if add else COORDINATES
        coordinates = query_frame(con, query, {"window_start": start, "window_end": end})
        if add and coordinates.is_empty():
            return 0  # every place of the window was placed before: no areas to read, no trees to build
        areas = query_frame(
            con,
            "select areas.zone_id, area_id, area_type, geometry, areas.valid_from "
            "from staging.stg_zone__areas as areas semi join core.int_zone_area_versions as versions "
            "on areas.zone_id = versions.zone_id and areas.valid_from = versions.valid_from",
        )
        placed = place_coordinates(coordinates, areas)
        with registered(con, "placed_coordinates", placed):
            if add:
                con.execute("insert into core.int_coordinate_areas by name select * from placed_coordinates")
            else:
                con.execute("create or replace table core.int_coordinate_areas as select * from placed_coordinates")
        return placed.height


__all__ = ["BUILD_PHASES", "ModelRun", "Phase", "Warehouse"]
