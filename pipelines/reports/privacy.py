"""What may leave the warehouse in a city report: no identifiers, no small counts, no exact places.

- Counts of trips, violations and of vehicles that made trips below k (10 by default, as MDS Metrics redact) are
  suppressed: the value becomes null and a `<column>_suppressed` flag says so; every measure computed from such
  a count (a median, a rate) is nulled with it. Zero is shown as zero: it singles nobody out.
- Counts of the fleet (deployed fleet, available vehicles, parking-spot occupancy) are not suppressed: they
  measure vehicles in service, not riders. GBFS publishes every parked vehicle's position openly, and the deployed
  fleet (vehicles on a trip included, as MDS defines it) does not tell the vehicles on a trip apart.
- Places are H3 cells (cells.py), never points, and a cell with fewer than k is left out entirely (a place of a
  single trip end is exactly what must not be shown).
- No column named after an identifier (device, vehicle, trip, event, rider, plate) may be written at all.
"""

from collections.abc import Iterable, Mapping, Sequence

import polars as pl

SUPPRESSED_SUFFIX = "_suppressed"
FORBIDDEN_COLUMNS = frozenset(
    {
        "device_id",
        "vehicle_id",
        "trip_id",
        "event_id",
        "provider_vehicle_id",
        "rider_id",
        "user_id",
        "account_id",
        "plate",
        "licence_plate",
        "license_plate",
        "vehicle_plate",
        "trip_ids",
    }
)


class PrivacyError(ValueError):
    """A report table would carry something that must not leave the warehouse."""


def check_columns(table: str, columns: Iterable[str]) -> None:
    leaked = sorted(c for c in columns if c.lower() in FORBIDDEN_COLUMNS)
    if leaked:
        raise PrivacyError(f"report table {table!r} would export identifier column(s) {leaked}")


def below_k(column: str, k: int) -> pl.Expr:
    value = pl.col(column)
    return ((value > 0) & (value < k)).fill_null(False)


def suppress(frame: pl.DataFrame, counts: Mapping[str, Sequence[str]], k: int) -> tuple[pl.DataFrame, int]:
    """Counts below k (and the measures derived from them) nulled, each count followed by its flag.

    `counts` maps a count column to the columns computed from it. Returns the frame and the number of cells
    suppressed (flags set).
    """
    if not counts:
        return frame, 0
    hidden = {count: below_k(count, k) for count in counts}
    flags = frame.select(hidden[count].alias(count + SUPPRESSED_SUFFIX) for count in counts)
    nulled: dict[str, pl.Expr] = {}
    for count, derived in counts.items():
        for column in (count, *derived):
            nulled[column] = nulled[column] | hidden[count] if column in nulled else hidden[count]
    suppressed = frame.with_columns(
        pl.when(condition).then(None).otherwise(pl.col(column)).alias(column) for column, condition in nulled.items()
    ).with_columns(flags)
    order: list[str] = []
    for column in frame.columns:
        order.append(column)
        if column in counts:
            order.append(column + SUPPRESSED_SUFFIX)
    return suppressed.select(order), int(sum(flags.sum().row(0)))


def drop_below_k(frame: pl.DataFrame, count: str, k: int) -> tuple[pl.DataFrame, int]:
    """Rows (map cells) whose count is below k left out; returns the frame and how many were."""
    kept = frame.filter(pl.col(count) >= k)
    return kept, frame.height - kept.height
