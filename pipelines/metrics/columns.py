"""A measure's values for every row of an answer at once, from the table of what the pieces say of each row.

An answer of a month by hour and area has some 16,000 rows: working each value out in Python, row by row, cost as
much CPU as the SQL that reads the pieces. Here each measure is one Polars expression over the row table's columns,
each value is written as JSON text by Polars too (as an MDS row wants it: a count of fewer than k trips as -1, a
value not known as ""): the rows are never Python objects.

The row table has one row per answer row (interval and dimension values) and these columns, each null where the
pieces say nothing of the row:
- `span_seconds`, `span_quarters`, `span_subs`: the interval's length, its quarters and its shorter intervals;
- per vehicle state s (`piece("seconds", s)` and so on): `seconds`, `fewest`, `most`, `rows` (quarters with a piece),
  `several` (whether several stored series feed the row), `least_average`, `most_average`, `subs` (shorter intervals
  with a piece);
- per event type: `events`; per trip location: `trips`, `duration_n`, `duration_sum`, `duration_sq`, `distance_n`,
  `distance_sum`, `distance_sq`, `duration_median`, `distance_median`;
- `active_seconds`: the deployed seconds of the vehicles on a trip at some time of the interval;
- `undelivered`: whether a zone the row reads has not delivered the whole interval (it lags behind another zone, the
  interval straddles its first or last delivered hour, or overlaps an hour it never delivered in between): every
  measure of the row is then not known, as a figure of part of an interval would understate it.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pipelines.metrics.measures import Measure

NOT_KNOWN = ""  # what a row holds where a value is not known (an average of no trips): MDS rows take no null
REDACTED = -1  # what a row holds for a count of fewer than k trips (MDS metrics/README.md, Data Redaction)
ACTIVE_SECONDS = "active_seconds"
UNDELIVERED = "undelivered"


def piece(name: str, subject: str) -> str:
    """The row table's column of `name` for one state, event type or trip location."""
    return f"{name}|{subject}"


def _filled(name: str, subject: str, default: float) -> pl.Expr:
    return pl.col(piece(name, subject)).fill_null(default)


@dataclass(frozen=True)
class MeasureColumn:
    """How a measure is worked out: its values (null where not known), and which rows are redacted."""

    values: pl.Expr
    redacted: pl.Expr | None = None
    # Rows whose value would be the minimum or maximum of a sum of several series (which it is not): refused.
    several: pl.Expr | None = None
    # A standard deviation's mean: `values` is then the mean square, and the root is taken in Python (below).
    mean: pl.Expr | None = None


def _trip_column(measure: Measure, k: int) -> MeasureColumn:
    kind, subject = measure.kind, measure.subject
    location = "start" if kind == "trips_per_vehicle.avg" else subject
    count = _filled("trips", location, 0.0)
    redacted = count < k if measure.trip_based else None
    if kind == "trips_per_vehicle.avg":
        deployed = _filled("seconds", "deployed", 0.0) / pl.col("span_seconds")
        return MeasureColumn(pl.when(deployed > 0).then(count / deployed), redacted)
    if kind == "count":
        return MeasureColumn(count.cast(pl.Int64), redacted)
    quantity, stat = kind.split(".")
    n = _filled(f"{quantity}_n", subject, 0.0)
    total = _filled(f"{quantity}_sum", subject, 0.0)
    if stat == "sum":
        return MeasureColumn(total, redacted)
    if stat == "avg":
        value = total / n
    elif stat == "std":
        mean_square = _filled(f"{quantity}_sq", subject, 0.0) / n
        return MeasureColumn(pl.when(n != 0).then(mean_square), redacted, mean=pl.when(n != 0).then(total / n))
    else:
        value = pl.col(piece(f"{quantity}_median", subject)).cast(pl.Float64)
    return MeasureColumn(pl.when(n != 0).then(value), redacted)


def measure_column(measure: Measure, k: int) -> MeasureColumn:
    """The expressions of `measure` over the row table (k: the fewest trips a trip figure is shown for)."""
    kind, subject = measure.kind, measure.subject
    seconds = _filled("seconds", subject, 0.0)
    if measure.family in ("vehicles", "dockless") and kind == "avg":
        return MeasureColumn(seconds / pl.col("span_seconds"))
    if measure.family in ("vehicles", "dockless") and kind == "duration.sum":
        return MeasureColumn(seconds)
    several = pl.col(piece("several", subject)).fill_null(False)
    if kind == "min":
        # A quarter without a row had no vehicle in the state.
        whole = pl.col(piece("rows", subject)) == pl.col("span_quarters")
        fewest = pl.when(whole).then(pl.col(piece("fewest", subject))).otherwise(0)
        return MeasureColumn(fewest.cast(pl.Int64), several=several)
    if kind == "max":
        return MeasureColumn(_filled("most", subject, 0).cast(pl.Int64), several=several)
    if kind == "avg.max":
        return MeasureColumn(_filled("most_average", subject, 0.0))
    if kind == "avg.min":
        # A shorter interval without a row had no vehicle in the state: its average is 0.
        seen = pl.col(piece("subs", subject)) == pl.col("span_subs")
        return MeasureColumn(pl.when(seen).then(pl.col(piece("least_average", subject))).otherwise(0.0))
    active = pl.col(ACTIVE_SECONDS).fill_null(0.0)
    deployed = _filled("seconds", "deployed", 0.0)
    if kind == "active.percent":
        return MeasureColumn(pl.when(deployed > 0).then(active / deployed))
    if kind == "active.avg":
        return MeasureColumn(active / pl.col("span_seconds"))
    if kind == "inactive.avg":
        return MeasureColumn((deployed - active).clip(lower_bound=0.0) / pl.col("span_seconds"))
    if kind == "idle.percent":
        idle = (deployed - _filled("seconds", "on_trip", 0.0)) / deployed
        return MeasureColumn(pl.when(deployed > 0).then(idle))
    if measure.family == "events":
        # A count of trip events is a count of trips (one event each): redacted below k as they are.
        events = _filled("events", subject, 0).cast(pl.Int64)
        return MeasureColumn(events, events < k if measure.trip_based else None)
    return _trip_column(measure, k)


def _deviations(mean_squares: list[float | None], means: list[float | None]) -> list[float | None]:
    """Standard deviations, squared by Python's `**` (the C library's pow) as they always were: Polars and numpy
    square by multiplying, which differs in the last bit in some rows, and a published figure must not move."""
    return [
        None if mean is None or mean_square is None else math.sqrt(max(mean_square - mean**2, 0.0))
        for mean_square, mean in zip(mean_squares, means, strict=True)
    ]


def _as_json(values: pl.Series, redacted: pl.Series | None) -> pl.Series:
    """Each value's JSON text: the number (Polars writes the shortest text that reads back as the same float, as
    Python does, though not always in the same form: 0.00001 and 1e-7 where Python writes 1e-05 and 1e-07), -1
    where redacted, "" where not known. A value shown that is not finite is refused (JSON has no NaN); a redacted
    one is never shown."""
    frame = pl.DataFrame({"value": values, "redacted": redacted if redacted is not None else False})
    if values.dtype == pl.Float64:
        shown = frame.filter(~pl.col("redacted") & pl.col("value").is_not_null())["value"]
        if not shown.is_finite().all():
            raise ValueError("Out of range float values are not JSON compliant")
    text = (
        pl.when(pl.col("redacted"))
        .then(pl.lit(str(REDACTED)))
        .when(pl.col("value").is_null())
        .then(pl.lit(json.dumps(NOT_KNOWN)))
        .otherwise(pl.col("value").cast(pl.String))
    )
    return frame.select(text).to_series()


def measure_json(
    table: pl.DataFrame, measures: list[Measure], k: int, refuse: Callable[[Measure], Exception]
) -> list[pl.Series]:
    """Each measure's values over the row table as JSON text, in row order, not known ("") in the rows of an
    interval not delivered whole; `refuse(measure)` is raised for the first row (and, in it, the first measure) that
    is a minimum or maximum of several series."""
    columns = [measure_column(measure, k) for measure in measures]
    known = ~pl.col(UNDELIVERED)
    outputs = [pl.when(known).then(column.values).alias(f"value{i}") for i, column in enumerate(columns)]
    outputs += [
        (known & column.redacted).alias(f"redacted{i}")
        for i, column in enumerate(columns)
        if column.redacted is not None
    ]
    outputs += [column.several.alias(f"several{i}") for i, column in enumerate(columns) if column.several is not None]
    outputs += [column.mean.alias(f"mean{i}") for i, column in enumerate(columns) if column.mean is not None]
    found = table.select(outputs)
    offending = [
        (rows[0], i)
        for i, column in enumerate(columns)
        if column.several is not None and (rows := found[f"several{i}"].arg_true().to_list())
    ]
    if offending:
        raise refuse(measures[min(offending)[1]])
    texts = []
    for i, column in enumerate(columns):
        values = found[f"value{i}"]
        if column.mean is not None:
            values = pl.Series(_deviations(values.to_list(), found[f"mean{i}"].to_list()), dtype=pl.Float64)
        texts.append(_as_json(values, found[f"redacted{i}"] if column.redacted is not None else None))
    return texts
