-- Compliance over the period, rule by rule: violations and violations per 100 trips.
-- grain: one row per rule (every rule compliance_daily knows, zeros included)
-- inputs: compliance_daily
-- trips_ended is the period's trips counted as compliance_daily counts them (by the local day they ended).
with days as (
    select local_date, rule, violation_count, trip_count,
    from main.compliance_daily
    where zone_id = $zone_id and local_date between $first_day and $last_day
),

rules as (
    select distinct rule from main.compliance_daily
)

select
    rules.rule,
    coalesce(sum(days.violation_count), 0) as violation_count,
    coalesce(sum(days.trip_count), 0) as trips_ended,
    100.0 * sum(days.violation_count) / nullif(sum(days.trip_count), 0) as violations_per_100_trips,
from rules
left join days on rules.rule = days.rule
group by rules.rule
order by violation_count desc, rules.rule
