"""The `fleetlake` command line."""

import asyncio
import contextlib
import sys
import traceback
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from dotenv import load_dotenv
from rich.console import Console

from fleetlake_provider.app import RATE_LIMIT_PER_MINUTE, ProviderApp
from fleetlake_provider.city import CATALOG, DEFAULT_ZONES
from fleetlake_provider.clock import AnchoredClock, Clock, WallClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.server import bind, serve_forever, url_of
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from fleetlake_provider.truth import write_truth
from pipelines.config import Settings
from pipelines.errorlog import log_detail
from pipelines.reports.privacy import DEFAULT_K
from pipelines.scrub import scrub

DEFAULT_ZONES_TEXT = ",".join(DEFAULT_ZONES)
app = typer.Typer(help="fleetlake: a micromobility data warehouse for the Voi partner APIs.", no_args_is_help=True)
provider_app = typer.Typer(help="The embedded Voi provider: a simulated city served over HTTP.", no_args_is_help=True)
app.add_typer(provider_app, name="provider")
console = Console(stderr=True)
INPUT_ERROR = 2
"""Exit code of a command refused before it started (bad option or setting); 1 is a run that failed."""


def fail(message: str, code: int = 1, detail: str | None = None) -> NoReturn:
    """One actionable line on the console, the detail (if any) in the log, a non-zero exit."""
    where = log_detail(detail) if detail else None
    suffix = f" (detail in {where})" if where else ""
    console.print(f"[red]error:[/] {scrub(message)}{suffix}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _utc(value: str, option: str = "--start") -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} takes a UTC time in ISO 8601, e.g. 2026-03-28 or 2026-03-28T06:00, not {value!r}", INPUT_ERROR)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _settings() -> Settings:
    """The settings from the environment, every numeric one checked (a bad one names its variable)."""
    from pipelines.preflight import PreflightError, check_settings

    try:
        check_settings()
    except PreflightError as e:
        fail(str(e), INPUT_ERROR)
    return Settings.from_env()


def _zones(value: str) -> tuple[str, ...]:
    zones = tuple(z.strip() for z in value.split(",") if z.strip())
    unknown = [z for z in zones if z not in CATALOG]
    if unknown:
        raise typer.BadParameter(f"unknown zone(s) {unknown}; the simulated cities are {sorted(CATALOG)}")
    return zones


Seed = Annotated[int, typer.Option(help="Seed of the simulation: the same seed gives the same city.")]
Vehicles = Annotated[int, typer.Option(help="Vehicles per zone.", min=1)]
Start = Annotated[
    str | None,
    typer.Option(help="First simulated UTC instant (ISO 8601); default: midnight UTC (days - 1) ago."),
]
Days = Annotated[int, typer.Option(help="Simulated days.", min=1)]
Zones = Annotated[str, typer.Option(help=f"Comma-separated zone ids, of {sorted(CATALOG)}.")]
FaultsOpt = Annotated[
    str,
    typer.Option(
        envvar="FLEETLAKE_PROVIDER_FAULTS",
        help="Faults to inject: 'all', or name=value pairs, e.g. server_error_rate=0.05,late_rate=0.02.",
    ),
]
ReadyDelay = Annotated[float, typer.Option(help="Seconds after an hour ends before it is served (202 until then).")]
ParkedDays = Annotated[
    float,
    typer.Option(
        help="Vehicles parked long before the first hour: each is dropped off up to this many days before --start "
        "(0: the fleet is deployed at --start).",
        min=0,
    ),
]
TimestampRounding = Annotated[
    int,
    typer.Option(
        help="Round every served time down to this many seconds, as real feeds do (1: whole seconds; 900: the "
        "15 minutes of published open data; it must divide an hour). 0 keeps milliseconds.",
        min=0,
        max=3600,
    ),
]


def _options(
    seed: int,
    vehicles: int,
    start: str | None,
    days: int,
    zones: str,
    faults: str = "",
    ready_delay: float = 600,
    parked_days: float = 0.0,
    timestamp_rounding: int = 0,
) -> ProviderOptions:
    try:
        parsed_faults = Faults.parse(faults)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if timestamp_rounding and 3600 % timestamp_rounding:
        raise typer.BadParameter(f"--timestamp-rounding must divide an hour (3600 s), not {timestamp_rounding}")
    return ProviderOptions(
        zones=_zones(zones),
        vehicles=vehicles,
        start=_utc(start) if start else None,
        days=days,
        seed=seed,
        ready_delay_s=ready_delay,
        faults=parsed_faults,
        parked_days=parked_days,
        timestamp_rounding_s=timestamp_rounding,
    )


@provider_app.command("serve")
def provider_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8400,
    seed: Seed = 7,
    vehicles: Vehicles = 300,
    start: Start = None,
    days: Days = 2,
    zones: Zones = DEFAULT_ZONES_TEXT,
    faults: FaultsOpt = "",
    ready_delay: ReadyDelay = 600.0,
    rate_limit: Annotated[int, typer.Option(help="Requests per minute before HTTP 429.")] = RATE_LIMIT_PER_MINUTE,
    now: Annotated[str | None, typer.Option(help="Pretend the current time is this instant (then it runs on).")] = None,
    parked_days: ParkedDays = 0.0,
    timestamp_rounding: TimestampRounding = 0,
) -> None:
    """Serve the simulated Voi API until interrupted; the first line printed is its base URL."""
    options = _options(
        seed, vehicles, start, days, zones, faults, ready_delay, parked_days, timestamp_rounding=timestamp_rounding
    )
    clock: Clock = AnchoredClock(_utc(now, "--now")) if now else WallClock()
    sock = bind(host, port)
    provider = SimulatedProvider(options, clock)
    print(url_of(sock), flush=True)
    console.print(
        f"serving zones {', '.join(options.zones)}: {options.vehicles} vehicles each, "
        f"{provider.config.start:%Y-%m-%d %H:%M}Z + {options.days} days, seed {options.seed}"
        + (f", faults {faults}" if options.faults.any else "")
        + (f", times rounded to {timestamp_rounding} s" if timestamp_rounding else "")
    )
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(ProviderApp(provider, rate_limit_per_minute=rate_limit), sock)


@provider_app.command("truth")
def provider_truth(
    out: Annotated[Path, typer.Option(help="Folder to write the Parquet files into.")],
    seed: Seed = 7,
    vehicles: Vehicles = 300,
    start: Start = None,
    days: Days = 2,
    zones: Zones = DEFAULT_ZONES_TEXT,
    parked_days: ParkedDays = 0.0,
    timestamp_rounding: TimestampRounding = 0,
) -> None:
    """Write the simulated city's ground truth (trips, events, per-vehicle state timeline) as Parquet."""
    options = _options(
        seed, vehicles, start, days, zones, parked_days=parked_days, timestamp_rounding=timestamp_rounding
    )
    provider = SimulatedProvider(options)
    for name, path in write_truth(provider, out).items():
        console.print(f"{name:>15}: {path}")


@app.command("demo")
def demo() -> None:
    """The main job against the embedded provider: backfill about 48 hours of 2 zones, snapshot, summarise."""
    from pipelines.demo import run_demo

    if not run_demo(console):
        raise typer.Exit(1)


@app.command("backfill")
def backfill(
    start: Annotated[str, typer.Option(help="First UTC hour to ingest (ISO 8601).")],
    end: Annotated[str, typer.Option(help="End of the range, exclusive (ISO 8601).")],
    zones: Annotated[str | None, typer.Option(help="Comma-separated zone ids; default FLEETLAKE_ZONES or all.")] = None,
    lead_in_hours: Annotated[
        int | None,
        typer.Option(
            help="Hours read before --start, so vehicles parked since before it are known; default "
            "FLEETLAKE_LEAD_IN_HOURS (48). 0: none.",
            min=0,
        ),
    ] = None,
) -> None:
    """Ingest MDS trips and events for every hour in [start, end), after a lead-in, as one Dagster run with a
    progress bar; zone, GBFS and MDS vehicle snapshots are taken first for a zone the lake has none of."""
    from pipelines.backfill import run_backfill
    from pipelines.preflight import PreflightError, check_provider

    settings = _settings()
    first, last = _utc(start, "--start"), _utc(end, "--end")
    if last <= first:
        fail(f"--end {end} is not after --start {start}", INPUT_ERROR)
    if zones:
        settings = replace(settings, zones=tuple(z.strip() for z in zones.split(",") if z.strip()))
    try:
        ready = asyncio.run(check_provider(settings))
    except PreflightError as e:
        fail(str(e), detail=traceback.format_exc())
    if not run_backfill(replace(settings, zones=ready.zones), first, last, console, lead_in_hours=lead_in_hours):
        raise typer.Exit(1)


@app.command("snapshot")
def snapshot_command(
    zones: Annotated[str | None, typer.Option(help="Comma-separated zone ids; default FLEETLAKE_ZONES or all.")] = None,
    datasets: Annotated[
        str | None,
        typer.Option(help="Comma-separated snapshot datasets (e.g. zone_areas,gbfs_vehicle_types); default all."),
    ] = None,
) -> None:
    """Take the zone, GBFS and MDS vehicle snapshots now (each of its Dagster jobs concerned, one run each)."""
    from pipelines.snapshots import SNAPSHOT_DATASETS, print_snapshot_runs, take_snapshots
    from pipelines.voi.client import VoiClient

    settings = _settings()
    chosen = tuple(d.strip() for d in (datasets or "").split(",") if d.strip()) or SNAPSHOT_DATASETS
    unknown = sorted(set(chosen) - set(SNAPSHOT_DATASETS))
    if unknown:
        raise typer.BadParameter(f"unknown dataset(s) {unknown}; the snapshot datasets are {list(SNAPSHOT_DATASETS)}")
    chosen_zones = tuple(z.strip() for z in (zones or "").split(",") if z.strip()) or settings.zones

    async def every_zone() -> tuple[str, ...]:
        async with VoiClient(settings) as client:
            return tuple(await client.zones())

    if not print_snapshot_runs(take_snapshots(settings, chosen_zones or asyncio.run(every_zone()), chosen), console):
        raise typer.Exit(1)


@app.command("build")
def build_command(
    start: Annotated[
        str | None, typer.Option(help="First UTC hour to rebuild (ISO 8601); omit for a full build.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="End of the range, exclusive (ISO 8601).")] = None,
) -> None:
    """Rebuild the warehouse models only: all of them, or the incremental ones for a window of hours."""
    from pipelines.warehouse.report import print_build

    settings = _settings()
    if (start is None) != (end is None):
        fail("give both --start and --end, or neither for a full build", INPUT_ERROR)
    window = (_utc(start, "--start"), _utc(end, "--end")) if start and end else None
    if not any(settings.lake_dir.glob("*/zone_id=*")):
        fail(
            f"no lake at {settings.lake_dir} (FLEETLAKE_LAKE_DIR): nothing to build from; ingest first with "
            "`fleetlake backfill --start ... --end ...`"
        )
    if not print_build(settings, console, window):
        raise typer.Exit(1)


@app.command("reparse")
def reparse_command(
    dataset: Annotated[str, typer.Option(help="An hourly dataset: mds_trips or mds_events.")],
    zone: Annotated[str, typer.Option(help="Zone id.")],
    hour: Annotated[str, typer.Option(help="The UTC hour (ISO 8601).")],
) -> None:
    """Rebuild one lake partition from its kept raw response, without calling the provider."""
    from pipelines.ingest import reparse
    from pipelines.lake.store import Lake

    try:
        result = reparse(Lake(_settings().lake_dir), dataset, zone, _utc(hour, "--hour"))
    except (FileNotFoundError, KeyError, ValueError) as e:
        fail(f"cannot reparse {dataset} zone {zone} at {hour}: {e}", INPUT_ERROR)
    console.print(
        f"{result.dataset} zone {result.zone_id} {result.hour:%Y-%m-%dT%H}: {result.rows} rows, "
        f"{result.quarantined} quarantined, {result.duplicates} duplicates dropped, "
        f"{result.conflicts} conflicting repeats resolved (the later copy kept)"
    )


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise typer.BadParameter(f"{option} takes a date, YYYY-MM-DD, not {value!r}") from e


@app.command("export")
def export_command(
    zone: Annotated[str, typer.Option(help="The zone (city) to report on, e.g. 1.")],
    start: Annotated[
        str | None, typer.Option(help="First local day, YYYY-MM-DD; default: the first day of last month.")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last local day, included, YYYY-MM-DD; default: the last day of last month.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write into; default FLEETLAKE_REPORTS_DIR.")] = None,
    k: Annotated[int, typer.Option(help="Counts from 1 to k-1 are suppressed (MDS uses 10).", min=1)] = DEFAULT_K,
) -> None:
    """Write a city report from the warehouse: an HTML page, an XLSX workbook, CSV, Parquet and GeoJSON.

    Days are the city's local days, --start and --end both included: --start 2026-03-01 --end 2026-03-31 is March.
    """
    from pipelines.reports.city import UnknownZone
    from pipelines.reports.export import export_report
    from pipelines.reports.period import previous_month

    settings = _settings()
    if (start is None) != (end is None):
        raise typer.BadParameter("give both --start and --end, or neither for last month")
    first, last = (
        (_day(start, "--start"), _day(end, "--end")) if start and end else previous_month(datetime.now(UTC).date())
    )
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}")
    try:
        files = export_report(settings.warehouse, zone, first, last, out or settings.reports_dir, k=k)
    except (UnknownZone, FileNotFoundError, ValueError) as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(1) from e
    stdout = Console(soft_wrap=True, highlight=False)
    stdout.print(f"[bold]{files.city}[/] (zone {zone}), {first} to {last}, local time {files.timezone}")
    stdout.print(f"  suppressed values: {files.suppressed_cells}, map cells left out: {files.cells_left_out} (k={k})")
    lines = {
        "workbook": str(files.xlsx),
        "tables": f"{files.folder / 'csv'}, {files.folder / 'parquet'}",
        **{name: str(path) for name, path in files.geojson.items()},
        "html": str(files.html),
    }
    width = max(len(name) for name in lines) + 2
    for name, text in lines.items():
        stdout.print(f"  {name + ':':<{width}}{text}")


def main() -> None:
    # A .env in the working directory configures the command line as it configures `dagster dev`.
    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # the last resort: one line and the traceback in the log, never 80 lines
        where = log_detail(traceback.format_exc())
        console.print(
            f"[red]error:[/] {scrub(f'{type(e).__name__}: {e}')}" + (f" (detail in {where})" if where else ""),
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
