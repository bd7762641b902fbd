-- Daily fleet utilization per zone and local day (MDS Metrics dockless.*): deployed vehicles, active and inactive
-- vehicles, idle share of time and trips per vehicle.
-- grain: (zone_id, local_date) one row per zone_id and local_date (the zone's own calendar day; 23 or 25 hours across a DST change)
-- inputs: occupancy_hourly, vehicle_state_intervals, trips
-- materialized: incremental(day_start_at)
-- unique_key: zone_id, local_date
-- whole_when_grows: occupancy_hourly
-- A window build rebuilds the local days the window overlaps, and the days its trips started on (a trip ending
-- after midnight counts on the day it began).
-- deployed_avg is dockless.deployed.avg: vehicles in the public right of way (available, reserved, non_operational
-- or on_trip); parked_avg leaves out those on a trip (the project's own measure). Vehicles deployed that day are
-- those with any interval in those four states; active ones also started a trip that day (dockless.active.count).
-- idle_percent (dockless.utilization.idle.percent, here 0-100) = time not on trip / time in the right of way;
-- trips_per_vehicle_avg (dockless.utilization.trips_per_vehicle.avg) = trips started / deployed_avg.
with window_trips as (
    select start_time from main.trips
    where end_time >= $window_start and end_time < $window_end
),

bounds as (
    select
        least($window_start, (select min(start_time) from window_trips)) as first_at,
        $window_end as end_at,
),

touched_days as (
    select distinct zone_id, cast(hour_local as date) as local_date,
    from main.occupancy_hourly
    where
        scope = 'zone'
        and hour >= (select time_bucket(interval 1 hour, first_at) from bounds)
        and hour < (select end_at from bounds)
),

occupancy as (
    select zone_id, hour, hour_local, timezone, vehicle_state, state_seconds,
    from main.occupancy_hourly
    semi join touched_days
        on occupancy_hourly.zone_id = touched_days.zone_id
        and cast(occupancy_hourly.hour_local as date) = touched_days.local_date
    where scope = 'zone'
),

trips as (
    select zone_id, device_id, trip_id, start_time, start_time_local, from main.trips
),

days as (
    select
        zone_id,
        cast(hour_local as date) as local_date,
        any_value(timezone) as timezone,
        min(hour) as day_start_at,
        max(hour) + interval 1 hour as day_end,
        count(distinct hour) as hours,
        coalesce(sum(state_seconds) filter (where vehicle_state = 'deployed'), 0) as deployed_seconds,
        coalesce(sum(state_seconds) filter (where vehicle_state = 'parked'), 0) as parked_seconds,
        coalesce(sum(state_seconds) filter (where vehicle_state = 'on_trip'), 0) as on_trip_seconds,
    from occupancy
    group by zone_id, cast(hour_local as date)
),

-- Intervals overlapping the days: those that ended after the first day began, or last still, begun before the
-- last day ended (one bound per comparison: DuckDB skips the row groups outside each).
intervals as (
    select zone_id, device_id, started_at, ended_at,
    from main.vehicle_state_intervals
    where
        vehicle_state in ('available', 'reserved', 'non_operational', 'on_trip')
        and started_at < (select max(day_end) from days)
        and ended_at > (select min(day_start_at) from days)
    union all
    select zone_id, device_id, started_at, ended_at,
    from main.vehicle_state_intervals
    where
        vehicle_state in ('available', 'reserved', 'non_operational', 'on_trip')
        and started_at < (select max(day_end) from days)
        and ended_at is null
),

deployed_vehicles as (
    select distinct days.zone_id, days.local_date, intervals.device_id,
    from days
    inner join intervals
        on days.zone_id = intervals.zone_id
        and intervals.started_at < days.day_end
        and coalesce(intervals.ended_at, days.day_end) > days.day_start_at
),

device_trips as (
    select zone_id, cast(start_time_local as date) as local_date, device_id, count(*) as trips,
    from trips
    where
        start_time >= (select min(day_start_at) from days) - interval 1 day
        and start_time < (select max(day_end) from days) + interval 1 day
    group by zone_id, cast(start_time_local as date), device_id
),

vehicles as (
    select
        deployed_vehicles.zone_id,
        deployed_vehicles.local_date,
        count(*) as deployed_vehicles,
        count(device_trips.device_id) as active_vehicles,
    from deployed_vehicles
    left join device_trips
        on deployed_vehicles.zone_id = device_trips.zone_id
        and deployed_vehicles.local_date = device_trips.local_date
        and deployed_vehicles.device_id = device_trips.device_id
    group by deployed_vehicles.zone_id, deployed_vehicles.local_date
),

day_trips as (
    select zone_id, local_date, sum(trips) as trips,
    from device_trips
    group by zone_id, local_date
),

measured as (
    select
        days.zone_id,
        days.local_date,
        days.day_start_at,
        days.timezone,
        days.hours,
        days.deployed_seconds / (days.hours * 3600.0) as deployed_avg,
        days.parked_seconds / (days.hours * 3600.0) as parked_avg,
        coalesce(vehicles.deployed_vehicles, 0) as deployed_vehicles,
        coalesce(vehicles.active_vehicles, 0) as active_vehicles,
        days.deployed_seconds,
        days.on_trip_seconds,
        coalesce(day_trips.trips, 0) as trips,
    from days
    left join vehicles on days.zone_id = vehicles.zone_id and days.local_date = vehicles.local_date
    left join day_trips on days.zone_id = day_trips.zone_id and days.local_date = day_trips.local_date
),

final as (
    select
        zone_id,
        local_date,  -- The zone's local calendar day.
        day_start_at,  -- Start (UTC) of the day's first hour with occupancy: local midnight, later at the data's start.
        timezone,  -- The zone's IANA time zone (core.int_zone_timezones: configuration, GBFS or geometry; null when unknown), which defines local_date.
        hours,  -- Hours of the day with occupancy: 24 (23 or 25 across a DST change), fewer at the data's edges.
        deployed_avg,  -- Time-weighted average of vehicles in the public right of way (available, reserved, non_operational or on_trip) over the day's hours (dockless.deployed.avg).
        deployed_vehicles,  -- Distinct vehicles available, reserved, non_operational or on_trip at any time that day.
        active_vehicles,  -- Deployed vehicles that started at least one trip that day (dockless.active.count).
        deployed_vehicles - active_vehicles as inactive_vehicles,  -- Deployed vehicles that started no trip that day.
        100.0 * active_vehicles / nullif(deployed_vehicles, 0)
            as active_percent,  -- active_vehicles as a percentage (0-100) of deployed_vehicles (null without any).
        100.0 * (deployed_seconds - on_trip_seconds) / nullif(deployed_seconds, 0)
            as idle_percent,  -- Share (0-100) of right-of-way time not on trip (dockless.utilization.idle.percent x 100).
        trips,  -- Trips of the zone that started on that local day.
        trips / nullif(deployed_avg, 0)
            as trips_per_vehicle_avg,  -- trips over deployed_avg (dockless.utilization.trips_per_vehicle.avg).
        parked_avg,  -- Time-weighted average of vehicles parked (deployed, not on_trip) over the day's hours.
    from measured
)

select * from final
