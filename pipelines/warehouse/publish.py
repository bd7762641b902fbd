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

What it would cost is a copy of the published file at the start of every window build (0.3 s for 0.8 GiB, a
sixth of an hourly build). So the copy is made after publishing instead, off the next build's path: a detached
`cp --reflink=auto` (a clone where the filesystem shares blocks, btrfs or XFS; an in-kernel copy_file_range
elsewhere) copies the file just published to a spare, `<warehouse>.spare-<identity>`, named by the published
file's inode, size and modification time. The next build takes that spare by a rename when its identity is still
the published file's, and copies only when there is none (a build followed too closely, a spare still being
made, or an older version's warehouse). A spare of an earlier build is stale and removed under the lock; a spare
costs the warehouse's size on disk once more. A full build of every model starts from an empty file and uses
none. docs/storage.md has the measured figures beside DuckLake's.
"""

import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from pipelines.warehouse.shared import SharedCatalog, local_build, new_build_id, record_local_build

log = logging.getLogger(__name__)
# A full build of a month of a 10,000-vehicle city takes about a minute, a backfill's window build a few; a
# build that waits this long for another one is stuck behind something an operator must look at.
DEFAULT_LOCK_TIMEOUT_S = 3600.0
WORKING_INFIX = ".building-"
SPARE_INFIX = ".spare-"
PARTIAL = "partial-"
# The spare's copy, detached from the build so that the build returns as soon as it has published: copied under a
# partial name (a build that starts meanwhile removes it and copies for itself), renamed when whole. GNU cp clones
# or copies in the kernel, whichever the filesystem allows; the source is the published file the build opened
# (`/dev/fd/N`), so a build published meanwhile can never be copied under this one's identity.
SPARE_COPY = (
    '{ cp --reflink=auto -- "/dev/fd/$0" "$1" && mv -f -- "$1" "$2" || rm -f -- "$1"; } </dev/null >/dev/null 2>&1 &'
)


class BuildLockTimeout(TimeoutError):
    """Another build held the warehouse's build lock for longer than this build was willing to wait."""


def lock_path(published: Path) -> Path:
    """The build lock of the warehouse published at `published` (a file beside it)."""
    return published.with_name(published.name + ".lock")


def working_files(published: Path) -> list[Path]:
    """Private files of builds of this warehouse (and their write-ahead logs), finished or killed."""
    return sorted(published.parent.glob(published.name + WORKING_INFIX + "*"))


def spares(published: Path) -> list[Path]:
    """Copies of published builds made for the next build to start from, whole or being made."""
    return sorted(published.parent.glob(published.name + SPARE_INFIX + "*"))


def _identity(stat: os.stat_result) -> str:
    """What tells one published file from every other: a build publishes a new file (a new inode, written later)."""
    return f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"


def spare_path(published: Path) -> Path | None:
    """Where the spare of the file published now lies (whether made yet or not); None when nothing is published."""
    try:
        return published.with_name(f"{published.name}{SPARE_INFIX}{_identity(published.stat())}")
    except FileNotFoundError:
        return None


def prepare_spare(published: Path) -> None:
    """Start copying the file published now to its spare, in a process of its own that outlives this one (an
    hourly run ends when its build has published); returns at once. Nothing happens where `cp` is missing: the
    next build copies then."""
    try:
        descriptor = os.open(published, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        spare = published.with_name(f"{published.name}{SPARE_INFIX}{_identity(os.fstat(descriptor))}")
        partial = published.with_name(f"{published.name}{SPARE_INFIX}{PARTIAL}{uuid.uuid4().hex}")
        # The shell backgrounds the copy and exits: nothing is left for this process to reap.
        subprocess.run(
            ["sh", "-c", SPARE_COPY, str(descriptor), str(partial), str(spare)],
            pass_fds=(descriptor,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            check=False,
        )
    except OSError as error:
        log.info("no spare copy of %s prepared (%s); the next build copies it", published, error)
    finally:
        os.close(descriptor)


def _start_from(published: Path, working: Path) -> None:
    """The working file as a copy of the published one: its spare taken by a rename when it is there and whole,
    else a copy made now."""
    current = spare_path(published)
    if current is not None and current.exists():
        current.replace(working)
        return
    shutil.copyfile(published, working)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def _build_lock(published: Path, timeout_s: float, shared: SharedCatalog | None) -> Iterator[None]:
    """The warehouse's build lock: this machine's file lock, and first the catalog's for every machine when the
    warehouse is shared."""
    with ExitStack() as held:
        if shared is not None:
            try:
                held.enter_context(shared.lock(timeout_s))
            except TimeoutError as error:
                raise BuildLockTimeout(
                    f"another build of {shared.warehouse} has held its build lock in Postgres for more than "
                    f"{timeout_s:.0f} s; wait for it to finish (or end it), then build again"
                ) from error
        lock = FileLock(lock_path(published), timeout=timeout_s)
        try:
            held.enter_context(lock)
        except Timeout as error:
            raise BuildLockTimeout(
                f"another build of {published} has held {lock_path(published)} for more than {timeout_s:.0f} s; "
                "wait for it to finish (or end it), then build again"
            ) from error
        yield


@contextmanager
def build_aside(
    published: Path,
    fresh: bool,
    timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    spare: bool = True,
    shared: SharedCatalog | None = None,
) -> Iterator[Path]:
    """Hold the build lock and yield the path of a private working file to build in: a copy of the published
    file, or no file at all when `fresh` (a full build of every model needs nothing of the old one). When the
    block ends without an error, the working file (checkpointed and closed by the caller: its write-ahead log
    merged) is published by an atomic rename, and, when `spare`, the next build's copy of it is started; when it
    raises, the working file is removed and the published one is left as it was.

    With a `shared` catalog (shared.py) the lock is also every machine's, the working file starts from the build
    the catalog names (downloaded when this machine's file is another), and the build is uploaded and named the
    current one in the catalog before it is published here."""
    published = Path(published)
    published.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(published, timeout_s, shared):
        for stale in working_files(published):  # left by a killed build: only the lock's holder writes them
            log.info("removing %s, left by a build that did not finish", stale)
            stale.unlink(missing_ok=True)
        current = spare_path(published)
        for stale in spares(published):  # of earlier builds, or partial (a copy still being made then stops)
            if stale != current:
                stale.unlink(missing_ok=True)
        working = published.with_name(f"{published.name}{WORKING_INFIX}{uuid.uuid4().hex}")
        latest = shared.current() if shared is not None and not fresh else None
        if shared is not None and latest is not None and local_build(published) != latest.build_id:
            shared.download(latest, working)  # published since on another machine (or never here)
        elif not fresh and published.exists() and not _wal(published).exists():
            _start_from(published, working)
        elif not fresh and published.exists():
            shutil.copyfile(published, working)  # the log goes with it, below; no spare holds what it adds
        if _wal(published).exists():
            # Written in place by an older version and not checkpointed: the copy replays it; the published file
            # is read without it from now on (its readers then see the last checkpoint, a complete state).
            if not fresh and published.exists() and working.exists():
                shutil.copyfile(_wal(published), _wal(working))
            _wal(published).unlink()
        try:
            yield working
            if not working.exists():
                raise RuntimeError(f"the build wrote nothing to {working}: nothing to publish")
            if _wal(working).exists():
                raise RuntimeError(f"{working} still has a write-ahead log: its connection was not closed")
            _fsync(working)
            build_id = new_build_id()
            if shared is not None:
                shared.publish(working, build_id)  # published for every machine
            working.replace(published)
            _fsync(published.parent)
            if shared is not None:
                record_local_build(published, build_id)
            if spare:
                prepare_spare(published)
        except BaseException:
            working.unlink(missing_ok=True)
            _wal(working).unlink(missing_ok=True)
            raise


__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "BuildLockTimeout",
    "build_aside",
    "lock_path",
    "prepare_spare",
    "spare_path",
    "spares",
    "working_files",
]
