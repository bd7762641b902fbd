-- MDS vehicle events counted per event type, zone, zone area and UTC hour (MDS Metrics events.[event_type].count).
-- grain: (zone_id, hour, event_type, scope, area_id) one row per zone_id, hour, event_type, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area) and area_id
-- inputs: vehicle_state_intervals, stg_mds__events, int_zone_timezones
-- materialized: incremental(hour)
-- An event counts once for each of its event_types, in the hour it happened and the area where it happened: the
-- place vehicle_state_intervals gives the state the event began, so these counts and occupancy_hourly agree on
-- where things happened. Only the event types that occurred have rows.
with intervals as (
    select zone_id, event_id, started_at, area_id, area_type, area_label,
    from main.vehicle_state_intervals
    where started_at >= $window_start and started_at < $window_end
),

events as (
    select zone_id, event_id, event_types,
    from staging.stg_mds__events
    where event_time >= $window_start and event_time < $window_end
),

typed as (
    select
        intervals.zone_id,
        time_bucket(interval 1 hour, intervals.started_at) as hour,
        unnest(list_distinct(events.event_types)) as event_type,
        intervals.area_id,
        intervals.area_type,
        intervals.area_label,
        intervals.started_at,
    from intervals
    inner join events on intervals.zone_id = events.zone_id and intervals.event_id = events.event_id
),

scoped as (
    select * exclude (area_type, area_label), if(area_type = 'outside', 'outside', 'area') as scope, area_type, area_label,
    from typed
    union all by name
    select
        * exclude (area_id, area_type, area_label),
        null::varchar as area_id,
        'zone' as scope,
        'zone' as area_type,
        'Whole zone' as area_label,
    from typed
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

counted as (
    select
        zone_id,
        hour,
        event_type,
        scope,
        area_id,
        any_value(area_type) as area_type,
        -- An area renamed within the hour keeps the name in force at its last event.
        arg_max(area_label, started_at) as area_label,
        count(*) as event_count,
    from scoped
    group by zone_id, hour, event_type, scope, area_id
),

final as (
    select
        counted.zone_id,
        counted.hour,  -- Start of the UTC hour in which the events happened.
        timezone(systems.timezone, counted.hour)
            as hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        counted.event_type,  -- The MDS event type (an event of several types counts once for each).
        counted.scope,  -- What the row counts: 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        counted.area_id,  -- The most specific zone area containing the events (null for the other scopes).
        counted.area_type,  -- That area's type, 'outside' in no area, or 'zone' for the whole zone.
        counted.area_label,  -- A readable label: the area's name (else its type and id), 'Whole zone' or 'Outside every area'.
        counted.event_count,  -- Events of the type there in the hour (events.[event_type].count).
    from counted
    left join systems on counted.zone_id = systems.zone_id
)

select * from final
