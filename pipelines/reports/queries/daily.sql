-- The city day by day: trips, vehicles, utilization, compliance and data coverage.
-- grain: one row per local day of the period (days without data too: their measures are null)
-- inputs: trips, fleet_utilization_daily, compliance_daily, data_quality_hourly
with days as (
    select local_date, hours_in_day, from report_days
),

trips as (
    select
        cast(start_time_local as date) as local_date,
        count(*) as trips,
        count(distinct device_id) as vehicles_with_trips,
    from main.trips
    where zone_id = $zone_id and start_time >= $start_utc and start_time < $end_utc
    group by cast(start_time_local as date)
),

utilization as (
    select local_date, deployed_vehicles, deployed_avg, trips_per_vehicle_avg, idle_percent,
    from main.fleet_utilization_daily
    where zone_id = $zone_id and local_date between $first_day and $last_day
),

compliance as (
    select local_date, sum(violation_count) as violations, any_value(trip_count) as trips_ended,
    from main.compliance_daily
    where zone_id = $zone_id and local_date between $first_day and $last_day
    group by local_date
),

quality as (
    select
        cast(timezone($timezone, hour_start) as date) as local_date,
        count(*) as hours_with_data,
        100.0 * avg(coverage) as data_coverage_percent,
    from main.data_quality_hourly
    where zone_id = $zone_id and hour_start >= $start_utc and hour_start < $end_utc
    group by cast(timezone($timezone, hour_start) as date)
),

final as (
    select
        days.local_date,
        days.hours_in_day,
        coalesce(trips.trips, if(quality.hours_with_data > 0, 0, null)) as trips,
        coalesce(trips.vehicles_with_trips, if(quality.hours_with_data > 0, 0, null)) as vehicles_with_trips,
        utilization.deployed_vehicles as vehicles_in_service,
        utilization.deployed_avg as deployed_fleet_avg,
        utilization.trips_per_vehicle_avg as trips_per_vehicle,
        utilization.idle_percent,
        compliance.violations,
        100.0 * compliance.violations / nullif(compliance.trips_ended, 0) as violations_per_100_trips,
        coalesce(quality.hours_with_data, 0) as hours_with_data,
        quality.data_coverage_percent,
    from days
    left join trips on days.local_date = trips.local_date
    left join utilization on days.local_date = utilization.local_date
    left join compliance on days.local_date = compliance.local_date
    left join quality on days.local_date = quality.local_date
)

select * from final
order by local_date
