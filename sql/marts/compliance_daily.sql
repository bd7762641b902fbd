-- Violations per zone, local day and rule, with the day's trips for a rate per 100 trips.
-- grain: (zone_id, local_date, rule) one row per zone_id, local_date and rule (every rule, zero when none broke it that day)
-- inputs: compliance_violations, compliance_unjudged, trips, int_zone_timezones
-- materialized: view
-- A view: a light aggregate of violations and trips, computed when read (a twentieth of a second at a month
-- of a 10,000-vehicle city), where a table would be rebuilt whole by every hourly build.
-- A violation's day is the local day of its observed_at; the day's trips are those ending on that local day. The
-- trips (fleet counts: hours) a rule could not judge are counted apart (not_judged_count): they are neither
-- violations nor compliant.
with violations as (
    select * from main.compliance_violations
),

trips as (
    select * from main.trips
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

rules as (
    select unnest([
        'parking_in_forbidden_area',
        'parking_outside_operations',
        'parking_outside_spot',
        'start_not_allowed',
        'speeding',
        'idle_too_long',
        'time_in_state_exceeded',
        'parked_in_forbidden_area',
        'fleet_cap_exceeded',
        'fleet_below_minimum',
    ]) as rule
),

-- Counted per UTC hour first: every local day is made of whole UTC hours (the zones' offsets are whole hours), and
-- converting a few thousand hours to local time costs nothing next to converting every violation.
hourly_violations as (
    select zone_id, rule, time_bucket(interval 1 hour, observed_at) as hour, count(*) as violation_count,
    from violations
    group by all
),

daily_violations as (
    select
        hourly_violations.zone_id,
        cast(timezone(systems.timezone, hourly_violations.hour) as date) as local_date,
        hourly_violations.rule,
        sum(hourly_violations.violation_count)::bigint as violation_count,
    from hourly_violations
    left join systems on hourly_violations.zone_id = systems.zone_id
    group by all
),

daily_unjudged as (
    select
        unjudged.zone_id,
        cast(timezone(systems.timezone, unjudged.hour) as date) as local_date,
        unjudged.rule,
        sum(unjudged.n)::bigint as not_judged_count,
    from (
        select zone_id, rule, time_bucket(interval 1 hour, evidence_at) as hour, count(*) as n,
        from main.compliance_unjudged
        group by all
    ) as unjudged
    left join systems on unjudged.zone_id = systems.zone_id
    group by all
),

daily_trips as (
    select zone_id, cast(end_time_local as date) as local_date, count(*) as trip_count,
    from trips
    group by all
),

days as (
    select zone_id, local_date from daily_trips
    union
    select zone_id, local_date from daily_violations
    union
    select zone_id, local_date from daily_unjudged
),

final as (
    select
        days.zone_id,
        days.local_date,  -- The zone's local calendar day (null when its time zone is unknown).
        rules.rule,  -- The rule (see compliance_violations): every rule on every day, zeros included.
        coalesce(daily_violations.violation_count, 0)
            as violation_count,  -- Violations of the rule observed (observed_at) on that local day.
        coalesce(daily_trips.trip_count, 0) as trip_count,  -- Trips of the zone that ended on that local day.
        100.0 * coalesce(daily_violations.violation_count, 0) / nullif(daily_trips.trip_count, 0)
            as violations_per_100_trips,  -- violation_count per 100 trips of trip_count (null without trips).
        coalesce(daily_unjudged.not_judged_count, 0)
            as not_judged_count,  -- Trips (fleet counts: hours) of that local day the rule could not judge (compliance_unjudged).
    from days
    cross join rules
    left join daily_violations
        on days.zone_id = daily_violations.zone_id
        and days.local_date is not distinct from daily_violations.local_date
        and rules.rule = daily_violations.rule
    left join daily_trips
        on days.zone_id = daily_trips.zone_id and days.local_date is not distinct from daily_trips.local_date
    left join daily_unjudged
        on days.zone_id = daily_unjudged.zone_id
        and days.local_date is not distinct from daily_unjudged.local_date
        and rules.rule = daily_unjudged.rule
)

select * from final
