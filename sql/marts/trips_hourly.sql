-- Trip demand and trip measures by the UTC hour in which trips start (MDS metrics count trips at their start).
-- grain: one row per zone_id, vehicle_type and start_hour_utc
-- inputs: trips
-- materialized: table
-- Anomalous trips (under 10 s, over 5 h, impossible speed) are counted but kept out of the distributions.
with trips as (
    select * from main.trips
),

flagged as (
    select
        *,
        time_bucket(interval 1 hour, start_time) as start_hour_utc,
        is_under_10s or is_over_5h or is_impossible_speed as is_anomaly,
    from trips
),

final as (
    select
        zone_id,
        vehicle_type,
        start_hour_utc,
        timezone(any_value(timezone), start_hour_utc) as start_hour_local,
        cast(timezone(any_value(timezone), start_hour_utc) as date) as start_date_local,
        count(*) as trip_count,
        count(*) filter (where is_anomaly) as anomaly_count,
        count(*) filter (where not is_anomaly) as valid_trip_count,
        avg(duration_s) filter (where not is_anomaly) as duration_avg_s,
        median(duration_s) filter (where not is_anomaly) as duration_median_s,
        quantile_cont(duration_s, 0.9) filter (where not is_anomaly) as duration_p90_s,
        avg(distance_m) filter (where not is_anomaly) as distance_avg_m,
        median(distance_m) filter (where not is_anomaly) as distance_median_m,
        quantile_cont(distance_m, 0.9) filter (where not is_anomaly) as distance_p90_m,
    from flagged
    group by zone_id, vehicle_type, start_hour_utc
)

select * from final
