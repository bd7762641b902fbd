-- The trips that trip_start and trip_end events name, one row per event and trip named.
-- grain: (event_id, trip_id) one row per event_id and trip_id (trip_id null when the event names no trip)
-- inputs: stg_mds__events
-- materialized: incremental(event_time)
-- unique_key: event_id
-- Narrow and without lists, so data quality matches trips and events without unnesting every event again.
with events as (
    select zone_id, event_id, event_time, event_types, trip_ids,
    from staging.stg_mds__events
    where
        event_time >= $window_start
        and event_time < $window_end
        and list_has_any(event_types, ['trip_start', 'trip_end'])
),

final as (
    select
        zone_id,
        event_id,
        event_time,
        list_contains(event_types, 'trip_start') as is_start,
        list_contains(event_types, 'trip_end') as is_end,
        unnest(if(len(trip_ids) = 0, [null::uuid], trip_ids)) as trip_id,
    from events
)

select * from final
