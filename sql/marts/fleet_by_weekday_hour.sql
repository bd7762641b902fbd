-- The typical fleet by local weekday and hour of day: vehicles deployed, parked and on a trip (time-weighted, as
-- occupancy_hourly counts them), averaged over every hour of the history that falls on that weekday and hour.
-- grain: (zone_id, weekday, hour_of_day) one row per zone_id, local weekday and local hour of day (both null for the hours whose local time is unknown)
-- inputs: occupancy_hourly
-- materialized: view
-- A ready-made answer (README.md, "Example queries"): `from fleet_by_weekday_hour where zone_id = '1' order by
-- weekday, hour_of_day`. The hours are UTC hours placed in local time, so across the autumn DST change two hours
-- share one local hour of day, and in spring one local hour of day has a day fewer.
with zone_hours as (
    select zone_id, hour, hour_local, vehicle_state, avg_vehicles, warm_up,
    from main.occupancy_hourly
    where scope = 'zone'
),

final as (
    select
        zone_id,
        isodow(hour_local) as weekday,  -- ISO day of the week of the local hour: 1 Monday to 7 Sunday (null when the zone's time zone is unknown).
        dayname(hour_local) as weekday_name,  -- That day's name in English (Monday, ...).
        hour(hour_local) as hour_of_day,  -- Local hour of the day, 0 to 23 (the hour starting at 08:00 is 8).
        count(distinct hour) as hours,  -- UTC hours of the history averaged (how many such weekdays it covers, at that hour).
        count(distinct hour) filter (where warm_up)
            as warm_up_hours,  -- Of those, warm-up hours: vehicles parked since before the history may be missing (the averages are lower bounds).
        sum(avg_vehicles) filter (where vehicle_state = 'deployed') / count(distinct hour)
            as deployed_avg,  -- Mean vehicles in the public right of way (available, reserved, non_operational or on_trip).
        sum(avg_vehicles) filter (where vehicle_state = 'parked') / count(distinct hour)
            as parked_avg,  -- Mean vehicles deployed but not on a trip.
        sum(avg_vehicles) filter (where vehicle_state = 'available') / count(distinct hour)
            as available_avg,  -- Mean vehicles available to rent.
        sum(avg_vehicles) filter (where vehicle_state = 'on_trip') / count(distinct hour)
            as on_trip_avg,  -- Mean vehicles on a trip.
    from zone_hours
    group by zone_id, isodow(hour_local), dayname(hour_local), hour(hour_local)
)

select * from final
