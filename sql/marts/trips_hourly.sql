-- Trip demand and trip measures by the UTC hour in which trips start (MDS metrics count trips at their start).
-- grain: (zone_id, vehicle_type, hour) one row per zone_id, vehicle_type and hour
-- inputs: trips
-- materialized: incremental(hour)
-- unique_key: zone_id, hour
-- Anomalous trips (under 10 s, over 5 h, impossible speed) are counted but kept out of the distributions.
-- A window build recounts the hours in which the window's trips started (a trip counts at its start, and arrives
-- with its end) and the hours of the window itself.
with touched_hours as (
    select distinct zone_id, time_bucket(interval 1 hour, start_time) as hour,
    from main.trips
    where end_time >= $window_start and end_time < $window_end
    union
    select distinct zone_id, time_bucket(interval 1 hour, start_time) as hour,
    from main.trips
    where start_time >= $window_start and start_time < $window_end
),

trips as (
    select *
    from main.trips
    semi join touched_hours
        on trips.zone_id = touched_hours.zone_id
        and time_bucket(interval 1 hour, trips.start_time) = touched_hours.hour
    where
        trips.start_time >= (select min(hour) from touched_hours)
        and trips.start_time < (select max(hour) from touched_hours) + interval 1 hour
),

flagged as (
    select
        *,
        time_bucket(interval 1 hour, start_time) as hour,
        is_under_10s or is_over_5h or is_impossible_speed as is_anomaly,
    from trips
),

final as (
    select
        zone_id,
        vehicle_type,
        hour,  -- Start of the UTC hour in which the trips started.
        timezone(any_value(timezone), hour)
            as hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        cast(timezone(any_value(timezone), hour) as date)
            as local_date,  -- The local calendar day of hour_local.
        count(*) as trip_count,  -- Trips started in the hour, anomalies included.
        count(*) filter (where is_anomaly)
            as anomaly_count,  -- Trips flagged under 10 s, over 5 h or at an impossible speed.
        count(*) filter (where not is_anomaly) as valid_trip_count,  -- trip_count minus anomaly_count.
        avg(duration_s) filter (where not is_anomaly)
            as duration_avg_s,  -- Mean duration of the valid trips, in seconds.
        median(duration_s) filter (where not is_anomaly)
            as duration_median_s,  -- Median duration of the valid trips, in seconds.
        quantile_cont(duration_s, 0.9) filter (where not is_anomaly)
            as duration_p90_s,  -- 90th percentile (interpolated) of the valid trips' durations, in seconds.
        avg(distance_m) filter (where not is_anomaly)
            as distance_avg_m,  -- Mean reported distance of the valid trips, in metres.
        median(distance_m) filter (where not is_anomaly)
            as distance_median_m,  -- Median reported distance of the valid trips, in metres.
        quantile_cont(distance_m, 0.9) filter (where not is_anomaly)
            as distance_p90_m,  -- 90th percentile (interpolated) of the valid trips' reported distances, in metres.
    from flagged
    group by zone_id, vehicle_type, hour
)

select * from final
