-- Origin-destination flows: trips between start and end areas ('outside' when in no area), per local day.
-- grain: one row per zone_id, start_date_local, start area and end area
-- inputs: trips
-- materialized: table
with trips as (
    select * from main.trips
),

final as (
    select
        zone_id,
        cast(start_time_local as date) as start_date_local,
        start_area_id,
        start_area_type,
        end_area_id,
        end_area_type,
        count(*) as trip_count,
        avg(duration_s) as duration_avg_s,
        avg(distance_m) as distance_avg_m,
    from trips
    group by all
)

select * from final
