-- Where violations happened: counts per H3 cell, with the rule broken most often there.
-- grain: one row per H3 cell with at least k located violations (cells below k are left out)
-- inputs: compliance_violations
-- The query counts violations per exact place and rule; pipelines/reports/cells.py sums them per H3 cell of the
-- configured resolution and names the zone area each cell lies in.
select
    lat,
    lng,
    rule,
    count(*) as violation_count,
from main.compliance_violations
where
    zone_id = $zone_id
    and observed_at >= $start_utc
    and observed_at < $end_utc
    and lat is not null
    and lng is not null
group by lat, lng, rule
order by lat, lng, rule
