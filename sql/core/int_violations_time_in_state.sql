-- Vehicles left in one state beyond the time a rule allows: available and unmoved (rule idle_too_long), or any
-- other state a time rule limits (rule time_in_state_exceeded).
-- grain: (violation_key) one row per rule and vehicle state interval over its limit
-- inputs: vehicle_state_intervals, int_zone_horizons, policy_rules, int_policy_geography_points, stg_mds__vehicles, int_zone_timezones
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- state intervals the window starts or ends and every open one (they idle on as the data's clock advances): rows
-- of intervals begun before the window are replaced by their key. The limit is the strictest policy's (within a
-- policy, the first time rule the vehicle matches: its states, vehicle type, geographies where the state began,
-- days and hours in local time when it began), else the default rule of core.policy_rules. Where a rule holds only
-- on some days or hours and the zone's local time is not known, the vehicle is not judged.
-- Not materialized: each reader below filters the intervals, and a copy of all of them would cost more.
with intervals as not materialized (
    select * from main.vehicle_state_intervals
),

policy_rules as (
    select * from core.policy_rules
),

-- The policy geographies each location lies in (a list per location; none outside them all).
geography_points as (
    select lng, lat, list(geography_id order by geography_id) as geographies,
    from core.int_policy_geography_points
    group by lng, lat
),

vehicles as (
    select zone_id, device_id, vehicle_type from staging.stg_mds__vehicles
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

-- An open interval idles until the zone's data horizon: the end of its latest delivered hour.
zone_clock as (
    select zone_id, horizon, from core.int_zone_horizons
),

-- The states a time rule limits (a rule naming none limits every state; the default rule limits available).
timed_states as (
    select distinct unnest(
        case
            when len(states) = 0
                then ['available', 'elsewhere', 'non_operational', 'on_trip', 'removed', 'reserved', 'unknown']
            else states
        end
    ) as vehicle_state,
    from policy_rules
    where rule_type = 'time' and value is not null
),

-- Three disjoint reads, each of a time range DuckDB finds by the row groups' ranges (one disjunction of them
-- would read every interval): started in the window, ended in it, still open.
judged_timed as (
    select * from intervals
    where started_at >= $window_start and started_at < $window_end
    union all
    select * from intervals
    where ended_at >= $window_start and ended_at < $window_end and started_at < $window_start
    union all
    select * from intervals
    where ended_at is null and (started_at < $window_start or started_at >= $window_end)
),

-- Only intervals longer than the lowest time limit can break one: a few in a thousand, so the rules are matched
-- (places, local times) for those alone.
timed as (
    select
        intervals.*,
        vehicles.vehicle_type,
        located.geographies,
        timezone(systems.timezone, intervals.started_at) as started_at_local,
    from (
        select
            intervals.*,
            coalesce(intervals.duration_s, epoch(zone_clock.horizon) - epoch(intervals.started_at)) as idle_s,
        from judged_timed as intervals
        inner join zone_clock on intervals.zone_id = zone_clock.zone_id
        semi join timed_states on intervals.vehicle_state = timed_states.vehicle_state
    ) as intervals
    left join systems on intervals.zone_id = systems.zone_id
    left join vehicles on intervals.zone_id = vehicles.zone_id and intervals.device_id = vehicles.device_id
    left join geography_points as located
        on intervals.start_lng = located.lng and intervals.start_lat = located.lat
    where intervals.idle_s > (select min(value) from policy_rules where rule_type = 'time')
),

-- Each policy's first matching time rule per interval.
matched_time_rules as (
    select
        timed.zone_id,
        timed.device_id,
        timed.started_at,
        policy_rules.value as limit_s,
        policy_rules.source,
    from timed
    inner join policy_rules
        on policy_rules.rule_type = 'time'
        and (len(policy_rules.states) = 0 or list_contains(policy_rules.states, timed.vehicle_state))
        and (policy_rules.zone_id is null or policy_rules.zone_id = timed.zone_id)
        and (policy_rules.start_date is null or policy_rules.start_date <= timed.started_at)
        and (policy_rules.end_date is null or timed.started_at < policy_rules.end_date)
        and (
            len(policy_rules.vehicle_types) = 0
            or list_contains(policy_rules.vehicle_types, timed.vehicle_type)
        )
        and (len(policy_rules.geographies) = 0 or list_has_any(policy_rules.geographies, timed.geographies))
        and policy_rule_in_effect(
            policy_rules.days, policy_rules.start_time, policy_rules.end_time, timed.started_at_local
        )
    qualify row_number() over (
        partition by timed.zone_id, timed.device_id, timed.started_at, policy_rules.policy_id
        order by policy_rules.rule_order
    ) = 1
),

-- The strictest policy limit; the default only where no policy sets one.
idle_limits as (
    select * from matched_time_rules
    where limit_s is not null
    qualify row_number() over (partition by zone_id, device_id, started_at order by source = 'default', limit_s) = 1
),

-- Time rules that hold only on some days or hours, by the states they limit: without the zone's local time, which
-- limit holds for a vehicle in such a state is not known, and it is not judged (compliance_unjudged lists it).
local_time_rules as (
    select distinct
        zone_id,
        unnest(
            case
                when len(states) = 0
                    then ['available', 'elsewhere', 'non_operational', 'on_trip', 'removed', 'reserved', 'unknown']
                else states
            end
        ) as vehicle_state,
    from policy_rules
    where rule_type = 'time' and value is not null and (len(days) > 0 or start_time is not null or end_time is not null)
),

final as (
    select
        timed.zone_id,
        -- Available beyond the limit is idle; any other state beyond its limit (a vehicle left broken, a trip
        -- never ended) is time in that state.
        case when timed.vehicle_state = 'available' then 'idle_too_long' else 'time_in_state_exceeded' end
            as rule,
        timed.device_id,
        null::varchar as trip_id,
        timed.started_at + to_seconds(idle_limits.limit_s) as observed_at,
        timed.start_lat as lat,
        timed.start_lng as lng,
        timed.area_id,
        case when timed.vehicle_state = 'available' then 'available and unmoved' else timed.vehicle_state end
        || ' for ' || round(timed.idle_s / 3600, 1) || ' h (' || idle_limits.source
        || ' limit ' || round(idle_limits.limit_s / 3600, 1) || ' h)' as detail,
        timed.idle_s as observed_value,
        idle_limits.limit_s as limit_value,
        timed.started_at as evidence_at,
        rule || ':' || timed.event_id as violation_key,
    from timed
    inner join idle_limits
        on timed.zone_id = idle_limits.zone_id
        and timed.device_id = idle_limits.device_id
        and timed.started_at = idle_limits.started_at
    where timed.idle_s > idle_limits.limit_s
        and not (
            timed.started_at_local is null
            and exists (
                select 1 from local_time_rules as rules
                where (rules.zone_id is null or rules.zone_id = timed.zone_id)
                    and rules.vehicle_state = timed.vehicle_state
            )
        )
)

select * from final
