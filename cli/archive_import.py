"""`fleetlake import`: archive files into the lake, with a progress bar and a summary of what landed where."""

from collections import Counter
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cli.bars import bar_columns
from pipelines.archives import FileDone, ImportReport, Stated, archive_files, import_archives
from pipelines.config import Settings
from pipelines.lake.store import Lake

MOST_REASONS = 3
"""Quarantine reasons printed per dataset (the quarantine and the import's manifest hold them all)."""
MOST_PATHS = 3


def run_import(
    settings: Settings,
    paths: list[Path],
    stated: Stated,
    complete: tuple[datetime, datetime] | None,
    console: Console,
) -> bool:
    """Import, showing progress; print the summary. False when a file failed (a skipped one is not a failure)."""
    files = archive_files(paths)
    counts = Counter[str]()
    with Progress(*bar_columns(), console=console, transient=False) as bar:
        task = bar.add_task(f"importing {len(files)} files", total=len(files), detail="")

        def on_file(done: FileDone) -> None:
            counts["records"] += done.received
            counts["rows"] += done.rows
            counts["quarantined"] += done.quarantined
            counts[done.label if done.label in {"skipped", "failed"} else "read"] += 1
            bar.update(
                task,
                advance=1,
                detail=f"{counts['rows']:,} rows, {counts['quarantined']:,} quarantined, "
                f"{counts['skipped']} skipped, {counts['failed']} failed",
            )

        report = import_archives(Lake(settings.lake_dir), paths, stated, complete, on_file=on_file, files=files)
    print_summary(report, settings, console)
    return not report.failed


def print_summary(report: ImportReport, settings: Settings, console: Console) -> None:
    table = Table(title=f"imported into {settings.lake_dir}", title_justify="left")
    for name in ("dataset", "files", "records", "landed", "repeated", "quarantined", "hours / snapshots", "zones"):
        table.add_column(name, justify="left" if name in {"dataset", "zones"} else "right")
    for name, t in sorted(report.datasets.items()):
        zones = sorted({z for z, _ in t.hours | t.snapshots})
        where = f"{len(t.hours)} h" if t.hours else f"{len(t.snapshots)} snapshots"
        table.add_row(
            name,
            str(len(t.files)),
            f"{t.received:,}",
            f"{t.rows:,}",
            f"{t.duplicates:,} dup, {t.conflicts:,} conflicting" if t.duplicates or t.conflicts else "0",
            f"{t.quarantined:,}",
            where,
            ", ".join(zones[:6]) + (" ..." if len(zones) > 6 else ""),
        )
    console.print(table)
    for name, t in sorted(report.datasets.items()):
        for reason, n in t.reasons.most_common(MOST_REASONS):
            console.print(f"  {name}: {n:,} quarantined: {reason}", highlight=False, soft_wrap=True)
        if len(t.reasons) > MOST_REASONS:
            console.print(f"  {name}: {len(t.reasons) - MOST_REASONS} other reasons (in the quarantine)")
    if report.complete_hours:
        console.print(f"{report.complete_hours} complete hours the archive had no record in: written empty")
    for title, items in (("skipped", report.skipped), ("[red]failed[/]", report.failed)):
        by_reason: dict[str, list[Path]] = {}
        for path, reason in items:
            by_reason.setdefault(reason, []).append(path)
        for reason, paths in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(str(p) for p in paths[:MOST_PATHS]) + (" ..." if len(paths) > MOST_PATHS else "")
            console.print(f"{title} {len(paths)} file(s): {reason} ({shown})", highlight=False, soft_wrap=True)
    console.print(f"manifest: {report.manifest}", highlight=False, soft_wrap=True)
    window = report.window
    if window is not None:
        console.print(
            f"build the warehouse for the imported hours: fleetlake build --start {window[0]:%Y-%m-%dT%H:%M}Z "
            f"--end {window[1]:%Y-%m-%dT%H:%M}Z (a full build: fleetlake build)",
            highlight=False,
            soft_wrap=True,
        )
    elif report.datasets:
        console.print("build the warehouse: fleetlake build", highlight=False)
