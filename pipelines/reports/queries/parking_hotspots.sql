-- Parking hot spots: where trips ended (and so where vehicles were left), per H3 cell.
-- grain: one row per H3 cell with at least k trip ends (cells below k are left out)
-- inputs: trips
-- The query counts trip ends per exact place; pipelines/reports/cells.py sums them per H3 cell of the configured
-- resolution and names the zone area each cell lies in.
select
    end_lat as lat,
    end_lng as lng,
    count(*) as trips_ended,
from main.trips
where
    zone_id = $zone_id
    and end_time >= $start_utc
    and end_time < $end_utc
    and end_lat is not null
    and end_lng is not null
group by end_lat, end_lng
order by lat, lng
