-- The city hour by hour: trips started, deployed fleet (average, fewest, most) and available vehicles.
-- grain: one row per hour of the period the warehouse has (occupancy or trips)
-- inputs: occupancy_hourly, trips_hourly
-- warm_up: the fleet counts of the hour are lower bounds (vehicles parked since before the history may be missing).
with fleet as (
    select
        hour,
        any_value(avg_vehicles) filter (where vehicle_state = 'deployed') as deployed_fleet_avg,
        any_value(min_vehicles) filter (where vehicle_state = 'deployed') as deployed_fleet_min,
        any_value(max_vehicles) filter (where vehicle_state = 'deployed') as deployed_fleet_max,
        any_value(avg_vehicles) filter (where vehicle_state = 'available') as available_avg,
        bool_or(warm_up) as warm_up,
    from main.occupancy_hourly
    where
        zone_id = $zone_id
        and area_type = 'zone'
        and vehicle_state in ('deployed', 'available')
        and hour >= $start_utc
        and hour < $end_utc
    group by hour
),

trips as (
    select hour, sum(trip_count) as trips,
    from main.trips_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
    group by hour
),

hours as (
    select hour from fleet
    union
    select hour from trips
)

select
    hours.hour,
    coalesce(trips.trips, 0) as trips,
    fleet.deployed_fleet_avg,
    fleet.deployed_fleet_min,
    fleet.deployed_fleet_max,
    fleet.available_avg,
    fleet.warm_up,
from hours
left join fleet on hours.hour = fleet.hour
left join trips on hours.hour = trips.hour
order by hours.hour
