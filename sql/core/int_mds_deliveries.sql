-- Every delivery of an MDS trip or event: which hourly partition carried which record, repeats included.
-- grain: (dataset, zone_id, record_id, partition_hour, delivery) one row per dataset, zone_id, record id, partition hour and delivery (kept, or superseded)
-- inputs: lake.mds_trips, lake.mds_events, lake.superseded_mds_trips, lake.superseded_mds_events
-- materialized: incremental(partition_hour)
-- The lake's id columns as a table: data quality asks of each record whether an earlier delivery carried it, and
-- with the same content or not, which a window build answers from here instead of scanning every Parquet file of
-- the lake. record_key (a 64-bit hash of the id) finds the few candidates by reading 8 bytes a row instead of 36;
-- their ids then decide. content_key (a hash of every other column) tells an exact repeat from a conflicting one.
-- A partition holds the newest delivery of its hour (`kept`); the records an earlier delivery of the hour carried
-- that a later one changed or no longer carries are `superseded`, kept in the lake beside it; the copies the
-- partition's own response repeated are `duplicate_in_response` or `conflict_in_response`.
-- Reads `lake_window` (the window's days of the lake, see Warehouse._window_views).
with trips as (
    select
        'mds_trips' as dataset,
        zone_id,
        trip_id as record_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
        hash(
            device_id, provider_id, start_time, end_time, start_lat, start_lng, end_lat, end_lng, duration_s,
            distance_m, trip_type, accessibility_attributes
        ) as content_key,
        ingested_at as delivered_at,
        'kept' as delivery,
    from lake_window.mds_trips
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

superseded_trips as (
    select
        'mds_trips' as dataset,
        zone_id,
        trip_id as record_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
        hash(
            device_id, provider_id, start_time, end_time, start_lat, start_lng, end_lat, end_lng, duration_s,
            distance_m, trip_type, accessibility_attributes
        ) as content_key,
        ingested_at as delivered_at,
        if(reason like '%\_in\_response' escape '\', reason, 'superseded') as delivery,
        superseded_at,
    from lake_window.superseded_mds_trips
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
        hash(
            device_id, provider_id, timestamp, publication_time, event_types, vehicle_state, lat, lng,
            battery_percent, trip_ids
        ) as content_key,
        ingested_at as delivered_at,
        'kept' as delivery,
    from lake_window.mds_events
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

superseded_events as (
    select
        'mds_events' as dataset,
        zone_id,
        event_id as record_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
        hash(
            device_id, provider_id, timestamp, publication_time, event_types, vehicle_state, lat, lng,
            battery_percent, trip_ids
        ) as content_key,
        ingested_at as delivered_at,
        if(reason like '%\_in\_response' escape '\', reason, 'superseded') as delivery,
        superseded_at,
    from lake_window.superseded_mds_events
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

kept as (
    select * from trips
    union all
    select * from events
),

superseded as (
    select * from superseded_trips
    union all
    select * from superseded_events
),

-- The copies a response repeated count for the delivery the partition holds now, not for those it replaced.
current_deliveries as (
    select distinct dataset, zone_id, partition_hour, delivered_at from kept
),

final as (
    select dataset, zone_id, record_id, partition_hour, hash(record_id) as record_key, content_key, delivered_at, delivery,
    from kept
    union all
    select dataset, zone_id, record_id, partition_hour, hash(record_id) as record_key, content_key, delivered_at, delivery,
    from superseded
    where delivery = 'superseded'
    union all
    select
        superseded.dataset,
        superseded.zone_id,
        superseded.record_id,
        superseded.partition_hour,
        hash(superseded.record_id) as record_key,
        superseded.content_key,
        superseded.delivered_at,
        superseded.delivery,
    from superseded
    semi join current_deliveries
        on
            superseded.dataset = current_deliveries.dataset
            and superseded.zone_id = current_deliveries.zone_id
            and superseded.partition_hour = current_deliveries.partition_hour
            and superseded.superseded_at = current_deliveries.delivered_at
    where superseded.delivery <> 'superseded'
)

select * from final
where partition_hour >= $window_start and partition_hour < $window_end
