-- Each zone area's type, name and a readable label, per run of zone API snapshots that named it alike, with the
-- span of time the run governs.
-- grain: (zone_id, area_id, span_start) one row per zone_id, area_id and span_start (a run of snapshots with the same type and name for the area)
-- inputs: stg_zone__areas
-- materialized: table
-- Marts name the areas they carry from here, by the time their placement used (a trip's end, a state's start) or
-- the row's hour, so an hour built alone names its areas as a full build does, and a renamed area keeps its old
-- name in the rows before the rename. Runs, not snapshots: an area named alike for a year is one row, so a join on
-- (zone_id, area_id) and the time finds one or two candidates. The zone's first snapshot also governs every earlier
-- time (as int_zone_area_versions does for placement); a run lasts until the area's next run, or for ever.
-- Hourly marts name an area as it was named when the hour began, by the hour's start in [hour_span_start, span_end):
-- an area the zone API added within an hour has no run at the hour's start, so its first run names that hour too
-- (the first name overlapping the hour). Its runs still follow one another, so every hour finds one run at most.
with areas as (
    select
        zone_id,
        area_id,
        area_type,
        nullif(trim(area_name), '') as area_name,
        valid_from,
        is_first,
    from staging.stg_zone__areas
    -- Two areas of one snapshot sharing an id (a feed's slip) keep one name: the first by name.
    qualify row_number() over (partition by zone_id, valid_from, area_id order by area_name, area_type) = 1
),

changes as (
    select
        *,
        row(area_type, area_name) is distinct from lag(row(area_type, area_name)) over (
            partition by zone_id, area_id order by valid_from
        ) as starts_run,
    from areas
),

runs as (
    select zone_id, area_id, area_type, area_name, valid_from, is_first,
    from changes
    where starts_run
),

final as (
    select
        zone_id,
        area_id,
        if(is_first, timestamptz '0001-01-01 00:00:00+00', valid_from)
            as span_start,  -- The run governs times from span_start (inclusive) ...
        coalesce(
            lead(valid_from) over (partition by zone_id, area_id order by valid_from),
            timestamptz '9999-12-31 00:00:00+00'
        ) as span_end,  -- ... to span_end (exclusive).
        if(
            not is_first and lag(valid_from) over (partition by zone_id, area_id order by valid_from) is null,
            time_bucket(interval 1 hour, valid_from),
            span_start
        ) as hour_span_start,  -- The run names the hours starting from hour_span_start (inclusive) to span_end: span_start, or the start of the hour the zone API added the area in.
        area_type,  -- The zone API's area type (operations, parking-spot, no-parking, ...).
        area_name,  -- The zone API's name of the area (null when it gives none).
        coalesce(area_name, area_type || ' ' || area_id)
            as area_label,  -- A readable label: the name, or the type and id when the zone API gives no name.
    from runs
)

select * from final
