-- Rules that could not be judged in the period, and why: the trips (fleet counts: hours) each rule could not judge.
-- grain: one row per rule and reason with at least one trip or hour not judged in the period
-- inputs: compliance_unjudged
-- A rule is not judged where an input it needs is not known (the zone's areas, a speed limit, the parking mode,
-- GBFS geofencing, the local time): no violation is reported there, neither is compliance.
select
    rule,
    reason,
    any_value(detail) as why,
    count(*) as not_judged,
from main.compliance_unjudged
where zone_id = $zone_id and evidence_at >= $start_utc and evidence_at < $end_utc
group by rule, reason
order by rule, reason
