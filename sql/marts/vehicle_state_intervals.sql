-- Each vehicle's state from one MDS event to the next: the vehicle state timeline.
-- grain: (event_id) one row per event: the contiguous state interval it begins (one per zone_id, device_id, started_at and position_in_instant too)
-- inputs: stg_mds__events, int_event_order, int_zone_area_versions, int_coordinate_areas, int_zone_area_labels
-- materialized: incremental(started_at)
-- unique_key: event_id
-- reaches: ended_at
-- A window build rebuilds the intervals its events start, and the interval each of their vehicles was in when the
-- window began (its end is the window's first event); the first event after the window closes the last one. A
-- late event in an old hour changes the state its vehicle was in until its next event, hours later perhaps: the
-- window build then rebuilds this model's readers for those hours too (`reaches`, see pipelines/warehouse/spill.py).
-- A vehicle's events that share a timestamp follow core.int_event_order (a path of the MDS state machine: a trip's
-- start before its end), the same in every build; each is an interval of no duration but its last.
with window_events as (
    select * from staging.stg_mds__events
    where event_time >= $window_start and event_time < $window_end
),

-- The window's vehicles, and those whose state before the window ended at an event the window no longer holds (a
-- redelivery withdrew every event they had in it): the build binds those states as `$reaching` (their event_id and
-- started_at; empty but then, see pipelines/warehouse/spill.py), and their end is found anew, as a full build finds it.
devices as (
    select zone_id, device_id from window_events
    union
    select events.zone_id, events.device_id
    from staging.stg_mds__events as events
    semi join (
        select unnest(cast($reaching as struct(event_id uuid, started_at timestamptz)[]), recursive := true)
    ) as reaching
        on events.event_id = reaching.event_id and events.event_time = reaching.started_at
),

-- Each vehicle's last event before the window and first after it, by their times (an aggregation, no sort of
-- history). The table is in time order, so a time range reads only its blocks: first the day on either side, then
-- the week on either side, then the rest, each only for the vehicles still silent (an empty search reads nothing;
-- a search of all later history for a few vehicles silent a day after an hour in the middle of a month read most
-- of the month).
near as (
    select
        zone_id,
        device_id,
        max(event_time) filter (where event_time < $window_start) as before_time,
        min(event_time) filter (where event_time >= $window_end) as after_time,
    from staging.stg_mds__events
    where
        event_time >= $window_start - interval 1 day
        and event_time < $window_end + interval 1 day
        and (event_time < $window_start or event_time >= $window_end)
    group by zone_id, device_id
),

near_devices as (
    select near.*
    from near
    semi join devices on near.zone_id = devices.zone_id and near.device_id = devices.device_id
),

silent_day_before as (
    select zone_id, device_id from devices
    except
    select zone_id, device_id from near_devices where before_time is not null
),

week_before as (
    select events.zone_id, events.device_id, max(events.event_time) as before_time,
    from staging.stg_mds__events as events
    semi join silent_day_before
        on events.zone_id = silent_day_before.zone_id and events.device_id = silent_day_before.device_id
    where events.event_time >= $window_start - interval 7 day and events.event_time < $window_start - interval 1 day
    group by events.zone_id, events.device_id
),

silent_week_before as (
    select zone_id, device_id from silent_day_before
    except
    select zone_id, device_id from week_before
),

silent_day_after as (
    select zone_id, device_id from devices
    except
    select zone_id, device_id from near_devices where after_time is not null
),

week_after as (
    select events.zone_id, events.device_id, min(events.event_time) as after_time,
    from staging.stg_mds__events as events
    semi join silent_day_after
        on events.zone_id = silent_day_after.zone_id and events.device_id = silent_day_after.device_id
    where events.event_time >= $window_end + interval 1 day and events.event_time < $window_end + interval 7 day
    group by events.zone_id, events.device_id
),

silent_week_after as (
    select zone_id, device_id from silent_day_after
    except
    select zone_id, device_id from week_after
),

neighbour_times as (
    select zone_id, device_id, before_time as event_time from near_devices where before_time is not null
    union all
    select zone_id, device_id, after_time as event_time from near_devices where after_time is not null
    union all
    select zone_id, device_id, before_time as event_time from week_before
    union all
    select events.zone_id, events.device_id, max(events.event_time) as event_time,
    from staging.stg_mds__events as events
    semi join silent_week_before
        on events.zone_id = silent_week_before.zone_id and events.device_id = silent_week_before.device_id
    where events.event_time < $window_start - interval 7 day
    group by events.zone_id, events.device_id
    union all
    select zone_id, device_id, after_time as event_time from week_after
    union all
    select events.zone_id, events.device_id, min(events.event_time) as event_time,
    from staging.stg_mds__events as events
    semi join silent_week_after
        on events.zone_id = silent_week_after.zone_id and events.device_id = silent_week_after.device_id
    where events.event_time >= $window_end + interval 7 day
    group by events.zone_id, events.device_id
),

-- Every event at those times (two events of a vehicle may share a timestamp: both come, ordered as in a full
-- build). Joined on the time, DuckDB reads only the blocks of the neighbours' times.
neighbours as (
    select events.*
    from staging.stg_mds__events as events
    semi join neighbour_times
        on events.zone_id = neighbour_times.zone_id
        and events.device_id = neighbour_times.device_id
        and events.event_time = neighbour_times.event_time
),

events as (
    select * from neighbours
    union all
    select * from window_events
),

versions as (
    select zone_id, valid_from, span_start, span_end from core.int_zone_area_versions
),

-- Joined on the time too: the stored order is in time order, so DuckDB reads only the blocks of these events' times.
ordered as (
    select events.*, coalesce(event_order.position, 1) as position_in_instant,
    from events
    left join core.int_event_order as event_order
        on events.zone_id = event_order.zone_id
        and events.event_time = event_order.event_time
        and events.event_id = event_order.event_id
),

intervals as (
    select
        zone_id,
        device_id,
        vehicle_state,
        event_type as started_by,
        event_id,
        event_time as started_at,
        lead(event_time) over (
            partition by zone_id, device_id order by event_time, position_in_instant, event_id
        ) as ended_at,
        lat as start_lat,
        lng as start_lng,
        battery_percent,
        position_in_instant,
        mds_version,
    from ordered
),

final as (
    select
        intervals.zone_id,
        intervals.device_id,
        intervals.vehicle_state,  -- The MDS vehicle state during the interval (available, on_trip, ...).
        intervals.started_at,  -- When the state began: the time of the event that set it (UTC).
        intervals.ended_at,  -- When the vehicle's next event happened (UTC); null while the state lasts.
        epoch(intervals.ended_at) - epoch(intervals.started_at) as duration_s,  -- Seconds from started_at to ended_at (null while the state lasts).
        intervals.started_by,  -- The event type that began the interval.
        intervals.event_id,
        intervals.start_lat,  -- Latitude of the event that began the interval.
        intervals.start_lng,  -- Longitude of the event that began the interval.
        intervals.battery_percent,  -- Battery charge reported by that event, in percent.
        event_areas.area_id,  -- The most specific zone area containing that event (null outside every area).
        coalesce(event_areas.area_type, 'outside') as area_type,  -- That area's type, or 'outside'.
        labels.area_name,  -- That area's name in the zone API (null outside every area or when unnamed).
        coalesce(labels.area_label, 'Outside every area')
            as area_label,  -- A readable label of the place: the area's name (else its type and id), or 'Outside every area'.
        intervals.position_in_instant,  -- The event's place (1 first) among the vehicle's events at started_at, in state-machine order; 1 when it is alone.
        intervals.mds_version,  -- The MDS version the event that began the interval was delivered in ('2.0', '1.2', '0.4'); a 0.4 feed cannot say a hold that is not a ride (docs/mds_versions.md); null for lake files older than the column.
    from intervals
    -- The event's place in the zone's areas in force at its time.
    left join versions
        on intervals.zone_id = versions.zone_id
        and intervals.started_at >= versions.span_start
        and intervals.started_at < versions.span_end
    left join core.int_coordinate_areas as event_areas
        on intervals.zone_id = event_areas.zone_id
        and versions.valid_from = event_areas.valid_from
        and intervals.start_lng = event_areas.lng
        and intervals.start_lat = event_areas.lat
    -- The area named as the zone API named it when the state began.
    left join core.int_zone_area_labels as labels
        on intervals.zone_id = labels.zone_id
        and event_areas.area_id = labels.area_id
        and intervals.started_at >= labels.span_start
        and intervals.started_at < labels.span_end
    where intervals.started_at < $window_end
)

select * from final
