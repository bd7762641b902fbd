"""From the insurance endpoint to the insurance lake: the city's write path, another lake, nothing of it logged.

Each (zone, hour) is fetched, kept raw, validated and written as an hourly MDS partition is
(pipelines/ingest.write_partition: deliveries, superseded records, quarantine), into the owner-only lake of the
insurance area. A failure is its partition's own; what a result says (counts, and errors made of the client's and
the parser's messages, which name fields and never their values) is all that leaves this package.
"""

import asyncio
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pipelines.ingest import IngestReport, PartitionResult, RunStop, failure_reason, write_partition
from pipelines.insurance.area import InsuranceArea
from pipelines.insurance.trips import INSURANCE_TRIPS, NAME
from pipelines.lake.store import Partition
from pipelines.voi.client import FutureHour, HourNotReady, VoiClient

MAX_CONCURRENT = 8
ANSWERED = re.compile(r"(answered HTTP \d{3}): .*", re.DOTALL)


def without_body(reason: str) -> str:
    """A failure's reason without the excerpt of the response body the client adds to an unexpected status: from
    the insurance endpoint, that body could hold a trip."""
    return ANSWERED.sub(r"\1 (its body is not logged: it may hold personal data)", reason)


async def ingest_insurance_trips(
    client: VoiClient,
    area: InsuranceArea,
    zones: Sequence[str],
    hours: Sequence[datetime],
    on_result: Callable[[PartitionResult], None] | None = None,
) -> IngestReport:
    """Every zone and hour's insurance trips into the area's lake; not-ready and future hours write nothing."""
    lake = area.lake
    stop = RunStop()
    gate = asyncio.Semaphore(MAX_CONCURRENT)

    async def one(zone: str, hour: datetime) -> PartitionResult:
        async with gate:
            result = stop.skipped(NAME, zone, hour)
            try:
                if result is None:
                    pages = await client.insurance_trips(zone, hour)
                    window = (hour, hour + timedelta(hours=1))
                    bodies = [p.body for p in pages]
                    partition = Partition(NAME, zone, hour)
                    result = await asyncio.to_thread(write_partition, lake, INSURANCE_TRIPS, partition, bodies, window)
            except HourNotReady:
                result = PartitionResult(NAME, zone, hour, "not_ready")
            except FutureHour:
                result = PartitionResult(NAME, zone, hour, "future")
            except Exception as e:  # every failure is this partition's own; the others go on
                stop.note(e)
                result = PartitionResult(NAME, zone, hour, "failed", error=without_body(failure_reason(e)))
        if on_result is not None:
            on_result(result)
        return result

    results = list(await asyncio.gather(*(one(zone, hour) for hour in hours for zone in zones)))
    return IngestReport(
        results=results,
        requests=client.stats.requests,
        retries=client.stats.retries,
        retry_reasons=dict(client.stats.by_reason),
    )
