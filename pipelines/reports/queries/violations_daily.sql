-- Violations per local day and rule.
-- grain: one row per local day with data and rule
-- inputs: compliance_daily
select
    local_date,
    rule,
    violation_count,
    trip_count as trips_ended,
    violations_per_100_trips,
from main.compliance_daily
where zone_id = $zone_id and local_date between $first_day and $last_day
order by local_date, rule
