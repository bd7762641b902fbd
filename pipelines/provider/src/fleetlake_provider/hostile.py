"""Faults of a provider that does not play fair, each off by default (fields of `Faults`): a body that trickles a
byte at a time, a `links.next` chain that never ends, `Retry-After` as an HTTP date, a gzip bomb, unusable token
replies, `Date` headers ending in `-0000`, error bodies that echo the request's credentials.

Unlike the transport and data faults, these are not absorbed by retrying: a client can only bound them and fail
the one partition they hit, so `Faults.all_on()` leaves them off.
"""

import asyncio
import random
import zlib
from collections.abc import AsyncIterator
from email.utils import formatdate

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from fleetlake_provider.faults import Faults

ENDLESS_PARAM = "endless"
"""Query parameter of the pages of an endless chain: the page's number in the chain."""


def http_date(epoch_s: float, faults: Faults) -> str:
    """An HTTP date as the provider writes it: GMT, or RFC 5322's `-0000` under `date_minus_zero`."""
    return formatdate(epoch_s, usegmt=not faults.date_minus_zero)


def retry_after(seconds: float, now_s: float, faults: Faults) -> str:
    """A Retry-After value: delay-seconds, or the instant as an HTTP date under `retry_after_http_date`."""
    wait = max(1, round(seconds))
    return http_date(now_s + wait, faults) if faults.retry_after_http_date else str(wait)


def echo_credentials(request: Request) -> Response:
    """A 400 whose body repeats the request's credentials, as some gateways' error pages do."""
    headers = {k: v for k, v in request.headers.items() if k in ("authorization", "x-auth-token")}
    return PlainTextResponse(f"bad request {request.url}; request headers: {headers}", status_code=400)


def unusable_token(rnd: random.Random, token: str) -> Response:
    """A token reply a client cannot use: `expires_in` that is not a number, or no `access_token` at all."""
    if rnd.random() < 0.5:
        body: dict[str, object] = {"access_token": token, "expires_in": "soon", "token_type": "bearer"}
    else:
        body = {"expires_in": 900, "token_type": "bearer"}
    return Response(msgspec.json.encode(body), 200, media_type="application/json")


def endless_page(request: Request, response: Response) -> Response:
    """The page as served, its records emptied and its `links.next` pointing one step further, forever."""
    body = msgspec.json.decode(bytes(response.body))
    step = int(request.query_params.get(ENDLESS_PARAM, "0")) + 1
    if step > 1:
        body = {key: ([] if isinstance(value, list) else value) for key, value in body.items()}
    body["links"] = {"next": str(request.url.include_query_params(**{ENDLESS_PARAM: str(step)}))}
    return Response(msgspec.json.encode(body), 200, media_type=response.media_type)


def trickle(response: Response, every_s: float) -> Response:
    """The same body, one byte every `every_s` seconds."""
    body = bytes(response.body)

    async def bytes_slowly() -> AsyncIterator[bytes]:
        for i in range(len(body)):
            yield body[i : i + 1]
            await asyncio.sleep(every_s)

    return StreamingResponse(bytes_slowly(), 200, media_type=response.media_type)


def gzip_bomb(total_bytes: int, media_type: str | None) -> Response:
    """`total_bytes` of zeros, gzip-compressed on the fly (about 1,000:1), declared as `Content-Encoding: gzip`."""

    async def compressed() -> AsyncIterator[bytes]:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(1 << 20)
        left = total_bytes
        while left > 0:
            chunk = zeros[: min(left, len(zeros))]
            left -= len(chunk)
            yield compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
            await asyncio.sleep(0)
        yield compressor.flush()

    return StreamingResponse(compressed(), 200, headers={"Content-Encoding": "gzip"}, media_type=media_type)


def misbehave(request: Request, response: Response, faults: Faults, rnd: random.Random, paged: bool) -> Response:
    """The 200 response as a hostile provider would send it (unchanged unless a fault is drawn)."""
    if response.status_code != 200:
        return response
    if paged and (
        ENDLESS_PARAM in request.query_params
        or (faults.endless_paging_rate and rnd.random() < faults.endless_paging_rate)
    ):
        response = endless_page(request, response)
    if faults.gzip_bomb_rate and rnd.random() < faults.gzip_bomb_rate:
        return gzip_bomb(int(faults.gzip_bomb_bytes), response.media_type)
    if faults.trickle_rate and rnd.random() < faults.trickle_rate:
        return trickle(response, faults.trickle_seconds)
    return response
