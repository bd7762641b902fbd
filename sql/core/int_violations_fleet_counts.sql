-- Zone hours whose count of deployed vehicles broke a policy count rule: above its maximum (rule
-- fleet_cap_exceeded) or below its minimum, as in an equity area (rule fleet_below_minimum).
-- grain: (violation_key) one row per rule broken, zone, count rule and hour
-- inputs: vehicle_state_intervals, int_zone_horizons, policy_rules, policy_geographies, int_policy_geography_points, stg_mds__vehicles, int_zone_timezones
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- hours begun in it. Vehicles are counted at each hour's start, each by its policy's first count rule it matches
-- (its state, vehicle type and the geographies where its state began); a rule holds on its days and hours, in the
-- zone's local time at the hour's start.
with intervals as (
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

typed_intervals as (
    select intervals.*, vehicles.vehicle_type, located.geographies,
    from intervals
    left join vehicles on intervals.zone_id = vehicles.zone_id and intervals.device_id = vehicles.device_id
    left join geography_points as located
        on intervals.start_lng = located.lng and intervals.start_lat = located.lat
    where intervals.started_at < $window_end and (intervals.ended_at is null or intervals.ended_at > $window_start)
),

-- Fleet counts: a maximum (a cap) and a minimum (vehicles the city wants there, as in an equity area).
cap_rules as (
    select * from policy_rules where rule_type = 'count'
),

zone_hours as (
    select zone_hours.zone_id, hour_utc, timezone(systems.timezone, hour_utc) as hour_local,
    from (
        select
            zone_id,
            unnest(generate_series(first_hour, horizon - interval 1 hour, interval 1 hour)) as hour_utc,
        from core.int_zone_horizons
    ) as zone_hours
    left join systems on zone_hours.zone_id = systems.zone_id
    where hour_utc >= $window_start and hour_utc < $window_end
),

-- The count rules in force at each hour's start.
hour_rules as (
    select zone_hours.zone_id, zone_hours.hour_utc, cap_rules.* exclude (zone_id),
    from zone_hours
    inner join cap_rules
        on (cap_rules.zone_id is null or cap_rules.zone_id = zone_hours.zone_id)
        and (cap_rules.start_date is null or cap_rules.start_date <= zone_hours.hour_utc)
        and (cap_rules.end_date is null or zone_hours.hour_utc < cap_rules.end_date)
        and policy_rule_in_effect(cap_rules.days, cap_rules.start_time, cap_rules.end_time, zone_hours.hour_local)
),

-- Each vehicle deployed at an hour's start, counted by its policy's first rule it matches.
counted_vehicles as (
    select hour_rules.zone_id, hour_rules.hour_utc, hour_rules.policy_id, hour_rules.rule_order, intervals.device_id,
    from hour_rules
    inner join typed_intervals as intervals
        on intervals.zone_id = hour_rules.zone_id
        and intervals.started_at <= hour_rules.hour_utc
        and (intervals.ended_at is null or hour_rules.hour_utc < intervals.ended_at)
        and (
            case
                when len(hour_rules.states) = 0
                    then intervals.vehicle_state in ('available', 'reserved', 'on_trip', 'non_operational')
                else list_contains(hour_rules.states, intervals.vehicle_state)
            end
        )
        and (len(hour_rules.vehicle_types) = 0 or list_contains(hour_rules.vehicle_types, intervals.vehicle_type))
        and (len(hour_rules.geographies) = 0 or list_has_any(hour_rules.geographies, intervals.geographies))
    qualify row_number() over (
        partition by hour_rules.zone_id, hour_rules.hour_utc, intervals.device_id, hour_rules.policy_id
        order by hour_rules.rule_order
    ) = 1
),

deployed as (
    select
        hour_rules.zone_id,
        hour_rules.hour_utc,
        -- MDS requires rule ids; a rule without one is still told apart by its place in its policy.
        coalesce(hour_rules.rule_id, coalesce(hour_rules.policy_id, '') || '#' || hour_rules.rule_order) as rule_id,
        hour_rules.rule_name,
        hour_rules.value as cap,
        hour_rules.minimum,
        hour_rules.geographies,
        count(distinct counted.device_id) as devices,
    from hour_rules
    left join counted_vehicles as counted
        on hour_rules.zone_id = counted.zone_id
        and hour_rules.hour_utc = counted.hour_utc
        and hour_rules.policy_id is not distinct from counted.policy_id
        and hour_rules.rule_order = counted.rule_order
    where hour_rules.value is not null or hour_rules.minimum > 0
    group by all
),

-- Each count outside its rule's bounds: above the maximum, or below the minimum.
off_count as (
    select
        *,
        devices || ' devices deployed at the start of the hour'
        || coalesce(
            ' in ' || (
                select string_agg(distinct named.label, ', ' order by named.label)
                from (select geography_id, coalesce(name, geography_id) as label, from core.policy_geographies) as named
                where list_contains(counted.geographies, named.geography_id)
            ),
            ''
        ) as counted_detail,
    from (
        select *, 'fleet_cap_exceeded' as rule, cap as bound, ', cap ' as bound_label,
        from deployed
        where devices > cap
        union all
        select *, 'fleet_below_minimum', minimum, ', minimum ',
        from deployed
        where devices < minimum
    ) as counted
),

final as (
    select
        zone_id,
        rule,
        null::varchar as device_id,
        null::varchar as trip_id,
        hour_utc as observed_at,
        null::double as lat,
        null::double as lng,
        null::varchar as area_id,
        counted_detail || bound_label || cast(bound as bigint) || coalesce(' (' || rule_name || ')', '') as detail,
        devices::double as observed_value,
        bound as limit_value,
        hour_utc as evidence_at,
        rule || ':' || zone_id || ':' || rule_id || ':' || hour_utc as violation_key,
    from off_count
)

select * from final
