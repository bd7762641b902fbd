"""Warehouse builds in processes of their own, as a schedule's and a backfill's builds run beside readers and beside
each other, each killable with SIGKILL at any moment.

The processes are forked from a server that imported the build's code once (multiprocessing's forkserver, which
preloads this module): a fresh interpreter for every build would import DuckDB, Polars, Arrow and the warehouse
again (~0.8 CPU s a process) before its build even began. A forked build is still a process of its own, with its own
DuckDB, its own files and no state shared with the test or with the other builds."""

import multiprocessing
import traceback
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from pipelines.warehouse.build import Warehouse

_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload([__name__])
STARTED = "building"


def _build(published: Path, lake: Path, window: tuple[datetime, datetime] | None, report: Connection) -> None:
    """The body of a build process: says when its build starts, and what stopped it if it fails."""
    try:
        warehouse = Warehouse(published, lake)
        report.send(STARTED)
        warehouse.build(window)
    except BaseException:
        report.send(traceback.format_exc())
        raise


class BuildProcess:
    """A build of the warehouse published at `published` from `lake` (a full build when `window` is None), started
    at once in a process of its own."""

    def __init__(self, published: Path, lake: Path, window: tuple[datetime, datetime] | None) -> None:
        self._messages, report = _PROCESSES.Pipe(duplex=False)
        self._process = _PROCESSES.Process(target=_build, args=(published, lake, window, report))
        self._process.start()
        report.close()  # the child holds the only sending end: its death ends the pipe

    def started(self, timeout_s: float = 120.0) -> str:
        """The process's first word (STARTED once its build begins; a traceback if it failed before)."""
        if not self._messages.poll(timeout_s):
            raise TimeoutError("the build process said nothing")
        message: str = self._messages.recv()
        return message

    def kill(self) -> int:
        """SIGKILL, as an operator or the kernel's OOM killer sends it; returns the exit code (-9 when killed,
        0 when the build had finished)."""
        self._process.kill()
        self._process.join()
        assert self._process.exitcode is not None
        return self._process.exitcode

    def finish(self, timeout_s: float = 600.0) -> None:
        """Waits for the build; fails with the build's own traceback if it failed."""
        self._process.join(timeout_s)
        said = []
        while self._messages.poll():
            try:
                said.append(self._messages.recv())
            except EOFError:
                break
        assert self._process.exitcode == 0, (self._process.exitcode, said)
