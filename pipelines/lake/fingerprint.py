"""A partition's content fingerprint: what its records say, not how the response that carried them was wrapped.

A provider's response changes on every request (MDS stamps `last_updated` with the time of the request), so two
deliveries of an hour that carry the same records never have the same bytes. The fingerprint hashes what the
lake keeps of a delivery: its normalized records (every column of the dataset, the MDS version included), the
records it quarantined with their reasons, and the copies its response repeated, in any order. Ingestion compares
a new delivery's fingerprint with the partition's and writes nothing when they agree; the warehouse compares the
fingerprints of the partitions it built with the lake's and rebuilds only the hours that differ.

It is stored in the data file's own Parquet footer (key `FINGERPRINT_KEY`), written with it in one rename, so a
fingerprint can never describe other rows than its file's. Row hashes are Polars' (64 bits each, with a fixed seed):
another Polars version may hash differently, which makes every partition look changed once (rewritten and rebuilt
once), never the other way round.
"""

import hashlib
from collections.abc import Sequence

import polars as pl
import pyarrow.parquet as pq

from pipelines.lake.filesystem import LakePath, readable

FINGERPRINT_KEY = "fleetlake.records_fingerprint"
"""The Parquet footer's key-value entry that holds a data file's fingerprint."""
VERSION = "v1:"
"""Prefixed to every fingerprint: a new way of fingerprinting changes the prefix, so old ones never match."""


def _sorted_row_hashes(frame: pl.DataFrame) -> bytes:
    if frame.is_empty():
        return b""
    return frame.hash_rows(seed=0).sort().to_numpy().tobytes()


def records_fingerprint(
    records: pl.DataFrame,
    quarantined: Sequence[tuple[str, str]] = (),
    repeated: pl.DataFrame | None = None,
) -> str:
    """The fingerprint of a delivery's records (`records`: the dataset's columns only, before any ingest stamp),
    its quarantined records as (reason, raw text), and the copies its response repeated (`repeated`, with the
    column that says whether each conflicted)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr(list(records.schema.items())).encode())
    digest.update(len(records).to_bytes(8, "little"))
    digest.update(_sorted_row_hashes(records))
    for reason, raw in sorted(quarantined):
        digest.update(b"\x00q" + reason.encode() + b"\x00" + raw.encode())
    if repeated is not None and not repeated.is_empty():
        digest.update(b"\x00r" + len(repeated).to_bytes(8, "little") + _sorted_row_hashes(repeated))
    return VERSION + digest.hexdigest()


def stored_fingerprint(path: LakePath) -> str | None:
    """The fingerprint a data file was written with; None if the file does not exist or was written without one
    (before fingerprints existed: then nothing is known to be unchanged)."""
    if not path.exists():
        return None
    metadata = pq.read_metadata(readable(path)).metadata or {}
    value = metadata.get(FINGERPRINT_KEY.encode())
    return value.decode() if value is not None else None
