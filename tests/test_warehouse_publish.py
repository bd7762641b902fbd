"""Builds aside, published whole (pipelines/warehouse/publish.py): the lock, the working file and the rename."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from pipelines.warehouse.publish import (
    BuildLockTimeout,
    build_aside,
    lock_path,
    spare_path,
    spares,
    working_files,
)


def wait_for_spare(published: Path) -> Path:
    """The spare of the file published now, once its detached copy has finished (within ten seconds)."""
    spare = spare_path(published)
    assert spare is not None
    deadline = time.monotonic() + 10
    while not spare.exists():
        assert time.monotonic() < deadline, f"no spare {spare} after 10 s: {spares(published)}"
        time.sleep(0.02)
    return spare


def test_a_build_works_on_a_copy_and_publishes_it_whole(tmp_path: Path) -> None:
    published = tmp_path / "warehouse.duckdb"
    published.write_bytes(b"old build")
    with build_aside(published, fresh=False) as working:
        assert working != published
        assert working.read_bytes() == b"old build"  # a copy of what readers see
        working.write_bytes(b"new build")
        assert published.read_bytes() == b"old build"  # untouched until the block ends
    assert published.read_bytes() == b"new build"
    assert working_files(published) == []


def test_a_fresh_build_starts_from_nothing(tmp_path: Path) -> None:
    published = tmp_path / "warehouse.duckdb"
    published.write_bytes(b"old build")
    with build_aside(published, fresh=True) as working:
        assert not working.exists()
        working.write_bytes(b"every model anew")
    assert published.read_bytes() == b"every model anew"


def test_a_failed_build_leaves_the_published_file_as_it_was(tmp_path: Path) -> None:
    published = tmp_path / "warehouse.duckdb"
    published.write_bytes(b"old build")
    with pytest.raises(ValueError, match="a model failed"), build_aside(published, fresh=False) as working:
        working.write_bytes(b"half a build")
        raise ValueError("a model failed")
    assert published.read_bytes() == b"old build"
    assert working_files(published) == []


def test_a_killed_builds_files_are_removed_by_the_next_build(tmp_path: Path) -> None:
    published = tmp_path / "warehouse.duckdb"
    published.write_bytes(b"old build")
    left = [tmp_path / "warehouse.duckdb.building-0f0f", tmp_path / "warehouse.duckdb.building-0f0f.wal"]
    for path in left:
        path.write_bytes(b"killed mid-build")
    with build_aside(published, fresh=False, spare=False) as working:
        assert working_files(published) == [working]  # only its own
        assert working.read_bytes() == b"old build"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("warehouse.duckdb")) == [
        "warehouse.duckdb",
        "warehouse.duckdb.lock",
    ]


def test_an_unmerged_write_ahead_log_of_the_published_file_goes_to_the_build(tmp_path: Path) -> None:
    """A warehouse written in place (before builds were published whole) may have a write-ahead log beside it: the
    working copy replays it, and it is removed so that it is never replayed onto a published build."""
    published = tmp_path / "warehouse.duckdb"
    published.write_bytes(b"checkpointed")
    wal = tmp_path / "warehouse.duckdb.wal"
    wal.write_bytes(b"committed later")
    with build_aside(published, fresh=False) as working:
        assert Path(f"{working}.wal").read_bytes() == b"committed later"
        assert not wal.exists()
        Path(f"{working}.wal").unlink()  # as DuckDB does when it checkpoints and closes
    assert not wal.exists()


def test_a_working_file_with_a_write_ahead_log_is_not_published(tmp_path: Path) -> None:
    published = tmp_path / "warehouse.duckdb"
    published.write_bytes(b"old build")
    with pytest.raises(RuntimeError, match="write-ahead log"), build_aside(published, fresh=False) as working:
        Path(f"{working}.wal").write_bytes(b"not merged")
    assert published.read_bytes() == b"old build"
    assert working_files(published) == []


def test_a_build_waits_for_the_lock_no_longer_than_it_was_told(tmp_path: Path) -> None:
    published = tmp_path / "warehouse.duckdb"
    held = FileLock(lock_path(published))
    with held, pytest.raises(BuildLockTimeout, match=r"warehouse\.duckdb\.lock for more than 0 s"):  # noqa: SIM117
        with build_aside(published, fresh=True, timeout_s=0):
            pytest.fail("built without the lock")


def test_the_lock_of_a_killed_build_is_free(tmp_path: Path) -> None:
    """The lock is the kernel's: a holder killed with SIGKILL cannot leave it taken."""
    published = tmp_path / "warehouse.duckdb"
    script = (
        "import sys, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print(1, flush=True); "
        "sys.stdin.readline()"
    )
    command = [sys.executable, "-c", script, str(lock_path(published))]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "1\n"
        with pytest.raises(BuildLockTimeout), build_aside(published, fresh=True, timeout_s=0):
            pass
        holder.kill()
    with build_aside(published, fresh=True, timeout_s=0) as working:
        working.write_bytes(b"built")
    assert published.read_bytes() == b"built"
    assert lock_path(published).exists()


def test_the_next_build_starts_from_a_spare_copied_after_publishing(tmp_path: Path) -> None:
    """The copy a window build starts from is made after the build before it published, off the next one's path."""
    published = tmp_path / "warehouse.duckdb"
    with build_aside(published, fresh=True) as working:
        working.write_bytes(b"first build")
    spare = wait_for_spare(published)
    assert spare.read_bytes() == b"first build"
    with build_aside(published, fresh=False) as working:
        assert working.read_bytes() == b"first build"
        assert not spare.exists()  # taken by a rename, not copied again
        working.write_bytes(b"second build")
    assert published.read_bytes() == b"second build"
    assert wait_for_spare(published).read_bytes() == b"second build"
    assert spares(published) == [spare_path(published)]


def test_spares_of_earlier_builds_and_unfinished_ones_are_never_used(tmp_path: Path) -> None:
    published = tmp_path / "warehouse.duckdb"
    with build_aside(published, fresh=True, spare=False) as working:
        working.write_bytes(b"published build")
    stale = [
        tmp_path / "warehouse.duckdb.spare-1-15-1700000000000000000",  # of a file published before this one
        tmp_path / "warehouse.duckdb.spare-partial-0f0f",  # a copy killed, or still being made
    ]
    for path in stale:
        path.write_bytes(b"an earlier build")
    with build_aside(published, fresh=False, spare=False) as working:
        assert working.read_bytes() == b"published build"
        assert spares(published) == []
