-- Origin-destination flows: trips between start and end areas ('outside' when in no area), per local day.
-- grain: one row per zone_id, start_date_local, start area and end area
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
        cast(start_time_local as date) as start_date_local,  -- The local calendar day on which the trips started.
        start_area_id,  -- The most specific zone area containing the trip starts (null outside every area).
        start_area_type,  -- That area's type, or 'outside'.
        end_area_id,  -- The most specific zone area containing the trip ends (null outside every area).
        end_area_type,  -- That area's type, or 'outside'.
        count(*) as trip_count,  -- Trips from the start area to the end area that day, anomalies included.
        avg(duration_s) as duration_avg_s,  -- Mean trip duration, in seconds (anomalies included).
        avg(distance_m) as distance_avg_m,  -- Mean reported trip distance, in metres (anomalies included).
    from trips
    group by all
)

select * from final
