"""One home for the hourly partition key and the facts the jobs derive from the datasets: the key the partitions,
the schedule and the launches write is the key the run window reads, and every dataset has exactly one asset."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from assets.definitions import defs
from assets.partition_keys import RANGE_END, RANGE_START, hour_of, hourly_key, range_tags, run_window
from assets.partitions import hourly_partitions
from assets.schedules import SNAPSHOT_JOBS
from pipelines.lake.datasets import DATASETS, HOURLY_DATASETS


def test_a_range_of_hours_round_trips_through_its_tags() -> None:
    first, last = datetime(2026, 3, 29, 22, tzinfo=UTC), datetime(2026, 3, 30, 1, tzinfo=UTC)
    tags = range_tags(first, last)
    assert tags == {RANGE_START: "2026-03-29-22:00", RANGE_END: "2026-03-30-01:00"}
    assert run_window(tags) == (first, last + timedelta(hours=1))  # four hours, the last one included


def test_the_hourly_partitions_use_the_same_key() -> None:
    partitions = hourly_partitions(date(2026, 3, 29))
    keys = partitions.get_partition_keys(current_time=datetime(2026, 3, 29, 3, tzinfo=UTC))
    assert keys == [hourly_key(datetime(2026, 3, 29, hour, tzinfo=UTC)) for hour in range(3)]
    assert [hour_of(key) for key in keys] == [datetime(2026, 3, 29, hour, tzinfo=UTC) for hour in range(3)]


def test_the_hourly_schedule_tags_its_window_with_the_same_keys() -> None:
    schedule = defs.resolve_schedule_def("mds_hourly_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 29, 6, 5, tzinfo=UTC))
    request = next(iter(schedule.evaluate_tick(context).run_requests or []))
    assert run_window(request.tags) == (datetime(2026, 3, 29, tzinfo=UTC), datetime(2026, 3, 29, 6, tzinfo=UTC))


def test_every_dataset_has_exactly_one_asset_and_job() -> None:
    hourly_job = defs.resolve_job_def("mds_hourly_job")
    lake_assets = {key.path[-1] for key in hourly_job.asset_layer.selected_asset_keys} & set(DATASETS)
    assert lake_assets == set(HOURLY_DATASETS) == {"mds_trips", "mds_events"}
    captured = [dataset for datasets in SNAPSHOT_JOBS.values() for dataset in datasets]
    assert sorted(captured) == sorted(name for name, dataset in DATASETS.items() if dataset.kind == "snapshot")
    for job, datasets in SNAPSHOT_JOBS.items():
        selected = {key.path[-1] for key in defs.resolve_job_def(job).asset_layer.selected_asset_keys}
        assert selected == set(datasets), job
