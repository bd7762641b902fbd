-- Time-weighted vehicle counts per MDS state (vehicles.[state].avg/min/max, vehicles.[state].duration.sum) and
-- deployed vehicles (dockless.deployed.*: parked in the public right of way = available, reserved or
-- non_operational), per zone, zone area and UTC hour, from the MDS state timeline.
-- grain: one row per zone_id, area (area_type and area_id; area_type 'zone' with a null area_id is the whole zone), hour and vehicle_state
-- inputs: vehicle_state_intervals, stg_mds__events, stg_gbfs__system_information
-- materialized: incremental(hour)
-- Exact, not sampled: each interval adds +1 at its start and -1 at its end; a running sum of the changes is the
-- count as a step function, and a zero change at every hour start gives each hour its opening count and keeps
-- every step inside one hour. One sort and one window pass, whatever the length of the intervals.
-- Open intervals (no next event yet) last until the zone's data horizon, the end of its latest delivered hour.
-- Every hour from the zone's first to its last delivered hour has a row, with zeros, for every (area, state)
-- that ever occurs and for available and deployed in every area: the same rows whether built whole or by hour.
with intervals as (
    select zone_id, area_id, area_type, vehicle_state, started_at, ended_at,
    from main.vehicle_state_intervals
),

events as (
    select zone_id, delivery_hour from staging.stg_mds__events
),

systems as (
    select zone_id, timezone from staging.stg_gbfs__system_information
),

delivered as (
    select
        zone_id,
        min(delivery_hour) as first_hour,
        max(delivery_hour) + interval 1 hour as horizon,
    from events
    group by zone_id
),

hours as (
    select zone_id, hour
    from (
        select zone_id, unnest(generate_series(first_hour, horizon - interval 1 hour, interval 1 hour)) as hour,
        from delivered
    )
    where hour >= $window_start and hour < $window_end
),

clipped as (
    select
        intervals.zone_id,
        intervals.area_id,
        intervals.area_type,
        intervals.vehicle_state,
        greatest(intervals.started_at, $window_start) as started_at,
        least(coalesce(intervals.ended_at, delivered.horizon), delivered.horizon, $window_end) as ended_at,
    from intervals
    inner join delivered on intervals.zone_id = delivered.zone_id
    where
        intervals.started_at < least(delivered.horizon, $window_end)
        and coalesce(intervals.ended_at, delivered.horizon) > $window_start
),

labelled as (
    select zone_id, area_id, area_type, vehicle_state, started_at, ended_at, from clipped
    union all
    select zone_id, area_id, area_type, 'deployed' as vehicle_state, started_at, ended_at,
    from clipped
    where vehicle_state in ('available', 'reserved', 'non_operational')
),

keyed as (
    select zone_id, area_id, area_type, vehicle_state, started_at, ended_at, from labelled
    union all
    select zone_id, cast(null as varchar) as area_id, 'zone' as area_type, vehicle_state, started_at, ended_at,
    from labelled
),

all_states as (
    select zone_id, area_id, area_type, vehicle_state from intervals
    union all
    select zone_id, area_id, area_type, 'deployed' as vehicle_state from intervals
),

series as (
    select distinct zone_id, area_id, area_type, vehicle_state from all_states
    union
    select distinct zone_id, cast(null as varchar) as area_id, 'zone' as area_type, vehicle_state from all_states
    union
    select distinct all_states.zone_id, all_states.area_id, all_states.area_type, kept.vehicle_state,
    from all_states
    cross join (values ('available'), ('deployed')) as kept (vehicle_state)
    union
    select distinct zone_id, cast(null as varchar) as area_id, 'zone' as area_type, kept.vehicle_state,
    from all_states
    cross join (values ('available'), ('deployed')) as kept (vehicle_state)
),

changes as (
    select zone_id, area_id, area_type, vehicle_state, started_at as changed_at, 1 as delta, from keyed
    union all
    select zone_id, area_id, area_type, vehicle_state, ended_at as changed_at, -1 as delta, from keyed
    union all
    select series.zone_id, series.area_id, series.area_type, series.vehicle_state, hours.hour as changed_at, 0 as delta,
    from series
    inner join hours on series.zone_id = hours.zone_id
),

counts as (
    select
        zone_id,
        area_id,
        area_type,
        vehicle_state,
        changed_at,
        to_timestamp(floor(epoch(changed_at) / 3600) * 3600) as hour,
        cast(sum(delta) over series_in_time as integer) as vehicles,
        lead(changed_at) over series_in_time as next_at,
    from changes
    -- The default frame (range) takes simultaneous changes together: ties share the count after all of them.
    window series_in_time as (partition by zone_id, area_id, area_type, vehicle_state order by changed_at)
),

hourly as (
    select
        counts.zone_id,
        counts.area_id,
        counts.area_type,
        counts.vehicle_state,
        counts.hour,
        sum(
            counts.vehicles
            * (
                epoch_ms(least(coalesce(counts.next_at, counts.hour + interval 1 hour), counts.hour + interval 1 hour))
                - epoch_ms(counts.changed_at)
            )
        ) / 1000.0 as state_seconds,
        min(counts.vehicles) as min_vehicles,
        max(counts.vehicles) as max_vehicles,
    from counts
    semi join hours on counts.zone_id = hours.zone_id and counts.hour = hours.hour
    group by counts.zone_id, counts.area_id, counts.area_type, counts.vehicle_state, counts.hour
),

final as (
    select
        hourly.zone_id,
        hourly.area_id,  -- The zone area where each interval's state began (null for area_type 'zone' and 'outside').
        hourly.area_type,  -- That area's type, 'outside' when in no area, or 'zone' for the whole zone.
        hourly.hour,  -- Start of the UTC hour.
        timezone(coalesce(systems.timezone, 'UTC'), hourly.hour)
            as hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        coalesce(systems.timezone, 'UTC')
            as timezone,  -- The zone's IANA time zone (GBFS system_information; UTC when unknown), used by hour_local.
        hourly.vehicle_state,  -- The MDS vehicle state, or 'deployed' (available, reserved or non_operational).
        hourly.state_seconds / 3600.0
            as avg_vehicles,  -- Time-weighted mean vehicles in the state (vehicles.[state].avg; dockless.deployed.avg).
        hourly.min_vehicles,  -- Fewest vehicles in the state at any moment of the hour (vehicles.[state].min).
        hourly.max_vehicles,  -- Most vehicles in the state at any moment of the hour (vehicles.[state].max).
        hourly.state_seconds,  -- Vehicle-seconds spent in the state in the hour (vehicles.[state].duration.sum).
    from hourly
    left join systems on hourly.zone_id = systems.zone_id
)

select * from final
