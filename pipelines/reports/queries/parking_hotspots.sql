-- Parking hot spots: where trips ended (and so where vehicles were left), per grid cell of about 100 m.
-- grain: one row per grid cell with at least one trip end (cells below k are dropped afterwards)
-- inputs: trips
select
    round((floor(end_lat / $lat_step) + 0.5) * $lat_step, 6) as cell_lat,
    round((floor(end_lng / $lng_step) + 0.5) * $lng_step, 6) as cell_lng,
    count(*) as trips_ended,
from main.trips
where
    zone_id = $zone_id
    and end_time >= $start_utc
    and end_time < $end_utc
    and end_lat is not null
    and end_lng is not null
group by all
order by trips_ended desc, cell_lat, cell_lng
