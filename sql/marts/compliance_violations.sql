-- Every breach of the city's rules: trip ends, trip starts, speeds, idle vehicles, GBFS positions, fleet counts.
-- grain: (violation_key) one row per violation (rule, and the trip, vehicle interval, GBFS sighting or zone hour it concerns)
-- inputs: trips, int_trip_speed_limits, vehicle_state_intervals, int_zone_horizons, int_trip_start_geofences, int_gbfs_vehicle_positions, policy_rules, policy_geographies, int_policy_geography_points, stg_mds__vehicles, int_zone_timezones, lake.zone_info, int_zone_area_labels
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- A window build re-judges the trips ending in the window, the state intervals it starts or ends and every
-- open one (they idle on as the data's clock advances), the GBFS sightings captured and the hours begun in it.
-- Limits: an MDS policy rule in force (the strictest) wins, else the zone API, else the GBFS global rules; the idle
-- limit falls back to the default rule of core.policy_rules. Rules are evaluated independently: one trip may break
-- several. Within one policy, the first rule a trip or vehicle matches is the one that holds (MDS Policy's order
-- of operations: "parking allowed at hubs" before "no parking downtown" exempts the hubs); across policies the
-- strictest holds. A policy rule that names geographies holds only there: for a trip, where it starts and ends; for a
-- vehicle, where its state began. One that names none holds zone-wide. It holds on its days and hours (local
-- time; `policy_rule_in_effect`, the runner's macro, see pipelines/warehouse/policy.py): at a trip's start, when
-- a vehicle's state began, at an hour's start for fleet counts. A rule whose input is not known (the zone's areas,
-- a speed limit, the parking mode, GBFS geofencing, the local time of a rule for some days or hours) is not judged:
-- no violation is told, and compliance_unjudged lists the trip or hour with the reason.
with trips as (
    select * from main.trips
    where end_time >= $window_start and end_time < $window_end
),

-- Not materialized: each reader below filters the intervals, and a copy of all of them would cost more.
intervals as not materialized (
    select * from main.vehicle_state_intervals
),

trip_start_rules as (
    select * from core.int_trip_start_geofences
    where end_time >= $window_start and end_time < $window_end
),

gbfs_positions as (
    select * from core.int_gbfs_vehicle_positions
    where captured_at >= $window_start and captured_at < $window_end
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

zone_info as (
    select zone_id, parking_mode,
    from lake.zone_info
    qualify row_number() over (partition by zone_id order by captured_at desc) = 1
),

-- trip ends ----------------------------------------------------------------------------------------------------

forbidden_ends as (
    select
        trips.zone_id,
        'parking_in_forbidden_area' as rule,
        trips.device_id,
        trips.trip_id,
        trips.end_time as observed_at,
        trips.end_lat as lat,
        trips.end_lng as lng,
        trips.end_area_id as area_id,
        'trip ended in a ' || trips.end_area_type || ' area' as detail,
        null::double as observed_value,
        null::double as limit_value,
        trips.end_time as evidence_at,
        'parking_in_forbidden_area:' || trips.trip_id as violation_key,
    from trips
    where trips.end_area_type in ('no-parking', 'no-riding')
),

outside_operations as (
    select
        trips.zone_id,
        'parking_outside_operations' as rule,
        trips.device_id,
        trips.trip_id,
        trips.end_time as observed_at,
        trips.end_lat as lat,
        trips.end_lng as lng,
        trips.end_area_id as area_id,
        'trip ended outside the operations area' as detail,
        null::double as observed_value,
        null::double as limit_value,
        trips.end_time as evidence_at,
        'parking_outside_operations:' || trips.trip_id as violation_key,
    from trips
    where not trips.end_in_operations
),

outside_spots as (
    select
        trips.zone_id,
        'parking_outside_spot' as rule,
        trips.device_id,
        trips.trip_id,
        trips.end_time as observed_at,
        trips.end_lat as lat,
        trips.end_lng as lng,
        trips.end_area_id as area_id,
        'trip ended outside every parking spot of a parking-spot zone' as detail,
        null::double as observed_value,
        null::double as limit_value,
        trips.end_time as evidence_at,
        'parking_outside_spot:' || trips.trip_id as violation_key,
    from trips
    inner join zone_info on trips.zone_id = zone_info.zone_id
    where zone_info.parking_mode = 'parking-spot'
        and not trips.end_in_parking_spot
),

-- trip starts and speeds ---------------------------------------------------------------------------------------

forbidden_starts as (
    select
        trips.zone_id,
        'start_not_allowed' as rule,
        trips.device_id,
        trips.trip_id,
        trips.start_time as observed_at,
        trips.start_lat as lat,
        trips.start_lng as lng,
        trips.start_area_id as area_id,
        case
            when trip_start_rules.geofence_scope = 'global' then 'trip started outside every geofencing zone'
            else 'trip started in geofencing zone ' || coalesce(trip_start_rules.geofence_name, '(unnamed)')
        end as detail,
        null::double as observed_value,
        null::double as limit_value,
        trips.end_time as evidence_at,
        'start_not_allowed:' || trips.trip_id as violation_key,
    from trips
    inner join trip_start_rules on trips.trip_id = trip_start_rules.trip_id
    where trip_start_rules.ride_start_allowed = false
),

speed_limits as (
    select trip_id, limit_kph, limit_source, from core.int_trip_speed_limits
    where end_time >= $window_start and end_time < $window_end
),

speeding as (
    select
        trips.zone_id,
        'speeding' as rule,
        trips.device_id,
        trips.trip_id,
        trips.end_time as observed_at,
        trips.end_lat as lat,
        trips.end_lng as lng,
        trips.end_area_id as area_id,
        'average speed ' || round(trips.avg_speed_kph, 1) || ' km/h over the ' || speed_limits.limit_source
        || ' limit of ' || round(speed_limits.limit_kph, 1) || ' km/h' as detail,
        trips.avg_speed_kph as observed_value,
        speed_limits.limit_kph as limit_value,
        trips.end_time as evidence_at,
        'speeding:' || trips.trip_id as violation_key,
    from trips
    inner join speed_limits on trips.trip_id = speed_limits.trip_id
    -- An impossible average (a data anomaly, flagged on the trip) is not evidence of speeding.
    where trips.avg_speed_kph > speed_limits.limit_kph and not trips.is_impossible_speed
),

-- time in a state (idle vehicles) ------------------------------------------------------------------------------

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

idle as (
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
),

-- GBFS sightings -----------------------------------------------------------------------------------------------

parked_forbidden as (
    select
        zone_id,
        'parked_in_forbidden_area' as rule,
        null::varchar as device_id,
        null::varchar as trip_id,
        captured_at as observed_at,
        lat,
        lng,
        area_id,
        'GBFS vehicle ' || vehicle_id || ' seen in '
        || case
            when area_type in ('no-parking', 'no-riding') then 'a ' || area_type || ' area'
            else 'geofencing zone ' || coalesce(geofence_name, '(unnamed)') || ' where rides may not end'
        end as detail,
        null::double as observed_value,
        null::double as limit_value,
        captured_at as evidence_at,
        'parked_in_forbidden_area:' || zone_id || ':' || vehicle_id || ':' || captured_at as violation_key,
    from gbfs_positions
    where lat is not null
        and (
            area_type in ('no-parking', 'no-riding')
            or (geofence_scope = 'zone' and ride_end_allowed = false)
        )
),

-- fleet counts -------------------------------------------------------------------------------------------------

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

over_cap as (
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
),

violations as (
    select * from forbidden_ends
    union all by name
    select * from outside_operations
    union all by name
    select * from outside_spots
    union all by name
    select * from forbidden_starts
    union all by name
    select * from speeding
    union all by name
    select * from idle
    union all by name
    select * from parked_forbidden
    union all by name
    select * from over_cap
),

-- Each violation's area as the zone API named it at the time of the record judged (when its place was found).
labelled as (
    select violations.*, labels.area_type, labels.area_label,
    from violations
    left join core.int_zone_area_labels as labels
        on violations.zone_id = labels.zone_id
        and violations.area_id = labels.area_id
        and violations.evidence_at >= labels.span_start
        and violations.evidence_at < labels.span_end
),

final as (
    select
        zone_id,
        rule,  -- The rule broken: parking_outside_spot, speeding, idle_too_long, ... (compliance_daily lists all 10).
        device_id,  -- The vehicle (MDS device_id); null for parked_in_forbidden_area and the fleet counts.
        trip_id,  -- The trip (MDS trip_id) for the trip rules; null for the idle, GBFS and fleet-count rules.
        observed_at,  -- When (UTC): trip end (start for start_not_allowed), idle limit hit, GBFS capture or counted hour.
        lat,  -- Latitude of the trip end or start, idle vehicle or GBFS sighting; null for fleet counts.
        lng,  -- Longitude of the trip end or start, idle vehicle or GBFS sighting; null for fleet counts.
        area_id,  -- Zone area at lat/lng (parking_in_forbidden_area: the forbidden one); null outside or for counts.
        detail,  -- A readable account of the breach, e.g. 'trip ended in a no-riding area'.
        observed_value,  -- What was measured: average speed in km/h, idle seconds or deployed devices; else null.
        limit_value,  -- The limit broken, in observed_value's unit: km/h, seconds or devices; else null.
        evidence_at,  -- Time of the record judged (trip end, interval start, GBFS capture, counted hour): what window builds rebuild by.
        violation_key,  -- Identifies the violation across builds: rule and trip, interval, sighting or counted hour.
        area_type,  -- The type of area_id (null without one).
        area_label,  -- A readable label of area_id: its name in the zone API at evidence_at, else its type and id (null without one).
    from labelled
)

select * from final
