"""Serving the simulated provider over real HTTP on the loopback interface."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from fleetlake_provider.app import ProviderApp


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 lets the OS pick a free one, which the caller can then print."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def _server(app: ProviderApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30, date_header=False
    )
    return uvicorn.Server(config)


def serve_forever(app: ProviderApp, sock: socket.socket) -> None:
    _server(app).run(sockets=[sock])


@contextmanager
def running(app: ProviderApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on a background thread for the duration of the block; yields its base URL."""
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="voi-provider")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the embedded provider did not start")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
