-- Versions of each zone's areas: a run of zone API snapshots with the same areas, and the span of time it governs.
-- grain: (zone_id, valid_from) one row per zone_id and version (the first snapshot of a run of identical snapshots)
-- inputs: stg_zone__areas
-- materialized: table
-- Geometry is captured daily and rarely changes: points are placed once per version, not once per capture. The
-- first version also governs every earlier time, the last every later one (spans open with the years 1 and 9999,
-- as slowly changing dimensions do: readers compare plain timestamps, and no client chokes on infinity).
-- The first capture governs earlier times on purpose: the zone API serves only the areas of the moment, so a history
-- loaded after the fact has no other record of its areas, and a city's areas change rarely. Trips judged so carry
-- the capture they were placed in (trips.areas_captured_at, later than the trip). A zone with no capture at all
-- has no version: its trips are placed nowhere and the rules that need areas are not judged (compliance_unjudged).
-- A version without an operations area cannot tell "outside the operations area" (has_operations_area).
with snapshots as (
    select
        zone_id,
        valid_from,
        -- Order-independent fingerprint of the snapshot's areas (ids, types and shapes).
        bit_xor(hash(area_id, area_type, geometry)) as content,
        bool_or(area_type = 'operations') as has_operations_area,
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
    select changes.zone_id, changes.valid_from, snapshots.has_operations_area,
    from changes
    inner join snapshots on changes.zone_id = snapshots.zone_id and changes.valid_from = snapshots.valid_from
    where changes.starts_version
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
        has_operations_area,  -- Whether the version has an operations area (else that rule cannot be judged).
    from versions
)

select * from final
