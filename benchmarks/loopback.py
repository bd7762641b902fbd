"""What the benchmarks share: the machine's load printed beside each figure, the CPU seconds of child processes,
the embedded provider in a process of its own on a free loopback port, and a loopback TCP relay that watches the
requests on their way to it.

Benchmarks run as scripts (`.venv/bin/python benchmarks/x.py`), so this module is imported by its bare name.
"""

import asyncio
import os
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def load() -> str:
    """The machine's load average over the last minute, printed beside every figure."""
    return f"load {os.getloadavg()[0]:.1f}"


def children_cpu() -> float:
    """CPU seconds (user + system) of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def served_provider(arguments: Sequence[str]) -> Iterator[str]:
    """`fleetlake provider serve --port 0 ARGUMENTS` in a process of its own (its CPU is not the benchmark's);
    yields the base URL it prints once it listens."""
    fleetlake = Path(sys.executable).parent / "fleetlake"
    command = [str(fleetlake), "provider", "serve", "--port", "0", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


class Relay:
    """A loopback TCP relay in front of `upstream` on its own event loop thread: the bytes pass as they are, and
    `note` sees each chunk on its way upstream (a subclass counts or times the requests in it)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = httpx.URL(upstream)
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def note(self, data: bytes) -> None:
        """A chunk of request bytes on its way upstream."""

    @staticmethod
    def is_hourly_mds(data: bytes) -> bool:
        """Whether the chunk holds an hourly MDS request (trips or historical events)."""
        return b"/trips?" in data or b"/events/historical?" in data

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, upstream: bool) -> None:
            try:
                while data := await source.read(1 << 16):
                    if upstream:
                        self.note(data)
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
