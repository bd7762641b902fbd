-- Trips that ended outside the zone's operations area (rule parking_outside_operations).
-- grain: (violation_key) one row per trip that ended outside the operations area
-- inputs: trips
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- trips ending in the window. A trip whose zone has no areas, or no operations area, is not judged
-- (end_in_operations is null; compliance_unjudged lists it).
with trips as (
    select * from main.trips
    where end_time >= $window_start and end_time < $window_end
),

final as (
    select
        zone_id,
        'parking_outside_operations' as rule,
        device_id,
        trip_id,
        end_time as observed_at,
        end_lat as lat,
        end_lng as lng,
        end_area_id as area_id,
        'trip ended outside the operations area' as detail,
        null::double as observed_value,
        null::double as limit_value,
        end_time as evidence_at,
        'parking_outside_operations:' || trip_id as violation_key,
    from trips
    where not end_in_operations
)

select * from final
