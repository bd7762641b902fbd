"""Lake partitions written by worker processes, so that a big city's ingestion uses every core.

Ingestion fetches in one event loop and, by default, parses and writes in one thread beside it (pipelines/ingest.py):
one process, so one core, whatever the machine has. Up to a few thousand vehicles a zone the fetching, paced by the
provider's rate limit, is what takes the time; a 20,000-vehicle city's pages are so large that decoding, validating
and writing them keeps that one core busy while the other idles (24 h of one such zone: 5.3 CPU-seconds, of which
the event loop's own share, the writing done elsewhere, is 0.3; benchmarks/backfill_benchmark.py). Here each
partition's pages go to one of a pool of spawned processes, which parses and writes the partition with the same
`write_partition` and hands back its `PartitionResult`; the event loop keeps fetching meanwhile. A partition is one
task, written by one process, so no two processes ever write the same files.

The processes are spawned, not forked: the command line's process runs threads (the fetching loop, Dagster's) that
a fork would copy in whatever state they were. A spawned process costs an interpreter and the lake's imports
(about a CPU-second), repaid only by a run with enough partitions (`worth_processes`).
"""

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from pipelines.ingest import LakeWriter, PartitionResult, write_partition

PROCESSES_FROM_PARTITIONS = 96
"""The fewest partitions for which a run writes in processes: two days of one zone. A spawned writer's start-up
(an interpreter, Polars, Arrow, msgspec) costs about what writing a few dozen partitions of a 300-vehicle zone does,
so smaller runs (a test, an hourly tick of a few cities) keep the one writer thread."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or `taskset` may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worth_processes(partitions: int, cores: int | None = None) -> bool:
    """Whether writing `partitions` in worker processes pays for their start: a run of at least
    PROCESSES_FROM_PARTITIONS partitions on a machine with more than one core."""
    return partitions >= PROCESSES_FROM_PARTITIONS and (cores or usable_cores()) > 1


PARENT_CHECK_S = 1.0
"""How often a writer looks whether the process that started it is still there."""


def _end_with_parent(parent: int) -> None:
    """In each writer: end it once its parent is gone (killed with -9, say), instead of waiting for work forever.
    A write under way then may finish or not: a partition's files are replaced whole (pipelines/lake/store.py)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _write_in_worker(*args: Any, **kwargs: Any) -> tuple[PartitionResult, int]:
    """write_partition in a worker process, with the process's id (which processes did the work is observable)."""
    return write_partition(*args, **kwargs), os.getpid()


class WriterProcesses:
    """A pool of spawned processes writing partitions; `write` has write_partition's arguments and awaits its
    result. `pids` are the processes that wrote at least one partition."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.pids: set[int] = set()
        self._pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_end_with_parent,
            initargs=(os.getpid(),),
        )

    async def write(self, *args: Any, **kwargs: Any) -> PartitionResult:
        loop = asyncio.get_running_loop()
        result, pid = await loop.run_in_executor(self._pool, partial(_write_in_worker, *args, **kwargs))
        self.pids.add(pid)
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def writer_processes(processes: int | None = None) -> Iterator[WriterProcesses]:
    """`processes` spawned writers (default: one per usable core) for as long as the block lasts; hand their
    `write` to ingest_hours. The processes end with the block."""
    pool = WriterProcesses(processes or usable_cores())
    try:
        yield pool
    finally:
        pool.close()


@contextmanager
def writer_for(partitions: int) -> Iterator[LakeWriter | None]:
    """The writer of a run of `partitions` partitions: worker processes' when they pay (`worth_processes`), else
    None (ingest_hours then writes in its own thread)."""
    if not worth_processes(partitions):
        yield None
        return
    with writer_processes() as pool:
        yield pool.write
