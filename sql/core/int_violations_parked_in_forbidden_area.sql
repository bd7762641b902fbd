-- GBFS sightings of a parked vehicle where parking is forbidden (rule parked_in_forbidden_area).
-- grain: (violation_key) one row per zone, GBFS vehicle and capture seen in a no-parking or no-riding area, or in a geofencing zone where rides may not end
-- inputs: int_gbfs_vehicle_positions
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- sightings captured in the window. A GBFS vehicle id names no MDS device: device_id is null.
with gbfs_positions as (
    select * from core.int_gbfs_vehicle_positions
    where captured_at >= $window_start and captured_at < $window_end
),

final as (
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
)

select * from final
