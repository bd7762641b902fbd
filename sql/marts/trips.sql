-- Trips with local times, measures, start and end areas and anomaly flags.
-- grain: one row per trip_id (deduplicated across re-deliveries)
-- inputs: stg_mds__trips, stg_mds__vehicles, stg_gbfs__system_information, int_point_areas
-- materialized: incremental(end_time)
with trips as (
    select * from staging.stg_mds__trips
    where end_time >= $window_start and end_time < $window_end
),

vehicles as (
    select zone_id, device_id, vehicle_type from staging.stg_mds__vehicles
),

systems as (
    select zone_id, timezone from staging.stg_gbfs__system_information
),

point_areas as (
    select kind, record_id, area_id, area_type
    from core.int_point_areas
    where kind in ('trip_start', 'trip_end')
    qualify row_number() over (partition by kind, record_id order by priority, area_id) = 1
),

measured as (
    select
        trips.*,
        vehicles.vehicle_type,
        coalesce(systems.timezone, 'UTC') as timezone,
        epoch(trips.end_time) - epoch(trips.start_time) as duration_s,
    from trips
    left join vehicles on trips.zone_id = vehicles.zone_id and trips.device_id = vehicles.device_id
    left join systems on trips.zone_id = systems.zone_id
),

final as (
    select
        measured.zone_id,
        measured.trip_id,
        measured.device_id,
        measured.vehicle_type,
        measured.start_time,
        measured.end_time,
        timezone(measured.timezone, measured.start_time) as start_time_local,
        timezone(measured.timezone, measured.end_time) as end_time_local,
        measured.timezone,
        measured.duration_s,
        measured.reported_duration_s,
        measured.distance_m,
        measured.distance_m / nullif(measured.duration_s, 0) * 3.6 as avg_speed_kph,
        measured.start_lat,
        measured.start_lng,
        measured.end_lat,
        measured.end_lng,
        start_area.area_id as start_area_id,
        coalesce(start_area.area_type, 'outside') as start_area_type,
        end_area.area_id as end_area_id,
        coalesce(end_area.area_type, 'outside') as end_area_type,
        measured.duration_s < 10 as is_under_10s,
        measured.duration_s > 5 * 3600 as is_over_5h,
        -- No e-scooter or e-bike averages 45 km/h over a trip: the distance or the times are wrong.
        coalesce(measured.distance_m / nullif(measured.duration_s, 0) * 3.6 > 45, false) as is_impossible_speed,
        measured.trip_type,
        measured.delivery_hour,
    from measured
    left join point_areas as start_area
        on start_area.kind = 'trip_start' and start_area.record_id = measured.trip_id
    left join point_areas as end_area
        on end_area.kind = 'trip_end' and end_area.record_id = measured.trip_id
)

select * from final
