-- The additive pieces of the activity measures (dockless.active.avg, inactive.avg, utilization.active.percent) for
-- the Metrics API's short intervals: per zone (or zone area), provider, vehicle type (or all types, '*'), interval
-- duration ('PT15M' or 'PT1H') and interval start (every UTC quarter: an hour in any time zone starts on one), the
-- right-of-way seconds of the vehicles that were on a trip at some time of that interval, anywhere in the zone.
-- grain: (zone_id, scope, area_id, provider_id, vehicle_type, interval_duration, interval_start) one row per zone_id, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area), area_id, provider_id, vehicle_type ('*': every type), interval_duration and interval_start
-- inputs: vehicle_state_intervals, int_metrics_vehicle_providers, stg_mds__vehicles, int_zone_horizons
-- materialized: incremental(last_quarter)
-- Whether a vehicle rode depends on the whole interval, so no quarter's piece can say it for an hour: each interval
-- a query may ask for up to an hour long has its own piece, and the query sums the pieces of its intervals, reading
-- no state timeline (a day or a month is read from the timeline at query time: pipelines/metrics/query.py). Only
-- the states within an interval's length of a trip are looked at: an interval a state fills without a trip of its
-- vehicle in it or beside it holds no ride. Every deployed state counts as in core.int_metrics_vehicles (the area
-- where it began, the vehicle's provider and its type when the quarter is built, cut at the zone's delivered hours),
-- so active seconds never exceed that model's deployed seconds and inactive is their difference. A piece depends on
-- its own quarters only: a window build rebuilds the pieces whose last quarter (`last_quarter`) lies in the window,
-- from the states of the window and of the three quarters before it; a piece lies whole within the zone's delivered
-- hours (first_hour to horizon of core.int_zone_horizons), so a window build and a full build store the same rows.
-- A late delivery to an old hour also changes the pieces that begin in it and end in the next: the window build
-- rebuilds the hour after the changed states too (pipelines/warehouse/spill.py).
-- Seconds are summed in whole milliseconds: exact, in any order.
with delivered as (
    select zone_id, first_hour, horizon, from core.int_zone_horizons
),

-- The deployed states that the window's pieces overlap: from three quarters before the window to its end.
intervals as not materialized (
    select zone_id, device_id, area_id, area_type, vehicle_state, started_at, ended_at,
    from main.vehicle_state_intervals
    where vehicle_state in ('available', 'reserved', 'non_operational', 'on_trip')
),

overlapping as (
    select * from intervals
    where started_at < $window_end and ended_at > $window_start - interval 45 minute
    union all
    select * from intervals
    where started_at < $window_end and ended_at is null
),

clipped as (
    select
        intervals.zone_id,
        intervals.device_id,
        intervals.area_id,
        intervals.area_type,
        intervals.vehicle_state = 'on_trip' as on_trip,
        providers.provider_id,
        coalesce(vehicles.vehicle_type, 'unknown') as vehicle_type,
        epoch_ms(delivered.first_hour) // 900000 as first_quarter,
        epoch_ms(delivered.horizon) // 900000 as horizon_quarter,
        epoch_ms(greatest(intervals.started_at, delivered.first_hour, $window_start - interval 45 minute))
            as started_ms,
        epoch_ms(least(coalesce(intervals.ended_at, delivered.horizon), delivered.horizon, $window_end)) as ended_ms,
    from overlapping as intervals
    inner join delivered on intervals.zone_id = delivered.zone_id
    inner join core.int_metrics_vehicle_providers as providers
        on intervals.zone_id = providers.zone_id and intervals.device_id = providers.device_id
    left join staging.stg_mds__vehicles as vehicles
        on intervals.zone_id = vehicles.zone_id and intervals.device_id = vehicles.device_id
),

-- Each state's first and last quarter, and its vehicle's nearest ride quarters: the last quarter of its latest trip
-- before the state and the first of its next trip after it (a vehicle's states follow one another, so no trip lies
-- within a state other than on_trip: its rides in the state's quarters are at most these two).
neighboured as (
    select
        *,
        max(if(on_trip, last_state_quarter, null)) over (
            partition by zone_id, device_id order by started_ms rows between unbounded preceding and 1 preceding
        ) as ride_before,
        min(if(on_trip, first_state_quarter, null)) over (
            partition by zone_id, device_id order by started_ms rows between 1 following and unbounded following
        ) as ride_after,
    from (
        select *, started_ms // 900000 as first_state_quarter, (ended_ms - 1) // 900000 as last_state_quarter,
        from clipped
        where ended_ms > started_ms
    )
),

-- Each state once for every interval it overlaps in which its vehicle rode: a trip for all it overlaps, another
-- state for those that hold the quarter of the trip before it or after it.
spanned as (
    select
        neighboured.* exclude (ride_before, ride_after),
        lengths.interval_duration,
        lengths.quarters,
        unnest(
            if(
                on_trip,
                range(first_state_quarter - lengths.quarters + 1, last_state_quarter + 1),
                list_distinct(
                    if(
                        ride_before is null,
                        [],
                        range(
                            greatest(first_state_quarter, ride_before) - lengths.quarters + 1,
                            least(ride_before, last_state_quarter) + 1
                        )
                    )
                    || if(
                        ride_after is null,
                        [],
                        range(
                            greatest(first_state_quarter, ride_after) - lengths.quarters + 1,
                            least(ride_after, last_state_quarter) + 1
                        )
                    )
                )
            )
        ) as start_quarter,
    from neighboured
    cross join (values ('PT15M', 1), ('PT1H', 4)) as lengths (interval_duration, quarters)
),

-- The seconds each state spent in each such interval, summed per area, provider and type: whole intervals within
-- the zone's delivered hours whose last quarter lies in the window.
placed as (
    select
        zone_id,
        area_id,
        area_type,
        provider_id,
        vehicle_type,
        interval_duration,
        start_quarter,
        start_quarter + quarters - 1 as last_quarter_index,
        sum(least(ended_ms, (start_quarter + quarters) * 900000) - greatest(started_ms, start_quarter * 900000))
            as active_ms,
    from spanned
    where
        start_quarter >= first_quarter
        and start_quarter + quarters <= horizon_quarter
        and start_quarter + quarters - 1 >= epoch_ms($window_start) // 900000
        and start_quarter + quarters - 1 < epoch_ms($window_end) // 900000
    group by all
),

-- Every series a state counts in: its area and the whole zone, its type and every type ('*').
fed as (
    select
        zone_id,
        unnest([area_id, null]) as area_id,
        unnest([if(area_type = 'outside', 'outside', 'area'), 'zone']) as scope,
        provider_id,
        vehicle_type,
        interval_duration,
        start_quarter,
        last_quarter_index,
        active_ms,
    from placed
),

typed as (
    select * exclude (vehicle_type), unnest([vehicle_type, '*']) as vehicle_type, from fed
),

final as (
    select
        zone_id,
        scope,  -- 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        area_id,  -- The zone area where the states began (null for the scopes 'zone' and 'outside').
        provider_id,  -- The provider that reported the vehicles.
        vehicle_type,  -- The vehicles' MDS type ('unknown' without a vehicles snapshot), or '*' for every type.
        interval_duration,  -- The interval's length as the Metrics API names it: 'PT15M' or 'PT1H'.
        to_timestamp(start_quarter * 900) as interval_start,  -- Start of the interval (UTC), on a quarter.
        to_timestamp(last_quarter_index * 900) as last_quarter,  -- Start of the interval's last quarter (UTC).
        sum(active_ms) / 1000.0
            as active_seconds,  -- Right-of-way seconds in the interval of the vehicles on a trip at some time of it.
    from typed
    group by all
)

select * from final
