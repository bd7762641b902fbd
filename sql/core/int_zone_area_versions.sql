-- Versions of each zone's areas: a run of zone API snapshots with the same areas, and the span of time it governs.
-- grain: one row per zone_id and version (the first snapshot of a run of identical snapshots)
-- inputs: stg_zone__areas
-- materialized: table
-- Geometry is captured daily and rarely changes: points are placed once per version, not once per capture. The
-- first version also governs every earlier time, the last every later one (spans open with the years 1 and 9999,
-- as slowly changing dimensions do: readers compare plain timestamps, and no client chokes on infinity).
with snapshots as (
    select
        zone_id,
        valid_from,
        -- Order-independent fingerprint of the snapshot's areas (ids, types and shapes).
        bit_xor(hash(area_id, area_type, geometry)) as content,
    from staging.stg_zone__areas
    group by zone_id, valid_from
),

changes as (
    select
        zone_id,
        valid_from,
        content is distinct from lag(content) over (partition by zone_id order by valid_from) as starts_version,
    from snapshots
),

versions as (
    select zone_id, valid_from,
    from changes
    where starts_version
),

final as (
    select
        zone_id,
        valid_from,  -- The capture time of the version's first snapshot (stg_zone__areas.valid_from).
        case
            when row_number() over (partition by zone_id order by valid_from) = 1 then timestamptz '0001-01-01 00:00:00+00'
            else valid_from
        end as span_start,
        coalesce(lead(valid_from) over (partition by zone_id order by valid_from), timestamptz '9999-12-31 00:00:00+00')
            as span_end,
    from versions
)

select * from final
