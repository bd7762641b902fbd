-- The period's key figures for the city, one column each (pipelines/reports/figures.py turns them into rows).
-- grain: one row
-- inputs: trips, vehicle_state_intervals, occupancy_hourly, fleet_utilization_daily, compliance_daily, parking_occupancy_hourly, data_quality_hourly
-- Trips count at their start, as MDS Metrics do; anomalies (under 10 s, over 5 h, impossible speed) are counted
-- but kept out of the medians, as trips_hourly keeps them out of its distributions.
with trips as (
    select
        device_id,
        duration_s,
        distance_m,
        is_under_10s or is_over_5h or is_impossible_speed as is_anomaly,
    from main.trips
    where zone_id = $zone_id and start_time >= $start_utc and start_time < $end_utc
),

horizon as (
    select max(hour) + interval 1 hour as horizon,
    from main.occupancy_hourly
    where zone_id = $zone_id and area_type = 'zone'
),

in_service as (
    select count(distinct intervals.device_id) as unique_vehicles,
    from main.vehicle_state_intervals as intervals
    cross join horizon
    where
        intervals.zone_id = $zone_id
        and intervals.vehicle_state in ('available', 'reserved', 'non_operational', 'on_trip')
        and intervals.started_at < $end_utc
        and coalesce(intervals.ended_at, horizon.horizon) > $start_utc
),

trip_figures as (
    select
        count(*) as trips,
        count(distinct device_id) as vehicles_with_trips,
        median(duration_s) filter (where not is_anomaly) / 60.0 as trip_duration_median_min,
        median(distance_m) filter (where not is_anomaly) / 1000.0 as trip_distance_median_km,
    from trips
),

fleet as (
    select
        avg(avg_vehicles) as deployed_fleet_avg,
        min(min_vehicles) as deployed_fleet_min,
        max(max_vehicles) as deployed_fleet_max,
    from main.occupancy_hourly
    where
        zone_id = $zone_id
        and area_type = 'zone'
        and vehicle_state = 'deployed'
        and hour >= $start_utc
        and hour < $end_utc
),

-- Vehicle-days as the daily table counts them (deployed vehicles, MDS dockless.deployed: the right of way, times
-- the share of the local day measured), so that trips per vehicle per day is the daily table's trips over its vehicle-days.
utilization as (
    select
        (select trips from trip_figures)
        / nullif(sum(utilization.deployed_avg * utilization.hours / days.hours_in_day), 0) as trips_per_vehicle_per_day,
    from main.fleet_utilization_daily as utilization
    inner join report_days as days on utilization.local_date = days.local_date
    where utilization.zone_id = $zone_id and utilization.local_date between $first_day and $last_day
),

compliance_days as (
    select local_date, sum(violation_count) as violations, any_value(trip_count) as trips_ended,
    from main.compliance_daily
    where zone_id = $zone_id and local_date between $first_day and $last_day
    group by local_date
),

compliance as (
    select
        coalesce(sum(violations), 0) as violations,
        sum(trips_ended) as trips_ended,
        100.0 * sum(violations) / nullif(sum(trips_ended), 0) as violations_per_100_trips,
    from compliance_days
),

parking as (
    select 100.0 * sum(avg_vehicles) / nullif(sum(capacity), 0) as parking_occupancy_percent,
    from main.parking_occupancy_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc and capacity is not null
),

-- Coverage over every hour of the period, not only the hours the warehouse tracks: hours without a delivery count
-- as uncovered.
quality as (
    select
        count(*) filter (where has_mds_trips_partition or has_mds_events_partition) as hours_with_data,
        100.0 * coalesce(sum(coverage), 0) / (select sum(hours_in_day) from report_days) as data_coverage_percent,
    from main.data_quality_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
),

-- Hours whose fleet counts are lower bounds: vehicles parked since before the history may be missing.
warm_up as (
    select count(*) filter (where warm_up) as warm_up_hours,
    from main.data_quality_hourly
    where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
)

select
    trip_figures.trips,
    in_service.unique_vehicles,
    trip_figures.vehicles_with_trips,
    fleet.deployed_fleet_avg,
    fleet.deployed_fleet_min,
    fleet.deployed_fleet_max,
    utilization.trips_per_vehicle_per_day,
    trip_figures.trip_duration_median_min,
    trip_figures.trip_distance_median_km,
    compliance.violations,
    compliance.trips_ended,
    compliance.violations_per_100_trips,
    parking.parking_occupancy_percent,
    quality.hours_with_data,
    quality.data_coverage_percent,
    warm_up.warm_up_hours,
from trip_figures
cross join in_service
cross join fleet
cross join utilization
cross join compliance
cross join parking
cross join quality
cross join warm_up
