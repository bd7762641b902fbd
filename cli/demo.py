"""`make demo`: the main job against the embedded provider, with nothing to configure.

Starts the simulated city on a free loopback port, points the configuration at it, takes the zone, GBFS and
vehicle snapshots, backfills about 48 hours of two zones through Dagster (ingestion, then the warehouse models
downstream of it), prints what landed where, and ends with each city's report over the local days the demo spans.
"""

import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from cli.backfill import run_backfill
from cli.snapshots import print_snapshot_runs, take_snapshots
from fleetlake_provider.app import Credentials, ProviderApp
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from pipelines.config import Settings
from pipelines.lake.store import Lake
from pipelines.lake.summary import summarize
from pipelines.reports.city import timezone_of
from pipelines.reports.export import export_report
from pipelines.warehouse.connection import connect

DEMO_HOURS = 48


def run_demo(console: Console, base: Settings) -> bool:
    """`base`: the settings from the environment; the demo keeps their folders, limits and warehouse settings and
    points the API at its own provider."""
    now = datetime.now(UTC)
    # Simulate from the midnight before the demo window to the end of today.
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=DEMO_HOURS)
    start = first_hour.replace(hour=0)
    options = ProviderOptions(start=start, days=(now - start).days + 1)
    with console.status("simulating the demo cities..."):
        provider = SimulatedProvider(options)
    credentials = Credentials()
    with running(ProviderApp(provider, credentials)) as url:
        embedded = {"api_base_url": url, "maas_base_url": url, "client_id": credentials.client_id}
        settings = base.model_copy(update={**embedded, "zones": options.zones})
        console.print(
            f"embedded Voi provider at [bold]{url}[/]: zones {', '.join(options.zones)}, "
            f"{options.vehicles} vehicles each, simulated from {start:%Y-%m-%d %H:%M}Z"
        )
        # Zones, vehicles and systems first: the warehouse models built with the backfill read them.
        ok = print_snapshot_runs(take_snapshots(settings, options.zones, console=console), console)
        # The newest hour the provider has published (it holds each hour back for ready_delay_s).
        last_ready = (now - timedelta(seconds=options.ready_delay_s)).replace(minute=0, second=0, microsecond=0)
        ok = run_backfill(settings, first_hour, last_ready, console) and ok
    table = Table(title=f"The lake at {settings.lake_dir.resolve()}")
    for column in ("dataset", "zones", "files", "rows", "quarantined", "bytes"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for s in summarize(Lake(settings.lake_dir)):
        table.add_row(s.dataset, str(s.zones), f"{s.files:,}", f"{s.rows:,}", f"{s.quarantined:,}", f"{s.bytes:,}")
    Console().print(table)
    with connect(settings.warehouse, settings.lake_dir) as con:
        marts = con.execute(
            "select table_name, estimated_size::varchar from duckdb_tables() where schema_name = 'main' "
            "union all select view_name, 'view' from duckdb_views() where schema_name = 'main' and not internal "
            "order by 1"
        ).fetchall()
        timezones = {zone: ZoneInfo(timezone_of(con, zone)) for zone in options.zones}
    warehouse = Table(title=f"The warehouse at {settings.warehouse.resolve()} (duckdb -readonly)")
    warehouse.add_column("mart")
    warehouse.add_column("rows", justify="right")
    for name, rows in marts:  # a view's rows are computed when read
        warehouse.add_row(name, rows if rows == "view" else f"{int(rows):,}")
    Console().print(warehouse)
    for zone, tz in timezones.items():
        # The local days the backfilled window touches, in the city's own calendar.
        first_day = first_hour.astimezone(tz).date()
        last_day = (last_ready - timedelta(microseconds=1)).astimezone(tz).date()
        files = export_report(
            settings.warehouse,
            zone,
            first_day,
            last_day,
            settings.reports_dir,
            h3_resolution=settings.report_h3_resolution,
        )
        Console(soft_wrap=True, highlight=False).print(
            f"city report, [bold]{files.city}[/] (zone {zone}), {first_day} to {last_day}: {files.html.resolve()}"
        )
    print_metrics_token(base)
    return ok


def print_metrics_token(base: Settings) -> None:
    """How to serve the MDS Metrics API over the demo's warehouse, with a token that reads it (a key is made up
    when none is configured: the demo's warehouse holds only simulated data)."""
    from pipelines.metrics.service import issue_token

    secret = base.metrics_jwt_secret.reveal()
    serve = "fleetlake serve"
    if not secret:
        secret = secrets.token_urlsafe(32)
        serve = f"FLEETLAKE_METRICS_JWT_SECRET={secret} fleetlake serve"
    Console(soft_wrap=True, highlight=False).print(
        f"MDS Metrics API: run [bold]{serve}[/], then e.g. curl -H 'Authorization: Bearer "
        f"{issue_token(secret)}' http://127.0.0.1:8090/metrics"
    )
