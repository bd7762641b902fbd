-- Every delivery of an MDS trip or event: which hourly partition carried which record, repeats included.
-- grain: one row per dataset, zone_id, record id and partition hour
-- inputs: lake.mds_trips, lake.mds_events
-- materialized: incremental(partition_hour)
-- The lake's id columns as a table: data quality asks of each record whether an earlier partition carried it,
-- which a window build answers from here instead of scanning every Parquet file of the lake. record_key (a 64-bit
-- hash of the id) finds the few candidates by reading 8 bytes a row instead of 36; their ids then decide.
-- Reads `lake_window` (the window's days of the lake, see Warehouse._window_views).
with trips as (
    select
        'mds_trips' as dataset,
        zone_id,
        trip_id as record_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
    from lake_window.mds_trips
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

events as (
    select
        'mds_events' as dataset,
        zone_id,
        event_id as record_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
    from lake_window.mds_events
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

final as (
    select *, hash(record_id) as record_key, from trips
    union all
    select *, hash(record_id) as record_key, from events
)

select * from final
where partition_hour >= $window_start and partition_hour < $window_end
