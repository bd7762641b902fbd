-- The series occupancy counts: each zone area (or outside every area) and vehicle state a state interval began in.
-- grain: (zone_id, area_id, area_type, vehicle_state) one row per zone_id, area_id, area_type and vehicle_state
-- inputs: vehicle_state_intervals
-- materialized: accumulating
-- A window build adds the series its intervals begin (an interval begun before the window keeps its area and
-- state when the window ends it), so an hourly build reads a hundred rows, not every interval. A build that adds
-- one rebuilds occupancy_hourly (its zero rows fill every hour for every series) and the marts reading it whole.
-- A window build that withdraws the last interval of a series (a re-delivery without its events) rebuilds the
-- set whole, which drops the series, and occupancy_hourly with it (see pipelines/warehouse/shrinking.py).
select distinct
    zone_id,
    area_id,  -- The zone area (null when outside every area).
    area_type,  -- That area's type, or 'outside'.
    vehicle_state,  -- The MDS vehicle state.
from main.vehicle_state_intervals
where started_at >= $window_start and started_at < $window_end
