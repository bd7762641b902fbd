-- How complete and clean the provider's deliveries were, per local day.
-- grain: one row per local day of the period
-- inputs: data_quality_hourly
-- coverage_percent is data_quality_hourly's coverage (partitions present of those expected) over every hour of
-- the day: an hour without a delivery counts as two missing partitions. Duplicates are records delivered again
-- with the same content, conflicts with other content (the newest delivery is the one reported).
with days as (
    select local_date, hours_in_day, from report_days
),

hours as (
    select
        cast(timezone($timezone, hour) as date) as local_date,
        coverage,
        cast(has_mds_trips_partition as integer) + cast(has_mds_events_partition as integer) as partitions_present,
        missing_partitions,
        mds_trips_quarantined + mds_events_quarantined as quarantined_records,
        mds_trips_duplicates + mds_events_duplicates as duplicate_records,
        mds_trips_conflicts + mds_events_conflicts as conflicting_records,
        has_mds_trips_partition or has_mds_events_partition as has_data,
        late_events,
        trips_without_start_event + trips_without_end_event + trip_events_without_trip as unmatched_records,
        warm_up,
    from main.data_quality_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
),

by_day as (
    select
        local_date,
        count(*) filter (where has_data) as hours_with_data,
        sum(partitions_present) as partitions_present,
        sum(coverage) as covered_hours,
        sum(quarantined_records) as quarantined_records,
        sum(duplicate_records) as duplicate_records,
        sum(late_events) as late_events,
        sum(unmatched_records) as unmatched_records,
        sum(conflicting_records) as conflicting_records,
        count(*) filter (where warm_up) as warm_up_hours,
    from hours
    group by local_date
)

select
    days.local_date,
    days.hours_in_day,
    coalesce(by_day.hours_with_data, 0) as hours_with_data,
    coalesce(by_day.partitions_present, 0) as partitions_present,
    2 * days.hours_in_day - coalesce(by_day.partitions_present, 0) as partitions_missing,
    100.0 * coalesce(by_day.covered_hours, 0) / days.hours_in_day as coverage_percent,
    by_day.quarantined_records,
    by_day.duplicate_records,
    by_day.late_events,
    by_day.unmatched_records,
    by_day.conflicting_records,
    by_day.warm_up_hours,
from days
left join by_day on days.local_date = by_day.local_date
order by days.local_date
