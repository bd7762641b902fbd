-- The city day by day: trips, vehicles, utilization, compliance and data coverage.
-- grain: one row per local day of the period (days without data too: their measures are null)
-- inputs: trips, fleet_utilization_daily, compliance_daily, data_quality_hourly
-- Coverage is over every hour of the day: the hours with an MDS delivery (trips or events) count, the others do
-- not; a day with some but not all of its hours is flagged partial. vehicle_days (vehicles in the public right of
-- way, deployed or on a trip, times the share of the day measured) is what trips per vehicle divide by, here and in
-- the key figures, so the period's figure is the sum of trips over the sum of vehicle-days of these rows.
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
    select
        fleet_utilization_daily.local_date,
        deployed_vehicles,
        deployed_avg,
        idle_percent,
        deployed_avg * hours / days.hours_in_day as vehicle_days,
    from main.fleet_utilization_daily
    inner join days on fleet_utilization_daily.local_date = days.local_date
    where zone_id = $zone_id and fleet_utilization_daily.local_date between $first_day and $last_day
),

compliance as (
    select local_date, sum(violation_count) as violations, any_value(trip_count) as trips_ended,
    from main.compliance_daily
    where zone_id = $zone_id and local_date between $first_day and $last_day
    group by local_date
),

quality as (
    select
        cast(timezone($timezone, hour) as date) as local_date,
        count(*) filter (where has_mds_trips_partition or has_mds_events_partition) as hours_with_data,
        sum(coverage) as covered_hours,
    from main.data_quality_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
    group by cast(timezone($timezone, hour) as date)
),

-- Hours whose fleet counts are lower bounds (vehicles parked since before the history may be missing).
warm_up as (
    select cast(timezone($timezone, hour) as date) as local_date, count(*) filter (where warm_up) as warm_up_hours,
    from main.data_quality_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
    group by cast(timezone($timezone, hour) as date)
),

final as (
    select
        days.local_date,
        days.hours_in_day,
        coalesce(trips.trips, if(quality.hours_with_data > 0, 0, null)) as trips,
        coalesce(trips.vehicles_with_trips, if(quality.hours_with_data > 0, 0, null)) as vehicles_with_trips,
        utilization.deployed_vehicles as vehicles_in_service,
        utilization.deployed_avg as deployed_fleet_avg,
        coalesce(trips.trips, if(quality.hours_with_data > 0, 0, null))
        / nullif(utilization.vehicle_days, 0) as trips_per_vehicle,
        utilization.idle_percent,
        compliance.violations,
        100.0 * compliance.violations / nullif(compliance.trips_ended, 0) as violations_per_100_trips,
        coalesce(quality.hours_with_data, 0) as hours_with_data,
        100.0 * coalesce(quality.covered_hours, 0) / days.hours_in_day as data_coverage_percent,
        case
            when coalesce(quality.hours_with_data, 0) = 0 then 'no data'
            when quality.hours_with_data < days.hours_in_day then 'partial'
            else 'complete'
        end as data_completeness,
        utilization.vehicle_days,
        warm_up.warm_up_hours,
    from days
    left join trips on days.local_date = trips.local_date
    left join utilization on days.local_date = utilization.local_date
    left join compliance on days.local_date = compliance.local_date
    left join quality on days.local_date = quality.local_date
    left join warm_up on days.local_date = warm_up.local_date
)

select * from final
order by local_date
