-- The additive pieces of the trip measures (trips.[start_loc/end_loc].count, .duration.*, .distance.*): per zone
-- (or zone area), provider, vehicle type (or all types, '*'), location ('start' or 'end') and 15-minute UTC
-- interval, the trips' count, the anomalies among them, the count, sum and sum of squares of their reported
-- durations and distances, and those durations and distances themselves. The one home of where and when a trip
-- counts: the MDS Metrics API and area_trips_hourly (and so the city reports) roll up from here.
-- grain: (zone_id, location, scope, area_id, provider_id, vehicle_type, interval_start) one row per zone_id, location ('start' or 'end'), scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area), area_id, provider_id, vehicle_type ('*': every type) and interval_start
-- inputs: trips, stg_mds__trips
-- materialized: incremental(interval_start)
-- unique_key: zone_id, hour
-- As the MDS Metrics count them: every trip (anomalies too, counted apart in anomaly_count: the methodology leaves
-- their exclusion to the city); a trip counts at its start in the quarter and area it started in, and at its end in
-- those it ended in (both placed in the zone's areas in force at its end). Sums and sums of squares give the mean
-- and the (population) standard deviation of any roll-up; medians are not additive, so the reported values are kept
-- (a list each) and any roll-up takes the median of their union, exactly. A trip without a reported duration (or
-- distance) counts in trip_count but not in duration_count (distance_count) nor the list: not taken as 0. A window
-- build recounts, whole, every hour its trips started or ended in (a trip arrives with its end and may have started
-- hours before) and its own hours.
with window_trips as (
    select zone_id, start_time, end_time, from main.trips
    where end_time >= $window_start and end_time < $window_end
),

-- The hours to recount whole (area_trips_hourly reads the same hours back, so both agree after a re-delivery):
-- those the window's trips started and ended in, and the window's hours in which trips started that have not ended
-- yet.
touched_hours as (
    select distinct zone_id, time_bucket(interval 1 hour, start_time) as hour, from window_trips
    union
    select distinct zone_id, time_bucket(interval 1 hour, end_time) as hour, from window_trips
    union
    select distinct zone_id, time_bucket(interval 1 hour, start_time) as hour,
    from main.trips
    where start_time >= $window_start and start_time < $window_end
),

touched as (
    select zone_id, hour + quarter * interval 15 minute as interval_start,
    from touched_hours
    cross join (values (0), (1), (2), (3)) as quarters (quarter)
),

bounds as (
    select min(hour) as first_start, max(hour) + interval 1 hour as end_start, from touched_hours
),

-- Only the trips the bounds read (a trip's end_time is its delivery's: staging is in that order, so the range reads
-- its blocks, and the join hashes those few thousand ids, not a month's 1.2 M).
providers as (
    select trip_id, provider_id, from staging.stg_mds__trips
    where end_time >= (select first_start from bounds)
),

trips as (
    select
        trips.zone_id,
        providers.provider_id,
        coalesce(trips.vehicle_type, 'unknown') as vehicle_type,
        trips.start_time,
        trips.end_time,
        trips.reported_duration_s,
        trips.distance_m,
        trips.is_under_10s or trips.is_over_5h or trips.is_impossible_speed as is_anomaly,
        trips.start_area_id,
        trips.start_area_type,
        trips.end_area_id,
        trips.end_area_type,
    from main.trips as trips
    inner join providers on trips.trip_id = providers.trip_id
    where trips.end_time >= (select first_start from bounds) and trips.start_time < (select end_start from bounds)
),

located as (
    select
        zone_id,
        provider_id,
        vehicle_type,
        unnest(['start', 'end']) as location,
        unnest([time_bucket(interval 15 minute, start_time), time_bucket(interval 15 minute, end_time)])
            as interval_start,
        unnest([start_area_id, end_area_id]) as area_id,
        unnest([start_area_type, end_area_type]) as area_type,
        reported_duration_s,
        distance_m,
        is_anomaly,
    from trips
),

kept as (
    select located.*
    from located
    semi join touched on located.zone_id = touched.zone_id and located.interval_start = touched.interval_start
),

-- Each trip counts in its area and the whole zone (unnested side by side), then for its type and every type.
placed as (
    select
        * exclude (area_id, area_type),
        unnest([area_id, null]) as area_id,
        -- Where a trip started or ended is not known without the zone's areas: it counts zone-wide only.
        unnest([case when area_type = 'outside' then 'outside' when area_type is not null then 'area' end, 'zone'])
            as scope,
    from kept
),

spread as (
    select * exclude (vehicle_type), unnest([vehicle_type, '*']) as vehicle_type, from placed
),

final as (
    select
        zone_id,
        location,  -- 'start': counted where and when the trips started (trips.start_loc.*); 'end': where and when they ended.
        scope,  -- 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        area_id,  -- The zone area of the trips' start or end (null for the scopes 'zone' and 'outside').
        provider_id,  -- The provider that reported the trips.
        vehicle_type,  -- The vehicles' MDS type ('unknown' when not known), or '*' for every type.
        interval_start,  -- Start of the 15-minute UTC interval in which the trips started (or ended).
        time_bucket(interval 1 hour, interval_start)
            as hour,  -- Its UTC hour: a window build replaces every quarter of the hours it recounts.
        count(*) as trip_count,  -- Trips (trips.[start_loc/end_loc].count), anomalies included.
        count(*) filter (where is_anomaly)
            as anomaly_count,  -- Those flagged under 10 s, over 5 h or at an impossible speed (counted in trip_count too).
        count(reported_duration_s) as duration_count,  -- Trips with a reported duration.
        coalesce(sum(reported_duration_s), 0) as duration_sum_s,  -- Sum of the reported durations, in seconds.
        coalesce(sum(reported_duration_s * reported_duration_s), 0)
            as duration_sum_sq,  -- Sum of the squared reported durations (for the standard deviation).
        count(distance_m) as distance_count,  -- Trips with a reported distance.
        coalesce(sum(distance_m), 0) as distance_sum_m,  -- Sum of the reported distances, in metres.
        coalesce(sum(distance_m * distance_m), 0) as distance_sum_sq,  -- Sum of the squared reported distances.
        list(reported_duration_s order by reported_duration_s) filter (reported_duration_s is not null)
            as durations_s,  -- The reported durations, in seconds, in order, for medians (null when none was reported).
        list(distance_m order by distance_m) filter (distance_m is not null)
            as distances_m,  -- The reported distances, in metres, in order, for medians (null when none was reported).
    from spread
    where scope is not null
    group by all
)

select * from final
