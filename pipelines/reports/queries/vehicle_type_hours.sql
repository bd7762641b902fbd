-- Deployed vehicles per vehicle type and UTC hour, time-weighted as occupancy_hourly weighs the whole zone.
-- grain: one row per zone hour of occupancy_hourly in the period and vehicle type (zeros included)
-- inputs: vehicle_state_intervals, stg_mds__vehicles, occupancy_hourly, trips
-- occupancy_hourly has no vehicle type, so the same intervals are summed here per type. Open intervals last until
-- the zone's data horizon (the end of its latest hour), as in occupancy_hourly. Deployed = available, reserved,
-- non_operational or on_trip (MDS dockless.deployed). Without cutting intervals into hours (a vehicle idle for
-- days would be dozens of rows): each interval adds its seconds to its first and last hour, and the whole hours
-- between count through +1/-1 steps summed in hour order, so the work grows with the intervals, not with the hours
-- they span.
with zone_hours as (
    select hour,
    from main.occupancy_hourly
    where
        zone_id = $zone_id
        and area_type = 'zone'
        and vehicle_state = 'deployed'
        and hour >= $start_utc
        and hour < $end_utc
),

bounds as (
    select
        (select min(hour) from zone_hours) as first_hour,
        (select max(hour) + interval 1 hour from zone_hours) as last_end,
        (
            select max(hour) + interval 1 hour
            from main.occupancy_hourly
            where zone_id = $zone_id and area_type = 'zone'
        ) as horizon,
),

intervals as (
    select
        coalesce(vehicles.vehicle_type, 'unknown') as vehicle_type,
        intervals.vehicle_state,
        epoch(greatest(intervals.started_at, bounds.first_hour)) as started_s,
        epoch(least(coalesce(intervals.ended_at, bounds.horizon), bounds.horizon, bounds.last_end)) as ended_s,
    from main.vehicle_state_intervals as intervals
    cross join bounds
    left join staging.stg_mds__vehicles as vehicles
        on intervals.zone_id = vehicles.zone_id and intervals.device_id = vehicles.device_id
    where
        intervals.zone_id = $zone_id
        and intervals.vehicle_state in ('available', 'reserved', 'non_operational', 'on_trip')
        and intervals.started_at < least(bounds.horizon, bounds.last_end)
        and coalesce(intervals.ended_at, bounds.horizon) > bounds.first_hour
),

-- Plain epoch seconds from here on: hour arithmetic on time zone-aware timestamps is many times slower.
spans as (
    select
        vehicle_type,
        vehicle_state,
        started_s,
        ended_s,
        cast(floor(started_s / 3600) as bigint) * 3600 as first_hour,
        cast(ceil(ended_s / 3600) as bigint) * 3600 - 3600 as last_hour,
    from intervals
    where ended_s > started_s
),

edges as (
    select vehicle_type, vehicle_state, first_hour as hour, least(ended_s, first_hour + 3600) - started_s as seconds,
    from spans
    union all
    select vehicle_type, vehicle_state, last_hour as hour, ended_s - last_hour as seconds,
    from spans
    where last_hour > first_hour
),

steps as (
    select vehicle_type, vehicle_state, first_hour + 3600 as hour, 1 as delta,
    from spans
    where last_hour > first_hour + 3600
    union all
    select vehicle_type, vehicle_state, last_hour as hour, -1 as delta,
    from spans
    where last_hour > first_hour + 3600
),

edge_seconds as (
    select vehicle_type, vehicle_state, hour, sum(seconds) as seconds,
    from edges
    group by vehicle_type, vehicle_state, hour
),

step_deltas as (
    select vehicle_type, vehicle_state, hour, sum(delta) as delta,
    from steps
    group by vehicle_type, vehicle_state, hour
),

types as (
    select distinct vehicle_type from intervals
    union
    select distinct coalesce(vehicle_type, 'unknown') as vehicle_type
    from main.trips
    where zone_id = $zone_id and start_time >= $start_utc and start_time < $end_utc
),

grid as (
    select zone_hours.hour, cast(epoch(zone_hours.hour) as bigint) as hour_s, types.vehicle_type, states.vehicle_state,
    from zone_hours
    cross join types
    cross join (values ('available'), ('reserved'), ('non_operational'), ('on_trip')) as states (vehicle_state)
),

counted as (
    select
        grid.hour,
        grid.vehicle_type,
        grid.vehicle_state,
        coalesce(edge_seconds.seconds, 0)
        + 3600.0 * sum(coalesce(step_deltas.delta, 0)) over (
            partition by grid.vehicle_type, grid.vehicle_state order by grid.hour_s
        ) as seconds,
    from grid
    left join edge_seconds
        on grid.hour_s = edge_seconds.hour
        and grid.vehicle_type = edge_seconds.vehicle_type
        and grid.vehicle_state = edge_seconds.vehicle_state
    left join step_deltas
        on grid.hour_s = step_deltas.hour
        and grid.vehicle_type = step_deltas.vehicle_type
        and grid.vehicle_state = step_deltas.vehicle_state
)

select
    hour,
    vehicle_type,
    sum(seconds) / 3600.0 as deployed_avg,
    sum(seconds) filter (where vehicle_state = 'available') / 3600.0 as available_avg,
from counted
group by hour, vehicle_type
