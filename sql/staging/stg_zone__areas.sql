-- Zone areas per snapshot of the zone API, with the span of time each snapshot describes.
-- grain: (zone_id, valid_from, area_id) one row per zone_id, snapshot (valid_from) and area_id
-- inputs: lake.zone_areas
-- materialized: view
with source as (
    select * from lake.zone_areas
),

snapshots as (
    select distinct zone_id, captured_at from source
),

spans as (
    select
        zone_id,
        captured_at as valid_from,
        lead(captured_at) over (partition by zone_id order by captured_at) as valid_to,
        row_number() over (partition by zone_id order by captured_at) = 1 as is_first,
    from snapshots
),

final as (
    select
        source.zone_id,
        source.area_id,
        source.area_type,
        source.name as area_name,
        source.geometry,
        spans.valid_from,
        spans.valid_to,
        spans.is_first,
    from source
    inner join spans on source.zone_id = spans.zone_id and source.captured_at = spans.valid_from
)

select * from final
