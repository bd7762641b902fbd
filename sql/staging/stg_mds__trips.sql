-- MDS trips as delivered, kept once even when a trip was delivered in more than one hour.
-- grain: one row per trip_id
-- inputs: lake.mds_trips
-- materialized: view
with source as (
    select * from lake.mds_trips
),

deduplicated as (
    select *
    from source
    qualify row_number() over (partition by zone_id, trip_id order by date desc, hour desc) = 1
),

final as (
    select
        zone_id,
        trip_id,
        device_id,
        provider_id,
        start_time,
        end_time,
        start_lat,
        start_lng,
        end_lat,
        end_lng,
        duration_s as reported_duration_s,
        distance_m,
        trip_type,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as delivery_hour,
    from deduplicated
)

select * from final
