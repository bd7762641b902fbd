"""The lake's files as one reader lists them: in object storage, each folder is listed at most once, with a
listing as wide as the question needs, and every later question about it or a folder below it is answered from
what was listed.

A warehouse build asks which files a dataset has many times: whether its view has a file at all, the oldest and
newest file of each zone (their schemas), the fingerprints of the hours it records, the files of its window's days.
On a local disk each question is a cheap walk of a few folders, answered by pathlib as before. In a bucket a
request lists either one folder's entries (a delimiter listing: its files and the folders in it) or every key below
a folder (a flat listing, a thousand keys a request). A question about a window's days lists those days' folders;
only a question about every file of a dataset (a full build's) lists the dataset flat, so an hourly build's
requests do not grow with the history (a year of 100 zones is a million keys). Each folder's entries are kept in a
map, folder -> entries, so no question scans the keys of another.

A listing is a snapshot: a folder, once listed, answers every later question as it was then; a file written after
it was listed is not seen by the questions that follow. A build reads the lake's fingerprints before it reads the
files, so a file it missed is a changed hour for the next build, as a file written during a build always was;
hence one listing a build, never one kept longer (another machine writes the partitions this one lists next, see
filesystem.py).
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, cast

from upath import UPath

from pipelines.lake.filesystem import LakePath, is_remote


def _is_wildcard(part: str) -> bool:
    """Whether a part of a glob pattern names folders or files by a wildcard rather than by name."""
    return any(sign in part for sign in "*?[")


@dataclass
class _Entries:
    """What a folder in a bucket directly holds: the names of its folders (those holding a file) and files."""

    folders: dict[str, None] = field(default_factory=dict)
    files: dict[str, None] = field(default_factory=dict)


class LakeListing:
    """Questions about the lake's files: pathlib's answers on a local disk, in a bucket the listings of the
    folders each question needs, each folder listed once."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entries] = {}
        """A listed folder's key (bucket/prefix, no scheme) -> what it directly holds."""
        self._whole: set[str] = set()
        """The folders whose every folder below is in `_entries` too (listed flat, or below one listed flat)."""
        self._filesystem: Any = None
        """The bucket's filesystem (s3fs), from the first folder asked about."""

    def glob(self, folder: LakePath, pattern: str) -> list[LakePath]:
        """The files below `folder` that `pattern` (relative, of `*` wildcards and literal names) matches."""
        if not is_remote(folder):
            return list(folder.glob(pattern))
        return [folder / relative for relative in self._matches(self._key(folder), pattern.split("/"), flat=True)]

    def any(self, folder: LakePath, pattern: str) -> bool:
        """Whether `pattern` matches a file below `folder`; the walk stops at the first (in a bucket, a few
        folders listed, never the whole dataset)."""
        if not is_remote(folder):
            return any(folder.glob(pattern))
        return any(True for _ in self._matches(self._key(folder), pattern.split("/"), flat=False))

    def folders(self, folder: LakePath) -> list[LakePath]:
        """The folders directly in `folder` (none when it does not exist); in a bucket, those holding a file."""
        if not is_remote(folder):
            try:
                with os.scandir(folder) as entries:
                    return [folder / entry.name for entry in entries if entry.is_dir()]
            except (FileNotFoundError, NotADirectoryError):
                return []
        return [folder / name for name in self._listed(self._key(folder)).folders]

    def _matches(self, key: str, parts: list[str], *, flat: bool) -> Iterator[str]:
        """The files below `key` matching the pattern `parts`, relative to it. A literal folder is entered without
        listing its parent (and not at all when its parent's listing lacks it); a folder whose remaining pattern is
        all wildcards over several levels is listed flat when `flat` (a request a thousand keys rather than one a
        folder), else folder by folder, lazily (`any` stops at the first file)."""
        head, rest = parts[0], parts[1:]
        if rest and not _is_wildcard(head):
            known = self._entries.get(key)
            if known is not None and head not in known.folders:  # not there when `key` was listed
                return
            yield from (f"{head}/{found}" for found in self._matches(f"{key}/{head}", rest, flat=flat))
            return
        if flat and len(parts) > 1 and all(_is_wildcard(part) for part in parts):
            self._list_flat(key)
        entries = self._listed(key)
        if not rest:
            yield from (name for name in entries.files if fnmatchcase(name, head))
            return
        for name in entries.folders:
            if fnmatchcase(name, head):
                yield from (f"{name}/{found}" for found in self._matches(f"{key}/{name}", rest, flat=flat))

    def _listed(self, key: str) -> _Entries:
        """A folder's entries: as listed already (by itself or in a flat listing of a folder above it), else from
        one delimiter listing of it."""
        known = self._entries.get(key)
        if known is not None:
            return known
        if self._below_whole(key):  # listed flat above, and holding no file then
            return _Entries()
        entries = self._entries[key] = _Entries()
        parent, name = _parent_and_name(key)
        # Named by its parent and a prefix: one delimiter listing of the folder, where a listing of the folder
        # by its own name costs s3fs a listing of the parent too when the folder is not there.
        listed = cast(
            dict[str, dict[str, Any]],
            self._filesystem.find(parent, prefix=f"{name}/", maxdepth=1, withdirs=True, detail=True)
            if parent
            else self._filesystem.find(key, maxdepth=1, withdirs=True, detail=True),  # a bucket's own top
        )
        for entry in listed.values():
            path = cast(str, entry["name"]).rstrip("/")
            if not path.startswith(key + "/"):
                continue
            name = path[len(key) + 1 :]
            (entries.folders if entry["type"] == "directory" else entries.files)[name] = None
        return entries

    def _list_flat(self, key: str) -> None:
        """List every key below a folder in one flat listing, into the entries of each folder on the way (a folder
        listed already keeps what it was listed with)."""
        if key in self._whole or self._below_whole(key):
            return
        parent, name = _parent_and_name(key)
        found = cast(  # one request (see _listed)
            list[str], self._filesystem.find(parent, prefix=f"{name}/") if parent else self._filesystem.find(key)
        )
        seen: dict[str, _Entries] = {key: _Entries()}
        for path in found:
            if not path.startswith(key + "/"):
                continue
            *folders, name = path[len(key) + 1 :].split("/")
            here = key
            for folder in folders:
                seen.setdefault(here, _Entries()).folders[folder] = None
                here = f"{here}/{folder}"
            seen.setdefault(here, _Entries()).files[name] = None
        for listed, entries in seen.items():
            self._entries.setdefault(listed, entries)
        self._whole.update(seen)

    def _below_whole(self, key: str) -> bool:
        """Whether a folder above `key` was listed flat (so `key` was too, if it held a file then)."""
        parts = key.split("/")
        return any("/".join(parts[:depth]) in self._whole for depth in range(1, len(parts)))

    def _key(self, folder: LakePath) -> str:
        """A folder's key in its bucket (bucket/prefix, no scheme); the bucket's filesystem is kept for listing."""
        remote = cast(UPath, folder)
        self._filesystem = remote.fs
        return remote.path.rstrip("/")


def _parent_and_name(key: str) -> tuple[str, str]:
    """A key's folder and its last name (`bucket/lake/mds_trips` -> `bucket/lake`, `mds_trips`)."""
    parent, _, name = key.rpartition("/")
    return parent, name


__all__ = ["LakeListing"]
