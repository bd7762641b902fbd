"""The client's network transport: aiohttp under httpx's API (httpx-aiohttp), its errors named as httpx names them.

aiohttp's parser and connection pool cost about a third of the CPU of httpx's own transport per response, most of
ingestion's fetch cost. httpx-aiohttp 0.2.0 reports a refused connection as `ConnectTimeout` and a server that
closed without answering as a timeout too; the client tells a refused connection (the provider is down: stop after
a few) from a slow one, so those two are named here as httpx's own transport names them.
"""

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class NetworkTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as e:
            cause = e.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(cause, TimeoutError):
                raise httpx.ConnectError(str(e), request=request) from cause
            if isinstance(cause, aiohttp.ServerDisconnectedError):
                raise httpx.RemoteProtocolError(str(e), request=request) from cause
            raise
