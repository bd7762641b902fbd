"""City reports as a Dagster asset: every zone's report for one calendar month, from the warehouse marts.

Zones are looped inside the run, as for ingestion (see README): one monthly partition writes a report folder per
zone, each covering that city's own local days of the month.
"""

from datetime import timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.partitions import monthly
from assets.resources import ReportsFolder, VoiApi, WarehouseStore
from assets.warehouse import model_key
from pipelines.lake.datasets import DATASETS
from pipelines.reports.tables import report_inputs
from pipelines.warehouse.models import discover

if TYPE_CHECKING:
    from pipelines.reports.export import ReportFiles


def _deps() -> list[dg.AssetKey]:
    models = discover()
    keys = []
    for name in sorted(report_inputs()):
        dataset = name.removeprefix("lake.")
        schema = models[name].schema if name in models else "core"  # the Python models are all in core
        keys.append(dg.AssetKey(dataset) if dataset in DATASETS else model_key(name, schema))
    return keys


def _summary(files: "ReportFiles") -> dict[str, object]:
    return {
        "city": files.city,
        "timezone": files.timezone,
        "html": str(files.html),
        "rows": files.rows,
        "suppressed_cells": files.suppressed_cells,
        "cells_left_out": files.cells_left_out,
    }


@dg.asset(
    partitions_def=monthly,
    deps=_deps(),
    group_name="reports",
    kinds={"html", "excel", "geojson"},
)
def city_report(
    context: dg.AssetExecutionContext, voi: VoiApi, warehouse: WarehouseStore, reports: ReportsFolder
) -> dg.MaterializeResult[None]:
    """One report folder per zone (FLEETLAKE_ZONES, else every zone the warehouse knows) and calendar month:
    an HTML page, an XLSX workbook, CSV and Parquet tables and GeoJSON, privacy rules applied."""
    # Imported when a report is made: the charts' matplotlib and the HTML templates would otherwise load with the
    # code location in every process that loads it (Dagster's code server, each run worker, the command line).
    from pipelines.reports.export import export_report, warehouse_zones

    window = context.partition_time_window
    first_day, last_day = window.start.date(), (window.end - timedelta(days=1)).date()
    known = warehouse_zones(warehouse.path())
    zones = list(voi.settings().zones) or known
    written: dict[str, ReportFiles] = {}
    for zone in zones:
        if zone not in known:
            context.log.warning(f"zone {zone}: the warehouse has no data for it, no report written")
            continue
        written[zone] = export_report(
            warehouse.path(), zone, first_day, last_day, reports.path(), h3_resolution=reports.h3_resolution
        )
        context.log.info(f"zone {zone}: {written[zone].html}")
    return dg.MaterializeResult(
        metadata={
            "period": f"{first_day.isoformat()} to {last_day.isoformat()} (local days)",
            "zones": ", ".join(written),
            "skipped_zones": ", ".join(z for z in zones if z not in written),
            "rows": sum(sum(files.rows.values()) for files in written.values()),
            "suppressed_cells": sum(files.suppressed_cells for files in written.values()),
            "cells_left_out": sum(files.cells_left_out for files in written.values()),
            "reports": dg.MetadataValue.json({zone: _summary(files) for zone, files in written.items()}),
            **{f"html_zone_{zone}": dg.MetadataValue.path(str(files.html)) for zone, files in written.items()},
        }
    )
