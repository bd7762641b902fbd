"""`make demo`: the main job against the embedded provider, with nothing to configure."""

import asyncio
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from pipelines.config import Settings
from pipelines.provider.app import Credentials, ProviderApp
from pipelines.provider.server import running
from pipelines.provider.service import GBFS_FEEDS, ProviderOptions, SimulatedProvider
from pipelines.voi.client import Page, VoiClient

RECORD_KEYS = ("trips", "events", "vehicles", "vehicles_status")


def _count(payload: object) -> int:
    """Records in a payload, whatever its envelope (MDS list, GBFS data, zone API data)."""
    if not isinstance(payload, dict):
        return 0
    for key in RECORD_KEYS:
        if isinstance(payload.get(key), list):
            return len(payload[key])
    data = payload.get("data")
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if "geofencing_zones" in data:
            return len(data["geofencing_zones"]["features"])
        if "attributes" in data:
            return len(next(iter(data["attributes"].values())))
        return len(lists[0]) if len(lists) == 1 else 1
    return 0


async def fetch_everything(settings: Settings, hour: datetime) -> list[tuple[str, str, list[Page]]]:
    """Every endpoint the warehouse ingests, once per zone."""
    async with VoiClient(settings) as client:
        zones = await client.zones()
        jobs: list[tuple[str, str, asyncio.Future[list[Page]]]] = []

        def add(zone: str, name: str, coro: object) -> None:
            jobs.append((zone, name, asyncio.ensure_future(coro)))  # type: ignore[call-overload]

        async def one(page: asyncio.Future[Page] | object) -> list[Page]:
            return [await page]  # type: ignore[misc]

        add("-", "zone/info", one(client.zone_info()))
        for zone in zones:
            add(zone, f"mds/trips?end_time={hour:%Y-%m-%dT%H}", client.mds_trips(zone, hour))
            add(
                zone,
                f"mds/events/historical?event_time={hour:%Y-%m-%dT%H}",
                client.mds_events_historical(zone, hour),
            )
            add(
                zone,
                "mds/events/recent (last hour)",
                client.mds_events_recent(zone, hour, hour + timedelta(hours=1)),
            )
            add(zone, "mds/vehicles", client.mds_vehicles(zone))
            add(zone, "mds/vehicles/status", client.mds_vehicles_status(zone))
            for feed in GBFS_FEEDS:
                add(zone, f"gbfs/{feed}.json", one(client.gbfs(zone, feed)))
            add(zone, "zone/areas (v2)", one(client.zone_areas(zone)))
            add(zone, "zone/areasOccupancy", one(client.areas_occupancy(zone)))
        return [(zone, name, await job) for zone, name, job in jobs]


def run_demo(console: Console) -> None:
    now = datetime.now(UTC)
    options = ProviderOptions()
    with console.status("simulating the demo cities..."):
        provider = SimulatedProvider(options)
    credentials = Credentials()
    with running(ProviderApp(provider, credentials)) as url:
        console.print(f"embedded Voi provider at [bold]{url}[/] (zones {', '.join(options.zones)})")
        settings = Settings(api_base_url=url, maas_base_url=url)
        last_ready = (now - timedelta(seconds=options.ready_delay_s)).replace(minute=0, second=0, microsecond=0)
        results = asyncio.run(fetch_everything(settings, last_ready - timedelta(hours=1)))
    table = Table(title="One fetch of every endpoint")
    for column in ("zone", "endpoint", "pages", "records", "bytes"):
        table.add_column(column, justify="right" if column in ("pages", "records", "bytes") else "left")
    for zone, name, pages in results:
        table.add_row(
            zone,
            name,
            str(len(pages)),
            f"{sum(_count(p.payload) for p in pages):,}",
            f"{sum(len(p.body) for p in pages):,}",
        )
    Console().print(table)
