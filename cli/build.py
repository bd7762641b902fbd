"""Building the warehouse from the command line and saying what was built."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cli.bars import bar_columns
from pipelines.config import Settings
from pipelines.ingest import hours_between
from pipelines.warehouse.build import BuildProgress, ModelRun, Warehouse
from pipelines.warehouse.checks import CheckOutcome, run_checks
from pipelines.warehouse.window import FULL_WINDOW

if TYPE_CHECKING:  # Dagster loads only for a window build
    import dagster as dg


def runs_table(runs: list[ModelRun], title: str) -> Table:
    table = Table(title=title)
    for column in ("model", "relation", "mode", "rows", "seconds"):
        table.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
    for run in runs:
        rows = "" if run.rows is None else f"{run.rows:,}"
        table.add_row(run.name, run.relation, run.mode, rows, f"{run.seconds:.2f}")
    return table


def checks_table(outcomes: list[CheckOutcome]) -> Table:
    table = Table(title="Checks")
    for column in ("model", "check", "failing rows"):
        table.add_column(column, justify="right" if column == "failing rows" else "left")
    for outcome in outcomes:
        failing = f"{outcome.failures:,}" if outcome.passed else f"[red]{outcome.failures:,}[/]"
        table.add_row(f"{outcome.check.schema}.{outcome.check.model}", outcome.check.name, failing)
    return table


@contextmanager
def build_bar(console: Console) -> Iterator[Callable[[object], None]]:
    """A bar of the models built so far (the relation being built beside it); yields the listener to feed it."""
    with Progress(*bar_columns(remaining=False), console=console, transient=True) as bar:
        task = bar.add_task("warehouse build", total=None, detail="")

        def on_progress(event: object) -> None:
            if isinstance(event, BuildProgress):
                detail = f"{event.run.relation} ({event.run.mode})" if event.run else "starting"
                bar.update(task, completed=event.done, total=event.total, detail=detail)

        yield on_progress


def print_build(settings: Settings, console: Console, window: tuple[datetime, datetime] | None) -> bool:
    """A full build directly, or a window through Dagster (so it is recorded like a scheduled run)."""
    if window is None:
        warehouse = Warehouse(settings.warehouse, settings.lake_dir)
        with build_bar(console) as on_progress:
            runs = warehouse.build(on_progress=on_progress)
        console.print(runs_table(runs, f"Full build of {settings.warehouse}"))
        with warehouse.connect(read_only=True) as con:
            outcomes = run_checks(con, FULL_WINDOW)
        console.print(checks_table(outcomes))
        return all(outcome.passed for outcome in outcomes)
    from assets.launch import run_job

    hours = hours_between(*window)
    if not hours:
        console.print("[red]no whole hour starts in the window[/]")
        return False
    with build_bar(console) as on_progress:
        result = run_job("warehouse_job", settings, first_hour=hours[0], last_hour=hours[-1], on_progress=on_progress)
    status = "[green]done[/]" if result.success else "[red]failed[/]"
    console.print(f"{status}: run {result.run_id[:8]}, {len(hours)} hours rebuilt in {settings.warehouse}")
    if not result.success:
        from cli.backfill import print_failure

        print_failure(console, result, [])
    # A failed asset check does not fail the run (the models it checks are built all the same): say which failed.
    failed = [check for check in result.get_asset_check_evaluations() if not check.passed]
    if failed:
        console.print(failed_checks_table(failed))
    return result.success and not failed


def failed_checks_table(failed: list["dg.AssetCheckEvaluation"]) -> Table:
    table = Table(title="Failed checks")
    for column in ("model", "check", "failing rows"):
        table.add_column(column, justify="right" if column == "failing rows" else "left")
    for check in failed:
        rows = check.metadata.get("failing_rows")
        table.add_row(".".join(check.asset_key.path), check.check_name, f"[red]{rows.value if rows else '?'}[/]")
    return table
