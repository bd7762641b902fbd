-- Trips and parked fleet per local day and vehicle type.
-- grain: one row per local day with data and vehicle type
-- inputs: trips, vehicle_state_intervals, stg_mds__vehicles, occupancy_hourly
-- The day's fleet averages are over the hours the warehouse has for that day (as fleet_utilization_daily's).
with fleet as (
    select
        cast(timezone($timezone, hour) as date) as local_date,
        vehicle_type,
        avg(deployed_avg) as deployed_fleet_avg,
        avg(available_avg) as available_avg,
    from report_vehicle_type_hours
    group by cast(timezone($timezone, hour) as date), vehicle_type
),

trips as (
    select
        cast(start_time_local as date) as local_date,
        coalesce(vehicle_type, 'unknown') as vehicle_type,
        count(*) as trips,
    from main.trips
    where zone_id = $zone_id and start_time >= $start_utc and start_time < $end_utc
    group by cast(start_time_local as date), coalesce(vehicle_type, 'unknown')
),

final as (
    select
        coalesce(fleet.local_date, trips.local_date) as local_date,
        coalesce(fleet.vehicle_type, trips.vehicle_type) as vehicle_type,
        coalesce(trips.trips, 0) as trips,
        fleet.deployed_fleet_avg,
        fleet.available_avg,
    from fleet
    full join trips on fleet.local_date = trips.local_date and fleet.vehicle_type = trips.vehicle_type
)

select * from final
order by local_date, vehicle_type
