"""DuckDB extensions from their PyPI packages (`duckdb-extension-<name>`), loaded with nothing downloaded.

Each package holds the extension built for exactly one DuckDB release, at
`duckdb_extension_<name>/extensions/v<version>/<name>.duckdb_extension`. DuckDB finds an extension's entry point by
the file's name, and two of them are named otherwise inside (sqlite is `sqlite_scanner`, postgres is
`postgres_scanner`); so each is loaded through a link named as DuckDB expects, in a folder of links kept per user
and DuckDB version. The packages' own helper (`duckdb_extensions.import_extension`) would instead install copies
into `~/.duckdb`, which a read-only home or a second DuckDB version beside this one would break.

Connections made here never install or autoload anything: a missing package is an error naming it, not a download.
"""

import importlib.resources
import os
import tempfile
from pathlib import Path

import duckdb

# The name DuckDB knows each extension by inside its file, where it differs from the package's.
ENTRY_NAMES = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}
# No extension is ever fetched or loaded behind the project's back.
NO_DOWNLOADS: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


class ExtensionMissing(RuntimeError):
    """The PyPI package of an extension is not installed, or was built for another DuckDB version."""


def extension_file(name: str) -> Path:
    """The extension's file inside its PyPI package, for the DuckDB version that is running."""
    package = f"duckdb_extension_{name}"
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError as error:
        raise ExtensionMissing(
            f"the DuckDB extension {name!r} is not installed: add duckdb-extension-{name}=={duckdb.__version__}"
        ) from error
    path = Path(str(root)) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise ExtensionMissing(
            f"duckdb-extension-{name} has no build for DuckDB {duckdb.__version__} ({path} is missing): "
            f"pin duckdb-extension-{name}=={duckdb.__version__}"
        )
    return path


def links_dir() -> Path:
    """The folder of links to the packages' extension files, named as DuckDB expects (per user and version)."""
    return Path(tempfile.gettempdir()) / f"fleetlake-duckdb-extensions-{os.getuid()}" / f"v{duckdb.__version__}"


def loadable(name: str) -> Path:
    """A path DuckDB can load extension `name` from: its package's file, or a link to it under its entry name."""
    target = extension_file(name)
    entry = ENTRY_NAMES.get(name, name)
    if entry == name:
        return target
    folder = links_dir()
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f"{entry}.duckdb_extension"
    if not (link.is_symlink() and link.resolve() == target.resolve()):
        # Made aside and renamed: processes starting together each find a whole link.
        aside = folder / f".{entry}.{os.getpid()}"
        aside.unlink(missing_ok=True)
        aside.symlink_to(target)
        aside.replace(link)
    return link


def load_extensions(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Load each named extension (ducklake, httpfs, sqlite, postgres) from its PyPI package into `con`."""
    for name in names:
        con.load_extension(str(loadable(name)))


__all__ = ["NO_DOWNLOADS", "ExtensionMissing", "extension_file", "load_extensions", "loadable"]
