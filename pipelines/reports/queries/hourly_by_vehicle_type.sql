-- Trips started and parked fleet per hour and vehicle type.
-- grain: one row per hour of the period the warehouse has and vehicle type
-- inputs: trips_hourly, vehicle_state_intervals, stg_mds__vehicles, occupancy_hourly
with trips as (
    select hour, coalesce(vehicle_type, 'unknown') as vehicle_type, sum(trip_count) as trips,
    from main.trips_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
    group by hour, coalesce(vehicle_type, 'unknown')
),

final as (
    select
        coalesce(fleet.hour, trips.hour) as hour,
        coalesce(fleet.vehicle_type, trips.vehicle_type) as vehicle_type,
        coalesce(trips.trips, 0) as trips,
        fleet.deployed_avg as deployed_fleet_avg,
        fleet.available_avg,
    from report_vehicle_type_hours as fleet
    full join trips on fleet.hour = trips.hour and fleet.vehicle_type = trips.vehicle_type
)

select * from final
order by hour, vehicle_type
