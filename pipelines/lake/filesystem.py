"""Where the lake lives: a local folder or an S3-compatible bucket, named by one setting (FLEETLAKE_LAKE_DIR).

A local path keeps the lake on this machine's disk; `s3://bucket/prefix` puts it in object storage, where every
machine of a scale-out deployment (docs/scale-out.md) reads and writes the same lake. Paths under the root are
universal_pathlib paths over fsspec: a local root is a `pathlib.Path` (a PosixUPath), a bucket an s3fs path with
the same `/`, `glob`, `exists`, `read_bytes` and `unlink`. fsspec rather than pyarrow.fs because Dagster's own
UPathIOManager is built on it, so the values its steps hand each other on other machines travel through the
same layer and the same settings (`step_io_base`), and because s3fs is plain Python over aiobotocore, safe in
the forked and spawned processes of Dagster's executors and Celery's worker pool.

Object storage is reached with the standard AWS variables, as every S3 client reads them: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (or AWS_DEFAULT_REGION) and, for a store other than AWS's
(MinIO, Ceph, moto), AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL. DuckDB reads the same bucket through its httpfs
extension, loaded from the duckdb-extension-httpfs package (never downloaded), with a secret made from them.

A reader must see a file whole or not at all: locally each file is written under a hidden temporary name and
renamed into place; in object storage one PUT makes an object appear whole (a multipart upload only on
completion), so a file is uploaded in one request from memory and never renamed.
"""

import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from upath import UPath

if TYPE_CHECKING:  # the settings read lake locations without loading DuckDB
    import duckdb

LakePath = Path
"""A path in the lake: a local `Path`, or a universal_pathlib path in a bucket typed as one. An s3fs path offers
every pathlib method the lake uses (`/`, `glob`, `iterdir`, `is_dir`, `exists`, `read_bytes`, `write_bytes`,
`unlink`, `name`, `parent`), so the lake's code reads the same for both; what differs (atomic writes, the names
DuckDB reads, opening for Polars and pyarrow) goes through the functions below."""
OBJECT_STORE_SCHEMES = ("s3", "s3a")


def _endpoint_url() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3", "").strip() or os.environ.get("AWS_ENDPOINT_URL", "").strip()


def _region() -> str:
    return os.environ.get("AWS_REGION", "").strip() or os.environ.get("AWS_DEFAULT_REGION", "").strip()


def storage_options() -> dict[str, Any]:
    """s3fs options from the standard AWS variables. Directory listings are not cached: another machine writes
    the partitions this process lists next."""
    options: dict[str, Any] = {"use_listings_cache": False}
    if _endpoint_url():
        options["endpoint_url"] = _endpoint_url()
    if _region():
        options["client_kwargs"] = {"region_name": _region()}
    return options


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Whether a lake location names object storage (`s3://...`) rather than a local folder."""
    if isinstance(location, UPath):
        return location.protocol in OBJECT_STORE_SCHEMES
    return not isinstance(location, Path) and urlsplit(str(location)).scheme in OBJECT_STORE_SCHEMES


def lake_root(location: str | os.PathLike[str]) -> LakePath:
    """The lake's root from a setting: a local folder as a `Path`, `s3://bucket/prefix` as an s3fs path."""
    if isinstance(location, Path | UPath):
        return location
    text = str(location).strip()
    if is_remote(text):
        if not urlsplit(text).netloc:
            raise ValueError(f"lake location {text!r} names no bucket: expected s3://bucket/prefix")
        return cast(Path, UPath(text.rstrip("/"), **storage_options()))
    return Path(text)


def uri(path: LakePath) -> str:
    """The path as DuckDB and other engines name it: an absolute local path, or `s3://bucket/key`."""
    if is_remote(path):
        return str(path)
    return str(path.resolve())


def known_absent(path: LakePath) -> bool:
    """A local file that is not there, known from one stat: asking a reader costs its set-up first (Polars ~0.35 ms,
    a Parquet footer ~0.2 ms), paid for every hour's first delivery. False for an object: there the one GET that
    reads it says whether it is there, where asking first would be a request more."""
    return not is_remote(path) and not Path(path).exists()


def readable(path: LakePath) -> str | Path | IO[bytes]:
    """Something Polars and pyarrow read a Parquet file from: the local path, or the object's bytes (fetched in
    one GET: opening the object as a file would first ask for its size, and so does s3fs's `cat_file` unless told
    to fetch in one part, to decide whether to fetch it in several: a lake file is far below its part size). An
    object not there is FileNotFoundError, from that one GET."""
    if is_remote(path):
        remote = cast(UPath, path)
        return io.BytesIO(remote.fs.cat_file(remote.path, max_concurrency=1))
    return path


def _writer_alive(tmp: Path) -> bool:
    """Temporary names carry their writer's process id; a writer that is gone left its file behind."""
    try:
        pid = int(tmp.name.rsplit(".", 3)[-3])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def make_private_folder(folder: Path) -> None:
    """Create `folder` and its missing parents readable by their owner only (0700), whatever the umask."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
        path.chmod(PRIVATE_FOLDER)


def write_whole(path: LakePath, write: Callable[[IO[bytes]], object], *, private: bool = False) -> int:
    """Write a file so that readers see the previous version or the new one, never part of it; returns its size.

    `write` writes the file's content to the binary stream it is given: a buffer in memory, so that the file is
    then written, fsync'd and renamed into place with one descriptor (or uploaded in one request). A `private`
    file is its owner's alone from its first byte (0600, made so by the call that creates it; new folders 0700).
    """
    if private and is_remote(path):
        raise ValueError(f"{path}: a private file needs a local folder (object storage has no owner-only files)")
    buffer = io.BytesIO()
    write(buffer)
    body = buffer.getbuffer()
    if is_remote(path):
        path.write_bytes(bytes(body))  # one PUT: the object appears whole
        return len(body)
    folder = path.parent
    if private:
        make_private_folder(folder)
        _remove_crashed_writes(folder)
    elif not _made_folder(folder):  # a folder this call made holds no crashed write
        _remove_crashed_writes(folder)
    tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE if private else 0o666)
        with os.fdopen(descriptor, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(descriptor)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(body)


def _made_folder(folder: Path) -> bool:
    """Make `folder` and its missing parents; whether this call made `folder` itself (one `mkdir` when its parent
    is there, the usual case of a new partition's folder)."""
    try:
        folder.mkdir()
    except FileExistsError:
        return False
    except FileNotFoundError:
        folder.parent.mkdir(parents=True, exist_ok=True)
        return _made_folder(folder)
    return True


def _remove_crashed_writes(folder: Path) -> None:
    """Delete the temporary files of writers that crashed: invisible to readers, and nobody will finish them.
    Any name in the folder, not only the file being written: a rerun writes its raw response under its own
    delivery's name, not the crashed one's. One listing with plain name tests: this runs before every file the lake
    writes into a folder it did not just make, and a glob costs more."""
    with os.scandir(folder) as entries:
        names = [entry.name for entry in entries]
    stale = [folder / name for name in names if name.startswith(".") and name.endswith(".tmp") and len(name) > 5]
    for path in stale:
        if not _writer_alive(path):
            path.unlink(missing_ok=True)


def names_in(folder: LakePath) -> list[str]:
    """The names of the files and folders in `folder` (none when it does not exist): one listing, which callers
    filter with plain string tests instead of a glob per pattern. In a bucket, one listing request (a glob of `*`
    took four, five for a folder not there yet), also when the folder is not there: named by its parent and a
    prefix, where a listing by its own name costs s3fs a listing of the parent too when it finds nothing."""
    if is_remote(folder):
        remote = cast(UPath, folder)
        key = remote.path.rstrip("/")
        parent, _, name = key.rpartition("/")
        if not parent:  # a bucket's own top
            listed = cast(list[str], remote.fs.ls(key, detail=False))
        else:
            listed = cast(list[str], remote.fs.find(parent, prefix=f"{name}/", maxdepth=1, withdirs=True))
        return [path.rstrip("/")[len(key) + 1 :] for path in listed if path.rstrip("/").startswith(key + "/")]
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove(path: LakePath) -> None:
    """Delete a file if it is there. In a bucket, one DELETE, which succeeds for a key that is not there (asking
    first took a HEAD and a listing, on every partition written without quarantined or superseded records)."""
    if is_remote(path):
        remote = cast(UPath, path)
        remote.fs.rm_file(remote.path)
        return
    path.unlink(missing_ok=True)


def attach_lake(con: "duckdb.DuckDBPyConnection", root: LakePath) -> None:
    """Let a DuckDB connection read the lake: nothing for a local one; for a bucket, load httpfs from its package
    and make a secret, scoped to the bucket, from the standard AWS variables."""
    if not is_remote(root):
        return
    from pipelines.duckdb_extensions import load_extensions  # duckdb itself only where a connection is made

    load_extensions(con, "httpfs")
    bucket = urlsplit(str(root)).netloc
    options: dict[str, str | bool] = {"type": "s3", "scope": f"s3://{bucket}"}
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        options["key_id"] = os.environ["AWS_ACCESS_KEY_ID"]
        options["secret"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if os.environ.get("AWS_SESSION_TOKEN"):
        options["session_token"] = os.environ["AWS_SESSION_TOKEN"]
    if _region():
        options["region"] = _region()
    endpoint = _endpoint_url()
    if endpoint:
        parts = urlsplit(endpoint)
        options["endpoint"] = parts.netloc + parts.path.rstrip("/")
        options["use_ssl"] = parts.scheme == "https"
        options["url_style"] = "path"  # a self-hosted store rarely has a DNS name per bucket
    # The option names are this function's own; every value is a bound parameter.
    body = ", ".join(f"{key} ${key}" for key in options)
    con.execute(f"create or replace temporary secret fleetlake_lake ({body})", options)


__all__ = [
    "LakePath",
    "attach_lake",
    "is_remote",
    "lake_root",
    "make_private_folder",
    "names_in",
    "readable",
    "remove",
    "storage_options",
    "uri",
    "write_whole",
]
