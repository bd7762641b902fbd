-- Trips that ended in a no-parking or no-riding zone area (rule parking_in_forbidden_area).
-- grain: (violation_key) one row per trip that ended in such an area
-- inputs: trips
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- trips ending in the window; the area is the one the trip's end was placed in (the zone's areas in force then).
with trips as (
    select * from main.trips
    where end_time >= $window_start and end_time < $window_end
),

final as (
    select
        zone_id,
        'parking_in_forbidden_area' as rule,
        device_id,
        trip_id,
        end_time as observed_at,
        end_lat as lat,
        end_lng as lng,
        end_area_id as area_id,
        'trip ended in a ' || end_area_type || ' area' as detail,
        null::double as observed_value,
        null::double as limit_value,
        end_time as evidence_at,
        'parking_in_forbidden_area:' || trip_id as violation_key,
    from trips
    where end_area_type in ('no-parking', 'no-riding')
)

select * from final
