-- Trips that ended outside every parking spot of a zone that parks at spots (rule parking_outside_spot).
-- grain: (violation_key) one row per trip of a parking-spot zone that ended off every spot
-- inputs: trips, lake.zone_info
-- materialized: incremental(evidence_at)
-- unique_key: violation_key
-- One of the rule families compliance_violations unites (see it for the columns). A window build re-judges the
-- trips ending in the window. The zone's parking mode is its latest zone_info snapshot's; a zone without one is
-- not judged (compliance_unjudged lists its trips).
with trips as (
    select * from main.trips
    where end_time >= $window_start and end_time < $window_end
),

zone_info as (
    select zone_id, parking_mode,
    from lake.zone_info
    qualify row_number() over (partition by zone_id order by captured_at desc) = 1
),

final as (
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
)

select * from final
