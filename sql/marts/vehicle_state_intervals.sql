-- Each vehicle's state from one MDS event to the next: the vehicle state timeline.
-- grain: one row per zone_id, device_id and started_at (a contiguous state interval)
-- inputs: stg_mds__events, int_point_areas
-- materialized: table
-- An interval's end is the next event of its vehicle, which may arrive in any later hour, so this model is
-- rebuilt whole (one sort and one window function over the events). `ended_at` is null while it lasts.
with events as (
    select * from staging.stg_mds__events
),

event_areas as (
    select record_id, area_id, area_type
    from core.int_point_areas
    where kind = 'event'
    qualify row_number() over (partition by record_id order by priority, area_id) = 1
),

intervals as (
    select
        zone_id,
        device_id,
        vehicle_state,
        event_type as started_by,
        event_id,
        event_time as started_at,
        lead(event_time) over (partition by zone_id, device_id order by event_time, event_id) as ended_at,
        lat as start_lat,
        lng as start_lng,
        battery_percent,
    from events
),

final as (
    select
        intervals.zone_id,
        intervals.device_id,
        intervals.vehicle_state,  -- The MDS vehicle state during the interval (available, on_trip, ...).
        intervals.started_at,  -- When the state began: the time of the event that set it (UTC).
        intervals.ended_at,  -- When the vehicle's next event happened (UTC); null while the state lasts.
        epoch(intervals.ended_at) - epoch(intervals.started_at) as duration_s,  -- Seconds from started_at to ended_at (null while the state lasts).
        intervals.started_by,  -- The event type that began the interval.
        intervals.event_id,
        intervals.start_lat,  -- Latitude of the event that began the interval.
        intervals.start_lng,  -- Longitude of the event that began the interval.
        intervals.battery_percent,  -- Battery charge reported by that event, in percent.
        event_areas.area_id,  -- The most specific zone area containing that event (null outside every area).
        coalesce(event_areas.area_type, 'outside') as area_type,  -- That area's type, or 'outside'.
    from intervals
    left join event_areas on intervals.event_id = event_areas.record_id
)

select * from final
