-- Origin-destination flows: trips between start and end areas ('outside' when in no area), per local day.
-- grain: (zone_id, local_date, start_area_id, end_area_id) one row per zone_id, local_date, start area and end area
-- inputs: trips
-- materialized: view
-- A view: a light aggregate of trips, computed when read (a tenth of a second at a month of a 10,000-vehicle
-- city), where a table would be rebuilt whole by every hourly build (its local-day grain does not follow the
-- UTC window).
with trips as (
    select * from main.trips
),

final as (
    select
        zone_id,
        cast(start_time_local as date) as local_date,  -- The local calendar day on which the trips started.
        start_area_id,  -- The most specific zone area containing the trip starts (null outside every area).
        start_area_type,  -- That area's type, or 'outside'; null when the zone's areas are not known.
        end_area_id,  -- The most specific zone area containing the trip ends (null outside every area).
        end_area_type,  -- That area's type, or 'outside'; null when the zone's areas are not known.
        count(*) as trip_count,  -- Trips from the start area to the end area that day, anomalies included.
        avg(duration_s) as duration_avg_s,  -- Mean trip duration, in seconds (anomalies included).
        avg(distance_m) as distance_avg_m,  -- Mean reported trip distance, in metres (anomalies included).
        -- An area renamed within the day keeps one label: the one in force at the day's last trip (the version of
        -- the zone's areas follows the trip's end time, so trips ending at one instant share it).
        arg_max(start_area_label, end_time)
            as start_area_label,  -- A readable label of the start area: its name (else its type and id), or 'Outside every area'.
        arg_max(end_area_label, end_time)
            as end_area_label,  -- A readable label of the end area: its name (else its type and id), or 'Outside every area'.
    from trips
    group by zone_id, local_date, start_area_id, start_area_type, end_area_id, end_area_type
)

select * from final
