-- Parking-spot occupancy per hour: vehicles parked in each spot (deployed states, by the area of the event that
-- began the state) against the spot's capacity, beside the occupancy the zone API itself reported.
-- grain: one row per zone_id, parking-spot area_id and hour (every hour of occupancy_hourly, zeros included)
-- inputs: occupancy_hourly, stg_zone__areas, lake.zone_area_occupancy
-- materialized: incremental(hour)
-- Capacity is the latest the zone API reported for the spot; reported occupancy averages the API's snapshots
-- captured in the hour (null when none was).
with occupancy as (
    select zone_id, area_id, area_type, hour, hour_local, timezone, vehicle_state, avg_vehicles, max_vehicles,
    from main.occupancy_hourly
    where vehicle_state = 'deployed' and hour >= $window_start and hour < $window_end
),

areas as (
    select zone_id, area_id, area_type, area_name, valid_from, from staging.stg_zone__areas
),

area_occupancy as (
    select zone_id, area_id, occupancy, capacity, captured_at, from lake.zone_area_occupancy
),

spots as (
    select zone_id, area_id, area_name,
    from areas
    where area_type = 'parking-spot'
    qualify row_number() over (partition by zone_id, area_id order by valid_from desc) = 1
),

zone_hours as (
    select zone_id, hour, hour_local, timezone, from occupancy where area_type = 'zone'
),

parked as (
    select zone_id, area_id, hour, avg_vehicles, max_vehicles,
    from occupancy
    where area_type = 'parking-spot'
),

capacities as (
    select zone_id, area_id, capacity,
    from area_occupancy
    qualify row_number() over (partition by zone_id, area_id order by captured_at desc) = 1
),

reported as (
    select
        zone_id,
        area_id,
        to_timestamp(floor(epoch(captured_at) / 3600) * 3600) as hour,
        avg(occupancy) as reported_occupancy,
        count(*) as reported_snapshots,
    from area_occupancy
    where captured_at >= $window_start and captured_at < $window_end
    group by zone_id, area_id, to_timestamp(floor(epoch(captured_at) / 3600) * 3600)
),

final as (
    select
        spots.zone_id,
        spots.area_id,
        spots.area_name,
        zone_hours.hour,
        zone_hours.hour_local,
        zone_hours.timezone,
        coalesce(parked.avg_vehicles, 0) as avg_vehicles,
        coalesce(parked.max_vehicles, 0) as max_vehicles,
        capacities.capacity,
        coalesce(parked.avg_vehicles, 0) / nullif(capacities.capacity, 0) as avg_occupancy_rate,
        reported.reported_occupancy,
        reported.reported_occupancy / nullif(capacities.capacity, 0) as reported_occupancy_rate,
        coalesce(reported.reported_snapshots, 0) as reported_snapshots,
    from spots
    inner join zone_hours on spots.zone_id = zone_hours.zone_id
    left join parked
        on spots.zone_id = parked.zone_id and spots.area_id = parked.area_id and zone_hours.hour = parked.hour
    left join capacities on spots.zone_id = capacities.zone_id and spots.area_id = capacities.area_id
    left join reported
        on spots.zone_id = reported.zone_id and spots.area_id = reported.area_id and zone_hours.hour = reported.hour
)

select * from final
