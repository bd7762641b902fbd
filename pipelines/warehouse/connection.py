"""Opening the warehouse, and where its lake views find their files.

A warehouse file must keep answering when it is copied with its lake to a laptop or another server, so the views
over a local lake (`lake.*`) hold no absolute path: they name their files relative to the warehouse's own folder
(`lake/mds_trips/zone_id=*/...` for the default layout, `data/warehouse.duckdb` beside `data/lake`), and every
connection resolves them when it opens the file, through DuckDB's `file_search_path` set to that folder. A build
against a lake configured elsewhere (FLEETLAKE_LAKE_DIR) rewrites the views for it. A lake in object storage is
named by its `s3://` URI, the same on every machine.

Open the warehouse with `connect`, or set `file_search_path` to its folder yourself (README.md, "Example
queries"): a connection without it resolves the relative paths against the current folder and finds no files.
"""

import os
from pathlib import Path

import duckdb

from pipelines.lake.filesystem import LakePath, attach_lake, is_remote


def search_path(warehouse: Path) -> str:
    """The folder a connection to `warehouse` resolves its lake views' relative paths in: the file's own."""
    return str(Path(warehouse).resolve().parent)


def view_location(path: str, warehouse: Path) -> str:
    """How a lake view names `path` (a file or glob pattern in the lake, or beside the warehouse): relative to the
    warehouse's folder; a URI in object storage is kept whole."""
    if is_remote(path):
        return path
    return Path(os.path.relpath(Path(path).resolve(), search_path(warehouse))).as_posix()


def connect(warehouse: Path, lake_dir: LakePath | None = None, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file whose lake views find their files; a lake in a bucket (`lake_dir`) gets
    its httpfs extension and credentials (see filesystem.attach_lake)."""
    con = duckdb.connect(str(warehouse), read_only=read_only)
    try:
        con.execute("set file_search_path = $path", {"path": search_path(warehouse)})
        if lake_dir is not None:
            attach_lake(con, lake_dir)
    except Exception:
        con.close()
        raise
    return con
