-- Time-weighted vehicle counts per MDS state (vehicles.[state].avg/min/max, vehicles.[state].duration.sum),
-- deployed vehicles (dockless.deployed.*: in the public right of way = available, reserved, non_operational or
-- on_trip) and parked vehicles (the project's own measure: deployed but not on a trip), per zone, zone area and UTC
-- hour, from the MDS state timeline. Each hour has a row, zeros included, for every area and state that occurs in
-- the zone's state timeline at any time; when a re-delivery withdraws the last occurrence of an area or a state,
-- its rows leave every hour.
-- grain: (zone_id, scope, area_id, hour, vehicle_state) one row per zone_id, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area), area_id, hour and vehicle_state
-- inputs: int_metrics_vehicles, int_occupancy_series, int_zone_horizons, int_zone_area_labels, int_zone_timezones, int_warm_up_hours
-- materialized: incremental(hour)
-- whole_when_grows: int_occupancy_series
-- The hour's four quarters of core.int_metrics_vehicles (every vehicle type, '*'), summed over providers: one
-- definition of the exact state-seconds method for the marts, the city reports and the MDS Metrics API. Seconds
-- add up; the fewest of an hour is the least of its quarters' fewest (zero when a quarter has no row: no vehicle
-- was in the state), the most the greatest of their most. The fewest and most of vehicles of several providers
-- together are not known from each provider's (the least of a sum is not the sum of the least): null then.
-- Open intervals (no next event yet) last until the zone's data horizon, the end of its latest delivered hour.
-- Every hour from the zone's first to its last delivered hour has a row, with zeros, for every (area, state)
-- that ever occurs (core.int_occupancy_series) and for available, deployed and parked in every area: a window
-- build in which an (area, state) first occurs, or loses its last interval, rebuilds the table whole
-- (`whole_when_grows`), so the hours built before gain or lose its zero rows, as in a full build. Both the zone-wide rows and those of
-- vehicles in no area have a null area_id: `scope` tells them apart. An area is named as the zone API named it
-- when the hour began (one added within the hour, as it was named when added).
-- Warm-up hours (the first hours of a zone's history, or after a gap, while a vehicle parked and silent since before
-- may still be missing: core.int_warm_up_hours) are kept and flagged, not dropped: their counts are lower bounds,
-- exact for every vehicle the lake has heard from. Averages over a period should leave them out.
with systems as (
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

-- Every (area, state) that ever occurs; the series below derive from these few.
seen as (
    select zone_id, area_id, vehicle_state, area_type, from core.int_occupancy_series
),

-- The reported series: each (area, state) seen, its zone-wide total, and available, deployed and parked in every
-- area and zone-wide (zeros where none ever were).
series as (
    select
        zone_id,
        area_id,
        area_type,
        vehicle_state,
        case area_type when 'zone' then 'zone' when 'outside' then 'outside' else 'area' end as scope,
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

-- The window's quarters by hour. Seconds are summed in whole milliseconds, as the quarters hold them: exact, so a
-- window build and a full build give the same numbers to the last bit.
pieces as (
    select
        zone_id,
        scope,
        area_id,
        vehicle_state,
        to_timestamp(epoch_ms(interval_start) // 3600000 * 3600) as hour,
        sum(cast(round(state_seconds * 1000) as bigint)) as state_ms,
        count(distinct provider_id) as providers,
        count(*) as quarters,
        min(min_vehicles) as min_vehicles,
        max(max_vehicles) as max_vehicles,
    from core.int_metrics_vehicles
    where vehicle_type = '*' and interval_start >= $window_start and interval_start < $window_end
    group by all
),

hourly as (
    select
        series.zone_id,
        series.area_id,
        series.area_type,
        series.scope,
        series.vehicle_state,
        hours.hour,
        coalesce(pieces.state_ms, 0) / 1000.0 as state_seconds,
        case
            when pieces.providers > 1 then null
            when pieces.quarters = 4 then pieces.min_vehicles
            else 0
        end as min_vehicles,
        case when pieces.providers > 1 then null else coalesce(pieces.max_vehicles, 0) end as max_vehicles,
    from series
    inner join hours on series.zone_id = hours.zone_id
    left join pieces
        on series.zone_id = pieces.zone_id
        and series.scope = pieces.scope
        and series.area_id is not distinct from pieces.area_id
        and series.vehicle_state = pieces.vehicle_state
        and hours.hour = pieces.hour
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

-- Each area row's area as the zone API named it when the hour began (one added within the hour, as it was added).
labels as (
    select zone_id, area_id, hour_span_start, span_end, area_name, area_label, from core.int_zone_area_labels
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
        hourly.min_vehicles,  -- Fewest vehicles in the state at any moment of the hour (vehicles.[state].min; deployed: dockless.deployed.min); null when vehicles of several providers shared the hour's state.
        hourly.max_vehicles,  -- Most vehicles in the state at any moment of the hour (vehicles.[state].max; deployed: dockless.deployed.max); null when vehicles of several providers shared the hour's state.
        hourly.state_seconds,  -- Vehicle-seconds spent in the state in the hour (vehicles.[state].duration.sum).
        hourly.scope,  -- What the row counts: 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
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
        and hourly.hour >= labels.hour_span_start
        and hourly.hour < labels.span_end
)

select * from final
