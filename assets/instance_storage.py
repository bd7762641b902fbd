"""The instance's event log: Dagster's SQLite event log, keeping its index open between the events it stores.

Dagster's SqliteEventLogStorage opens a database anew for every write: a new SQLAlchemy engine (so every statement
is compiled again), a new SQLite connection (which reads the schema again) and, when it closes, the checkpoint and
removal of the write-ahead log. A run stores hundreds of events, an asset event in two databases (its run's and the
index), so reopening was most of what recording a run cost: a run of 100 materializations and 30 checks took 5.7 s
of CPU, 2.1 s with every database kept open. This storage keeps an engine (its compiled statements) for the index
and for the run databases it used last, and the index's connection; what it writes and where (under the instance's
folder, as Dagster's default) are Dagster's own, so Dagster's stock class reads the same instance.

A run's database is connected to for each transaction, as Dagster's: the webserver and the daemon each keep their
storage open for as long as they run, and SQLite folds a write-ahead log back into its database, and removes it,
only when the last connection to the database closes. So a run worker that ends leaves its run's database one file,
whatever other process reads the run. The index stays open in every process that uses it: while any does, index.db
has its index.db-wal and index.db-shm beside it. After each transaction that wrote, the database written (a run's or
the index) is checkpointed, waiting for the other processes' transactions within SQLite's busy timeout: the index's
committed events are in index.db, not only in its write-ahead log, and a run's file changes with each event stored
(the webserver streams a run's events as its file changes).

`FleetlakeInstance` (dagster.yaml's `instance_class`) puts it in place of the default event log storage, wherever
the instance's folder is: the webserver, the daemon, run workers and the command line all open it that way.
"""

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

KEPT_RUN_ENGINES = 8
"""How many run databases' engines (their compiled statements) a process keeps at most, besides the index's: those
of the runs it wrote or read last (a webserver reading many runs drops the oldest)."""

CHECKPOINT = "pragma wal_checkpoint(full)"
"""The checkpoint after a transaction that wrote. FULL, not PASSIVE: a passive checkpoint gives up on the frames it
cannot copy while another connection writes or reads an older snapshot, and if that happened on a run's last event
the run's file would never change again. FULL waits for them through the connection's busy handler, which gives up
after SQLite's busy timeout (Dagster's, SQLITE_BUSY_TIMEOUT_SECONDS): every wait has an end. It does not wait for the
readers to leave the write-ahead log (RESTART and TRUNCATE do), which copying every frame does not need."""


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage that keeps each database's engine (its compiled statements) between writes, and the
    index's connection with it."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        # Closed when the storage goes, or when the process ends: the last connection to close the index folds its
        # write-ahead log back into it.
        weakref.finalize(self, _close, self._engines, self._engines_lock)
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "KeptOpenSqliteEventLogStorage":
        """This class from dagster.yaml (Dagster's own would make its own class)."""
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """A connection to `shard` in a transaction, as Dagster's (one at a time in this process), from the
        shard's kept engine; the database checkpointed after a transaction that wrote."""
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                changes_before = _total_changes(conn)
                with conn.begin():
                    yield conn
                if _total_changes(conn) != changes_before:
                    # The events committed into the database file, not only its write-ahead log: the index's for
                    # as long as another process keeps it open, a run's as the webserver watches its file change
                    # to stream the run's events (SqliteEventLogStorageWatchdog).
                    conn.exec_driver_sql(CHECKPOINT)

    def has_table(self, table_name: str) -> bool:
        """Whether the index has a table (Dagster asks for each asset event and check): on the index's kept engine,
        in a connection of its own, since Dagster may ask while it writes."""
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is None:
                # The index's connection pooled, kept open; a run's closed after each transaction (NullPool, as
                # Dagster's), so that a process that keeps the storage open holds no run's database open.
                pool = {} if shard == INDEX_SHARD_NAME else {"poolclass": NullPool}
                engine = create_engine(
                    self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, **pool
                )
                self._engines[shard] = engine
                runs = [kept for kept in self._engines if kept != INDEX_SHARD_NAME]
                for evicted in runs[: max(0, len(runs) - KEPT_RUN_ENGINES)]:
                    self._engines.pop(evicted).dispose()
            self._engines.move_to_end(shard)
            return engine

    def _close_all(self) -> None:
        _close(self._engines, self._engines_lock)

    def wipe(self) -> None:
        """Close every database first: wiping deletes the runs' files."""
        self._close_all()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_all()


def _total_changes(conn: Connection) -> int:
    """Rows this SQLite connection has inserted, updated or deleted since it opened."""
    return int(conn.connection.dbapi_connection.total_changes)  # type: ignore[union-attr]


def _close(engines: OrderedDict[str, Engine], lock: threading.Lock) -> None:
    with lock:
        while engines:
            engines.popitem()[1].dispose()


class FleetlakeInstance(dg.DagsterInstance):
    """Dagster's instance, its event log kept open (above); every other storage, and where each lies, is Dagster's
    default (a `storage` block in dagster.yaml still replaces them all)."""

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        """Dagster's defaults for an instance in `base_dir`, the event log's class swapped (same configuration)."""
        defaults = dict(InstanceRef.config_defaults(base_dir))
        stock = defaults["event_log_storage"]
        assert stock is not None
        defaults["event_log_storage"] = ConfigurableClassData(
            KeptOpenSqliteEventLogStorage.__module__, KeptOpenSqliteEventLogStorage.__name__, stock.config_yaml
        )
        storages = {name: defaults[name] for name in ("run_storage", "event_log_storage", "schedule_storage")}
        defaults["storage"] = ConfigurableClassData(
            "dagster._core.storage.legacy_storage",
            "CompositeStorage",
            yaml.dump({name: _as_config(data) for name, data in storages.items()}, default_flow_style=False),
        )
        return defaults


def _as_config(data: ConfigurableClassData | None) -> dict[str, str]:
    """A storage's class and configuration as CompositeStorage's configuration names them."""
    assert data is not None
    return {"module_name": data.module_name, "class_name": data.class_name, "config_yaml": data.config_yaml}
