"""From the Voi API to the lake: fetch, keep the raw response, validate, write each partition atomically.

One window of hours and one set of zones share one path, whether it is the last hour or a 30-day backfill:
every (dataset, zone, hour) is an independent task, run concurrently under the client's rate limiter.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from pipelines.gbfs_v2 import GBFS_V2_FEED, snapshot_targets
from pipelines.lake.datasets import (
    DATASETS,
    EPOCH,
    HOURLY_DATASETS,
    Dataset,
    PayloadError,
    Repeat,
    frame_of,
    parse,
    table_of,
)
from pipelines.lake.filesystem import LakePath, known_absent, readable
from pipelines.lake.fingerprint import records_fingerprint, stored_fingerprint
from pipelines.lake.legacy_mds import dataset_for
from pipelines.lake.store import (
    INGESTED_AT,
    LEGACY_RAW_STEM,
    SUPERSEDED_COLUMNS,
    Lake,
    Partition,
    captured_at_of,
    delivery_stem,
    ingested_at_of,
    snapshot_stem,
)
from pipelines.scrub import scrub
from pipelines.voi.client import FutureHour, HourNotReady, Page, ProviderUnreachable, VoiAuthError, VoiClient, VoiError

GBFS_FEED = {
    "gbfs_vehicle_status": "vehicle_status",
    "gbfs_station_status": "station_status",
    "gbfs_station_information": "station_information",
    "gbfs_geofencing_zones": "geofencing_zones",
    "gbfs_vehicle_types": "vehicle_types",
    "gbfs_system_information": "system_information",
    "gbfs_pricing_plans": "system_pricing_plans",
}
"""Each GBFS dataset and the feed of `gbfs.json` it is read from."""
GBFS_DATASETS = tuple(GBFS_FEED)
MDS_SNAPSHOT_DATASETS = ("mds_vehicles", "mds_vehicle_status")
ZONE_DATASETS = ("zone_info", "zone_areas", "zone_area_occupancy")
HOURLY_ENDPOINTS: dict[str, Callable[[VoiClient, str, datetime], Awaitable[list[Page]]]] = {
    "mds_trips": VoiClient.mds_trips,
    "mds_events": VoiClient.mds_events_historical,
}
"""The client call that fetches one zone and hour of each hourly dataset."""
Status = Literal["written", "unchanged", "not_ready", "future", "failed"]
"""`unchanged`: a delivery of an hourly partition with the same records as the partition's (see write_partition);
nothing was written."""
MAX_CONCURRENT_PARTITIONS = 32
MDS_VERSION_COLUMN = "mds_version"


@dataclass
class PartitionResult:
    dataset: str
    zone_id: str
    hour: datetime
    status: Status
    rows: int = 0
    received: int = 0
    quarantined: int = 0
    duplicates: int = 0
    bytes: int = 0
    error: str | None = None
    conflicts: int = 0
    """Ids the response repeated with other content (the later occurrence is kept)."""


LakeWriter = Callable[..., Awaitable[PartitionResult]]
"""Writes one partition somewhere other than the event loop: `write_partition`'s arguments, its result awaited
(`_lake_writer`'s thread, or the worker processes of pipelines/lake_writers.py)."""


@dataclass
class IngestReport:
    results: list[PartitionResult] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)

    def of(self, dataset: str) -> list[PartitionResult]:
        return [r for r in self.results if r.dataset == dataset]

    def with_status(self, status: Status) -> list[PartitionResult]:
        return [r for r in self.results if r.status == status]

    def summary(self, dataset: str | None = None) -> dict[str, int]:
        rows = self.results if dataset is None else self.of(dataset)
        return {
            "partitions_written": sum(r.status == "written" for r in rows),
            "partitions_unchanged": sum(r.status == "unchanged" for r in rows),
            "partitions_not_ready": sum(r.status == "not_ready" for r in rows),
            "partitions_future": sum(r.status == "future" for r in rows),
            "partitions_failed": sum(r.status == "failed" for r in rows),
            "rows": sum(r.rows for r in rows),
            "received": sum(r.received for r in rows),
            "quarantined": sum(r.quarantined for r in rows),
            "duplicates": sum(r.duplicates for r in rows),
            "conflicts": sum(r.conflicts for r in rows),
            "bytes": sum(r.bytes for r in rows),
        }

    def by_zone(self, dataset: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.of(dataset):
            z = out.setdefault(r.zone_id, {"rows": 0, "quarantined": 0, "partitions": 0})
            z["rows"] += r.rows
            z["quarantined"] += r.quarantined
            z["partitions"] += r.status == "written"
        return out


def failure_reason(error: BaseException) -> str:
    """What a failed partition records and logs: the client's own message, or the kind of error and its text for
    anything else (disk full, a zone id that cannot be a folder, a malformed reply), scrubbed of credentials."""
    text = str(error) if isinstance(error, VoiError) else f"{type(error).__name__}: {error}"
    return scrub(text)


class RunStop:
    """The first failure that dooms every other partition of the run too: credentials refused (401) or the
    provider unreachable. Partitions not yet started then fail at once, naming it, instead of each waiting for
    its own retries to run out."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def note(self, error: BaseException) -> None:
        if self.reason is None and isinstance(error, VoiAuthError | ProviderUnreachable):
            self.reason = failure_reason(error)

    def skipped(self, name: str, zone: str, hour: datetime) -> PartitionResult | None:
        if self.reason is None:
            return None
        return PartitionResult(name, zone, hour, "failed", error=f"not attempted: {self.reason}")


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours starting in [start, end)."""
    h = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while h < end:
        out.append(h)
        h += timedelta(hours=1)
    return out


def write_partition(
    lake: Lake,
    dataset: Dataset,
    partition: Partition,
    pages: Sequence[bytes],
    window: tuple[datetime, datetime],
    *,
    stem: str = "part-0",
    captured_at: datetime | None = None,
    keep_raw: bool = True,
    rows_filter: pl.Expr | None = None,
    ingested_at: datetime | None = None,
    addition: bool = False,
    rewrite_unchanged: bool = False,
) -> PartitionResult:
    """Parse `pages` and replace the partition's data, quarantine and raw files; the one write path.

    An hourly partition is one delivery of its hour, stamped `ingested_at` on every row: its raw response is kept
    under the delivery's own stem beside the earlier ones, and the records it replaced (changed or no longer
    delivered) or that its response repeated go to `superseded/` (see `superseded_records`). A delivery that
    repeats the newest one byte for byte is that delivery again: it keeps its time and adds no raw copy.
    A delivery whose records are the partition's (the same records, rejections and repeats: its content
    fingerprint, pipelines/lake/fingerprint.py, equals the one stored with the partition's file) writes nothing,
    neither its raw response nor the partition, and reports `unchanged`: the partition, its delivery time and its
    kept raw response stay those of the delivery that first carried these records (responses differ in
    `last_updated` on every request, so keeping each would keep a copy an hour for every lookback hour). A delivery
    that differs in any record is kept whole, as any other. A re-parse (`keep_raw=False`) always rewrites, and so
    does every delivery with `rewrite_unchanged` (what each delivery cost before fingerprints: the hourly tick
    benchmark's yardstick).
    A record time beyond the delivery's clock (`captured_at` for a snapshot, else `ingested_at`) and a tolerance is
    in the future (pipelines/lake/plausibility.py), so a re-parse judges it as the delivery was judged.

    An `addition` to an hourly partition (an imported archive's records of the hour, `stem` its own) is written
    beside the hour's deliveries under its stem, raw response and repeated copies included: it replaces and
    withdraws nothing, and staging's newest-delivery rule decides between its records and theirs.
    """
    ingested_at = (ingested_at or datetime.now(UTC)).astimezone(UTC)
    ingested_at = ingested_at.replace(microsecond=ingested_at.microsecond // 1000 * 1000)  # the column is in ms
    hourly = dataset.kind == "hourly"
    raw_stem = "response" if stem == "part-0" else stem
    try:
        parsed = parse(dataset, pages, window if hourly else None, clock=captured_at or ingested_at)
    except PayloadError as e:
        # Keep the bad response for inspection, beside (not over) the last good one.
        if keep_raw:
            lake.write_raw(partition, list(pages), stem=f"rejected-{ingested_at:%Y%m%dT%H%M%S%fZ}")
        return PartitionResult(dataset.name, partition.zone_id, partition.hour, "failed", error=str(e))
    # Arrow throughout for an hourly delivery; Polars only where a filter or a comparison needs it.
    records, frame = parsed.table, None
    if rows_filter is not None:
        frame = parsed.frame.filter(rows_filter)
        records = frame.to_arrow()
    repeated = (
        table_of(dataset, [r.row for r in parsed.repeats]).append_column(
            "conflict", pa.array([r.conflict for r in parsed.repeats], pa.bool_())
        )
        if parsed.repeats
        else None
    )
    fingerprint = records_fingerprint(records, [(q.reason, q.raw) for q in parsed.quarantined], repeated)
    if (
        hourly
        and keep_raw
        and not addition
        and not rewrite_unchanged
        and stored_fingerprint(lake.data_path(partition, stem)) == fingerprint
    ):
        return PartitionResult(
            dataset.name,
            partition.zone_id,
            partition.hour,
            "unchanged",
            rows=records.num_rows,
            received=parsed.received,
            quarantined=len(parsed.quarantined),
            duplicates=parsed.duplicates,
            conflicts=parsed.conflicts,
        )
    if hourly and not addition:
        deliveries = lake.raw_deliveries(partition)
        newest = deliveries[-1] if deliveries else None
        if (
            keep_raw
            and newest is not None
            and newest != LEGACY_RAW_STEM
            and lake.same_raw(partition, list(pages), newest)
        ):
            keep_raw, ingested_at = False, ingested_at_of(newest) or ingested_at
        raw_stem = delivery_stem(ingested_at)
    size = lake.write_raw(partition, list(pages), stem=raw_stem) if keep_raw else 0
    data: pl.DataFrame | pa.Table
    if hourly:  # Arrow from parse to Parquet: pyarrow writes it, in this thread (Polars hands a write to its pools)
        data = records.append_column(INGESTED_AT, _instants(ingested_at, records.num_rows))
        if addition:
            size += lake.write_superseded(
                partition, repeated_records(dataset, parsed.repeats, ingested_at) if parsed.repeats else None, stem
            )
        else:
            superseded = superseded_records(lake, dataset, partition, records, parsed.repeats, ingested_at)
            size += lake.write_superseded(partition, superseded, delivery_stem(ingested_at))
    else:
        data = parsed.frame if frame is None else frame
        if captured_at is not None:
            data = data.hstack([pl.Series("captured_at", _instants(captured_at, data.height))])
    size += lake.write_quarantine(partition, parsed.quarantined, window, ingested_at, stem)
    # The data file last, with the fingerprint of all the above: until it lands, the partition is the old one.
    size += lake.write_data(partition, data, stem, fingerprint=fingerprint)
    return PartitionResult(
        dataset.name,
        partition.zone_id,
        partition.hour,
        "written",
        rows=data.num_rows if isinstance(data, pa.Table) else data.height,
        received=parsed.received,
        quarantined=len(parsed.quarantined),
        duplicates=parsed.duplicates,
        bytes=size,
        conflicts=parsed.conflicts,
    )


def _instants(moment: datetime, rows: int) -> pa.Array:
    """A column holding one instant on every row, in ms: Arrow repeats one scalar (a Python datetime per row, or a
    Polars literal cast, costs ten times as much)."""
    milliseconds = (moment - EPOCH) // timedelta(milliseconds=1)
    return pa.repeat(pa.scalar(milliseconds, pa.timestamp("ms", "UTC")), rows)


def repeated_records(dataset: Dataset, repeats: Sequence[Repeat], ingested_at: datetime) -> pl.DataFrame:
    """The copies a response repeated, which lost to a later occurrence of their id, as superseded records."""
    return frame_of(dataset, [r.row for r in repeats]).with_columns(
        pl.lit(ingested_at).cast(SUPERSEDED_COLUMNS[INGESTED_AT]).alias(INGESTED_AT),
        pl.lit(ingested_at).cast(SUPERSEDED_COLUMNS["superseded_at"]).alias("superseded_at"),
        pl.Series(
            "reason",
            ["conflict_in_response" if r.conflict else "duplicate_in_response" for r in repeats],
            dtype=pl.String,
        ),
    )


def superseded_records(
    lake: Lake,
    dataset: Dataset,
    partition: Partition,
    delivered: pa.Table,
    repeats: Sequence[Repeat],
    ingested_at: datetime,
) -> pl.DataFrame | None:
    """What a delivery of an hourly partition supersedes: the copies its response repeated (they lost to a later
    occurrence), and the records of the partition's previous delivery that it changed or no longer carries (None:
    nothing, as for an hour's first delivery).

    A re-parse of the partition's own delivery finds nothing new to compare against, so it keeps what that delivery
    superseded when it arrived.
    """
    columns = [*dataset.schema, *SUPERSEDED_COLUMNS]
    parts = []
    if repeats:
        parts.append(repeated_records(dataset, repeats, ingested_at))
    previous_path = lake.data_path(partition)
    own_path = lake.superseded_path(partition, delivery_stem(ingested_at))
    previous = _read_if_present(previous_path)
    if previous is not None and INGESTED_AT not in previous.columns:  # written before deliveries were stamped
        previous = previous.with_columns(pl.lit(None, SUPERSEDED_COLUMNS[INGESTED_AT]).alias(INGESTED_AT))
    if previous is not None:  # written before a column existed (vehicle_type, mds_version): null there
        previous = previous.with_columns(
            pl.lit(None, dtype).alias(name) for name, dtype in dataset.schema.items() if name not in previous.columns
        )
    if previous is not None and not previous.is_empty() and previous[INGESTED_AT][0] != ingested_at:
        key = list(dataset.key)
        # A record is the same whichever MDS version delivered it.
        compared_columns = [name for name in dataset.schema if name != MDS_VERSION_COLUMN]
        content = pl.struct(compared_columns).hash(seed=0).alias("content")
        now = pl.DataFrame(pl.from_arrow(delivered)).select(*key, content)
        compared = previous.with_columns(content).join(now, on=key, how="left", suffix="_now")
        reason = (
            pl.when(pl.col("content_now").is_null())
            .then(pl.lit("withdrawn_by_later_delivery"))
            .when(pl.col("content_now") != pl.col("content"))
            .then(pl.lit("changed_by_later_delivery"))
        )
        replaced = compared.with_columns(
            pl.lit(ingested_at).cast(SUPERSEDED_COLUMNS["superseded_at"]).alias("superseded_at"), reason.alias("reason")
        ).filter(pl.col("reason").is_not_null())
        parts.append(replaced.select(columns))
    elif (kept := _read_if_present(own_path)) is not None:
        parts.append(kept.filter(~pl.col("reason").str.ends_with("_in_response")))
    if not parts:
        return None
    return pl.concat([part.select(columns) for part in parts], how="vertical_relaxed")


def _read_if_present(path: LakePath) -> pl.DataFrame | None:
    """A lake file's records, or None when it is not there: in a bucket one GET, where asking first took a HEAD
    and a listing more (an hour's first delivery asks of a file that is not there yet); on disk one stat."""
    if known_absent(path):
        return None
    try:
        return pl.read_parquet(readable(path))
    except FileNotFoundError:
        return None


@contextmanager
def _lake_writer() -> Iterator[LakeWriter]:
    """One thread writes the lake while the event loop keeps fetching; more threads only contend for the GIL
    (measured: a thread per write cost a third more CPU for the same ingest)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-writer") as pool:

        async def write(*args: Any, **kwargs: Any) -> PartitionResult:
            return await asyncio.get_running_loop().run_in_executor(pool, partial(write_partition, *args, **kwargs))

        yield write


async def _bounded(tasks: Iterable[Callable[[], Awaitable[PartitionResult]]]) -> list[PartitionResult]:
    gate = asyncio.Semaphore(MAX_CONCURRENT_PARTITIONS)

    async def run(task: Callable[[], Awaitable[PartitionResult]]) -> PartitionResult:
        async with gate:
            return await task()

    return list(await asyncio.gather(*(run(t) for t in tasks)))


def _report(client: VoiClient, results: list[PartitionResult]) -> IngestReport:
    return IngestReport(
        results=results,
        requests=client.stats.requests,
        retries=client.stats.retries,
        retry_reasons=dict(client.stats.by_reason),
    )


async def ingest_hours(
    client: VoiClient,
    lake: Lake,
    zones: Sequence[str],
    hours: Sequence[datetime],
    datasets: Sequence[str] = HOURLY_DATASETS,
    on_result: Callable[[PartitionResult], None] | None = None,
    rewrite_unchanged: bool = False,
    writer: LakeWriter | None = None,
) -> IngestReport:
    """Ingest every hourly dataset for every zone and hour; not-ready and future hours write nothing, and neither
    does a delivery whose records the partition holds already (unless `rewrite_unchanged`, see write_partition).
    Partitions are written by `writer` (pipelines/lake_writers.py), else by one thread beside the event loop.

    Any error fails only its own partition, with its reason; a refused credential or an unreachable provider
    fails the partitions not yet started at once (`RunStop`)."""
    stop = RunStop()

    def task(name: str, zone: str, hour: datetime) -> Callable[[], Awaitable[PartitionResult]]:
        async def run() -> PartitionResult:
            result = stop.skipped(name, zone, hour)
            try:
                if result is None:
                    partition = Partition(name, zone, hour)
                    pages = await HOURLY_ENDPOINTS[name](client, zone, hour)
                    window = (hour, hour + timedelta(hours=1))
                    bodies = [p.body for p in pages]
                    dataset = dataset_for(name, bodies, client.mds_version(zone))
                    result = await write(lake, dataset, partition, bodies, window, rewrite_unchanged=rewrite_unchanged)
            except HourNotReady:
                result = PartitionResult(name, zone, hour, "not_ready")
            except FutureHour:
                result = PartitionResult(name, zone, hour, "future")
            except Exception as e:  # every failure is this partition's own; the others go on
                stop.note(e)
                result = PartitionResult(name, zone, hour, "failed", error=failure_reason(e))
            if on_result is not None:
                on_result(result)
            return result

        return run

    with _lake_writer() as own_writer:
        write = writer or own_writer
        results = await _bounded(task(name, zone, hour) for hour in hours for zone in zones for name in datasets)
    return _report(client, results)


async def _fetch_snapshot(client: VoiClient, name: str, zone: str) -> list[Page]:
    if name in GBFS_FEED:
        return [await client.gbfs(zone, GBFS_FEED[name])]
    if name in GBFS_V2_FEED:
        return [await client.gbfs_v2(GBFS_V2_FEED[name])]
    if name == "mds_vehicles":
        return await client.mds_vehicles(zone)
    if name == "mds_vehicle_status":
        return await client.mds_vehicles_status(zone)
    if name == "zone_areas":
        return [await client.zone_areas(zone)]
    if name == "zone_area_occupancy":
        return [await client.areas_occupancy(zone)]
    if name == "zone_info":
        return [await client.zone_info()]
    raise ValueError(f"{name} is not a snapshot dataset")


async def ingest_snapshots(
    client: VoiClient,
    lake: Lake,
    zones: Sequence[str],
    datasets: Sequence[str],
    captured_at: datetime | None = None,
    on_result: Callable[[PartitionResult], None] | None = None,
) -> IngestReport:
    """Capture the current state of each snapshot dataset for each zone, stamped with one capture time;
    `on_result` hears of each partition as it lands (or fails)."""
    captured_at = (captured_at or datetime.now(UTC)).astimezone(UTC)
    hour = captured_at.replace(minute=0, second=0, microsecond=0)
    stem = snapshot_stem(captured_at)
    window = (captured_at, captured_at)
    stop = RunStop()
    # A dataset that answers for every zone at once (zone_column) is fetched once, each zone keeping its own rows.
    every_zone_pages: dict[str, list[Page]] = {}
    every_zone_failures: dict[str, str] = {}
    for name in (name for name in datasets if DATASETS[name].zone_column):
        try:
            every_zone_pages[name] = await _fetch_snapshot(client, name, "-")
        except Exception as e:  # fails this dataset's partitions only
            stop.note(e)
            every_zone_failures[name] = failure_reason(e)

    def task(name: str, zone: str) -> Callable[[], Awaitable[PartitionResult]]:
        async def run() -> PartitionResult:
            result = await capture()
            if on_result is not None:
                on_result(result)
            return result

        async def capture() -> PartitionResult:
            skipped = stop.skipped(name, zone, hour)
            if skipped is not None:
                return skipped
            if name in every_zone_failures:
                return PartitionResult(name, zone, hour, "failed", error=every_zone_failures[name])
            try:
                partition = Partition(name, zone, hour)
                if name in every_zone_pages:
                    pages = every_zone_pages[name]
                else:
                    pages = await _fetch_snapshot(client, name, zone)
                zone_column = DATASETS[name].zone_column
                only_zone = pl.col(zone_column) == zone if zone_column else None
                bodies = [p.body for p in pages]
                return await write(
                    lake,
                    dataset_for(name, bodies, client.mds_version(zone)),
                    partition,
                    bodies,
                    window,
                    stem=stem,
                    captured_at=captured_at,
                    rows_filter=only_zone,
                )
            except Exception as e:  # every failure is this partition's own; the others go on
                stop.note(e)
                return PartitionResult(name, zone, hour, "failed", error=failure_reason(e))

        return run

    with _lake_writer() as write:
        results = await _bounded(task(name, zone) for name, zone in snapshot_targets(zones, datasets))
    return _report(client, results)


def reparse(lake: Lake, dataset: str, zone_id: str, hour: datetime, stem: str = "part-0") -> PartitionResult:
    """Rebuild one partition (hourly: from its newest delivery; or one snapshot) from its kept raw response,
    without the provider."""
    ds = DATASETS[dataset]
    partition = Partition(dataset, zone_id, hour)
    if ds.kind == "hourly":
        deliveries = lake.raw_deliveries(partition)
        pages = lake.read_raw(partition, stem=deliveries[-1]) if deliveries else []
    else:
        pages = lake.read_raw(partition, stem=stem)
    if not pages:
        raise FileNotFoundError(f"no raw response kept for {dataset} zone {zone_id} at {hour:%Y-%m-%dT%H} ({stem})")
    ds = dataset_for(dataset, pages)  # an MDS 1.2 or 0.4 delivery says its version
    if ds.kind == "hourly":
        window = (hour, hour + timedelta(hours=1))
        delivered = ingested_at_of(deliveries[-1])
        return write_partition(lake, ds, partition, pages, window, keep_raw=False, ingested_at=delivered)
    captured_at = captured_at_of(stem)
    return write_partition(
        lake,
        ds,
        partition,
        pages,
        (captured_at, captured_at),
        stem=stem,
        captured_at=captured_at,
        keep_raw=False,
        rows_filter=pl.col(ds.zone_column) == zone_id if ds.zone_column else None,
    )
