"""A backfill's hourly ingestion, started as soon as the command knows its hours, and joined by the Dagster run that
records it.

Before a backfill's run reaches its ingestion, the command imports Dagster and loads the code location (seconds of
CPU), and takes the zone, GBFS and MDS vehicle snapshots a new zone lacks (three Dagster runs more). None of that is
needed to fetch the hours, whose pace the provider's rate limit sets. So `fleetlake backfill` starts ingesting the
hours at once, in a thread with its own event loop (a big run writing in worker processes,
pipelines/lake_writers.py), then does the rest; the run's ingestion asset finds this ingestion of exactly its lake,
zones, hours and datasets under way in its process (`claim`), waits for it and reports its partitions instead of
fetching them again. A run that finds none (a schedule's, one launched from the UI, a retry) ingests by itself.
"""

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipelines.config import Settings
from pipelines.ingest import IngestReport, PartitionResult, ingest_hours
from pipelines.lake.store import Lake
from pipelines.lake_writers import writer_for
from pipelines.voi.client import VoiClient


@dataclass(frozen=True)
class Plan:
    """What an ingestion covers: the lake, its zones, its hours and its datasets."""

    lake: str
    zones: frozenset[str]
    hours: tuple[datetime, ...]
    datasets: frozenset[str]

    @classmethod
    def of(cls, lake: Lake, zones: Sequence[str], hours: Sequence[datetime], datasets: Sequence[str]) -> "Plan":
        return cls(str(lake.root), frozenset(zones), tuple(hours), frozenset(datasets))


class StartedIngestion:
    """ingest_hours of a plan, running in a thread of its own from the moment it is made; `wait` returns its report
    (or raises what stopped it), `on_result` hears of each partition as it lands, from that thread."""

    def __init__(
        self,
        settings: Settings,
        zones: Sequence[str],
        hours: Sequence[datetime],
        datasets: Sequence[str],
        on_result: Callable[[PartitionResult], None] | None = None,
    ) -> None:
        self.lake = Lake(settings.lake_dir)
        self.plan = Plan.of(self.lake, zones, hours, datasets)
        self._settings = settings
        self._zones, self._hours, self._datasets = tuple(zones), tuple(hours), tuple(datasets)
        self._on_result = on_result
        self._report: IngestReport | None = None
        self._error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._main = self._loop.create_task(self._ingest())
        self._thread = threading.Thread(target=self._run, name="backfill-ingestion", daemon=True)
        self._thread.start()

    async def _ingest(self) -> IngestReport:
        partitions = len(self._zones) * len(self._hours) * len(self._datasets)
        with writer_for(partitions) as writer:
            async with VoiClient(self._settings) as client:
                return await ingest_hours(
                    client, self.lake, self._zones, self._hours, self._datasets, self._on_result, writer=writer
                )

    def _run(self) -> None:
        try:
            self._report = self._loop.run_until_complete(self._main)
        except BaseException as e:  # handed to whoever waits (a cancellation included)
            self._error = e
        finally:
            self._loop.close()

    def wait(self) -> IngestReport:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    def cancel(self) -> None:
        """Stop fetching (partitions being written finish first) and wait for the thread to end."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._main.cancel)
        self._thread.join()


_under_way: dict[Plan, StartedIngestion] = {}
_lock = threading.Lock()


def start(
    settings: Settings,
    zones: Sequence[str],
    hours: Sequence[datetime],
    datasets: Sequence[str],
    on_result: Callable[[PartitionResult], None] | None = None,
) -> StartedIngestion:
    """Start ingesting and leave the ingestion for a run of the same plan to `claim`."""
    started = StartedIngestion(settings, zones, hours, datasets, on_result)
    with _lock:
        _under_way[started.plan] = started
    return started


def claim(plan: Plan) -> StartedIngestion | None:
    """The ingestion of exactly `plan` started in this process and not claimed yet, now the caller's."""
    with _lock:
        return _under_way.pop(plan, None)
