"""Archives a city already has, into the lake: MDS 2.0, 1.2 and 0.4 responses or record files and GBFS snapshots of
any version (JSON, JSON lines, gzip'd or not; a folder of them, recursively), through the API path's own writer.

What a file is comes from its content, never its name: the envelope's `version`, where its records sit (MDS 2.0's
top-level `trips`, 1.2/0.4's `data.status_changes`, GBFS's `data.bikes`, ...) and the shape of its records (a bare
list of records, or one record a line). `Stated` fills in what a file cannot say of itself (its zone, its MDS
version, its capture time, its dataset); what a file says of itself wins over it. A name decides only what no
content can: an empty GBFS station list is station_status or station_information as its file is named.

Each record goes where the API path puts it, by its own time: MDS trips in the hour of their `end_time`, 2.0 events
in that of their `timestamp`, 1.2/0.4 status changes in that of their `event_time`; a snapshot file (GBFS, MDS
vehicles, the zone API) is one snapshot at its `last_updated` (else `Stated.captured_at`). Records are validated,
mapped from 1.2/0.4 (pipelines/lake/mds_versions.py), quarantined with their reason and counted by
`pipelines.ingest.write_partition`, the one write path; a record whose time places it in no hour (none, not a whole
number, before 2000 or in the future) is quarantined in the import's own hour, saying so.

An import is a delivery of its own: in an hourly partition it writes `import-{T}.parquet` (T: when the import ran,
its rows' `ingested_at`) beside the hour's API deliveries, which it neither replaces nor withdraws, and an API
delivery later neither replaces nor withdraws it. Staging keeps each record's newest delivery, so where an import
and the API both carry a record, the later of the two wins and data quality counts the other as a duplicate (same
content) or a conflict; the copy that lost stays in the lake. A later import of the same hour adds its own file.

Coverage: the API delivers whole hours, so a delivery's partition marks its hour delivered (data quality's
coverage, warm-up). An archive says nothing of what it lacks: its hours count as delivered only within the range
`complete` names (`fleetlake import --complete-start/--complete-end`), where every hour of each hourly dataset the
import read gets a file, an empty one when the archive has no record in it, exactly as an empty API hour; its
records outside that range land in `import-{T}-partial.parquet`, counted but not marking their hour delivered.
"""

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from pipelines import lenient_json
from pipelines.gbfs_v2 import ACCOUNT
from pipelines.ingest import PartitionResult, hours_between, write_partition
from pipelines.lake.datasets import DATASETS, EPOCH, Dataset, Quarantined, parse
from pipelines.lake.filesystem import readable, write_whole
from pipelines.lake.legacy_mds import LEGACY_DATASETS, dataset_for
from pipelines.lake.mds_versions import MDS_VERSIONS, MdsVersion
from pipelines.lake.plausibility import FUTURE_TOLERANCE
from pipelines.lake.store import IMPORT_FORMAT, Lake, Partition, check_zone_id, import_stem, snapshot_stem

SUFFIXES = (".json", ".geojson", ".ndjson", ".jsonl")
"""File names read (each also gzip'd, `.gz`); any other file of a folder is listed as skipped."""
EARLIEST_MS = 946_684_800_000
"""2000-01-01: an earlier MDS time is seconds sent as milliseconds or a placeholder (pipelines/lake/records.py)."""
MANIFESTS = "_imports"
"""The lake folder of each import's manifest (`{T}.json`): its files, their SHA-256, kinds, and where they landed."""
TIME_FIELDS: dict[tuple[str, str], str] = {
    ("2.0", "mds_trips"): "end_time",
    ("2.0", "mds_events"): "timestamp",
    ("1.2", "mds_trips"): "end_time",
    ("0.4", "mds_trips"): "end_time",
    ("1.2", "mds_events"): "event_time",
    ("0.4", "mds_events"): "event_time",
}
"""The field that places a record in its hour, as the API path's request parameter partitions it."""
STATED_DATASETS = (
    "mds_trips",
    "mds_events",
    "mds_vehicles",
    "mds_vehicle_status",
    "gbfs_vehicle_status",
    "gbfs_v2_free_bike_status",
)
"""The datasets `Stated.dataset` may name: those a bare record list can hold."""


class Skipped(Exception):
    """A file imported in no dataset, with the reason (not archive data, or a fact it lacks and no option gave)."""


@dataclass(frozen=True)
class Stated:
    """What the operator states for files that cannot say it themselves."""

    zone: str | None = None
    mds_version: MdsVersion | None = None
    captured_at: datetime | None = None
    dataset: str | None = None
    """The dataset of a bare record list whose records' shape does not tell (see STATED_DATASETS)."""


@dataclass
class ArchiveFile:
    """One file read: what it is, its records, and where they go."""

    path: Path
    label: str
    """What the file is, in words: `MDS 1.2 status_changes`, `GBFS 2.3 free_bike_status`, ..."""
    datasets: tuple[Dataset, ...]
    """The lake datasets it feeds, as parsers of its version (MDS 1.2/0.4 /vehicles feeds two)."""
    version: str
    records: list[msgspec.Raw | lenient_json.Unreadable] = field(default_factory=list)
    body: bytes | None = None
    """A snapshot response as the file holds it (its raw kept as is); None: records re-wrapped per partition."""
    zones: tuple[str, ...] = ()
    captured_at: datetime | None = None


@dataclass
class DatasetTally:
    """What one dataset received from the import."""

    files: set[str] = field(default_factory=set)
    received: int = 0
    rows: int = 0
    quarantined: int = 0
    duplicates: int = 0
    conflicts: int = 0
    hours: set[tuple[str, datetime]] = field(default_factory=set)
    """(zone, hour) of the hourly partitions written (records, or an empty complete hour)."""
    snapshots: set[tuple[str, datetime]] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)
    """Why records were quarantined, by reason (the quarantine holds each record with its own)."""


@dataclass
class ImportReport:
    imported_at: datetime
    files: int = 0
    datasets: dict[str, DatasetTally] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    complete_hours: int = 0
    manifest: Path | None = None

    def tally(self, dataset: str) -> DatasetTally:
        return self.datasets.setdefault(dataset, DatasetTally())

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        """The hours the import wrote hourly partitions in, [first, last + 1 h); None: no hourly data."""
        hours = [hour for t in self.datasets.values() for _, hour in t.hours]
        return (min(hours), max(hours) + timedelta(hours=1)) if hours else None


@dataclass(frozen=True)
class FileDone:
    """Progress: one file read and written (or skipped)."""

    path: Path
    label: str
    received: int
    rows: int
    quarantined: int


# -- reading a file ------------------------------------------------------------------------------------------------


def archive_files(paths: Sequence[Path]) -> list[Path]:
    """Every file under `paths` (folders recursively, hidden ones left out), in path order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append(path)
    return sorted(dict.fromkeys(found))


def _readable_name(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(SUFFIXES)


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it is gzip (by its magic number, whatever its name)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise Skipped(f"a gzip file that does not decompress: {e}") from None
    return data


def _keys(raw: msgspec.Raw | bytes) -> dict[str, msgspec.Raw] | None:
    try:
        return msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def _text(raw: msgspec.Raw | None) -> str | None:
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return str(value) if isinstance(value, str | int | float) else None


def _records(body: bytes) -> list[msgspec.Raw | lenient_json.Unreadable] | None:
    """A bare list's or a JSON lines file's records (None: neither)."""
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        try:
            return list(msgspec.json.decode(stripped, type=list[msgspec.Raw]))
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            try:
                values = lenient_json.loads(stripped)
            except (ValueError, RecursionError):
                return None
            if not isinstance(values, list):
                return None
            return [
                lenient_json.Unreadable("; ".join(found), lenient_json.dumps(v))
                if (found := lenient_json.problems(v))
                else msgspec.Raw(msgspec.json.encode(v))
                for v in values
            ]
    lines = [line.strip() for line in stripped.splitlines()]
    records: list[msgspec.Raw | lenient_json.Unreadable] = []
    for line in lines:
        if not line:
            continue
        if _keys(line) is None:  # a line that is not one JSON object: unreadable, its text kept
            records.append(lenient_json.Unreadable("not a JSON object", line.decode("utf-8", "replace")))
        else:
            records.append(msgspec.Raw(line))
    return records


def _mds_family(keys: set[str]) -> tuple[str, MdsVersion | None] | None:
    """(dataset, version) an MDS record's fields say (version None: they do not tell 1.2 from 0.4)."""
    if "trip_id" in keys and "start_location" in keys:
        return "mds_trips", "2.0"
    if "trip_id" in keys and "route" in keys:
        return "mds_trips", "1.2" if "propulsion_types" in keys else "0.4" if "propulsion_type" in keys else None
    if "last_event" in keys and "device_id" in keys:
        return "mds_vehicle_status", "2.0"
    if "event_id" in keys and "event_types" in keys:
        return "mds_events", "2.0"
    if "event_type_reason" in keys and "event_time" in keys:
        return "mds_events", "0.4"
    if "event_types" in keys and "event_time" in keys:
        return "mds_events", "1.2"
    if "last_vehicle_state" in keys:
        return "mds_vehicles", "1.2"
    if "last_event_type_reason" in keys:
        return "mds_vehicles", "0.4"
    if "device_id" in keys and "propulsion_types" in keys and "vehicle_id" in keys:
        return "mds_vehicles", "2.0"
    return None


def _gbfs_family(keys: set[str]) -> str | None:
    if "bike_id" in keys:
        return "gbfs_v2_free_bike_status"
    if "vehicle_id" in keys and "is_reserved" in keys and "device_id" not in keys:
        return "gbfs_vehicle_status"
    return None


def _version_of(said: str | None) -> MdsVersion | None:
    for version in MDS_VERSIONS:
        if said is not None and (said == version or said.startswith(version + ".")):
            return version
    return None


def _first_keys(records: Sequence[msgspec.Raw | lenient_json.Unreadable]) -> set[str]:
    for record in records:
        if isinstance(record, msgspec.Raw) and (keys := _keys(record)) is not None:
            return set(keys)
    return set()


def _ms_time(raw: msgspec.Raw | None) -> datetime | None:
    """An MDS `last_updated`: epoch ms, as text too, or the seed's nested `{"last_updated": ms}`."""
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if isinstance(value, dict):
        value = value.get("last_updated")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= EARLIEST_MS:
        return EPOCH + timedelta(milliseconds=value)
    return None


def _gbfs_time(raw: msgspec.Raw | None) -> datetime | None:
    """A GBFS `last_updated`: POSIX seconds (1.x, 2.x) or RFC 3339 (3.0)."""
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value * 1000 >= EARLIEST_MS:
        return EPOCH + timedelta(seconds=value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    return None


GBFS_FEEDS: dict[str, str] = {
    "vehicles": "gbfs_vehicle_status",
    "bikes": "gbfs_v2_free_bike_status",
    "geofencing_zones": "gbfs_geofencing_zones",
    "vehicle_types": "gbfs_vehicle_types",
    "plans": "gbfs_pricing_plans",
    "regions": "gbfs_v2_system_regions",
}
"""GBFS: the key of `data` holding a feed's records, and its lake dataset (stations and system_information are told
by their fields)."""
GBFS_NOT_KEPT = {
    "feeds": "a GBFS discovery document (gbfs.json): it lists feeds, it holds no records",
    "en": "a GBFS discovery document (gbfs.json): it lists feeds, it holds no records",
    "versions": "GBFS gbfs_versions: it lists versions, it holds no records",
    "datasets": "GBFS manifest: it lists systems, it holds no records",
    "alerts": "GBFS system_alerts: the lake has no dataset for alerts",
    "rental_hours": "GBFS system_hours: the lake has no dataset for opening hours",
    "calendars": "GBFS system_calendar: the lake has no dataset for calendars",
}
MDS_NOT_KEPT = {
    "policies": "MDS Policy: not lake data; policies are read from FLEETLAKE_POLICY_DIR",
    "geographies": "MDS Geography: not lake data; policy geographies are read from FLEETLAKE_POLICY_DIR",
    "geography": "MDS Geography: not lake data; policy geographies are read from FLEETLAKE_POLICY_DIR",
    "jurisdictions": "MDS Jurisdiction: the lake has no dataset for jurisdictions",
    "measures": "an MDS Metrics query: the warehouse computes the metrics (docs/metrics.md)",
    "rows": "an MDS Metrics response: the warehouse computes the metrics (docs/metrics.md)",
    "telemetry": "MDS telemetry: the lake has no dataset for telemetry",
    "stops": "MDS stops: the lake has no dataset for stops",
    "reports": "MDS reports: the lake has no dataset for reports",
    "$schema": "a JSON Schema: it describes data, it holds none",
}


def _parser(name: str, version: str) -> Dataset:
    legacy = _version_of(version)
    if legacy is not None and legacy != "2.0" and (legacy, name) in LEGACY_DATASETS:
        return LEGACY_DATASETS[(legacy, name)]
    return DATASETS[name]


def _mds_datasets(name: str, version: MdsVersion) -> tuple[Dataset, ...]:
    if name == "mds_vehicles" and version != "2.0":  # 1.2/0.4 /vehicles says what each vehicle is and its status
        return (_parser("mds_vehicles", version), _parser("mds_vehicle_status", version))
    return (_parser(name, version),)


def read_archive_file(path: Path, stated: Stated) -> ArchiveFile:
    """What the file is and its records; `Skipped` (with the reason) when it is none of the lake's data or lacks a
    fact no option gave."""
    if not _readable_name(path):
        raise Skipped(f"not a JSON file by its name (read: {', '.join(SUFFIXES)}, each also .gz)")
    body = read_bytes(path)
    top = _keys(body) if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else None
    if top is None:
        records = _records(body)
        if records is None:
            raise Skipped("not JSON: neither a document, a list of records nor one record a line")
        if top is None and len(records) == 1 and isinstance(records[0], msgspec.Raw):
            top = _keys(records[0])  # a one-line file may be a whole response
            if top is not None and not (top.keys() & {"data", "trips", "events", "vehicles", "vehicles_status"}):
                top = None
        if top is None:
            return _bare(path, records, stated)
    return _document(path, body, top, stated)


def _bare(path: Path, records: list[msgspec.Raw | lenient_json.Unreadable], stated: Stated) -> ArchiveFile:
    """A list of records without an envelope: their shape says what they are, else `Stated.dataset`."""
    keys = _first_keys(records)
    mds = _mds_family(keys)
    gbfs = _gbfs_family(keys)
    if mds is None and gbfs is None and stated.dataset is not None:
        if stated.dataset.startswith("mds_"):
            mds = (stated.dataset, None)
        else:
            gbfs = stated.dataset
    if mds is not None:
        name, told = mds
        version = told or stated.mds_version or ("2.0" if stated.dataset == name else None)
        if version is None:
            raise Skipped(f"MDS {name} records of 1.2 or 0.4, which they do not tell: give --mds-version")
        label = f"MDS {version} {name.removeprefix('mds_')} records"
        return ArchiveFile(path, label, _mds_datasets(name, version), version, records)
    if gbfs is not None:
        version_text = "2.3" if gbfs == "gbfs_v2_free_bike_status" else "3.0"
        return ArchiveFile(path, f"GBFS {gbfs} records", (DATASETS[gbfs],), version_text, records)
    raise Skipped(
        "a list of records whose fields say no dataset (none, or unknown ones): give --dataset "
        f"({', '.join(STATED_DATASETS)})" + ("" if records else "; the list is empty")
    )


def _document(path: Path, body: bytes, top: dict[str, msgspec.Raw], stated: Stated) -> ArchiveFile:
    said = _text(top.get("version"))
    for key in ("trips", "events", "vehicles_status", "vehicles"):  # MDS 2.0: records at the top
        if key in top:
            name = {"trips": "mds_trips", "events": "mds_events"}.get(key, f"mds_{key}")
            if name == "mds_vehicles_status":
                name = "mds_vehicle_status"
            records = _list(top[key], path)
            return ArchiveFile(
                path, f"MDS 2.0 {key}", (DATASETS[name],), said or "2.0", records,
                captured_at=_ms_time(top.get("last_updated")),
            )  # fmt: skip
    for key, reason in MDS_NOT_KEPT.items():
        if key in top:
            raise Skipped(reason)
    if _text(top.get("type")) in {"FeatureCollection", "Feature"}:
        raise Skipped("GeoJSON: not lake data; policy geographies are read from FLEETLAKE_POLICY_DIR")
    data = top.get("data")
    inner = _keys(data) if data is not None else None
    if data is not None and inner is None:  # the zone API's areasOccupancy: a list in `data`
        records = _list(data, path)
        if {"occupancy", "capacity"} <= _first_keys(records) or not records:
            return ArchiveFile(path, "zone API areasOccupancy", (DATASETS["zone_area_occupancy"],), "zone", records)
        raise Skipped("`data` is a list of unknown records")
    if inner is None:
        raise Skipped(f"an unknown document (top-level keys: {', '.join(sorted(top)[:8])})")
    for key, reason in MDS_NOT_KEPT.items():
        if key in inner:
            raise Skipped(reason)
    if "attributes" in inner:
        return _zone_api(path, inner)
    legacy = _version_of(said)
    for key in ("trips", "status_changes", "vehicles"):
        if key not in inner or legacy == "2.0":
            continue
        records = _list(inner[key], path)
        keys = _first_keys(records)
        if key == "vehicles" and (legacy is None and "device_id" not in keys):
            break  # GBFS 3.0 vehicle_status, below
        family = _mds_family(keys)
        version = legacy or (family[1] if family else None) or stated.mds_version
        if version is None or version == "2.0":
            raise Skipped(f"MDS {key} of 1.2 or 0.4, which the file does not say: give --mds-version")
        name = {"trips": "mds_trips", "status_changes": "mds_events", "vehicles": "mds_vehicles"}[key]
        return ArchiveFile(
            path, f"MDS {version} {key}", _mds_datasets(name, version), said or version, records,
            captured_at=_ms_time(top.get("last_updated")),
        )  # fmt: skip
    return _gbfs(path, body, top, inner, said)


def _gbfs(
    path: Path, body: bytes, top: dict[str, msgspec.Raw], inner: dict[str, msgspec.Raw], said: str | None
) -> ArchiveFile:
    version = said or "1.x"
    captured_at = _gbfs_time(top.get("last_updated"))
    for key, reason in GBFS_NOT_KEPT.items():
        if key in inner:
            raise Skipped(reason)
    if "system_id" in inner:
        return ArchiveFile(
            path, f"GBFS {version} system_information", (DATASETS["gbfs_system_information"],), version,
            body=body, captured_at=captured_at,
        )  # fmt: skip
    if "stations" in inner:
        keys = _first_keys(_list(inner["stations"], path))
        if not keys:  # an empty list says neither: the feed's file name decides, as GBFS names them
            stem = path.name.lower().split(".")[0]
            if stem not in {"station_status", "station_information"}:
                raise Skipped("an empty GBFS station list of a file not named station_status or station_information")
            keys = {"num_docks_available"} if stem == "station_status" else {"name"}
        status = bool(keys & {"num_bikes_available", "num_vehicles_available", "num_docks_available"})
        name = "gbfs_station_status" if status else "gbfs_station_information"
        label = "station_status" if status else "station_information"
        return ArchiveFile(
            path, f"GBFS {version} {label}", (DATASETS[name],), version, body=body, captured_at=captured_at
        )
    for key, name in GBFS_FEEDS.items():
        if key in inner:
            if name == "gbfs_v2_system_regions" and version.startswith("3"):
                raise Skipped("GBFS 3.0 system_regions: the lake keeps regions of GBFS 2.3's account-wide feed only")
            feed = {"gbfs_vehicle_status": "vehicle_status", "gbfs_v2_free_bike_status": "free_bike_status"}.get(
                name, key if key != "plans" else "system_pricing_plans"
            )
            if key == "regions":
                feed = "system_regions"
            return ArchiveFile(
                path, f"GBFS {version} {feed}", (DATASETS[name],), version, body=body, captured_at=captured_at
            )
    raise Skipped(f"an unknown document (keys of `data`: {', '.join(sorted(inner)[:8])})")


def _zone_api(path: Path, inner: dict[str, msgspec.Raw]) -> ArchiveFile:
    attributes = _keys(inner["attributes"]) or {}
    if "zones" in attributes:
        return ArchiveFile(
            path, "zone API zone/info", (DATASETS["zone_info"],), "zone", _list(attributes["zones"], path)
        )
    if "areas" in attributes:
        zone = _text(inner.get("id"))
        return ArchiveFile(
            path, "zone API zone areas", (DATASETS["zone_areas"],), "zone", _list(attributes["areas"], path),
            zones=(zone,) if zone else (),
        )  # fmt: skip
    raise Skipped(f"an unknown zone API document (attributes: {', '.join(sorted(attributes)[:8])})")


def _list(raw: msgspec.Raw, path: Path) -> list[msgspec.Raw | lenient_json.Unreadable]:
    records = _records(bytes(raw))
    if records is None or not bytes(raw).lstrip().startswith(b"["):
        raise Skipped("its record list is not a list")
    return records


# -- placing records -----------------------------------------------------------------------------------------------


def _envelope(dataset: Dataset, version: str, records: Sequence[msgspec.Raw | lenient_json.Unreadable]) -> bytes:
    """A response of `dataset` holding `records` byte for byte, saying `version`: what the lake keeps as the raw
    delivery of an imported partition, so `fleetlake reparse` and the version mapping read it as the API's."""
    texts = [bytes(r) if isinstance(r, msgspec.Raw) else r.raw.encode() for r in records]
    node = b"[" + b",".join(texts) + b"]"
    for key in reversed(dataset.path[1:]):
        node = b'{"' + key.encode() + b'":' + node + b"}"
    return b'{"version":' + msgspec.json.encode(version) + b',"' + dataset.path[0].encode() + b'":' + node + b"}"


def _time_struct(name: str) -> type[msgspec.Struct]:
    return msgspec.defstruct(f"When_{name}", [(name, int | None, None)])


_WHEN = {name: _time_struct(name) for name in set(TIME_FIELDS.values())}


def place(
    records: Sequence[msgspec.Raw | lenient_json.Unreadable], time_field: str, clock: datetime
) -> tuple[dict[datetime, list[msgspec.Raw]], list[msgspec.Raw | lenient_json.Unreadable]]:
    """The records by the UTC hour their `time_field` falls in, and those it places in no hour."""
    when = _WHEN[time_field]
    latest = (clock - EPOCH) // timedelta(milliseconds=1) + FUTURE_TOLERANCE // timedelta(milliseconds=1)
    hours: dict[datetime, list[msgspec.Raw]] = {}
    unplaced: list[msgspec.Raw | lenient_json.Unreadable] = []
    for record in records:
        if not isinstance(record, msgspec.Raw):
            unplaced.append(record)
            continue
        try:
            ms = getattr(msgspec.json.decode(record, type=when), time_field)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            ms = None
        if ms is None or not EARLIEST_MS <= ms <= latest:
            unplaced.append(record)
            continue
        hour = EPOCH + timedelta(hours=ms // 3_600_000)
        hours.setdefault(hour, []).append(record)
    return hours, unplaced


# -- the import ----------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    lake: Lake
    stated: Stated
    complete: tuple[datetime, datetime] | None
    imported_at: datetime
    report: ImportReport
    written: dict[tuple[str, str, datetime, str], PartitionResult] = field(default_factory=dict)
    """Each hourly partition the import wrote (records added by a later file of the import rewrite it)."""
    reasons: dict[tuple[str, str, datetime, str], list[str]] = field(default_factory=dict)
    """The quarantine reasons each hourly partition's last write counted."""
    hourly_read: set[tuple[str, str, str]] = field(default_factory=set)
    """(dataset, zone, version) of every hourly dataset a file held, for the complete hours' empty partitions."""

    def stem(self, hour: datetime, version: str) -> str:
        """An hour's file of the import; records of an older MDS version, parsed by their own words, in their own."""
        whole = self.complete is not None and self.complete[0] <= hour < self.complete[1]
        return import_stem(self.imported_at, complete=whole, variant="" if version == "2.0" else f"-mds{version}")


def import_archives(
    lake: Lake,
    paths: Sequence[Path],
    stated: Stated = Stated(),
    complete: tuple[datetime, datetime] | None = None,
    imported_at: datetime | None = None,
    on_file: Callable[[FileDone], None] | None = None,
    files: Sequence[Path] | None = None,
) -> ImportReport:
    """Import every archive file under `paths` into `lake`; one file's failure is its own (listed, the others go on).

    `complete` is [start, end) of the whole UTC hours the archive covers completely (see the module's docstring).
    """
    imported_at = (imported_at or datetime.now(UTC)).astimezone(UTC)
    imported_at = imported_at.replace(microsecond=imported_at.microsecond // 1000 * 1000)
    run = _Run(lake, stated, complete, imported_at, ImportReport(imported_at))
    manifest: list[dict[str, Any]] = []
    for path in files if files is not None else archive_files(paths):
        run.report.files += 1
        entry: dict[str, Any] = {"file": str(path)}
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entry["sha256"] = digest
            archive = read_archive_file(path, stated)
            entry["kind"] = archive.label
            done = _import_file(run, archive)
            entry.update(received=done.received, rows=done.rows, quarantined=done.quarantined)
        except Skipped as e:
            run.report.skipped.append((path, str(e)))
            entry["skipped"] = str(e)
            done = FileDone(path, "skipped", 0, 0, 0)
        except Exception as e:  # one file's failure is its own; the others go on
            reason = f"{type(e).__name__}: {e}"
            run.report.failed.append((path, reason))
            entry["failed"] = reason
            done = FileDone(path, "failed", 0, 0, 0)
        manifest.append(entry)
        if on_file is not None:
            on_file(done)
    if complete is not None:
        _complete_hours(run, complete)
    run.report.manifest = _write_manifest(lake, run, manifest)
    return run.report


def _zone_of(run: _Run, archive: ArchiveFile, dataset: Dataset) -> list[str]:
    if dataset.name.startswith("gbfs_v2_"):
        return [ACCOUNT]  # GBFS 2.x's account-wide datasets: placed in zones by geometry in the warehouse
    if dataset.zone_column is not None:
        return sorted({str(z) for z in _zone_ids(archive)})
    zones = archive.zones or ((run.stated.zone,) if run.stated.zone else ())
    if not zones:
        raise Skipped(f"{archive.label}: its records do not say their zone: give --zone")
    return [check_zone_id(z) for z in zones]


def _zone_ids(archive: ArchiveFile) -> list[str]:
    found = []
    for record in archive.records:
        keys = _keys(record) if isinstance(record, msgspec.Raw) else None
        zone = _text(keys.get("zoneId")) if keys else None
        if zone is not None:
            found.append(check_zone_id(zone))
    if not found:
        raise Skipped(f"{archive.label}: no record says its zone (zoneId)")
    return found


def _import_file(run: _Run, archive: ArchiveFile) -> FileDone:
    received = rows = quarantined = 0
    for dataset in archive.datasets:
        zones = _zone_of(run, archive, dataset)
        tally = run.report.tally(dataset.name)
        tally.files.add(str(archive.path))
        if dataset.kind == "hourly":
            counts = _import_hourly(run, archive, dataset, zones[0])
        else:
            counts = _import_snapshot(run, archive, dataset, zones)
        if dataset is archive.datasets[0]:
            received, rows, quarantined = counts
    return FileDone(archive.path, archive.label, received, rows, quarantined)


def _add(tally: DatasetTally, result: PartitionResult, reasons: Sequence[str], *, count_received: bool = True) -> None:
    if count_received:
        tally.received += result.received
        tally.quarantined += result.quarantined
        tally.duplicates += result.duplicates
        tally.conflicts += result.conflicts
        tally.reasons.update(reasons)
    tally.rows += result.rows


def _quarantine_reasons(lake: Lake, partition: Partition, stem: str) -> list[str]:
    path = lake.quarantine_path(partition, stem)
    if not path.exists():
        return []
    return [_short(r) for r in pl.read_parquet(readable(path), columns=["reason"])["reason"].to_list()]


def _short(reason: str) -> str:
    """A reason without the record's own values, so that like reasons are counted together."""
    return reason.split(" - at ")[0].split(" is outside")[0][:120]


def _import_hourly(run: _Run, archive: ArchiveFile, dataset: Dataset, zone: str) -> tuple[int, int, int]:
    version = _version_of(archive.version) or "2.0"
    run.hourly_read.add((dataset.name, zone, archive.version))
    hours, unplaced = place(archive.records, TIME_FIELDS[(version, dataset.name)], run.imported_at)
    tally = run.report.tally(dataset.name)
    received = rows = quarantined = 0
    for hour in sorted(hours):
        partition = Partition(dataset.name, zone, hour)
        stem = run.stem(hour, version)
        page = _envelope(dataset, archive.version, hours[hour])
        key = (dataset.name, zone, hour, version)
        pages = [*run.lake.read_raw(partition, stem=stem), page] if key in run.written else [page]
        previous = run.written.get(key)
        result = write_partition(
            run.lake, dataset, partition, pages, (hour, hour + timedelta(hours=1)),
            stem=stem, ingested_at=run.imported_at, addition=True,
        )  # fmt: skip
        if result.status != "written":
            raise ValueError(f"{dataset.name} zone {zone} {hour:%Y-%m-%dT%H}: {result.error}")
        run.written[key] = result
        # A rewrite counts the partition anew: take back what its earlier write counted.
        if previous is not None:
            _subtract(tally, previous, run.reasons.get(key, []))
        run.reasons[key] = _quarantine_reasons(run.lake, partition, stem)
        _add(tally, result, run.reasons[key])
        tally.hours.add((zone, hour))
        received += len(hours[hour])
        rows += result.rows - (previous.rows if previous else 0)
        quarantined += result.quarantined - (previous.quarantined if previous else 0)
    if unplaced:
        quarantined += _quarantine_unplaced(run, dataset, archive, zone, unplaced)
        received += len(unplaced)
    return received, rows, quarantined


def _subtract(tally: DatasetTally, result: PartitionResult, reasons: list[str]) -> None:
    tally.received -= result.received
    tally.rows -= result.rows
    tally.quarantined -= result.quarantined
    tally.duplicates -= result.duplicates
    tally.conflicts -= result.conflicts
    tally.reasons.subtract(reasons)  # recounted from the quarantine file the rewrite replaced whole
    tally.reasons += Counter()  # drop the counts that fell to zero


def _quarantine_unplaced(
    run: _Run,
    dataset: Dataset,
    archive: ArchiveFile,
    zone: str,
    records: Sequence[msgspec.Raw | lenient_json.Unreadable],
) -> int:
    """Quarantine the records whose time places them in no hour, in the import's own hour, each with its reason."""
    field_name = TIME_FIELDS[(_version_of(archive.version) or "2.0", dataset.name)]
    rejected: list[Quarantined] = []
    for index, record in enumerate(records):
        if isinstance(record, lenient_json.Unreadable):
            rejected.append(Quarantined(index, f"not placed in an hour: {record.reason}", record.raw))
            continue
        text = bytes(record).decode("utf-8", "replace")
        try:
            parsed = parse(dataset, [_envelope(dataset, archive.version, [record])], None, clock=run.imported_at)
            found = parsed.quarantined[0].reason if parsed.quarantined else None
        except ValueError as e:  # PayloadError: the record is not JSON
            found = str(e)
        why = found or f"`{field_name}` is later than the import"
        rejected.append(Quarantined(index, f"not placed in an hour by its `{field_name}`: {why}", text))
    hour = run.imported_at.replace(minute=0, second=0, microsecond=0)
    partition = Partition(dataset.name, zone, hour)
    stem = import_stem(run.imported_at, complete=False) + f"-unplaced-{abs(hash(str(archive.path))) % 10**8:08d}"
    run.lake.write_quarantine(partition, rejected, (hour, hour + timedelta(hours=1)), run.imported_at, stem)
    tally = run.report.tally(dataset.name)
    tally.received += len(rejected)
    tally.quarantined += len(rejected)
    tally.reasons.update(_short(q.reason) for q in rejected)
    return len(rejected)


def _import_snapshot(run: _Run, archive: ArchiveFile, dataset: Dataset, zones: list[str]) -> tuple[int, int, int]:
    captured_at = archive.captured_at or run.stated.captured_at
    if captured_at is None:
        raise Skipped(f"{archive.label}: the file says no capture time (last_updated): give --captured-at")
    captured_at = captured_at.astimezone(UTC)
    captured_at = captured_at.replace(microsecond=captured_at.microsecond // 1000 * 1000)
    pages = [archive.body] if archive.body is not None else [_envelope(dataset, archive.version, archive.records)]
    hour = captured_at.replace(minute=0, second=0, microsecond=0)
    tally = run.report.tally(dataset.name)
    received = rows = quarantined = 0
    stem = snapshot_stem(captured_at)
    for zone in zones:
        partition = Partition(dataset.name, zone, hour)
        if run.lake.data_path(partition, stem).exists() and run.lake.read_raw(partition, stem=stem) != pages:
            raise Skipped(
                f"{dataset.name} of zone {zone} already has a snapshot at {captured_at:%Y-%m-%dT%H:%M:%S.%fZ} with "
                "other content (a snapshot is one per instant): the lake's is kept"
            )
    for n, zone in enumerate(zones):
        partition = Partition(dataset.name, zone, hour)
        result = write_partition(
            run.lake, dataset, partition, pages, (captured_at, captured_at), stem=stem, captured_at=captured_at,
            rows_filter=pl.col(dataset.zone_column) == zone if dataset.zone_column else None,
        )  # fmt: skip
        if result.status != "written":
            raise ValueError(f"{dataset.name} zone {zone} at {captured_at:%Y-%m-%dT%H:%M:%S}: {result.error}")
        # A response answering for every zone is received once, whatever the zones it is split into.
        _add(tally, result, _quarantine_reasons(run.lake, partition, stem), count_received=n == 0)
        tally.snapshots.add((zone, captured_at))
        rows += result.rows
        if n == 0:
            received, quarantined = result.received, result.quarantined
    return received, rows, quarantined


def _complete_hours(run: _Run, complete: tuple[datetime, datetime]) -> None:
    """Every hour of `complete` of each hourly dataset and zone the import read gets its file, an empty one where
    the archive had no record: the hour is delivered, as an empty API hour is."""
    seen: dict[tuple[str, str], str] = {}
    for name, zone, version in sorted(run.hourly_read):
        seen.setdefault((name, zone), version)
    written = {key[:3] for key in run.written}
    for (name, zone), said in seen.items():
        dataset = _parser(name, said)
        version = _version_of(said) or "2.0"
        for hour in hours_between(*complete):
            if (name, zone, hour) in written:
                continue
            partition = Partition(name, zone, hour)
            result = write_partition(
                run.lake, dataset, partition, [], (hour, hour + timedelta(hours=1)),
                stem=run.stem(hour, version), ingested_at=run.imported_at, addition=True,
            )  # fmt: skip
            run.written[(name, zone, hour, version)] = result
            run.report.tally(name).hours.add((zone, hour))
            run.report.complete_hours += 1


def _write_manifest(lake: Lake, run: _Run, files: list[dict[str, Any]]) -> Path:
    """The import's record in the lake: each file, its SHA-256 and kind, and what each dataset received."""
    report = run.report
    document = {
        "imported_at": run.imported_at.isoformat(),
        "stated": {
            "zone": run.stated.zone,
            "mds_version": run.stated.mds_version,
            "captured_at": run.stated.captured_at.isoformat() if run.stated.captured_at else None,
            "dataset": run.stated.dataset,
        },
        "complete": [t.isoformat() for t in run.complete] if run.complete else None,
        "files": files,
        "datasets": {
            name: {
                "files": len(t.files),
                "received": t.received,
                "rows": t.rows,
                "quarantined": t.quarantined,
                "duplicates": t.duplicates,
                "conflicts": t.conflicts,
                "hours": len(t.hours),
                "snapshots": len(t.snapshots),
                "reasons": dict(t.reasons.most_common()),
            }
            for name, t in sorted(report.datasets.items())
        },
    }
    path = lake.root / MANIFESTS / f"{run.imported_at:%Y%m%dT%H%M%S%fZ}.json"
    text = json.dumps(document, indent=2).encode()
    write_whole(path, lambda target: target.write_bytes(text) if isinstance(target, Path) else target.write(text))
    return Path(str(path))


def reparse_imports(lake: Lake, dataset: str, zone_id: str, hour: datetime) -> list[PartitionResult]:
    """Rebuild an hourly partition's imported files from the raw pages each import kept (as `fleetlake reparse`
    rebuilds its delivery), each with its own time; an import's empty complete hour keeps no pages and stays."""
    partition = Partition(dataset, zone_id, hour)
    stems = sorted({page.name.split(".page-")[0] for page in lake.raw_dir(partition).glob("import-*.page-*.json.gz")})
    results = []
    for stem in stems:
        pages = lake.read_raw(partition, stem=stem)
        imported_at = datetime.strptime(stem[: len(IMPORT_FORMAT) + 6], IMPORT_FORMAT).replace(tzinfo=UTC)
        parser = dataset_for(dataset, pages)  # the pages say their MDS version
        results.append(
            write_partition(
                lake,
                parser,
                partition,
                pages,
                (hour, hour + timedelta(hours=1)),
                stem=stem,
                keep_raw=False,
                ingested_at=imported_at,
                addition=True,
            )
        )
    return results


def accounted(report: ImportReport) -> Iterator[tuple[str, int, int]]:
    """(dataset, records received, records landed or quarantined or repeated): the two agree for every dataset."""
    for name, t in report.datasets.items():
        yield name, t.received, t.rows + t.quarantined + t.duplicates + t.conflicts
