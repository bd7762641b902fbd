-- Trips by local weekday and hour of day at which they start: how many, and how many an hour on average over every
-- hour of the history that falls on that weekday and hour (hours without a trip counted as zero).
-- grain: (zone_id, weekday, hour_of_day) one row per zone_id, local weekday and local hour of day (both null for the hours whose local time is unknown)
-- inputs: trips_hourly, data_quality_hourly, int_zone_timezones
-- materialized: view
-- A ready-made answer (README.md, "Example queries"): `from trips_by_weekday_hour where zone_id = '1' order by
-- weekday, hour_of_day`. The history's hours are data_quality_hourly's (every hour from the zone's first to its
-- last delivered partition); trips that started before the first of them are left out.
with history_hours as (
    select quality.zone_id, quality.hour, timezone(timezones.timezone, quality.hour) as hour_local,
    from main.data_quality_hourly as quality
    left join core.int_zone_timezones as timezones on quality.zone_id = timezones.zone_id
),

started as (
    select
        zone_id,
        hour,
        sum(trip_count) as trip_count,
        sum(valid_trip_count) filter (where duration_avg_s is not null) as trips_with_duration,
        sum(duration_avg_s * valid_trip_count) as duration_sum_s,
        sum(distance_avg_m * valid_trip_count) filter (where distance_avg_m is not null) as distance_sum_m,
        sum(valid_trip_count) filter (where distance_avg_m is not null) as trips_with_distance,
    from main.trips_hourly
    group by zone_id, hour
),

final as (
    select
        history_hours.zone_id,
        isodow(history_hours.hour_local) as weekday,  -- ISO day of the week of the local hour: 1 Monday to 7 Sunday (null when the zone's time zone is unknown).
        dayname(history_hours.hour_local) as weekday_name,  -- That day's name in English (Monday, ...).
        hour(history_hours.hour_local) as hour_of_day,  -- Local hour of the day, 0 to 23 (the hour starting at 08:00 is 8).
        count(*) as hours,  -- UTC hours of the history on that weekday and hour of day.
        coalesce(sum(started.trip_count), 0)::bigint as trip_count,  -- Trips started in those hours, anomalies included.
        coalesce(sum(started.trip_count), 0) / count(*) as trips_per_hour_avg,  -- trip_count per hour of the history (hours without a trip count as zero).
        sum(started.duration_sum_s) / nullif(sum(started.trips_with_duration), 0)
            as duration_avg_s,  -- Mean duration of the valid trips (anomalies left out), in seconds; null without one.
        sum(started.distance_sum_m) / nullif(sum(started.trips_with_distance), 0)
            as distance_avg_m,  -- Mean reported distance of the valid trips that report one, in metres.
    from history_hours
    left join started on history_hours.zone_id = started.zone_id and history_hours.hour = started.hour
    group by all
)

select * from final
