"""A warehouse several machines share: one truth of which build is published, and one build lock, in Postgres.

On one machine the published file and its file lock are the whole truth (publish.py). Machines of a scale-out
deployment (docs/scale-out.md) each have their own disk, so with FLEETLAKE_WAREHOUSE_CATALOG set (a Postgres URL,
e.g. the server Dagster keeps its runs in) a build also:

- takes the build lock in Postgres, a session-level advisory lock on the warehouse's name: one build at a time
  across every machine, and the server frees it when the builder's connection ends, so a killed build (or a lost
  machine) never leaves it taken;
- starts from the build the catalog names, downloaded when the machine's own copy is another (a build on another
  machine published since);
- uploads the finished file to the store, `<lake>/_warehouse/<build id>.duckdb` (the lake's bucket, or its
  folder), and then inserts the build's row in the catalog table `fleetlake_warehouse_builds`: that insert is the
  moment the build is published for every machine. A build killed before it leaves at most an object no row names
  (removed by the retention below); after it, every machine sees the new build whole.

A reader on any machine opens its local copy of the current build: `pull` downloads the build the catalog names
when the local file is another, and publishes it locally by the same atomic rename, so analysts keep their one-line
`duckdb -readonly data/warehouse.duckdb`. DuckDB can also attach the object itself, read-only, over httpfs (the
catalog's `uri`). Which build a local file holds is written beside it (`<warehouse>.build`), with the file's
identity: a file published or replaced otherwise is taken for unknown, and downloaded again.

The newest KEEP_BUILDS builds stay in the store (a reader attached to an older one over httpfs keeps reading it
while newer ones land); older ones, and objects no row names, are deleted by the next build.
"""

import json
import logging
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import psycopg2
from filelock import FileLock
from upath import UPath

from pipelines.lake.filesystem import LakePath, is_remote, remove, uri

log = logging.getLogger(__name__)
TABLE = "fleetlake_warehouse_builds"
STORE = "_warehouse"
"""The store's folder under the lake's root."""
KEEP_BUILDS = 3
LOCK_POLL_S = 0.5
CREATE = """
create table if not exists fleetlake_warehouse_builds (
    warehouse text not null,
    build_id text not null,
    uri text not null,
    bytes bigint not null,
    built_on text not null,
    published_at timestamptz not null default clock_timestamp(),
    primary key (warehouse, build_id)
)
"""


@dataclass(frozen=True)
class PublishedBuild:
    build_id: str
    uri: str
    """Where the build's file lies in the store (s3://... or a local path)."""


def _dsn(url: str) -> str:
    """A libpq URL from SQLAlchemy's spelling too (`postgresql+psycopg2://`, as Dagster's instance takes it)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _identity(path: Path) -> str | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"


def _record_path(published: Path) -> Path:
    return published.with_name(published.name + ".build")


def local_build(published: Path) -> str | None:
    """The build id of the file published at `published`, when it was published from the catalog's store here and
    is still that file; None otherwise."""
    try:
        record = json.loads(_record_path(published).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if record.get("file") != _identity(published):
        return None
    return str(record["build_id"])


def record_local_build(published: Path, build_id: str) -> None:
    """Say beside the published file which build it is (written aside and renamed: readers see one or the other)."""
    record = _record_path(published)
    aside = record.with_name(f"{record.name}.{uuid.uuid4().hex}")
    aside.write_text(json.dumps({"build_id": build_id, "file": _identity(published)}))
    aside.replace(record)


def new_build_id() -> str:
    """Sortable by time, unique across machines."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}"


class SharedCatalog:
    """The catalog table and the build lock in Postgres, and the store of published builds beside the lake."""

    def __init__(self, url: str, lake_root: LakePath) -> None:
        self.dsn = _dsn(url)
        self.store = lake_root / STORE
        self.warehouse = uri(self.store)
        """The warehouse's name in the catalog and its lock: one Postgres may serve several cities' lakes."""

    def _connect(self) -> "psycopg2.extensions.connection":
        con = psycopg2.connect(self.dsn, application_name="fleetlake warehouse")
        con.autocommit = True
        return con

    @contextmanager
    def lock(self, timeout_s: float) -> Iterator[None]:
        """Hold the warehouse's build lock for every machine; TimeoutError after `timeout_s`. The lock belongs to
        this connection's session: Postgres releases it when the connection closes, however the process ends."""
        con = self._connect()
        try:
            with con.cursor() as cur:
                cur.execute(CREATE)
                deadline = time.monotonic() + timeout_s
                while True:
                    cur.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (self.warehouse,))
                    row = cur.fetchone()
                    if row is not None and row[0]:
                        break
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"the build lock of {self.warehouse} in Postgres")
                    time.sleep(LOCK_POLL_S)
            yield
        finally:
            con.close()  # ends the session, and with it the lock

    def current(self) -> PublishedBuild | None:
        """The build published last, for every machine; None before the first."""
        con = self._connect()
        try:
            with con.cursor() as cur:
                cur.execute(CREATE)
                cur.execute(
                    "select build_id, uri from fleetlake_warehouse_builds where warehouse = %s "
                    "order by published_at desc, build_id desc limit 1",
                    (self.warehouse,),
                )
                row = cur.fetchone()
        finally:
            con.close()
        return None if row is None else PublishedBuild(str(row[0]), str(row[1]))

    def download(self, build: PublishedBuild, destination: Path) -> None:
        """The build's file, to `destination` (a private path: the caller renames it into place)."""
        source = self.store / f"{build.build_id}.duckdb"
        if is_remote(source):
            cast(UPath, source).fs.get_file(cast(UPath, source).path, str(destination))
        else:
            shutil.copyfile(source, destination)

    def publish(self, working: Path, build_id: str) -> PublishedBuild:
        """Upload the finished file under its build id, then name it the current build; returns it."""
        target = self.store / f"{build_id}.duckdb"
        if is_remote(target):
            # One object, whole once the (multipart) upload completes: nobody sees part of it.
            cast(UPath, target).fs.put_file(str(working), cast(UPath, target).path)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            aside = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            shutil.copyfile(working, aside)
            aside.replace(target)
        build = PublishedBuild(build_id, uri(target))
        con = self._connect()
        try:
            with con.cursor() as cur:
                cur.execute(CREATE)
                cur.execute(
                    "insert into fleetlake_warehouse_builds (warehouse, build_id, uri, bytes, built_on) "
                    "values (%s, %s, %s, %s, %s)",
                    (self.warehouse, build_id, build.uri, working.stat().st_size, socket.gethostname()),
                )
                self._retire(cur)
        finally:
            con.close()
        return build

    def _retire(self, cur: "psycopg2.extensions.cursor") -> None:
        """Delete builds older than the newest KEEP_BUILDS, and objects no row names (builds killed after their
        upload). Called under the build lock, after publishing."""
        cur.execute(
            "delete from fleetlake_warehouse_builds where warehouse = %s and build_id not in (select build_id "
            "from fleetlake_warehouse_builds "
            "where warehouse = %s order by published_at desc, build_id desc limit %s) returning build_id",
            (self.warehouse, self.warehouse, KEEP_BUILDS),
        )
        cur.execute("select build_id from fleetlake_warehouse_builds where warehouse = %s", (self.warehouse,))
        kept = {f"{build_id}.duckdb" for (build_id,) in cur.fetchall()}
        for path in list(self.store.glob("*.duckdb")) if self.store.exists() else []:
            if path.name not in kept:
                log.info("removing %s, a build no longer kept", path)
                remove(path)


def pull(published: Path, catalog: SharedCatalog, lock_path: Path, timeout_s: float) -> PublishedBuild | None:
    """Make the local file at `published` the catalog's current build: downloaded when it is another, then
    published by an atomic rename (readers with the older file open keep it). Under the local build lock, so that
    it never crosses a build on this machine. Returns the current build (None before the first)."""
    build = catalog.current()
    if build is None or local_build(published) == build.build_id:
        return build
    published.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path, timeout=timeout_s):
        build = catalog.current()
        if build is None or local_build(published) == build.build_id:
            return build
        aside = published.with_name(f"{published.name}.pulling-{uuid.uuid4().hex}")
        try:
            catalog.download(build, aside)
            aside.replace(published)
        finally:
            aside.unlink(missing_ok=True)
        record_local_build(published, build.build_id)
    log.info("warehouse %s is now build %s", published, build.build_id)
    return build


__all__ = [
    "KEEP_BUILDS",
    "TABLE",
    "PublishedBuild",
    "SharedCatalog",
    "local_build",
    "new_build_id",
    "pull",
    "record_local_build",
]
