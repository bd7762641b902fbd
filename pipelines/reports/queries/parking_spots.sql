-- Parking-spot occupancy over the period: how full each spot was on average, at its peak, and how often full.
-- grain: one row per parking spot of the zone with hours in the period (none in free-floating zones)
-- inputs: parking_occupancy_hourly
select
    arg_max(area_name, hour) as area_name,
    area_id,
    arg_max(capacity, hour) as capacity,
    avg(avg_vehicles) as avg_vehicles,
    100.0 * sum(avg_vehicles) filter (where capacity is not null)
        / nullif(sum(capacity) filter (where capacity is not null), 0) as occupancy_percent,
    max(max_vehicles) as peak_vehicles,
    count(*) filter (where avg_occupancy_rate >= 1) as hours_full,
    count(*) as hours,
from main.parking_occupancy_hourly
where zone_id = $zone_id and hour >= $start_utc and hour < $end_utc
group by area_id
order by occupancy_percent desc nulls last, area_name
