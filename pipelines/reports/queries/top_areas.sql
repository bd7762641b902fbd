-- The zone areas with the most violations in the period, and the rule broken most often in each.
-- grain: one row per zone area (or 'outside' every area), the top_n with the most violations
-- inputs: compliance_violations, stg_zone__areas
with violations as (
    select area_id, rule,
    from main.compliance_violations
    where zone_id = $zone_id and observed_at >= $start_utc and observed_at < $end_utc
),

areas as (
    select
        area_id,
        arg_max(area_name, valid_from) as area_name,
        arg_max(area_type, valid_from) as area_type,
    from staging.stg_zone__areas
    where zone_id = $zone_id
    group by area_id
),

by_rule as (
    select area_id, rule, count(*) as violations,
    from violations
    group by area_id, rule
),

by_area as (
    select
        area_id,
        sum(violations) as violation_count,
        first(rule order by violations desc, rule) as main_rule,
    from by_rule
    group by area_id
),

final as (
    select
        coalesce(areas.area_name, if(by_area.area_id is null, 'outside every area', by_area.area_id)) as area_name,
        coalesce(areas.area_type, if(by_area.area_id is null, 'outside', 'unknown')) as area_type,
        by_area.area_id,
        by_area.violation_count,
        by_area.main_rule,
        100.0 * by_area.violation_count / sum(by_area.violation_count) over () as share_percent,
    from by_area
    left join areas on by_area.area_id = areas.area_id
)

select * from final
order by violation_count desc, area_name, area_id
limit $top_n
