"""A lake file's Parquet footer (its schema, row groups and key-value metadata) without its data.

A build reads footers to learn a dataset's schemas (its oldest and newest file of each zone) and ingestion reads
one to learn the fingerprint a partition was written with. On a local disk pyarrow reads the footer only. In a
bucket, fetching the object to read its footer costs a request for its size and the whole object; a suffix range
(`Range: bytes=-N`) asks for its last N bytes in one request, which hold the footer whenever it is smaller than
N (a lake file's is a few kilobytes); a bigger footer costs one more request, for exactly its bytes.
"""

from typing import cast

import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from pipelines.lake.filesystem import LakePath, is_remote, known_absent

TAIL_BYTES = 64 * 1024
"""The bytes asked for first from the end of an object: a lake file's footer and more."""

MAGIC = b"PAR1"
"""What a Parquet file begins and ends with."""


def footer(path: LakePath) -> pq.FileMetaData:
    """The footer of the Parquet file at `path`; FileNotFoundError when there is none."""
    if known_absent(path):
        raise FileNotFoundError(path)
    if not is_remote(path):
        return pq.read_metadata(path)
    remote = cast(UPath, path)
    tail = cast(bytes, remote.fs.cat_file(remote.path, start=-TAIL_BYTES))
    size = _footer_size(tail, path)
    if size > len(tail):
        tail = cast(bytes, remote.fs.cat_file(remote.path, start=-size))
    # The footer is read from the end of what it is given; the magic before it stands for the file's beginning.
    return pq.read_metadata(pa.BufferReader(MAGIC + tail[-size:]))


def arrow_schema(path: LakePath) -> pa.Schema:
    """The Arrow schema of the Parquet file at `path` (with its key-value metadata), from its footer."""
    if not is_remote(path):
        return pq.read_schema(path)  # a third cheaper than converting the footer's schema
    return footer(path).schema.to_arrow_schema()


def _footer_size(tail: bytes, path: LakePath) -> int:
    """How many bytes at the end of the file hold its footer: the footer, its 4-byte length and the magic."""
    if len(tail) < 12 or tail[-4:] != MAGIC:
        raise ValueError(f"{path}: not a Parquet file (no footer at its end)")
    return int.from_bytes(tail[-8:-4], "little") + 8


__all__ = ["arrow_schema", "footer"]
