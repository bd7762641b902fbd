-- Trips counted where and when they start and where and when they end, with their durations and distances, per
-- zone, zone area and UTC hour (MDS Metrics trips.[start_loc/end_loc].count, .duration.*, .distance.*).
-- grain: (zone_id, hour, location, scope, area_id) one row per zone_id, hour, location ('start' or 'end'), scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area) and area_id
-- inputs: trips
-- materialized: incremental(hour)
-- unique_key: zone_id, hour
-- As the MDS Metrics count them: every trip (anomalies too, counted apart in anomaly_count: the methodology leaves
-- their exclusion to the city), with the duration and distance the provider reported. A trip counts at its start in
-- the hour and the area it started in, and at its end in those it ended in (both placed in the zone's areas in force
-- at its end). A window build recounts, whole, every hour its trips started or ended in (a trip arrives with its end
-- and may have started hours before) and its own hours.
with window_trips as (
    select zone_id, start_time, end_time, from main.trips
    where end_time >= $window_start and end_time < $window_end
),

-- The hours to recount: those the window's trips started and ended in, and the window's hours in which trips
-- started that have not ended yet (the rows of the window's hours are replaced whole).
touched_hours as (
    select distinct zone_id, time_bucket(interval 1 hour, start_time) as hour, from window_trips
    union
    select distinct zone_id, time_bucket(interval 1 hour, end_time) as hour, from window_trips
    union
    select distinct zone_id, time_bucket(interval 1 hour, start_time) as hour,
    from main.trips
    where start_time >= $window_start and start_time < $window_end
),

bounds as (
    select min(hour) as first_hour, max(hour) + interval 1 hour as end_hour, from touched_hours
),

trips as (
    select
        zone_id,
        start_time,
        end_time,
        timezone,
        reported_duration_s,
        distance_m,
        is_under_10s or is_over_5h or is_impossible_speed as is_anomaly,
        start_area_id,
        start_area_type,
        start_area_label,
        end_area_id,
        end_area_type,
        end_area_label,
    from main.trips
    -- Trips that started or ended within the touched hours' span (each bound alone skips row groups by end_time).
    where end_time >= (select first_hour from bounds) and start_time < (select end_hour from bounds)
),

located as (
    select
        zone_id,
        time_bucket(interval 1 hour, start_time) as hour,
        'start' as location,
        start_area_id as area_id,
        start_area_type as area_type,
        start_area_label as area_label,
        end_time,
        timezone,
        reported_duration_s,
        distance_m,
        is_anomaly,
    from trips
    union all
    select
        zone_id,
        time_bucket(interval 1 hour, end_time) as hour,
        'end' as location,
        end_area_id as area_id,
        end_area_type as area_type,
        end_area_label as area_label,
        end_time,
        timezone,
        reported_duration_s,
        distance_m,
        is_anomaly,
    from trips
),

touched as (
    select located.*
    from located
    semi join touched_hours on located.zone_id = touched_hours.zone_id and located.hour = touched_hours.hour
),

scoped as (
    select
        * exclude (area_type, area_label),
        if(area_type = 'outside', 'outside', 'area') as scope,
        area_type,
        area_label,
    from touched
    -- Where a trip started or ended is not known without the zone's areas: it counts zone-wide only.
    where area_type is not null
    union all by name
    select
        * exclude (area_id, area_type, area_label),
        null::varchar as area_id,
        'zone' as scope,
        'zone' as area_type,
        'Whole zone' as area_label,
    from touched
),

final as (
    select
        zone_id,
        hour,  -- Start of the UTC hour in which the trips started (location 'start') or ended ('end').
        timezone(any_value(timezone), hour)
            as hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        location,  -- 'start': trips counted where and when they started (trips.start_loc.*); 'end': where and when they ended (trips.end_loc.*).
        scope,  -- What the row counts: 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        area_id,  -- The most specific zone area of the trips' start or end (null for the other scopes).
        any_value(area_type) as area_type,  -- That area's type, 'outside' in no area, or 'zone' for the whole zone.
        -- An area renamed within the hour keeps the name in force at the hour's last trip end.
        arg_max(area_label, end_time)
            as area_label,  -- A readable label: the area's name (else its type and id), 'Whole zone' or 'Outside every area'.
        count(*) as trip_count,  -- Trips started (or ended) there in the hour, anomalies included (trips.[start_loc/end_loc].count).
        count(*) filter (where is_anomaly)
            as anomaly_count,  -- Those flagged under 10 s, over 5 h or at an impossible speed (counted in trip_count too).
        count(*) filter (where reported_duration_s is null)
            as duration_missing_count,  -- Trips without a reported duration: left out of the duration measures, not taken as 0.
        sum(reported_duration_s)
            as duration_sum_s,  -- Total reported trip duration, in seconds (trips.[start_loc/end_loc].duration.sum).
        avg(reported_duration_s)
            as duration_avg_s,  -- Mean reported trip duration, in seconds (trips.[start_loc/end_loc].duration.avg).
        median(reported_duration_s)
            as duration_median_s,  -- Median reported trip duration, in seconds (trips.[start_loc/end_loc].duration.med).
        stddev_pop(reported_duration_s)
            as duration_std_s,  -- Standard deviation (population) of the reported durations, in seconds (trips.[start_loc/end_loc].duration.std).
        sum(distance_m) as distance_sum_m,  -- Total reported trip distance, in metres (trips.[start_loc/end_loc].distance.sum).
        avg(distance_m) as distance_avg_m,  -- Mean reported trip distance, in metres (trips.[start_loc/end_loc].distance.avg).
        median(distance_m)
            as distance_median_m,  -- Median reported trip distance, in metres (trips.[start_loc/end_loc].distance.med).
        stddev_pop(distance_m)
            as distance_std_m,  -- Standard deviation (population) of the reported distances, in metres (trips.[start_loc/end_loc].distance.std).
    from scoped
    group by zone_id, hour, location, scope, area_id
)

select * from final
