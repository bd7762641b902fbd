-- Trips whose average speed was over the limit that holds for them (rule speeding).
-- grain: (violation_key) one row per trip over its speed limit
-- inputs: trips, int_trip_speed_limits
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- trips ending in the window. The limit (an MDS policy rule in force, else the zone API's, else the GBFS global
-- rules') is core.int_trip_speed_limits'; a trip without one is not judged (compliance_unjudged lists it).
with trips as (
    select * from main.trips
    where end_time >= $window_start and end_time < $window_end
),

speed_limits as (
    select trip_id, limit_kph, limit_source, from core.int_trip_speed_limits
    where end_time >= $window_start and end_time < $window_end
),

final as (
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
)

select * from final
