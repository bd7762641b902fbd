-- Each zone area's type, name and a readable label, per version of the zone's areas, with the span it governs.
-- grain: one row per zone_id, version (valid_from) and area_id
-- inputs: stg_zone__areas, int_zone_area_versions
-- materialized: table
-- Marts name the areas they carry from here: by the version their placement used (trips, state intervals) or by
-- the version in force at the row's hour (occupancy), so an hour built alone names its areas as a full build does.
-- A version's areas all come from its first snapshot, whose names the version's fingerprint includes.
with versions as (
    select zone_id, valid_from, span_start, span_end, from core.int_zone_area_versions
),

areas as (
    select zone_id, valid_from, area_id, area_type, area_name, from staging.stg_zone__areas
),

final as (
    select
        versions.zone_id,
        versions.valid_from,  -- The version (int_zone_area_versions.valid_from).
        versions.span_start,  -- The version governs times from span_start (inclusive) ...
        versions.span_end,  -- ... to span_end (exclusive).
        areas.area_id,
        areas.area_type,  -- The zone API's area type (operations, parking-spot, no-parking, ...).
        nullif(trim(areas.area_name), '') as area_name,  -- The zone API's name of the area (null when it gives none).
        coalesce(nullif(trim(areas.area_name), ''), areas.area_type || ' ' || areas.area_id)
            as area_label,  -- A readable label: the name, or the type and id when the zone API gives no name.
    from versions
    inner join areas on versions.zone_id = areas.zone_id and versions.valid_from = areas.valid_from
    -- Two areas of one snapshot sharing an id (a feed's slip) keep one label: the first by name.
    qualify row_number() over (
        partition by versions.zone_id, versions.valid_from, areas.area_id order by areas.area_name, areas.area_type
    ) = 1
)

select * from final
