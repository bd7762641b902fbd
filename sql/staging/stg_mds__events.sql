-- MDS vehicle events as delivered, kept once even when an event was delivered more than once.
-- grain: one row per event_id
-- inputs: lake.mds_events
-- materialized: view
with source as (
    select * from lake.mds_events
),

deduplicated as (
    select *
    from source
    qualify row_number() over (partition by zone_id, event_id order by date desc, hour desc) = 1
),

final as (
    select
        zone_id,
        event_id,
        device_id,
        timestamp as event_time,
        publication_time,
        event_types,
        event_types[len(event_types)] as event_type,
        vehicle_state,
        lat,
        lng,
        battery_percent,
        trip_ids,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as delivery_hour,
    from deduplicated
)

select * from final
