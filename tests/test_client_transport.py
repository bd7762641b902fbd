"""The client's own network transport (aiohttp under httpx's API) against real sockets on loopback: a server that
never answers, one that trickles its body, one that cuts its body short and one that refuses connections. Every
wait still ends at the request's deadline, a cut body is fetched again, a refused connection stops the client, and
a gzip body is decompressed as with httpx's own transport. The in-process tests (test_client_behaviour.py,
test_provider_misbehaving.py) prove the same promises with a transport passed in; this proves them with the one
production uses."""

import asyncio
import gzip
import time
from collections.abc import Awaitable, Callable

import pytest

from pipelines.config import Settings
from pipelines.voi.client import ProviderUnreachable, VoiClient, VoiRequestError
from pipelines.voi.ratelimit import RateLimiter

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ZONE_INFO = b'{"data": {"attributes": {"zones": [{"zoneId": 7}]}}}'


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def serve(handler: Handler, attempt: Callable[[VoiClient], Awaitable[object]], **settings: object) -> object:
    """Runs `attempt` with a client whose zone API is `handler` on a loopback port; returns its result or error."""
    writers: list[asyncio.StreamWriter] = []

    async def noted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await handler(reader, writer)

    server = await asyncio.start_server(noted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = Settings(maas_base_url=f"http://127.0.0.1:{port}", zones=("7",)).model_copy(update=settings)
    try:
        async with VoiClient(config, limiter=RateLimiter(10**6, burst=10**3), max_attempts=2) as client:
            try:
                return await attempt(client)
            except Exception as e:  # the error is what the test looks at
                return e
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()


def zone_list(handler: Handler, **settings: object) -> tuple[object, dict[str, int], float]:
    """The zone list through `handler`: (result or error, retry reasons, wall seconds)."""
    reasons: dict[str, int] = {}

    async def attempt(client: VoiClient) -> object:
        try:
            return await client.listed_zones()
        finally:
            reasons.update(client.stats.by_reason)

    began = time.perf_counter()
    result = asyncio.run(serve(handler, attempt, **settings))
    return result, reasons, time.perf_counter() - began


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(3600)


async def trickling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
    while True:
        writer.write(b"1\r\n \r\n")
        await writer.drain()
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("handler", [silent, trickling], ids=["no answer", "trickling body"])
def test_a_hung_request_ends_at_its_deadline(handler: Handler) -> None:
    """Neither a server that never answers nor a body that keeps a per-read timeout alive holds a request past
    its overall deadline (0.3 s), on each of the two attempts."""
    result, reasons, wall = zone_list(handler, request_deadline_s=0.3)
    assert isinstance(result, VoiRequestError), result
    assert str(result).endswith("failed after 2 attempts: deadline")
    assert reasons == {"deadline": 2}
    assert wall < 3.0


def test_a_body_cut_short_is_fetched_again_and_a_gzip_body_is_read() -> None:
    """The first answer promises more bytes than it sends and closes; the second, gzip-encoded, is read whole."""
    answers = 0

    async def cut_then_whole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answers
        await read_request(reader)
        answers += 1
        if answers == 1:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + ZONE_INFO[:20])
        else:
            body = gzip.compress(ZONE_INFO)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\nconnection: close\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
        await writer.drain()
        writer.close()

    result, reasons, _ = zone_list(cut_then_whole)
    assert result == ["7"]
    assert answers == 2 and sum(reasons.values()) == 1, reasons


def test_a_refused_connection_stops_the_client() -> None:
    async def attempt(client: VoiClient) -> object:
        return await client.listed_zones()

    async def refused() -> object:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        config = Settings(maas_base_url=f"http://127.0.0.1:{port}", zones=("7",))
        async with VoiClient(config, limiter=RateLimiter(10**6, burst=10**3)) as client:
            try:
                return await attempt(client)
            except Exception as e:  # the error is what the test looks at
                return e

    result = asyncio.run(refused())
    assert isinstance(result, ProviderUnreachable), result
    assert "connection refused 3 times" in str(result)
