-- Compliance over the period, rule by rule: violations and violations per 100 trips.
-- grain: one row per rule (every rule compliance_daily knows, zeros included)
-- inputs: compliance_daily, compliance_unjudged
-- trips_ended is the period's trips counted as compliance_daily counts them (by the local day they ended);
-- not_judged the trips (fleet counts: hours) of the period the rule could not judge (see rules_not_judged).
with days as (
    select local_date, rule, violation_count, trip_count,
    from main.compliance_daily
    where zone_id = $zone_id and local_date between $first_day and $last_day
),

rules as (
    select distinct rule from main.compliance_daily
),

unjudged as (
    select rule, count(*) as not_judged,
    from main.compliance_unjudged
    where zone_id = $zone_id and evidence_at >= $start_utc and evidence_at < $end_utc
    group by rule
)

select
    rules.rule,
    coalesce(sum(days.violation_count), 0) as violation_count,
    coalesce(sum(days.trip_count), 0) as trips_ended,
    100.0 * sum(days.violation_count) / nullif(sum(days.trip_count), 0) as violations_per_100_trips,
    coalesce(any_value(unjudged.not_judged), 0) as not_judged,
from rules
left join days on rules.rule = days.rule
left join unjudged on rules.rule = unjudged.rule
group by rules.rule
order by violation_count desc, rules.rule
