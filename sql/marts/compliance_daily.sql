-- Violations per zone, local day and rule, with the day's trips for a rate per 100 trips.
-- grain: one row per zone_id, local_date and rule (every rule, zero when none broke it that day)
-- inputs: compliance_violations, trips, stg_gbfs__system_information
-- materialized: view
-- A view: a light aggregate of violations and trips, computed when read (a twentieth of a second at a month
-- of a 10,000-vehicle city), where a table would be rebuilt whole by every hourly build.
-- A violation's day is the local day of its observed_at; the day's trips are those ending on that local day.
with violations as (
    select * from main.compliance_violations
),

trips as (
    select * from main.trips
),

systems as (
    select zone_id, timezone from staging.stg_gbfs__system_information
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
        cast(timezone(coalesce(systems.timezone, 'UTC'), hourly_violations.hour) as date) as local_date,
        hourly_violations.rule,
        sum(hourly_violations.violation_count)::bigint as violation_count,
    from hourly_violations
    left join systems on hourly_violations.zone_id = systems.zone_id
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
),

final as (
    select
        days.zone_id,
        days.local_date,  -- The zone's local calendar day (UTC when its time zone is unknown).
        rules.rule,  -- The rule (see compliance_violations): every rule on every day, zeros included.
        coalesce(daily_violations.violation_count, 0)
            as violation_count,  -- Violations of the rule observed (observed_at) on that local day.
        coalesce(daily_trips.trip_count, 0) as trip_count,  -- Trips of the zone that ended on that local day.
        100.0 * coalesce(daily_violations.violation_count, 0) / nullif(daily_trips.trip_count, 0)
            as violations_per_100_trips,  -- violation_count per 100 trips of trip_count (null without trips).
    from days
    cross join rules
    left join daily_violations
        on days.zone_id = daily_violations.zone_id
        and days.local_date = daily_violations.local_date
        and rules.rule = daily_violations.rule
    left join daily_trips on days.zone_id = daily_trips.zone_id and days.local_date = daily_trips.local_date
)

select * from final
