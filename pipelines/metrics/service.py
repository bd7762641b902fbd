"""The MDS Metrics API over HTTP (Starlette): discovery, queries and the geographies they name.

Each request opens the published warehouse read-only and closes it when answered: a build publishes by renaming a
new file over the old one (pipelines/warehouse/publish.py), so the next request reads the new build and no reader
ever holds up a build. Every /metrics request needs a bearer JWT (HS256, signed with the configured key, with an
expiry) whose `scope` holds `metrics:read` (every provider) or `metrics:read:provider` (only the provider its
`provider_id` claim names); the geographies are public, as MDS Geography says.
"""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.config import Settings
from pipelines.metrics.deliveries import missing_hours
from pipelines.metrics.geographies import Geography, geographies
from pipelines.metrics.intervals import INTERVALS, formatted
from pipelines.metrics.measures import MEASURES, Measure
from pipelines.metrics.query import (
    DIMENSIONS,
    FILTERS,
    MAX_INTERVALS,
    Answer,
    QueryError,
    parse_query,
    selected_geographies,
)
from pipelines.warehouse.build import Warehouse

UTC_ZONE = ZoneInfo("UTC")
READ_ALL = "metrics:read"
READ_PROVIDER = "metrics:read:provider"
ALGORITHM = "HS256"
MDS_VERSION = "2.0.0"
MIN_KEY_BYTES = 32


class Unauthorized(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Grant:
    """What a token allows: every provider (None) or one."""

    provider_id: str | None


def issue_token(
    secret: str, scope: str = READ_ALL, provider_id: str | None = None, lifetime: timedelta = timedelta(days=30)
) -> str:
    """A token for the API (what `fleetlake demo` prints; an agency issues its own the same way)."""
    claims: dict[str, Any] = {"scope": scope, "exp": datetime.now(UTC) + lifetime, "iat": datetime.now(UTC)}
    if provider_id is not None:
        claims["provider_id"] = provider_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def authorize(header: str | None, secret: str) -> Grant:
    """The grant of a request's bearer token; Unauthorized (401: no or bad token, 403: no metrics scope)."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized(401, "a bearer token is required (Authorization: Bearer <JWT>)")
    try:
        claims = jwt.decode(
            header.removeprefix("Bearer ").strip(), secret, algorithms=[ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.PyJWTError as error:
        raise Unauthorized(401, f"invalid token: {error}") from None
    raw = claims.get("scope", "")
    scopes = set(raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else [])
    if READ_ALL in scopes:
        return Grant(None)
    if READ_PROVIDER in scopes:
        provider = claims.get("provider_id")
        if not isinstance(provider, str) or not provider:
            raise Unauthorized(403, f"a {READ_PROVIDER} token needs a provider_id claim")
        return Grant(provider)
    raise Unauthorized(403, f"the token's scope has neither {READ_ALL} nor {READ_PROVIDER}")


def _error(status: int, error: str, description: str, details: list[str]) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description, "error_details": details}, status)


class MetricsService:
    """The API over one published warehouse file."""

    def __init__(
        self,
        warehouse: Path,
        lake_dir: Path | str,
        secret: str,
        k: int,
        max_intervals: int = MAX_INTERVALS,
        settings: Settings | None = None,
    ) -> None:
        if len(secret.encode()) < MIN_KEY_BYTES:
            raise ValueError(
                f"the Metrics API needs a token key of at least {MIN_KEY_BYTES} bytes (RFC 7518 for HS256): "
                "set FLEETLAKE_METRICS_JWT_SECRET"
            )
        self.warehouse = Warehouse(warehouse, lake_dir, settings=settings or Settings())
        # The geographies of the file last read, by its identity: a build publishes a new file (a new inode).
        self._geographies: tuple[tuple[int, int], list[Geography]] | None = None
        self.secret = secret
        self.k = k
        self.max_intervals = max_intervals

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.warehouse.path.exists():
            raise FileNotFoundError(self.warehouse.path)
        con = self.warehouse.connect(read_only=True)
        try:
            yield con
        finally:
            con.close()

    @staticmethod
    def _horizons(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[datetime, datetime]]:
        rows = con.sql("select zone_id, first_hour, horizon from core.int_zone_horizons").fetchall()
        return {zone: (first, horizon) for zone, first, horizon in rows}

    def discovery(self) -> dict[str, Any] | None:
        with self._connection() as con:
            horizons = self._horizons(con)
        if not horizons:
            return None
        since = min(first for first, _ in horizons.values())
        families: dict[str, list[Measure]] = {}
        for measure in MEASURES.values():
            families.setdefault(measure.family, []).append(measure)
        return {
            "metrics": [
                {
                    "measures": [measure.name for measure in measures],
                    "since": formatted(since, UTC_ZONE, numeric=False),
                    "intervals": list(INTERVALS),
                }
                for measures in families.values()
            ],
            "max_intervals": self.max_intervals,
            "dimensions": list(DIMENSIONS),
            "filters": list(FILTERS),
        }

    def query(self, body: object, grant: Grant) -> dict[str, Any]:
        """The answer to a query as Python objects (what its JSON body reads as)."""
        answer: dict[str, Any] = json.loads(self.query_json(body, grant)[1])
        return answer

    def query_json(self, body: object, grant: Grant) -> tuple[int, bytes]:
        """How many rows the answer to a query has, and its JSON body."""
        query = parse_query(body, self.max_intervals)
        if grant.provider_id is not None:
            asked = query.filters.get("provider_id")
            if asked is not None and set(asked) != {grant.provider_id}:
                raise QueryError("filters", "this token reads only its own provider's metrics", status=403)
            query.filters["provider_id"] = (grant.provider_id,)
        with self._connection() as con:
            chosen = selected_geographies(query, self._geographies_of(con))
            missing = missing_hours(con, query.spans[0].start, query.spans[-1].end) if query.spans else {}
            return Answer(con, query, chosen, self.k, self._horizons(con), missing).response_json()

    def _geographies_of(self, con: duckdb.DuckDBPyConnection) -> list[Geography]:
        """The geographies of the published file `con` reads, read once per published build."""
        stat = self.warehouse.path.stat()
        identity = (stat.st_ino, stat.st_mtime_ns)
        cached = self._geographies
        if cached is None or cached[0] != identity:
            cached = (identity, geographies(con))
            self._geographies = cached
        return cached[1]

    def geographies(self) -> list[Geography]:
        with self._connection() as con:
            return self._geographies_of(con)


def create_app(service: MetricsService) -> Starlette:
    """The HTTP application of `fleetlake serve`."""

    async def discovery(request: Request) -> JSONResponse:
        try:
            authorize(request.headers.get("authorization"), service.secret)
        except Unauthorized as refusal:
            return _error(refusal.status, "unauthorized", refusal.message, ["Authorization"])
        found = await run_in_threadpool(service.discovery)
        if found is None:
            return _error(404, "not_found", "the warehouse holds no MDS data yet", ["metrics"])
        return JSONResponse(found)

    async def query(request: Request) -> Response:
        try:
            grant = authorize(request.headers.get("authorization"), service.secret)
        except Unauthorized as refusal:
            return _error(refusal.status, "unauthorized", refusal.message, ["Authorization"])
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "bad_param", "the body is not JSON", ["body"])
        try:
            rows, answer = await run_in_threadpool(service.query_json, body, grant)
        except QueryError as refusal:
            kind = "bad_param" if refusal.status == 400 else "forbidden"
            return JSONResponse(
                {
                    "error": kind,
                    "error_description": refusal.message,
                    "error_details": [refusal.field],
                    "item": refusal.field,
                },
                refusal.status,
            )
        if not rows:
            return _error(404, "not_found", "no whole interval of the query lies within the data", ["start_date"])
        return Response(answer, media_type=JSONResponse.media_type)

    def _envelope() -> dict[str, Any]:
        return {"version": MDS_VERSION, "last_updated": int(time.time() * 1000)}

    async def all_geographies(request: Request) -> JSONResponse:
        found = await run_in_threadpool(service.geographies)
        return JSONResponse({**_envelope(), "geographies": [geography.as_mds() for geography in found]})

    async def one_geography(request: Request) -> JSONResponse:
        wanted = request.path_params["geography_id"]
        found = await run_in_threadpool(service.geographies)
        for geography in found:
            if geography.geography_id == wanted:
                return JSONResponse({"version": MDS_VERSION, "geography": geography.as_mds()})
        return _error(404, "not_found", f"no geography {wanted}", ["geography_id"])

    return Starlette(
        routes=[
            Route("/metrics", discovery, methods=["GET"]),
            Route("/metrics", query, methods=["POST"]),
            Route("/geographies", all_geographies, methods=["GET"]),
            Route("/geographies/{geography_id}", one_geography, methods=["GET"]),
        ]
    )


def _bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening before the server starts: its real port is known (port 0: a
    free one), and a client told that port early waits in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(socket.SOMAXCONN)
    return sock


@contextmanager
def running(service: MetricsService, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the API on a background thread for the duration of the block; yields its base URL (port 0: a free
    one)."""
    sock = _bound_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="metrics-api")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Metrics API did not start")
        time.sleep(0.01)
    try:
        bound_host, bound_port = sock.getsockname()[:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(service: MetricsService, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve the API until interrupted (`fleetlake serve`). The socket is bound before `announce` is told the
    base URL, so the URL names the port really listened on (`--port 0` asks the system for a free one)."""
    sock = _bound_socket(host, port)
    announce(f"http://{host}:{sock.getsockname()[1]}")
    with sock:
        uvicorn.Server(uvicorn.Config(create_app(service), log_level="info")).run(sockets=[sock])
