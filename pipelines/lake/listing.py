"""The lake's files as one reader lists them: in object storage, each folder asked about is listed once, in one
flat listing of every key below it, and every later question about it or a folder below it is answered from that.

A warehouse build asks which files a dataset has many times: whether its view has a file at all, the oldest and
newest file of each zone (their schemas), the fingerprints of the hours it records, the files of its window's days.
On a local disk each question is a cheap walk of a few folders, answered by pathlib as before. In a bucket each
folder of such a walk is a request (a glob of `zone_id=*/date=*/hour=*/*.parquet` lists every zone's and every
date's folder), and the same walks repeated cost a build thousands of requests; one flat listing returns a
thousand keys a request.

A listing is a snapshot: a file written after a folder was listed is not seen by the questions that follow. A build
reads the lake's fingerprints before it reads the files, so a file it missed is a changed hour for the next build,
as a file written during a build always was; hence one listing a build, never one kept longer (another machine
writes the partitions this one lists next, see filesystem.py).
"""

import os
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import cast

from upath import UPath

from pipelines.lake.filesystem import LakePath, is_remote


def _matches(relative: str, pattern: str) -> bool:
    """Whether a path relative to a folder matches a glob pattern of the same depth (`*` never crosses a `/`)."""
    parts, wanted = relative.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True))


class LakeListing:
    """Questions about the lake's files: pathlib's answers on a local disk, one flat listing a folder in a bucket."""

    def __init__(self) -> None:
        self._listed: dict[str, list[str]] = {}
        """A listed folder's key (bucket/prefix, no scheme) -> the keys of every file below it, relative to it."""

    def glob(self, folder: LakePath, pattern: str) -> list[LakePath]:
        """The files below `folder` that `pattern` (relative, of `*` wildcards and literal names) matches."""
        if not is_remote(folder):
            return list(folder.glob(pattern))
        return [folder / relative for relative in self._relative(folder) if _matches(relative, pattern)]

    def any(self, folder: LakePath, pattern: str) -> bool:
        """Whether `pattern` matches a file below `folder` (locally, the walk stops at the first)."""
        if not is_remote(folder):
            return any(folder.glob(pattern))
        return any(_matches(relative, pattern) for relative in self._relative(folder))

    def folders(self, folder: LakePath) -> list[LakePath]:
        """The folders directly in `folder` (none when it does not exist); in a bucket, those holding a file."""
        if not is_remote(folder):
            try:
                with os.scandir(folder) as entries:
                    return [folder / entry.name for entry in entries if entry.is_dir()]
            except (FileNotFoundError, NotADirectoryError):
                return []
        names = dict.fromkeys(relative.split("/", 1)[0] for relative in self._relative(folder) if "/" in relative)
        return [folder / name for name in names]

    def _relative(self, folder: LakePath) -> Iterator[str]:
        """The keys of the files below a folder in a bucket, relative to it, from the listing of the folder or of
        one above it; the folder is listed when neither was."""
        remote = cast(UPath, folder)
        key = remote.path.rstrip("/")
        for listed, relatives in self._listed.items():
            if key == listed:
                return iter(relatives)
            if key.startswith(listed + "/"):
                below = key[len(listed) + 1 :] + "/"
                return (relative[len(below) :] for relative in relatives if relative.startswith(below))
        found = cast(list[str], remote.fs.find(key))
        self._listed[key] = relatives = [path[len(key) + 1 :] for path in found if path.startswith(key + "/")]
        return iter(relatives)


__all__ = ["LakeListing"]
