-- Rows of the lake's hourly MDS files that staging leaves out because an id does not read as a UUID.
-- grain: () one row per such row of the lake (dataset, zone_id, partition hour, the first id at fault)
-- inputs: lake.mds_trips, lake.mds_events
-- materialized: incremental(partition_hour)
-- Ingestion admits only whole UUIDs; a lake file written before that check (an id with a final newline passed
-- it) would otherwise fail every build on the cast. Staging skips such rows (try_cast) and this table counts them,
-- for data_quality_hourly; `fleetlake reparse` of the partition moves them into the quarantine with a reason.
-- Reads `lake_window` (the window's days of the lake, see Warehouse._window_views).
with trips as (
    select
        'mds_trips' as dataset,
        zone_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
        case
            when try_cast(trip_id as uuid) is null then 'trip_id'
            when try_cast(device_id as uuid) is null then 'device_id'
            when try_cast(provider_id as uuid) is null then 'provider_id'
        end as unreadable_column,
    from lake_window.mds_trips
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

events as (
    select
        'mds_events' as dataset,
        zone_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
        case
            when try_cast(event_id as uuid) is null then 'event_id'
            when try_cast(device_id as uuid) is null then 'device_id'
            when try_cast(provider_id as uuid) is null then 'provider_id'
            when list_contains(list_transform(try_cast(trip_ids as uuid[]), id -> id is null), true) then 'trip_ids'
        end as unreadable_column,
    from lake_window.mds_events
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

final as (
    select * from trips where unreadable_column is not null
    union all
    select * from events where unreadable_column is not null
)

select * from final
where partition_hour >= $window_start and partition_hour < $window_end
