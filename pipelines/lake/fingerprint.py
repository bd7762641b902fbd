"""A partition's content fingerprint: what its records say, not how the response that carried them was wrapped.

A provider's response changes on every request (MDS stamps `last_updated` with the time of the request), so two
deliveries of an hour that carry the same records never have the same bytes. The fingerprint hashes what the
lake keeps of a delivery: its normalized records (every column of the dataset, the MDS version included), the
records it quarantined with their reasons, and the copies its response repeated, in any order. Ingestion compares
a new delivery's fingerprint with the partition's and writes nothing when they agree; the warehouse compares the
fingerprints of the partitions it built with the lake's and rebuilds only the hours that differ.

It is stored in the data file's own Parquet footer (key `FINGERPRINT_KEY`), written with it in one rename, so a
fingerprint can never describe other rows than its file's. The records are hashed as Arrow has them, with no
conversion: put in one order (by every column that has one, ids first: `_in_order`), then written as an Arrow IPC
stream, whose bytes are the columns' values and the schema. Two rows that differ only in a list column may keep
the order they came in, and another Arrow version may write other bytes: both make a partition look changed (it is
rewritten and rebuilt once), never the other way round.
"""

import hashlib
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.lake.filesystem import LakePath
from pipelines.lake.footer import footer

FINGERPRINT_KEY = "fleetlake.records_fingerprint"
"""The Parquet footer's key-value entry that holds a data file's fingerprint."""
VERSION = "v2:"
"""Prefixed to every fingerprint: a new way of fingerprinting changes the prefix, so old ones never match (v1 hashed
Polars' row hashes)."""


def _in_order(table: pa.Table) -> pa.Table:
    """The rows sorted by every column Arrow can sort (all but lists and structs), in the table's column order:
    a dataset's id comes first, so one comparison orders nearly every pair."""
    keys = [(field.name, "ascending") for field in table.schema if not pa.types.is_nested(field.type)]
    if table.num_rows < 2 or not keys:
        return table
    return table.take(pc.sort_indices(table, keys))


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table.combine_chunks())
    return sink.getvalue()


def records_fingerprint(
    records: pa.Table,
    quarantined: Sequence[tuple[str, str]] = (),
    repeated: pa.Table | None = None,
) -> str:
    """The fingerprint of a delivery's records (`records`: the dataset's columns only, before any ingest stamp),
    its quarantined records as (reason, raw text), and the copies its response repeated (`repeated`, with the
    column that says whether each conflicted)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(_ipc_bytes(_in_order(records)))
    for reason, raw in sorted(quarantined):
        digest.update(b"\x00q" + reason.encode() + b"\x00" + raw.encode())
    if repeated is not None and repeated.num_rows:
        digest.update(b"\x00r" + _ipc_bytes(_in_order(repeated)))
    return VERSION + digest.hexdigest()


def stored_fingerprint(path: LakePath) -> str | None:
    """The fingerprint a data file was written with; None if the file does not exist or was written without one
    (before fingerprints existed: then nothing is known to be unchanged)."""
    try:
        metadata = footer(path).metadata or {}  # in a bucket one request, for the footer's bytes
    except FileNotFoundError:
        return None
    value = metadata.get(FINGERPRINT_KEY.encode())
    return value.decode() if value is not None else None
