-- Time-weighted vehicle counts per MDS state (vehicles.[state].avg/min/max, vehicles.[state].duration.sum),
-- deployed vehicles (dockless.deployed.*: in the public right of way = available, reserved, non_operational or
-- on_trip) and parked vehicles (the project's own measure: deployed but not on a trip), per zone, zone area and UTC
-- hour, from the MDS state timeline.
-- grain: (zone_id, scope, area_id, hour, vehicle_state) one row per zone_id, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area), area_id, hour and vehicle_state
-- inputs: vehicle_state_intervals, int_occupancy_series, int_zone_horizons, int_zone_area_labels, int_zone_timezones, int_warm_up_hours
-- materialized: incremental(hour)
-- Exact, not sampled: each interval adds +1 at its start and -1 at its end to every series it counts in (its area
-- and state, the zone's, deployed when in the right of way and parked when parked). An hour's opening count is the
-- sum of all earlier changes (summed per hour, then accumulated); within the hour a running sum of its own changes,
-- from a zero change at the hour's start, gives the count as a step function. The sort is per series and hour:
-- small partitions, in parallel, whatever the length of the intervals.
-- Open intervals (no next event yet) last until the zone's data horizon, the end of its latest delivered hour.
-- Every hour from the zone's first to its last delivered hour has a row, with zeros, for every (area, state)
-- that ever occurs (core.int_occupancy_series) and for available, deployed and parked in every area: the same
-- rows whether built whole or by hour. Both the zone-wide rows and those of vehicles in no area have a null
-- area_id: `scope` tells them apart. An area is named as the zone API named it when the hour began.
-- Warm-up hours (the first hours of a zone's history, or after a gap, while a vehicle parked and silent since before
-- may still be missing: core.int_warm_up_hours) are kept and flagged, not dropped: their counts are lower bounds,
-- exact for every vehicle the lake has heard from. Averages over a period should leave them out.
-- Not materialized: read twice, a copy of every interval would cost more than two scans.
with intervals as not materialized (
    select zone_id, area_id, area_type, vehicle_state, started_at, ended_at,
    from main.vehicle_state_intervals
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

delivered as (
    select zone_id, first_hour, horizon, from core.int_zone_horizons
),

hours as (
    select zone_id, hour
    from (
        select zone_id, unnest(generate_series(first_hour, horizon - interval 1 hour, interval 1 hour)) as hour,
        from delivered
    )
    where hour >= $window_start and hour < $window_end
),

-- Intervals reaching into the window: ended after it began, or lasting still. Two reads, each bounded by the row
-- groups' time ranges; one condition over both would read every interval.
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
        greatest(intervals.started_at, $window_start) as started_at,
        least(coalesce(intervals.ended_at, delivered.horizon), delivered.horizon, $window_end) as ended_at,
    from overlapping as intervals
    inner join delivered on intervals.zone_id = delivered.zone_id
    where
        intervals.started_at < least(delivered.horizon, $window_end)
        and coalesce(intervals.ended_at, delivered.horizon) > $window_start
),

-- Every (area, state) that ever occurs; the series below derive from these few.
seen as (
    select zone_id, area_id, vehicle_state, area_type, from core.int_occupancy_series
),

-- The counted series, numbered: each (area, state) seen, its zone-wide total, and available, deployed and parked
-- in every area and zone-wide (zeros where none ever were).
series as (
    select
        row_number() over (order by zone_id, area_type, area_id, vehicle_state) as series_id,
        zone_id,
        area_id,
        area_type,
        vehicle_state,
    from (
        select zone_id, area_id, area_type, vehicle_state from seen
        union
        select zone_id, area_id, area_type, kept.vehicle_state,
        from seen
        cross join (values ('available'), ('deployed'), ('parked')) as kept (vehicle_state)
        union
        select zone_id, null::varchar as area_id, 'zone' as area_type, vehicle_state from seen
        union
        select zone_id, null::varchar as area_id, 'zone' as area_type, kept.vehicle_state,
        from seen
        cross join (values ('available'), ('deployed'), ('parked')) as kept (vehicle_state)
    )
),

-- The series an interval in (zone, area, state) counts in: its own and the zone's, deployed ones when in the public
-- right of way (MDS: available, unavailable = non_operational, reserved or trip = on_trip), parked ones when parked.
feeds as (
    select seen.zone_id, seen.area_id, seen.vehicle_state, series.series_id,
    from seen
    inner join series
        on seen.zone_id = series.zone_id
        and (
            (series.area_id is not distinct from seen.area_id and series.area_type = seen.area_type)
            or series.area_type = 'zone'
        )
        and (
            series.vehicle_state = seen.vehicle_state
            or (
                series.vehicle_state = 'deployed'
                and seen.vehicle_state in ('available', 'reserved', 'non_operational', 'on_trip')
            )
            or (
                series.vehicle_state = 'parked'
                and seen.vehicle_state in ('available', 'reserved', 'non_operational')
            )
        )
),

-- Times in epoch milliseconds from here on: integer arithmetic, where time_bucket on 20 million time-zone-aware
-- timestamps cost seconds.
changes as (
    select
        feeds.series_id,
        unnest([epoch_ms(clipped.started_at), epoch_ms(clipped.ended_at)]) as changed_ms,
        unnest([1, -1]) as delta,
    from clipped
    inner join feeds
        on clipped.zone_id = feeds.zone_id
        and clipped.area_id is not distinct from feeds.area_id
        and clipped.vehicle_state = feeds.vehicle_state
    union all
    select series.series_id, epoch_ms(hours.hour) as changed_ms, 0 as delta,
    from series
    inner join hours on series.zone_id = hours.zone_id
),

-- The count at each hour's start: the changes of all earlier hours, summed per hour, then accumulated.
hour_nets as (
    select series_id, changed_ms // 3600000 as hour_index, sum(delta) as delta,
    from changes
    group by all
),

openings as (
    select
        series_id,
        hour_index,
        coalesce(
            sum(delta) over (
                partition by series_id order by hour_index rows between unbounded preceding and 1 preceding
            ),
            0
        ) as opening,
    from hour_nets
),

-- Within each hour (a small partition each, keyed by one integer: series and hour): the count since the hour
-- began, just after each change's instant (simultaneous changes together). With changes of +1 and -1 and one
-- zero marker at the hour's start, it is told by two row counts up to that instant, all changes (`so_far`) and
-- those of the change's own sign (`same_sign_so_far`): +1 rows give 2 x same_sign - so_far + 1 and -1 rows
-- so_far - 1 - 2 x same_sign. DuckDB counts rows up to a peer group directly, three times faster than it sums.
-- The marker counts only when alone at the hour's start (0); otherwise the changes at that instant tell it.
steps as (
    select
        series_id,
        hour_index,
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
            count(*) over (partition by series_hour order by offset_ms) as so_far,
            count(*) over (partition by series_hour, delta order by offset_ms) as same_sign_so_far,
        from (
            select
                series_id,
                delta,
                changed_ms // 3600000 as hour_index,
                cast(changed_ms % 3600000 as integer) as offset_ms,
                series_id * 10000000 + changed_ms // 3600000 as series_hour,
            from changes
        )
    )
),

-- A change of d vehicles at t adds d x (hour end - t) vehicle-time to its hour: no need for the next change's time.
stepped as (
    select
        series_id,
        hour_index,
        -- In whole milliseconds: exact, so a window build and a full build give the same numbers to the last bit.
        sum(delta * (3600000 - offset_ms)) as step_ms,
        min(since_opening) as min_step,
        max(since_opening) as max_step,
    from steps
    group by series_id, hour_index
),

hourly as (
    select
        series.zone_id,
        series.area_id,
        series.area_type,
        series.vehicle_state,
        to_timestamp(stepped.hour_index * 3600) as hour,
        (openings.opening * 3600000 + stepped.step_ms) / 1000.0 as state_seconds,
        cast(openings.opening + stepped.min_step as integer) as min_vehicles,
        cast(openings.opening + stepped.max_step as integer) as max_vehicles,
    from stepped
    inner join openings on stepped.series_id = openings.series_id and stepped.hour_index = openings.hour_index
    inner join series on stepped.series_id = series.series_id
),

-- Local time once per zone and hour, not per row; joining it also keeps only the window's delivered hours.
local_hours as (
    select
        hours.zone_id,
        hours.hour,
        timezone(systems.timezone, hours.hour) as hour_local,
        systems.timezone as timezone,
        warm_up.hour is not null as warm_up,
    from hours
    left join systems on hours.zone_id = systems.zone_id
    left join core.int_warm_up_hours as warm_up on hours.zone_id = warm_up.zone_id and hours.hour = warm_up.hour
),

-- Each area row's area as the zone API named it when the hour began.
labels as (
    select zone_id, area_id, span_start, span_end, area_name, area_label, from core.int_zone_area_labels
),

final as (
    select
        hourly.zone_id,
        hourly.area_id,  -- The zone area where each interval's state began (null for area_type 'zone' and 'outside').
        hourly.area_type,  -- That area's type, 'outside' when in no area, or 'zone' for the whole zone.
        hourly.hour,  -- Start of the UTC hour.
        local_hours.hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        local_hours.timezone,  -- The zone's IANA time zone (core.int_zone_timezones: configuration, GBFS or geometry; null when unknown), used by hour_local.
        hourly.vehicle_state,  -- The MDS vehicle state, 'deployed' (available, reserved, non_operational or on_trip) or 'parked' (deployed, not on_trip).
        hourly.state_seconds / 3600.0
            as avg_vehicles,  -- Time-weighted mean vehicles in the state (vehicles.[state].avg; deployed: dockless.deployed.avg).
        hourly.min_vehicles,  -- Fewest vehicles in the state at any moment of the hour (vehicles.[state].min; deployed: dockless.deployed.min).
        hourly.max_vehicles,  -- Most vehicles in the state at any moment of the hour (vehicles.[state].max; deployed: dockless.deployed.max).
        hourly.state_seconds,  -- Vehicle-seconds spent in the state in the hour (vehicles.[state].duration.sum).
        case hourly.area_type when 'zone' then 'zone' when 'outside' then 'outside' else 'area' end
            as scope,  -- What the row counts: 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        labels.area_name,  -- The area's name in the zone API in force at the hour (null for the other scopes or when unnamed).
        case hourly.area_type
            when 'zone' then 'Whole zone'
            when 'outside' then 'Outside every area'
            else coalesce(labels.area_label, hourly.area_type || ' ' || hourly.area_id)
        end as area_label,  -- A readable label of the row's scope: the area's name (else its type and id), 'Whole zone' or 'Outside every area'.
        local_hours.warm_up,  -- Whether the hour is a warm-up hour: a vehicle parked and silent since before the lake's first MDS events hour (or a missing one) within the lead-in may be missing, so the counts are lower bounds.
    from hourly
    inner join local_hours on hourly.zone_id = local_hours.zone_id and hourly.hour = local_hours.hour
    left join labels
        on hourly.zone_id = labels.zone_id
        and hourly.area_id = labels.area_id
        and hourly.hour >= labels.span_start
        and hourly.hour < labels.span_end
)

select * from final
