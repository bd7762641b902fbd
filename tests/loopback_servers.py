"""The servers of a scale-out deployment, each started on a free loopback port for the length of a block: Postgres
(initdb into a temporary folder), an S3-compatible store (moto's server mode) and a Redis broker.

Each yields its URL and is stopped (by its own process id) when the block ends. `missing_servers()` names the
programs this machine lacks: a test skips with their names outside CI and fails under CI=true, where `.ci/run`
installs them from Debian's packages.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
DEBIAN_PACKAGES = {"initdb": "postgresql", "pg_ctl": "postgresql", "redis-server": "redis-server"}
START_TIMEOUT_S = 60


def postgres_program(name: str) -> str | None:
    """A Postgres server program: on PATH, else in Debian's versioned folder (not on PATH there)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in POSTGRES_BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    return None


def missing_servers() -> list[str]:
    """The server programs this machine lacks, with the Debian package of each."""
    missing = [f"{name} ({DEBIAN_PACKAGES[name]})" for name in ("initdb", "pg_ctl") if postgres_program(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server (redis-server)")
    return missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Stop a server this module started: SIGTERM, then SIGKILL after `timeout`."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop a process this module's caller started in its own session, and the processes it started (a
    `dagster-celery worker start` runs Celery as its child, which runs the pool's): SIGTERM to the group, which
    Celery answers with a warm shutdown, then SIGKILL after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _as_postgres_user() -> list[str]:
    """initdb and the server refuse to run as root: as root, run them as the `postgres` system user Debian's
    package creates (or `nobody`)."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
    raise RuntimeError("running as root and there is no postgres or nobody user to run Postgres as")


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A Postgres server in a new temporary folder (removed after) on a free port, trusting local connections;
    yields its URL (database `postgres`, user `fleetlake`)."""
    initdb, pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("Postgres is not installed (Debian: apt-get install postgresql)")
    # Directly under the system's temporary folder, which every user can reach: the server's user must reach
    # its data folder, and pytest keeps its own temporary folders to the user running the tests.
    folder = Path(tempfile.mkdtemp(prefix="fleetlake-postgres-"))
    try:
        with _postgres_in(folder, initdb, pg_ctl) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _postgres_in(folder: Path, initdb: str, pg_ctl: str) -> Iterator[str]:
    data, log = folder / "data", folder / "postgres.log"
    prefix = _as_postgres_user()
    if prefix:
        owner = pwd.getpwnam(prefix[2])
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "fleetlake", "--auth=trust", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            *prefix,
            str(Path(pg_ctl).with_name("postgres")),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(folder),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
            # Dynamic shared memory in files of the data folder (removed with it), not in /dev/shm: the immediate
            # shutdown at the end (_stop_postgres) leaves a server's /dev/shm segments behind, 13 a scale-out test.
            "-c",
            "dynamic_shared_memory_type=mmap",
        ],
        stdout=(log_file := log.open("ab")),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, server, "postgres", log)
        url = f"postgresql://fleetlake@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # listening comes a moment before accepting logins
            import psycopg2

            try:
                psycopg2.connect(url).close()
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        _stop_postgres(server, data)
        log_file.close()


def _stop_postgres(server: subprocess.Popen[bytes], data: Path) -> None:
    """Stop the server at once (its data folder is removed next, nothing of it needs writing): SIGQUIT to the
    postmaster, whose process id it keeps in `postmaster.pid`. Under `runuser` the process started is runuser,
    which passes on SIGTERM only, and kills its child two seconds later, whatever the child was doing."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        postmaster = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(postmaster, signal.SIGQUIT)
    stop(server)


@contextlib.contextmanager
def s3_server(folder: Path) -> Iterator[str]:
    """moto's S3-compatible server on a free loopback port; yields its endpoint URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "moto.log"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=(log_file := log.open("ab")),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, server, "moto_server", log)
        url = f"http://127.0.0.1:{port}"
        httpx.get(f"{url}/moto-api/", timeout=30)
        yield url
    finally:
        stop(server)
        log_file.close()


@contextlib.contextmanager
def redis(folder: Path) -> Iterator[str]:
    """A Redis server, nothing kept on disk, on a free loopback port; yields its URL."""
    server_program = shutil.which("redis-server")
    if server_program is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "redis.log"
    server = subprocess.Popen(
        [server_program, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=(log_file := log.open("ab")),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, server, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)
        log_file.close()


@contextlib.contextmanager
def all_running(*servers: contextlib.AbstractContextManager[str]) -> Iterator[list[str]]:
    """Several servers started at once, each in a thread of its own (initdb, moto's imports and Redis take their
    seconds side by side); yields their URLs in order and stops every one started when the block ends, also when
    another failed to start."""
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            started = [pool.submit(stack.enter_context, server) for server in servers]
        yield [future.result() for future in started]
