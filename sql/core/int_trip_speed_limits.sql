-- The speed limit each trip is judged by, and where it comes from; null when no source gives one (not judged).
-- grain: (trip_id) one row per trip_id (trips ending in the window)
-- inputs: trips, policy_rules, int_policy_geography_points, lake.zone_info, lake.gbfs_geofencing_zones
-- materialized: incremental(end_time)
-- unique_key: trip_id
-- An MDS policy rule in force (the strictest over policies; within one, the first rule the trip matches) wins,
-- else the zone API's maximum speed, else the GBFS global rules'. A policy rule that names geographies holds for
-- trips that start and end there; it holds on its days and hours (local time at the trip's start). Where the zone's
-- time zone is not known and a policy speed rule holds only on some days or hours, which limit holds is not known:
-- the limit is null (local_time_unknown), and the trip is not judged.
with trips as (
    select zone_id, trip_id, end_time, start_time, start_time_local, vehicle_type, start_lng, start_lat, end_lng, end_lat,
    from main.trips
    where end_time >= $window_start and end_time < $window_end
),

policy_rules as (
    select * from core.policy_rules where rule_type = 'speed' and source = 'policy'
),

-- The policy geographies each location lies in (a list per location; none outside them all).
geography_points as (
    select lng, lat, list(geography_id order by geography_id) as geographies,
    from core.int_policy_geography_points
    group by lng, lat
),

zone_info as (
    select
        zone_id,
        case when lower(speed_unit) = 'mph' then max_speed * 1.609344 else max_speed end as max_speed_kph,
    from lake.zone_info
    qualify row_number() over (partition by zone_id order by captured_at desc) = 1
),

global_geofencing as (
    select zone_id, rules[1].maximum_speed_kph as max_speed_kph,
    from lake.gbfs_geofencing_zones
    where scope = 'global'
    qualify row_number() over (partition by zone_id order by captured_at desc) = 1
),

-- Zones (null: every zone) with a speed rule that holds only on some days or hours.
timed_rule_zones as (
    select distinct zone_id from policy_rules
    where len(days) > 0 or start_time is not null or end_time is not null
),

-- Each policy's first matching speed rule per trip, then the strictest over policies.
matched_speed_rules as (
    select trips.trip_id, policy_rules.value as limit_kph,
    from trips
    left join geography_points as starts on trips.start_lng = starts.lng and trips.start_lat = starts.lat
    left join geography_points as ends on trips.end_lng = ends.lng and trips.end_lat = ends.lat
    inner join policy_rules
        on (policy_rules.zone_id is null or policy_rules.zone_id = trips.zone_id)
        and (policy_rules.start_date is null or policy_rules.start_date <= trips.start_time)
        and (policy_rules.end_date is null or trips.start_time < policy_rules.end_date)
        and (len(policy_rules.vehicle_types) = 0 or list_contains(policy_rules.vehicle_types, trips.vehicle_type))
        and (
            len(policy_rules.geographies) = 0
            or (
                list_has_any(policy_rules.geographies, starts.geographies)
                and list_has_any(policy_rules.geographies, ends.geographies)
            )
        )
        and policy_rule_in_effect(
            policy_rules.days, policy_rules.start_time, policy_rules.end_time, trips.start_time_local
        )
    qualify row_number() over (partition by trips.trip_id, policy_rules.policy_id order by policy_rules.rule_order) = 1
),

policy_speed_limits as (
    select trip_id, min(limit_kph) as limit_kph,
    from matched_speed_rules
    where limit_kph is not null
    group by trip_id
),

limits as (
    select
        trips.zone_id,
        trips.trip_id,
        trips.end_time,
        coalesce(policy_speed_limits.limit_kph, zone_info.max_speed_kph, global_geofencing.max_speed_kph) as limit_kph,
        case
            when policy_speed_limits.limit_kph is not null then 'policy'
            when zone_info.max_speed_kph is not null then 'zone API'
            when global_geofencing.max_speed_kph is not null then 'GBFS global rules'
        end as limit_source,
        trips.start_time_local is null and exists (
            select 1 from timed_rule_zones
            where timed_rule_zones.zone_id is null or timed_rule_zones.zone_id = trips.zone_id
        ) as local_time_unknown,
    from trips
    left join policy_speed_limits on trips.trip_id = policy_speed_limits.trip_id
    left join zone_info on trips.zone_id = zone_info.zone_id
    left join global_geofencing on trips.zone_id = global_geofencing.zone_id
),

final as (
    select
        zone_id,
        trip_id,
        end_time,
        case when not local_time_unknown then limit_kph end as limit_kph,  -- km/h; null when not known
        case when not local_time_unknown then limit_source end as limit_source,  -- policy, zone API or GBFS global rules
        local_time_unknown,  -- A speed rule holds on some days or hours only, and the local time is not known.
    from limits
)

select * from final
