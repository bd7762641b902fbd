"""The `fleetlake` command line.

`fleetlake --help` and a command's start must not wait for what the command does not use: this module imports
only typer, rich and the standard library at its top, and each command imports its own machinery (Dagster,
Polars, the pipeline's settings, the report code) in its body. tests/test_cli_startup.py keeps it so.
"""

import importlib.util
import sys
import traceback
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from cli.errorlog import log_detail
from pipelines.reports.threshold import DEFAULT_K
from pipelines.scrub import scrub

if TYPE_CHECKING:
    from pipelines.config import Settings

app = typer.Typer(
    help="fleetlake: a micromobility data warehouse for the Voi partner APIs.",
    no_args_is_help=True,
    # Click's plain help and error texts: typer's rich formatting imports rich's Markdown, Syntax (pygments) and
    # Traceback first, which nearly doubled the CPU time of `fleetlake --help` (measured: 1.01 s against 0.59 s).
    rich_markup_mode=None,
)


def console() -> Console:
    """The console of this command's messages (stderr), made when the command runs: rich fixes a console's width
    from COLUMNS when it is made, so one made at import would keep the width of whoever imported the module first."""
    return Console(stderr=True)


INPUT_ERROR = 2
"""Exit code of a command refused before it started (bad option or setting); 1 is a run that failed."""


def fail(message: str, code: int = 1, detail: str | None = None) -> NoReturn:
    """One actionable line on the console, the detail (if any) in the log, a non-zero exit."""
    where = log_detail(detail) if detail else None
    suffix = f" (detail in {where})" if where else ""
    console().print(f"[red]error:[/] {scrub(message)}{suffix}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _utc(value: str, option: str = "--start") -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} takes a UTC time in ISO 8601, e.g. 2026-03-28 or 2026-03-28T06:00, not {value!r}", INPUT_ERROR)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _settings() -> "Settings":
    """The settings from the environment, read once and every one checked (a bad one names its variable)."""
    from cli.preflight import PreflightError, read_settings

    try:
        return read_settings()
    except PreflightError as e:
        fail(str(e), INPUT_ERROR)


SIMULATOR = "fleetlake_provider"
"""The embedded provider's package, of its own distribution (fleetlake-provider), which a production install leaves
out: the command line imports it only in the commands that start it."""


def require_simulator(command: str) -> None:
    """Stop with one clear line when the embedded provider is not installed, instead of an ImportError."""
    if importlib.util.find_spec(SIMULATOR) is None:
        fail(
            f"`fleetlake {command}` runs the embedded provider, the fleetlake-provider distribution, which is not "
            "installed here: in a clone of the repository `uv sync` installs it (pipelines/provider/), elsewhere "
            "`pip install fleetlake-provider`",
            INPUT_ERROR,
        )


@app.command(
    "provider",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def provider(ctx: typer.Context) -> None:
    """The embedded Voi provider: a simulated city served over HTTP (serve, truth; see `fleetlake provider --help`)."""
    require_simulator("provider")
    from fleetlake_provider.cli import app as provider_app

    provider_app(ctx.args, prog_name="fleetlake provider")


@app.command("demo")
def demo() -> None:
    """The main job against the embedded provider: backfill about 48 hours of 2 zones, snapshot, summarise."""
    require_simulator("demo")
    settings = _settings()  # first: the code location's modules read the settings when imported
    from cli.demo import run_demo

    if not run_demo(console(), settings):
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
    import asyncio

    from cli.preflight import PreflightError, check_provider

    settings = _settings()
    first, last = _utc(start, "--start"), _utc(end, "--end")
    if last <= first:
        fail(f"--end {end} is not after --start {start}", INPUT_ERROR)
    if zones:
        settings = settings.model_copy(update={"zones": tuple(z.strip() for z in zones.split(",") if z.strip())})
    try:
        ready = asyncio.run(check_provider(settings))
    except PreflightError as e:
        fail(str(e), detail=traceback.format_exc())
    ready_settings = settings.model_copy(update={"zones": ready.zones})
    # Dagster (seconds of imports) only once the provider has answered: a backfill's first request goes out at once.
    from cli.backfill import run_backfill

    if not run_backfill(ready_settings, first, last, console(), lead_in_hours=lead_in_hours):
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
    import asyncio

    settings = _settings()  # first: the code location's modules read the settings when imported
    from cli.snapshots import SNAPSHOT_DATASETS, print_snapshot_runs, take_snapshots
    from pipelines.voi.client import VoiClient

    chosen = tuple(d.strip() for d in (datasets or "").split(",") if d.strip()) or SNAPSHOT_DATASETS
    unknown = sorted(set(chosen) - set(SNAPSHOT_DATASETS))
    if unknown:
        raise typer.BadParameter(f"unknown dataset(s) {unknown}; the snapshot datasets are {list(SNAPSHOT_DATASETS)}")
    chosen_zones = tuple(z.strip() for z in (zones or "").split(",") if z.strip()) or settings.zones

    async def every_zone() -> tuple[str, ...]:
        async with VoiClient(settings) as client:
            return tuple(await client.zones())

    every = chosen_zones or asyncio.run(every_zone())
    if not print_snapshot_runs(take_snapshots(settings, every, chosen, console=console()), console()):
        raise typer.Exit(1)


@app.command("build")
def build_command(
    start: Annotated[
        str | None, typer.Option(help="First UTC hour to rebuild (ISO 8601); omit for a full build.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="End of the range, exclusive (ISO 8601).")] = None,
) -> None:
    """Rebuild the warehouse models only: all of them, or the incremental ones for a window of hours."""
    settings = _settings()  # first: the code location's modules read the settings when imported
    from cli.build import print_build

    if (start is None) != (end is None):
        fail("give both --start and --end, or neither for a full build", INPUT_ERROR)
    window = (_utc(start, "--start"), _utc(end, "--end")) if start and end else None
    if not any(settings.lake_dir.glob("*/zone_id=*")):
        fail(
            f"no lake at {settings.lake_dir} (FLEETLAKE_LAKE_DIR): nothing to build from; ingest first with "
            "`fleetlake backfill --start ... --end ...`"
        )
    if not print_build(settings, console(), window):
        raise typer.Exit(1)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on; the loopback interface unless you open it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
) -> None:
    """Serve the MDS Metrics API (GET/POST /metrics, GET /geographies) from the published warehouse."""
    from pipelines.metrics.service import MetricsService, serve

    settings = _settings()
    if not settings.warehouse.exists():
        fail(f"no warehouse at {settings.warehouse} (FLEETLAKE_WAREHOUSE): build one first with `fleetlake build`")
    try:
        service = MetricsService(
            settings.warehouse,
            settings.lake_dir,
            settings.metrics_jwt_secret.reveal(),
            settings.metrics_k,
            settings=settings,
        )
    except ValueError as error:
        fail(str(error), INPUT_ERROR)
    serve(
        service, host, port, lambda url: console().print(f"MDS Metrics API on {url}/metrics (k = {settings.metrics_k})")
    )


@app.command("reparse")
def reparse_command(
    dataset: Annotated[str, typer.Option(help="An hourly dataset: mds_trips or mds_events.")],
    zone: Annotated[str, typer.Option(help="Zone id.")],
    hour: Annotated[str, typer.Option(help="The UTC hour (ISO 8601).")],
) -> None:
    """Rebuild one lake partition from its kept raw response, without calling the provider (and the files imported
    archives wrote in the hour, from the pages each import kept)."""
    from pipelines.archives import reparse_imports
    from pipelines.ingest import reparse
    from pipelines.lake.store import Lake

    lake, at = Lake(_settings().lake_dir), _utc(hour, "--hour")
    try:
        imported = reparse_imports(lake, dataset, zone, at)
        results = [reparse(lake, dataset, zone, at)]
    except FileNotFoundError as e:
        if not imported:
            fail(f"cannot reparse {dataset} zone {zone} at {hour}: {e}", INPUT_ERROR)
        results = []
    except (KeyError, ValueError) as e:
        fail(f"cannot reparse {dataset} zone {zone} at {hour}: {e}", INPUT_ERROR)
    for result, what in [*((r, "delivery") for r in results), *((r, "import") for r in imported)]:
        console().print(
            f"{result.dataset} zone {result.zone_id} {result.hour:%Y-%m-%dT%H} ({what}): {result.rows} rows, "
            f"{result.quarantined} quarantined, {result.duplicates} duplicates dropped, "
            f"{result.conflicts} conflicting repeats resolved (the later copy kept)"
        )


@app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Archive files or folders (read recursively).", exists=True)],
    zone: Annotated[
        str | None, typer.Option(help="The zone of files whose records do not say it (MDS, GBFS 3.0, ...).")
    ] = None,
    mds_version: Annotated[
        str | None, typer.Option(help="MDS version (2.0, 1.2, 0.4) of files that do not say it.")
    ] = None,
    captured_at: Annotated[
        str | None, typer.Option(help="Capture time (ISO 8601) of snapshot files that say none (the zone API's).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset of bare record lists whose fields do not tell (e.g. mds_trips).")
    ] = None,
    complete_start: Annotated[
        str | None, typer.Option(help="First UTC hour the archive covers completely (with --complete-end).")
    ] = None,
    complete_end: Annotated[str | None, typer.Option(help="End of those hours, exclusive.")] = None,
) -> None:
    """Import archive files a city already has (MDS 2.0/1.2/0.4 responses or record files, GBFS snapshots of any
    version; JSON or JSON lines, gzip'd or not) into the lake, each record in its hour or snapshot by its own time,
    through the API path's validation, version mapping and quarantine; then `fleetlake build`.

    The import's hours count as delivered (coverage, warm-up) only within --complete-start..--complete-end, where
    an hour the archive has no record in is written empty, as an empty API hour. Where the lake holds an API
    delivery of an hour, both are kept and the newer delivery of a record wins (docs/operations.md).
    """
    from cli.archive_import import run_import
    from pipelines.archives import STATED_DATASETS, Stated
    from pipelines.lake.mds_versions import MDS_VERSIONS

    settings = _settings()
    if mds_version is not None and mds_version not in MDS_VERSIONS:
        fail(f"--mds-version takes {', '.join(MDS_VERSIONS)}, not {mds_version!r}", INPUT_ERROR)
    if dataset is not None and dataset not in STATED_DATASETS:
        fail(f"--dataset takes {', '.join(STATED_DATASETS)}, not {dataset!r}", INPUT_ERROR)
    if zone is not None:
        from pipelines.lake.store import check_zone_id

        try:
            check_zone_id(zone)
        except ValueError as e:
            fail(f"--zone: {e}", INPUT_ERROR)
    if (complete_start is None) != (complete_end is None):
        fail("give both --complete-start and --complete-end, or neither", INPUT_ERROR)
    complete = None
    if complete_start is not None and complete_end is not None:
        complete = (_utc(complete_start, "--complete-start"), _utc(complete_end, "--complete-end"))
        if any(t.minute or t.second or t.microsecond for t in complete):
            fail("--complete-start and --complete-end are whole UTC hours (an hour is complete or not)", INPUT_ERROR)
        if complete[1] <= complete[0]:
            fail(f"--complete-end {complete_end} is not after --complete-start {complete_start}", INPUT_ERROR)
    stated = Stated(
        zone=zone,
        mds_version=mds_version,  # checked against MDS_VERSIONS above
        captured_at=_utc(captured_at, "--captured-at") if captured_at else None,
        dataset=dataset,
    )
    if not run_import(settings, paths, stated, complete, console()):
        raise typer.Exit(1)


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
        files = export_report(
            settings.warehouse,
            zone,
            first,
            last,
            out or settings.reports_dir,
            k=k,
            h3_resolution=settings.report_h3_resolution,
        )
    except (UnknownZone, FileNotFoundError, ValueError) as e:
        console().print(f"[red]{e}[/]")
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


@app.command("purge-insurance")
def purge_insurance_command() -> None:
    """Remove the insurance trips past FLEETLAKE_INSURANCE_RETENTION_DAYS from their lake and warehouse now.

    Each insurance run purges as it goes; this is for a folder no run looks after any more (the trips switched off).
    """
    from datetime import timedelta

    from pipelines.insurance.area import ExposedInsuranceData, open_area
    from pipelines.insurance.purge import purge

    settings = _settings()
    try:
        area = open_area(settings.insurance_dir)
    except ExposedInsuranceData as e:
        fail(str(e))
    report = purge(area, timedelta(days=settings.insurance_retention_days))
    console().print(
        f"insurance trips ending before {report.cutoff:%Y-%m-%dT%H:%MZ} purged: {report.partitions} zone-hours, "
        f"{report.files} files; {report.trips_kept} trips kept in {area.warehouse}",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    # A .env in the working directory configures the command line as it configures `dagster dev`. Settings read it
    # themselves; it is loaded into the environment too for what reads the environment on its own: the embedded
    # provider's credentials and faults, and Dagster's DAGSTER_HOME.
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # the last resort: one line and the traceback in the log, never 80 lines
        where = log_detail(traceback.format_exc())
        console().print(
            f"[red]error:[/] {scrub(f'{type(e).__name__}: {e}')}" + (f" (detail in {where})" if where else ""),
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
