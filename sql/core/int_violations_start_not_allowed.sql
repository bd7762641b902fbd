-- Trips that started where the GBFS geofencing rules allow no ride to start (rule start_not_allowed).
-- grain: (violation_key) one row per trip started where starts are not allowed
-- inputs: trips, int_trip_start_geofences
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- trips ending in the window (a trip arrives with its end, so evidence_at is its end; observed_at its start).
with trips as (
    select * from main.trips
    where end_time >= $window_start and end_time < $window_end
),

trip_start_rules as (
    select * from core.int_trip_start_geofences
    where end_time >= $window_start and end_time < $window_end
),

final as (
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
)

select * from final
