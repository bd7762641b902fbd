"""The command line's progress bars: one look for every long step (snapshot jobs, ingestion, imports, builds)."""

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def bar_columns(*, remaining: bool = True) -> tuple[ProgressColumn, ...]:
    """The task's description, its bar, done of total, its detail field and the time taken; with `remaining`, the
    time left too (left out where a total is only an estimate and would make it jump)."""
    columns: tuple[ProgressColumn, ...] = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    return (*columns, TimeRemainingColumn()) if remaining else columns
