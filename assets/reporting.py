"""What every ingestion asset reports: the same metadata keys and the same failure, for hours and snapshots."""

from typing import Any

import dagster as dg

from pipelines.ingest import IngestReport


def raise_if_failed(report: IngestReport) -> None:
    failed = report.with_status("failed")
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} partition(s) could not be ingested",
            metadata={
                "first_errors": [f"{r.dataset}/{r.zone_id}/{r.hour:%Y-%m-%dT%H}: {r.error}" for r in failed[:10]]
            },
        )


def ingest_metadata(report: IngestReport, dataset: str, zones: list[str], **extra: Any) -> dict[str, Any]:
    summary = report.summary(dataset)
    return {
        "rows": summary["rows"],
        # The catalog's row count: the records this materialization wrote (its partitions', or its capture's).
        "dagster/row_count": summary["rows"],
        "quarantined": summary["quarantined"],
        "duplicates_dropped": summary["duplicates"],
        "conflicts_resolved": summary["conflicts"],
        "bytes": summary["bytes"],
        **extra,
        "zones": ", ".join(zones),
        "by_zone": dg.MetadataValue.json(report.by_zone(dataset)),
        "requests": report.requests,
        "retries": report.retries,
        "retry_reasons": dg.MetadataValue.json(report.retry_reasons),
    }
