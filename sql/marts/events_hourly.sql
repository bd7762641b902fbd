-- MDS vehicle events counted per event type, zone, zone area and UTC hour (MDS Metrics events.[event_type].count).
-- grain: (zone_id, hour, event_type, scope, area_id) one row per zone_id, hour, event_type, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area) and area_id
-- inputs: int_metrics_events, int_zone_area_labels, int_zone_timezones
-- materialized: incremental(hour)
-- The hour's four quarters of core.int_metrics_events (every vehicle type, '*'), summed over providers: one
-- definition of where and when an event counts for the marts, the city reports and the MDS Metrics API. An event
-- counts once for each of its event_types, in the hour it happened and the area where it happened: the place
-- vehicle_state_intervals gives the state the event began, so these counts and occupancy_hourly agree on where
-- things happened. Only the event types that occurred have rows. An area is named as the zone API named it when the
-- hour began (one added within the hour, as it was named when added), as the other hourly marts name theirs.
with pieces as (
    select
        zone_id,
        time_bucket(interval 1 hour, interval_start) as hour,
        event_type,
        scope,
        area_id,
        cast(sum(event_count) as bigint) as event_count,
    from core.int_metrics_events
    where vehicle_type = '*' and interval_start >= $window_start and interval_start < $window_end
    group by all
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

final as (
    select
        pieces.zone_id,
        pieces.hour,  -- Start of the UTC hour in which the events happened.
        timezone(systems.timezone, pieces.hour)
            as hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        pieces.event_type,  -- The MDS event type (an event of several types counts once for each).
        pieces.scope,  -- What the row counts: 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        pieces.area_id,  -- The most specific zone area containing the events (null for the other scopes).
        case pieces.scope when 'zone' then 'zone' when 'outside' then 'outside' else labels.area_type end
            as area_type,  -- That area's type, 'outside' in no area, or 'zone' for the whole zone.
        case pieces.scope
            when 'zone' then 'Whole zone'
            when 'outside' then 'Outside every area'
            else coalesce(labels.area_label, pieces.area_id)
        end as area_label,  -- A readable label: the area's name (else its type and id), 'Whole zone' or 'Outside every area'.
        pieces.event_count,  -- Events of the type there in the hour (events.[event_type].count).
    from pieces
    left join systems on pieces.zone_id = systems.zone_id
    -- Each area row's area as the zone API named it when the hour began (one added within the hour, as it was added).
    left join core.int_zone_area_labels as labels
        on pieces.zone_id = labels.zone_id
        and pieces.area_id = labels.area_id
        and pieces.hour >= labels.hour_span_start
        and pieces.hour < labels.span_end
)

select * from final
