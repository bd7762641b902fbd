-- What the compliance rules could not judge for want of an input (zone areas, a limit, a local time), and why.
-- grain: (unjudged_key) one row per rule and trip (trip rules), vehicle state interval (time rules) or zone hour (fleet counts) not judged
-- inputs: trips, int_trip_speed_limits, vehicle_state_intervals, int_zone_horizons, int_zone_timezones, policy_rules, lake.zone_info, lake.gbfs_geofencing_zones
-- materialized: incremental(evidence_at)
-- unique_key: unjudged_key
-- A rule whose geometry, limit, parking mode or local time is not known for a trip or hour is not judged: no
-- violation is told of it in compliance_violations, and it is listed here instead. Reasons, one per rule and trip
-- (the first that applies): no_zone_areas (the lake has no zone_areas snapshot of the zone: where a trip ended is
-- not known), no_operations_area (the areas in force name no operations area), no_parking_mode (no zone_info
-- snapshot: whether the zone parks at spots is not known), no_geofencing (no GBFS geofencing_zones snapshot),
-- no_speed_limit (neither a policy, the zone API nor the GBFS global rules give one), no_local_time (a speed, time
-- or count rule limited to some days or hours, in a zone whose time zone is not known; for time rules, the vehicle
-- states longer than the lowest such limit, which they might break).
-- A window build re-judges the trips ending in the window, the state intervals it starts or ends and every open
-- one, and the hours begun in it, as compliance_violations does.
with trips as (
    select zone_id, trip_id, end_time, end_area_type, end_in_operations,
    from main.trips
    where end_time >= $window_start and end_time < $window_end
),

speed_limits as (
    select trip_id, limit_kph, local_time_unknown, from core.int_trip_speed_limits
    where end_time >= $window_start and end_time < $window_end
),

zone_info as (
    select zone_id, parking_mode,
    from lake.zone_info
    qualify row_number() over (partition by zone_id order by captured_at desc) = 1
),

geofenced_zones as (
    select distinct zone_id from lake.gbfs_geofencing_zones
),

-- trip rules ---------------------------------------------------------------------------------------------------

trip_rules as (
    select
        trips.zone_id,
        trips.trip_id,
        trips.end_time,
        unnest([
            {
                rule: 'parking_in_forbidden_area',
                reason: case when trips.end_area_type is null then 'no_zone_areas' end,
            },
            {
                rule: 'parking_outside_operations',
                reason: case
                    when trips.end_area_type is null then 'no_zone_areas'
                    when trips.end_in_operations is null then 'no_operations_area'
                end,
            },
            {
                rule: 'parking_outside_spot',
                reason: case
                    when zone_info.zone_id is null then 'no_parking_mode'
                    when zone_info.parking_mode = 'parking-spot' and trips.end_area_type is null then 'no_zone_areas'
                end,
            },
            {
                rule: 'start_not_allowed',
                reason: case when geofenced_zones.zone_id is null then 'no_geofencing' end,
            },
            {
                rule: 'speeding',
                reason: case
                    when speed_limits.local_time_unknown then 'no_local_time'
                    when speed_limits.limit_kph is null then 'no_speed_limit'
                end,
            },
        ]) as judged,
    from trips
    left join zone_info on trips.zone_id = zone_info.zone_id
    left join geofenced_zones on trips.zone_id = geofenced_zones.zone_id
    left join speed_limits on trips.trip_id = speed_limits.trip_id
),

unjudged_trips as (
    select
        zone_id,
        judged.rule,
        trip_id,
        end_time as evidence_at,
        judged.reason,
        judged.rule || ':' || trip_id as unjudged_key,
    from trip_rules
    where judged.reason is not null
),

-- time in a state ----------------------------------------------------------------------------------------------

-- Time rules that hold only on some days or hours, by state, with their lowest limit.
local_time_rules as (
    select zone_id, vehicle_state, min(value) as lowest_s,
    from (
        select
            zone_id,
            value,
            unnest(
                case
                    when len(states) = 0
                        then ['available', 'elsewhere', 'non_operational', 'on_trip', 'removed', 'reserved', 'unknown']
                    else states
                end
            ) as vehicle_state,
        from core.policy_rules
        where
            rule_type = 'time'
            and value is not null
            and (len(days) > 0 or start_time is not null or end_time is not null)
    )
    group by all
),

-- The intervals compliance_violations judges in the window (the same three reads), in zones without a time zone.
unknown_time_intervals as (
    select intervals.*
    from (
        select * from main.vehicle_state_intervals
        where started_at >= $window_start and started_at < $window_end
        union all
        select * from main.vehicle_state_intervals
        where ended_at >= $window_start and ended_at < $window_end and started_at < $window_start
        union all
        select * from main.vehicle_state_intervals
        where ended_at is null and (started_at < $window_start or started_at >= $window_end)
    ) as intervals
    left join core.int_zone_timezones as timezones on intervals.zone_id = timezones.zone_id
    where timezones.timezone is null
),

unjudged_intervals as (
    select
        intervals.zone_id,
        case when intervals.vehicle_state = 'available' then 'idle_too_long' else 'time_in_state_exceeded' end
            as rule,
        null::uuid as trip_id,
        intervals.started_at as evidence_at,
        'no_local_time' as reason,
        rule || ':' || intervals.event_id as unjudged_key,
    from unknown_time_intervals as intervals
    inner join core.int_zone_horizons as clock on intervals.zone_id = clock.zone_id
    inner join local_time_rules as rules
        on (rules.zone_id is null or rules.zone_id = intervals.zone_id)
        and rules.vehicle_state = intervals.vehicle_state
    where coalesce(intervals.duration_s, epoch(clock.horizon) - epoch(intervals.started_at)) > rules.lowest_s
    qualify row_number() over (partition by intervals.event_id order by rules.lowest_s) = 1
),

-- fleet counts -------------------------------------------------------------------------------------------------

-- Count rules limited to some days or hours: they need the local time.
timed_count_rules as (
    select
        zone_id,
        bool_or(value is not null) as has_maximum,
        bool_or(minimum > 0) as has_minimum,
    from core.policy_rules
    where rule_type = 'count' and (len(days) > 0 or start_time is not null or end_time is not null)
    group by zone_id
),

unknown_time_hours as (
    select zone_hours.zone_id, zone_hours.hour_utc,
    from (
        select
            zone_id,
            unnest(generate_series(first_hour, horizon - interval 1 hour, interval 1 hour)) as hour_utc,
        from core.int_zone_horizons
    ) as zone_hours
    left join core.int_zone_timezones as timezones on zone_hours.zone_id = timezones.zone_id
    where timezones.timezone is null and hour_utc >= $window_start and hour_utc < $window_end
),

unjudged_hours as (
    select
        hours.zone_id,
        bounds.rule,
        null::uuid as trip_id,
        hours.hour_utc as evidence_at,
        'no_local_time' as reason,
        bounds.rule || ':' || hours.zone_id || ':' || hours.hour_utc as unjudged_key,
    from unknown_time_hours as hours
    inner join (
        select zone_id, 'fleet_cap_exceeded' as rule, from timed_count_rules where has_maximum
        union all
        select zone_id, 'fleet_below_minimum', from timed_count_rules where has_minimum
    ) as bounds on bounds.zone_id is null or bounds.zone_id = hours.zone_id
),

unjudged as (
    select * from unjudged_trips
    union all by name
    select * from unjudged_hours
    union all by name
    select * from unjudged_intervals
),

final as (
    select
        zone_id,
        rule,  -- The rule not judged (see compliance_violations).
        trip_id,  -- The trip not judged (trip rules); null for the time-in-state rules and fleet counts.
        evidence_at,  -- Trip end, start of the vehicle's state (time rules) or the hour (UTC) of a fleet count: what window builds rebuild by.
        reason,  -- Why: no_zone_areas, no_operations_area, no_parking_mode, no_geofencing, no_speed_limit or no_local_time.
        case reason
            when 'no_zone_areas' then 'no zone areas (zone API) known for the zone'
            when 'no_operations_area' then 'the zone areas in force name no operations area'
            when 'no_parking_mode' then 'no zone_info (zone API): parking mode unknown'
            when 'no_geofencing' then 'no GBFS geofencing_zones known for the zone'
            when 'no_speed_limit' then 'no speed limit from a policy, the zone API or the GBFS global rules'
            when 'no_local_time' then 'the zone''s time zone is unknown, and a rule holds on some days or hours only'
        end as detail,  -- The reason in words.
        unjudged_key,  -- Identifies the row across builds: rule and trip, state interval (its first event), or zone and hour.
    from unjudged
)

select * from final
