"""Rows of two warehouses compared as data: doubles rounded, order fixed after rounding."""

from collections.abc import Iterable, Sequence
from typing import Any


def comparable(rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The rows with every double rounded to 6 decimals, sorted. A sum's or a standard deviation's last bits depend
    on the order DuckDB's parallel aggregation adds in, which differs from build to build of the same data; sorting
    after rounding keeps two rows that differ only in those bits from swapping places."""
    rounded = [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]
    return sorted(rounded, key=repr)
