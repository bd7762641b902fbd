"""Builds aside, published whole: how readers and builders of the warehouse file never wait for each other.

Readers open the published file (`FLEETLAKE_WAREHOUSE`, e.g. `data/warehouse.duckdb`) read-only. A build never
writes it: under the warehouse's build lock it works on a private file beside it (a copy of the published file, or
an empty one for a full build of every model), checkpoints and closes that, and publishes it by an atomic rename
over the published path. So:

- a reader never blocks a build and a build never blocks a reader: they never open the same file for writing (a
  DuckDB file takes one writer or many readers, never both);
- a reader sees one complete build: the file it opened stays whole (and its own) until it closes it, however many
  builds are published meanwhile; the next reader opens the newer file;
- a build is all-or-nothing: until the rename, the published file is untouched; a build killed at any moment
  leaves a private file that the next build removes (it holds the lock, so no build owns it any more);
- builds queue: two overlapping backfills take the lock in turn, and the second starts from what the first
  published, so both windows are in the result. The lock is an OS file lock (flock), released by the kernel when
  its holder dies, so a killed build never leaves it taken; a wait for it ends after `timeout_s` with an error
  that says who to wait for.

What it costs is the copy of the published file at the start of a window build (a full build of every model starts
from an empty file and copies nothing); docs/storage.md has the measured figures beside DuckLake's.
"""

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)
# A full build of a month of a 10,000-vehicle city takes about a minute, a backfill's window build a few; a
# build that waits this long for another one is stuck behind something an operator must look at.
DEFAULT_LOCK_TIMEOUT_S = 3600.0
WORKING_INFIX = ".building-"


class BuildLockTimeout(TimeoutError):
    """Another build held the warehouse's build lock for longer than this build was willing to wait."""


def lock_path(published: Path) -> Path:
    """The build lock of the warehouse published at `published` (a file beside it)."""
    return published.with_name(published.name + ".lock")


def working_files(published: Path) -> list[Path]:
    """Private files of builds of this warehouse (and their write-ahead logs), finished or killed."""
    return sorted(published.parent.glob(published.name + WORKING_INFIX + "*"))


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def build_aside(published: Path, fresh: bool, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold the build lock and yield the path of a private working file to build in: a copy of the published
    file, or no file at all when `fresh` (a full build of every model needs nothing of the old one). When the
    block ends without an error, the working file (checkpointed and closed by the caller: its write-ahead log
    merged) is published by an atomic rename; when it raises, the working file is removed and the published one
    is left as it was."""
    published = Path(published)
    published.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(published), timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout as error:
        raise BuildLockTimeout(
            f"another build of {published} has held {lock_path(published)} for more than {timeout_s:.0f} s; "
            "wait for it to finish (or end it), then build again"
        ) from error
    try:
        for stale in working_files(published):  # left by a killed build: only the lock's holder writes them
            log.info("removing %s, left by a build that did not finish", stale)
            stale.unlink(missing_ok=True)
        working = published.with_name(f"{published.name}{WORKING_INFIX}{uuid.uuid4().hex}")
        if not fresh and published.exists():
            shutil.copyfile(published, working)
        if _wal(published).exists():
            # Written in place by an older version and not checkpointed: the copy replays it; the published file
            # is read without it from now on (its readers then see the last checkpoint, a complete state).
            if not fresh and published.exists():
                shutil.copyfile(_wal(published), _wal(working))
            _wal(published).unlink()
        try:
            yield working
            if not working.exists():
                raise RuntimeError(f"the build wrote nothing to {working}: nothing to publish")
            if _wal(working).exists():
                raise RuntimeError(f"{working} still has a write-ahead log: its connection was not closed")
            _fsync(working)
            working.replace(published)
            _fsync(published.parent)
        except BaseException:
            working.unlink(missing_ok=True)
            _wal(working).unlink(missing_ok=True)
            raise
    finally:
        lock.release()


__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "BuildLockTimeout", "build_aside", "lock_path", "working_files"]
