-- The zone areas where most trips start (origins) and end (destinations), ranked, over the whole history.
-- grain: (zone_id, location, area_id) one row per zone_id, location ('start': origins; 'end': destinations) and most specific zone area (area_id null: outside every area)
-- inputs: area_trips_hourly
-- materialized: view
-- A ready-made answer (README.md, "Example queries"): `from top_areas where zone_id = '1' and location = 'start'
-- and rank <= 10 order by rank`. For a period, sum area_trips_hourly over its hours instead.
with counted as (
    select
        zone_id,
        location,
        area_id,
        any_value(area_type) as area_type,
        any_value(area_label) as area_label,
        sum(trip_count) as trip_count,
    from main.area_trips_hourly
    where scope in ('area', 'outside')
    group by zone_id, location, area_id
),

final as (
    select
        zone_id,
        location,  -- 'start': trips counted where they started (origins); 'end': where they ended (destinations).
        rank() over (partition by zone_id, location order by trip_count desc)
            as rank,  -- 1 for the area with the most trips at that location in the zone; ties share a rank.
        area_id,  -- The most specific zone area of the trips' start or end (null: outside every area).
        area_type,  -- That area's type, or 'outside' in no area.
        area_label,  -- A readable label: the area's name (else its type and id), or 'Outside every area'.
        trip_count::bigint as trip_count,  -- Trips started (or ended) there, anomalies included.
        trip_count / sum(trip_count) over (partition by zone_id, location)
            as trip_share,  -- Share of the zone's trips at that location (0 to 1): the areas and outside sum to 1.
    from counted
)

select * from final
