-- The additive pieces of the MDS Metrics event measure (events.[event_type].count): events per zone (or zone area),
-- provider, vehicle type (or all types, '*'), event type and 15-minute UTC interval.
-- grain: (zone_id, scope, area_id, provider_id, vehicle_type, event_type, interval_start) one row per zone_id, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area), area_id, provider_id, vehicle_type ('*': every type), event_type and interval_start
-- inputs: vehicle_state_intervals, stg_mds__events, stg_mds__vehicles
-- materialized: incremental(interval_start)
-- The one home of where and when an event counts (events_hourly sums these quarters into hours): an event of several
-- types counts once for each, in the area where it happened (the place vehicle_state_intervals gives the state it
-- began), in quarters of an hour and split by provider and type.
-- The vehicle's type is the latest MDS vehicles snapshot's when the quarter is built ('unknown' without one).
with intervals as (
    select zone_id, device_id, event_id, started_at, area_id, area_type,
    from main.vehicle_state_intervals
    where started_at >= $window_start and started_at < $window_end
),

events as (
    select zone_id, event_id, provider_id, event_types,
    from staging.stg_mds__events
    where event_time >= $window_start and event_time < $window_end
),

typed as (
    select
        intervals.zone_id,
        time_bucket(interval 15 minute, intervals.started_at) as interval_start,
        events.provider_id,
        coalesce(vehicles.vehicle_type, 'unknown') as vehicle_type,
        unnest(list_distinct(events.event_types)) as event_type,
        intervals.area_id,
        if(intervals.area_type = 'outside', 'outside', 'area') as scope,
    from intervals
    inner join events on intervals.zone_id = events.zone_id and intervals.event_id = events.event_id
    left join staging.stg_mds__vehicles as vehicles
        on intervals.zone_id = vehicles.zone_id and intervals.device_id = vehicles.device_id
),

-- Each event counts in its area and the whole zone (unnested side by side), then for its type and every type.
placed as (
    select * exclude (area_id, scope), unnest([area_id, null]) as area_id, unnest([scope, 'zone']) as scope,
    from typed
),

spread as (
    select * exclude (vehicle_type), unnest([vehicle_type, '*']) as vehicle_type, from placed
),

final as (
    select
        zone_id,
        scope,  -- 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        area_id,  -- The zone area where the events happened (null for the scopes 'zone' and 'outside').
        provider_id,  -- The provider that reported the events.
        vehicle_type,  -- The vehicles' MDS type ('unknown' without a vehicles snapshot), or '*' for every type.
        event_type,  -- The MDS event type.
        interval_start,  -- Start of the 15-minute UTC interval in which the events happened.
        count(*) as event_count,  -- Events of the type (events.[event_type].count).
    from spread
    group by all
)

select * from final
