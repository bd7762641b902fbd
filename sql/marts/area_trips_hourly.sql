-- Trips counted where and when they start and where and when they end, with their durations and distances, per
-- zone, zone area and UTC hour (MDS Metrics trips.[start_loc/end_loc].count, .duration.*, .distance.*).
-- grain: (zone_id, hour, location, scope, area_id) one row per zone_id, hour, location ('start' or 'end'), scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area) and area_id
-- inputs: int_metrics_trips, trips, int_zone_area_labels, int_zone_timezones
-- materialized: incremental(hour)
-- unique_key: zone_id, hour
-- The hour's quarters of core.int_metrics_trips (every vehicle type, '*'), summed over providers: one definition of
-- where and when a trip counts for the marts, the city reports and the MDS Metrics API. As the MDS Metrics count
-- them: every trip (anomalies too, counted apart in anomaly_count: the methodology leaves their exclusion to the
-- city), with the duration and distance the provider reported; means and (population) standard deviations from the
-- sums and sums of squares, medians from the reported values themselves. A trip counts at its start in the hour and
-- the area it started in, and at its end in those it ended in (both placed in the zone's areas in force at its end).
-- A window build recounts, whole, every hour its trips started or ended in (a trip arrives with its end and may have
-- started hours before) and its own hours: the hours core.int_metrics_trips recounted. An area is named as the zone
-- API named it when the hour began (one added within the hour, as it was named when added).
with window_trips as (
    select zone_id, start_time, end_time, from main.trips
    where end_time >= $window_start and end_time < $window_end
),

-- The hours to recount, as core.int_metrics_trips recounts them: those the window's trips started and ended in, and
-- the window's hours in which trips started that have not ended yet (the rows of the window's hours are replaced
-- whole).
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

pieces as (
    select
        zone_id,
        hour,
        location,
        scope,
        area_id,
        cast(sum(trip_count) as bigint) as trip_count,
        cast(sum(anomaly_count) as bigint) as anomaly_count,
        cast(sum(duration_count) as bigint) as duration_count,
        sum(duration_sum_s) as duration_sum_s,
        sum(duration_sum_sq) as duration_sum_sq,
        list_median(flatten(list(durations_s))) as duration_median_s,
        cast(sum(distance_count) as bigint) as distance_count,
        sum(distance_sum_m) as distance_sum_m,
        sum(distance_sum_sq) as distance_sum_sq,
        list_median(flatten(list(distances_m))) as distance_median_m,
    from (
        -- The touched hours' span first (each bound skips row groups by interval_start), then those hours alone.
        select * from core.int_metrics_trips
        where
            vehicle_type = '*'
            and interval_start >= (select first_hour from bounds)
            and interval_start < (select end_hour from bounds)
    ) as quarters
    semi join touched_hours on quarters.zone_id = touched_hours.zone_id and quarters.hour = touched_hours.hour
    group by zone_id, hour, location, scope, area_id
),

-- Means from the sums, and (population) standard deviations from the sums of squares, as the MDS Metrics API takes
-- them; null where no trip reported the quantity.
measured as (
    select
        *,
        if(duration_count > 0, duration_sum_s / duration_count, null) as duration_avg_s,
        if(distance_count > 0, distance_sum_m / distance_count, null) as distance_avg_m,
        if(duration_count > 0, sqrt(greatest(duration_sum_sq / duration_count - duration_avg_s ** 2, 0)), null)
            as duration_std_s,
        if(distance_count > 0, sqrt(greatest(distance_sum_sq / distance_count - distance_avg_m ** 2, 0)), null)
            as distance_std_m,
    from pieces
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

-- Each area row's area as the zone API named it when the hour began (one added within the hour, as it was added).
labels as (
    select zone_id, area_id, hour_span_start, span_end, area_type, area_label, from core.int_zone_area_labels
),

final as (
    select
        pieces.zone_id,
        pieces.hour,  -- Start of the UTC hour in which the trips started (location 'start') or ended ('end').
        timezone(systems.timezone, pieces.hour)
            as hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        pieces.location,  -- 'start': trips counted where and when they started (trips.start_loc.*); 'end': where and when they ended (trips.end_loc.*).
        pieces.scope,  -- What the row counts: 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        pieces.area_id,  -- The most specific zone area of the trips' start or end (null for the other scopes).
        case pieces.scope when 'zone' then 'zone' when 'outside' then 'outside' else labels.area_type end
            as area_type,  -- That area's type, 'outside' in no area, or 'zone' for the whole zone.
        case pieces.scope
            when 'zone' then 'Whole zone'
            when 'outside' then 'Outside every area'
            else coalesce(labels.area_label, pieces.area_id)
        end as area_label,  -- A readable label: the area's name (else its type and id), 'Whole zone' or 'Outside every area'.
        pieces.trip_count,  -- Trips started (or ended) there in the hour, anomalies included (trips.[start_loc/end_loc].count).
        pieces.anomaly_count,  -- Those flagged under 10 s, over 5 h or at an impossible speed (counted in trip_count too).
        pieces.trip_count - pieces.duration_count
            as duration_missing_count,  -- Trips without a reported duration: left out of the duration measures, not taken as 0.
        if(pieces.duration_count > 0, pieces.duration_sum_s, null)
            as duration_sum_s,  -- Total reported trip duration, in seconds (trips.[start_loc/end_loc].duration.sum).
        pieces.duration_avg_s,  -- Mean reported trip duration, in seconds (trips.[start_loc/end_loc].duration.avg).
        pieces.duration_median_s,  -- Median reported trip duration, in seconds (trips.[start_loc/end_loc].duration.med).
        pieces.duration_std_s,  -- Standard deviation (population) of the reported durations, in seconds (trips.[start_loc/end_loc].duration.std).
        if(pieces.distance_count > 0, pieces.distance_sum_m, null)
            as distance_sum_m,  -- Total reported trip distance, in metres (trips.[start_loc/end_loc].distance.sum).
        pieces.distance_avg_m,  -- Mean reported trip distance, in metres (trips.[start_loc/end_loc].distance.avg).
        pieces.distance_median_m,  -- Median reported trip distance, in metres (trips.[start_loc/end_loc].distance.med).
        pieces.distance_std_m,  -- Standard deviation (population) of the reported distances, in metres (trips.[start_loc/end_loc].distance.std).
    from measured as pieces
    left join systems on pieces.zone_id = systems.zone_id
    left join labels
        on pieces.zone_id = labels.zone_id
        and pieces.area_id = labels.area_id
        and pieces.hour >= labels.hour_span_start
        and pieces.hour < labels.span_end
)

select * from final
