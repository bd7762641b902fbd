"""The hourly tick: each hour re-ingests its lookback, the lake rewrites only the partitions whose records changed,
and the warehouse rebuilds only the hours whose partitions changed since it built them; the rows equal a full
build's. Against the embedded provider with late events and corrected trips, in process."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from fleetlake_provider.app import ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.faults import Faults
from pipelines.config import Settings
from pipelines.ingest import IngestReport, hours_between, ingest_hours, ingest_snapshots
from pipelines.lake.store import Lake
from pipelines.voi.client import VoiClient
from pipelines.warehouse.build import Warehouse
from pipelines.warehouse.built_partitions import COLUMNS, changed_hours, runs_of
from tests.comparable_rows import comparable
from tests.conftest import CREDENTIALS, make_provider
from tests.test_warehouse_edges import COMPARED

pytestmark = pytest.mark.integration

H = timedelta(hours=1)
START = datetime(2026, 3, 10, tzinfo=UTC)
ZONES = ("1", "1001")
LOOKBACK = 4
SNAPSHOTS = ("zone_info", "zone_areas", "gbfs_system_information", "mds_vehicles")


def test_runs_of_consecutive_hours() -> None:
    hours = [START + n * H for n in (4, 0, 1, 6, 7, 8)]
    assert runs_of(hours) == [(START, START + 2 * H), (START + 4 * H, START + 5 * H), (START + 6 * H, START + 9 * H)]
    assert runs_of([]) == []


def test_an_hour_changed_when_a_partition_is_new_gone_rewritten_or_of_unknown_content() -> None:
    def frame(*rows: tuple[str, str, int, str | None]) -> pl.DataFrame:
        return pl.DataFrame(
            [(dataset, zone, START + hour * H, fingerprint) for dataset, zone, hour, fingerprint in rows],
            schema=COLUMNS,
            orient="row",
        )

    window = (START, START + 6 * H)
    built = frame(("mds_trips", "1", 0, "a"), ("mds_trips", "1", 1, "b"), ("mds_trips", "1", 2, "c"))
    built = pl.concat([built, frame(("mds_events", "1", 4, "e"), ("mds_trips", "1", 5, None))])
    lake = frame(
        ("mds_trips", "1", 0, "a"),  # as built
        ("mds_trips", "1", 1, "B"),  # rewritten with other records
        ("mds_trips", "1", 2, "c"),
        ("mds_trips", "145", 2, "d"),  # a new zone's partition
        ("mds_trips", "1", 3, None),  # written before fingerprints: not known to be unchanged
        ("mds_trips", "1", 5, None),
    )  # and hour 4's events are gone
    assert changed_hours(lake, built, window) == [START + n * H for n in (1, 2, 3, 4, 5)]
    assert changed_hours(lake.head(1), None, window) == [START]  # no record: every hour the lake holds


def rows(path: Path, relation: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return comparable(con.execute(f"select * from {relation}").fetchall())


@pytest.mark.slow
def test_each_tick_rebuilds_the_changed_hours_only_and_ends_as_a_full_build(tmp_path: Path) -> None:
    clock = FixedClock(START + 2 * H)
    faults = Faults(late_rate=0.05, late_max_s=2 * 3600.0, correction_rate=0.1, correction_max_s=2 * 3600.0)
    provider = make_provider(clock=clock, start=START, days=1, vehicles=25, zones=ZONES, fleet={"1": 40}, faults=faults)
    app = ProviderApp(provider, CREDENTIALS, rate_limit_per_minute=1_000_000).app
    lake = Lake(tmp_path / "lake")
    settings = Settings(api_base_url="http://p", maas_base_url="http://p", zones=ZONES, lake_dir=lake.root)
    warehouse = Warehouse(tmp_path / "tick.duckdb", lake.root)

    async def ingest(hours: list[datetime]) -> IngestReport:
        async with VoiClient(settings, transport=httpx.ASGITransport(app=app)) as client:
            if not any(lake.root.glob("zone_areas/*")):
                await ingest_snapshots(client, lake, ZONES, SNAPSHOTS, captured_at=START + H)
            return await ingest_hours(client, lake, ZONES, hours)

    first_tick = START + 4 * H
    newest_only_at_some_tick = rebuilt_at_some_tick = False
    # Hourly ticks until each kind has been seen (a window build costs about a second): the first (every hour of
    # the lookback new), one where only the newest hour changed, and one where late records changed an older hour.
    for last in hours_between(first_tick, START + 8 * H):
        clock.set(last + H + timedelta(minutes=11))  # the hour is served
        window = (last - (LOOKBACK - 1) * H, last + H)
        report = asyncio.run(ingest(hours_between(*window)))
        assert not report.with_status("failed")
        written = sorted({r.hour for r in report.results if r.status == "written"})
        # The lake's changed partitions are the warehouse's changed hours: the newest hour always, an older one
        # when a late event or a corrected trip arrived for it.
        changed = warehouse.changed_hours(window)
        assert changed == (written if last > first_tick else hours_between(*window))
        assert (written[-1] == last and len(written) < LOOKBACK) or last == first_tick
        newest_only_at_some_tick |= len(written) == 1 and last > first_tick
        rebuilt_at_some_tick |= len(written) > 1 and last > first_tick
        runs = warehouse.build(window, only_changed=True)
        assert {run.name for run in runs} >= {"trips", "vehicle_state_intervals"}
        assert warehouse.changed_hours(window) == []
        assert warehouse.build(window, only_changed=True) == []  # nothing changed since: nothing built
        if newest_only_at_some_tick and rebuilt_at_some_tick:
            break
    assert newest_only_at_some_tick
    assert rebuilt_at_some_tick  # late records made an older hour of the lookback change at least once

    full = Warehouse(tmp_path / "full.duckdb", lake.root)
    full.build()
    for relation in COMPARED:
        ticked, whole = rows(warehouse.path, relation), rows(full.path, relation)
        if relation != "occupancy_hourly":
            assert ticked == whole, relation
            continue
        # Window builds, the whole lookback's as before or the changed hours' alone, give a series (an area and
        # state) its zero rows from the hour it first occurs, a full build from the zone's first hour: those rows
        # apart, the same.
        missing = Counter(whole) - Counter(ticked)
        assert not Counter(ticked) - Counter(whole)
        assert all(v == 0 for row in missing for v in row if isinstance(v, int | float) and not isinstance(v, bool))
