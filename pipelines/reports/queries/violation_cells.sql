-- Where violations happened: counts per grid cell of about 100 m, with the rule broken most often there.
-- grain: one row per grid cell with at least one located violation (cells below k are dropped afterwards)
-- inputs: compliance_violations
-- A cell is named by its centre: (floor(lat / lat_step) + 0.5) * lat_step, likewise for lng (see privacy.Grid).
with cells as (
    select
        round((floor(lat / $lat_step) + 0.5) * $lat_step, 6) as cell_lat,
        round((floor(lng / $lng_step) + 0.5) * $lng_step, 6) as cell_lng,
        rule,
    from main.compliance_violations
    where
        zone_id = $zone_id
        and observed_at >= $start_utc
        and observed_at < $end_utc
        and lat is not null
        and lng is not null
),

by_rule as (
    select cell_lat, cell_lng, rule, count(*) as violations,
    from cells
    group by cell_lat, cell_lng, rule
)

select
    cell_lat,
    cell_lng,
    sum(violations) as violation_count,
    first(rule order by violations desc, rule) as main_rule,
from by_rule
group by cell_lat, cell_lng
order by violation_count desc, cell_lat, cell_lng
