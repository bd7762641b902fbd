-- The additive pieces of the vehicle measures: per zone (or zone area), provider, vehicle type (or all types, '*'),
-- vehicle state (the MDS state, 'deployed' or 'parked') and 15-minute UTC interval, the vehicle-seconds in the state
-- and the fewest and most vehicles in it at any instant. Any longer interval rolls up exactly: seconds add up, the
-- fewest of a day is the least of its quarters' fewest, the most the greatest of their most. The one home of the
-- exact state-seconds method: the MDS Metrics API and occupancy_hourly (and so the city reports) roll up from here.
-- grain: (zone_id, scope, area_id, provider_id, vehicle_type, vehicle_state, interval_start) one row per zone_id, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area), area_id, provider_id, vehicle_type ('*': every type), vehicle_state and interval_start
-- inputs: vehicle_state_intervals, int_metrics_vehicle_providers, stg_mds__vehicles, int_zone_horizons
-- materialized: incremental(interval_start)
-- Exact, not sampled: each state interval adds +1 at its start and -1 at its end to every series it counts in; a
-- quarter's opening count is the sum of all earlier changes (summed per quarter, then accumulated), and within the
-- quarter its own changes, from a zero change at its start, give the count as a step function. The sort is per
-- series and quarter: small partitions, in parallel, whatever the length of the intervals. A state counts in the
-- area where it began, for as long as it lasts (MDS Metrics methodology 1.4); open intervals (no next event yet) last
-- until the zone's data horizon. Deployed is MDS dockless "in the public right of way": available, reserved,
-- non_operational or on_trip; parked (the project's own measure) is deployed but not on a trip. Rows whose seconds
-- and most are both zero are left out (no vehicle was in the state): within a zone's delivered quarters (first_hour
-- to horizon of core.int_zone_horizons) a missing row is zero, and a window build and a full build store the same
-- rows. The vehicle's type is the latest MDS vehicles snapshot's when the quarter is built ('unknown' without one).
with intervals as not materialized (
    select zone_id, device_id, event_id, area_id, area_type, vehicle_state, started_at, ended_at,
    from main.vehicle_state_intervals
),

delivered as (
    select zone_id, first_hour, horizon, from core.int_zone_horizons
),

overlapping as (
    select * from intervals
    where started_at < $window_end and ended_at > $window_start
    union all
    select * from intervals
    where started_at < $window_end and ended_at is null
),

clipped as (
    select
        intervals.zone_id,
        intervals.area_id,
        intervals.area_type,
        intervals.vehicle_state,
        providers.provider_id,
        coalesce(vehicles.vehicle_type, 'unknown') as vehicle_type,
        epoch_ms(greatest(intervals.started_at, delivered.first_hour, $window_start)) as started_ms,
        epoch_ms(least(coalesce(intervals.ended_at, delivered.horizon), delivered.horizon, $window_end)) as ended_ms,
    from overlapping as intervals
    inner join delivered on intervals.zone_id = delivered.zone_id
    inner join core.int_metrics_vehicle_providers as providers
        on intervals.zone_id = providers.zone_id and intervals.device_id = providers.device_id
    left join staging.stg_mds__vehicles as vehicles
        on intervals.zone_id = vehicles.zone_id and intervals.device_id = vehicles.device_id
    where
        intervals.started_at < least(delivered.horizon, $window_end)
        and coalesce(intervals.ended_at, delivered.horizon) > greatest(delivered.first_hour, $window_start)
),

-- Every series an interval counts in: its area and the whole zone, its type and every type ('*'), its state and,
-- in the public right of way, 'deployed', and when parked there, 'parked'.
fed as (
    select
        zone_id,
        provider_id,
        unnest([area_id, null]) as area_id,
        unnest([if(area_type = 'outside', 'outside', 'area'), 'zone']) as scope,
        vehicle_type,
        vehicle_state,
        started_ms,
        ended_ms,
    from clipped
    where ended_ms > started_ms
),

typed as (
    select * exclude (vehicle_type), unnest([vehicle_type, '*']) as vehicle_type, from fed
),

stated as (
    select * from typed
    union all
    select * replace ('deployed' as vehicle_state)
    from typed
    where vehicle_state in ('available', 'reserved', 'non_operational', 'on_trip')
    union all
    select * replace ('parked' as vehicle_state)
    from typed
    where vehicle_state in ('available', 'reserved', 'non_operational')
),

series as (
    select
        row_number() over (order by zone_id, scope, area_id, provider_id, vehicle_type, vehicle_state) as series_id,
        zone_id,
        scope,
        area_id,
        provider_id,
        vehicle_type,
        vehicle_state,
    from (select distinct zone_id, scope, area_id, provider_id, vehicle_type, vehicle_state from stated)
),

-- The quarters of the window the zone delivered, in epoch milliseconds.
quarters as (
    select zone_id, unnest(generate_series(
        epoch_ms(greatest(first_hour, $window_start)) // 900000,
        epoch_ms(least(horizon, $window_end)) // 900000 - 1
    )) as quarter_index,
    from delivered
    where first_hour < $window_end and horizon > $window_start
),

changes as (
    select series.series_id, unnest([stated.started_ms, stated.ended_ms]) as changed_ms, unnest([1, -1]) as delta,
    from stated
    inner join series
        on stated.zone_id = series.zone_id
        and stated.scope = series.scope
        and stated.area_id is not distinct from series.area_id
        and stated.provider_id = series.provider_id
        and stated.vehicle_type = series.vehicle_type
        and stated.vehicle_state = series.vehicle_state
    union all
    select series.series_id, quarters.quarter_index * 900000 as changed_ms, 0 as delta,
    from series
    inner join quarters on series.zone_id = quarters.zone_id
),

quarter_nets as (
    select series_id, changed_ms // 900000 as quarter_index, sum(delta) as delta,
    from changes
    group by all
),

openings as (
    select
        series_id,
        quarter_index,
        coalesce(
            sum(delta) over (
                partition by series_id order by quarter_index rows between unbounded preceding and 1 preceding
            ),
            0
        ) as opening,
    from quarter_nets
),

-- Within each quarter (a small partition each, keyed by one integer: series and quarter): the count since the
-- quarter began, just after each change's instant (simultaneous changes together). With changes of +1 and -1 and one
-- zero marker at the quarter's start, it is told by two row counts up to that instant, all changes (`so_far`) and
-- those of the change's own sign (`same_sign_so_far`): +1 rows give 2 x same_sign - so_far + 1 and -1 rows
-- so_far - 1 - 2 x same_sign. DuckDB counts rows up to a peer group directly, three times faster than it sums.
-- The marker counts only when alone at the quarter's start (0); otherwise the changes at that instant tell it.
steps as (
    select
        series_id,
        quarter_index,
        offset_ms,
        delta,
        case
            when delta = 1 then 2 * same_sign_so_far - so_far + 1
            when delta = -1 then so_far - 1 - 2 * same_sign_so_far
            when so_far = 1 then 0
        end as since_opening,
    from (
        select
            *,
            count(*) over (partition by series_quarter order by offset_ms) as so_far,
            count(*) over (partition by series_quarter, delta order by offset_ms) as same_sign_so_far,
        from (
            select
                series_id,
                delta,
                changed_ms // 900000 as quarter_index,
                cast(changed_ms % 900000 as integer) as offset_ms,
                series_id * 100000000 + changed_ms // 900000 as series_quarter,
            from changes
        )
    )
),

-- A change of d vehicles at t adds d x (quarter end - t) vehicle-time to its quarter: no need for the next change's
-- time. In whole milliseconds: exact, so a window build and a full build give the same numbers to the last bit.
stepped as (
    select
        series_id,
        quarter_index,
        sum(delta * (900000 - offset_ms)) as step_ms,
        min(since_opening) as min_step,
        max(since_opening) as max_step,
    from steps
    group by series_id, quarter_index
),

final as (
    select
        series.zone_id,
        series.scope,  -- 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        series.area_id,  -- The zone area where the states began (null for the scopes 'zone' and 'outside').
        series.provider_id,  -- The provider that reported the vehicles.
        series.vehicle_type,  -- The vehicles' MDS type ('unknown' without a vehicles snapshot), or '*' for every type.
        series.vehicle_state,  -- The MDS vehicle state, 'deployed' (available, reserved, non_operational or on_trip) or 'parked' (deployed, not on_trip).
        to_timestamp(stepped.quarter_index * 900) as interval_start,  -- Start of the 15-minute UTC interval.
        (openings.opening * 900000 + stepped.step_ms) / 1000.0
            as state_seconds,  -- Vehicle-seconds in the state in the quarter (vehicles.[state].duration.sum).
        cast(openings.opening + stepped.min_step as integer)
            as min_vehicles,  -- Fewest vehicles in the state at any instant of the quarter.
        cast(openings.opening + stepped.max_step as integer)
            as max_vehicles,  -- Most vehicles in the state at any instant of the quarter.
    from stepped
    inner join openings on stepped.series_id = openings.series_id and stepped.quarter_index = openings.quarter_index
    inner join series on stepped.series_id = series.series_id
    semi join quarters on series.zone_id = quarters.zone_id and stepped.quarter_index = quarters.quarter_index
    where openings.opening * 900000 + stepped.step_ms > 0 or openings.opening + stepped.max_step > 0
)

select * from final
