-- Trips with local times, measures, start and end areas and anomaly flags.
-- grain: (trip_id) one row per trip_id (deduplicated across re-deliveries and zones)
-- inputs: stg_mds__trips, stg_mds__vehicles, int_zone_timezones, int_zone_area_versions, int_coordinate_areas, int_zone_offsets, int_zone_area_labels, int_zone_extents, int_timestamp_bins
-- materialized: incremental(end_time)
-- unique_key: trip_id
-- The anomaly flags judge the trip's duration: end_time - start_time, unless the times of the hour the trip ends in
-- are rounded to a bin (core.int_timestamp_bins; published open data rounds to 15 minutes, so half its trips would
-- last "0 s"). Then they, and the average speed, judge the duration the provider reported; without one, the times
-- still bound the true duration to within a bin either side, and a flag the bounds cannot settle is null (not
-- known), not false (the speed too: it needs a duration).
with trips as (
    select * from staging.stg_mds__trips
    where end_time >= $window_start and end_time < $window_end
),

vehicles as (
    select zone_id, device_id, vehicle_type from staging.stg_mds__vehicles
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

bins as (
    select zone_id, hour, timestamp_bin_s,
    from core.int_timestamp_bins
    where hour >= time_bucket(interval 1 hour, $window_start) and hour < $window_end
),

-- Both ends of a trip are placed in the zone's areas in force at its end time (the first capture's before it). A
-- zone with no capture of its areas places none: the area columns are null (not known), not 'outside'.
versions as (
    select zone_id, valid_from, span_start, span_end, has_operations_area from core.int_zone_area_versions
),

-- The places of the window's trips, found by one pass over the placed coordinates' keys (joined to them directly,
-- DuckDB may hash all of them to look up a few), then read whole by row id: reading every column of every placed
-- coordinate cost twice as much (0.10 -> 0.05 s CPU an hour at a month of a 10,000-vehicle city).
found_places as (
    select coordinates.rowid as place_row
    from core.int_coordinate_areas as coordinates
    semi join (
        select zone_id, unnest([start_lng, end_lng]) as lng, unnest([start_lat, end_lat]) as lat, from trips
    ) as ends
        on coordinates.zone_id = ends.zone_id and coordinates.lng = ends.lng and coordinates.lat = ends.lat
),

places as (
    select coordinates.*
    from found_places
    inner join core.int_coordinate_areas as coordinates on coordinates.rowid = found_places.place_row
),

measured as (
    select
        trips.*,
        -- The latest vehicles snapshot, else the trip's own record (MDS 1.2 and 0.4 say the type on each trip; a
        -- 0.4 /vehicles lists only vehicles in the public right of way).
        coalesce(vehicles.vehicle_type, trips.reported_vehicle_type) as vehicle_type,
        systems.timezone as timezone,
        epoch(trips.end_time) - epoch(trips.start_time) as duration_s,
        bins.timestamp_bin_s,
    from trips
    left join vehicles on trips.zone_id = vehicles.zone_id and trips.device_id = vehicles.device_id
    left join systems on trips.zone_id = systems.zone_id
    left join bins on trips.zone_id = bins.zone_id and time_bucket(interval 1 hour, trips.end_time) = bins.hour
),

-- The duration the flags judge, or its bounds: exact from the times when they are not binned; the reported one
-- when they are; else the binned times' difference give or take a bin (a start and an end each rounded down).
judged as (
    select
        *,
        case
            when timestamp_bin_s is null then 'times'
            when reported_duration_s is not null then 'reported'
            else 'binned_times'
        end as flags_duration_source,
        case flags_duration_source
            when 'times' then duration_s when 'reported' then reported_duration_s else duration_s - timestamp_bin_s
        end as shortest_s,
        case flags_duration_source
            when 'times' then duration_s when 'reported' then reported_duration_s else duration_s + timestamp_bin_s
        end as longest_s,
    from measured
),

final as (
    select
        judged.zone_id,  -- The Voi zone the trip belongs to: the zone whose feed delivered it; a trip delivered by two zones (one ridden from one into the other) belongs to the zone of its newest delivery (latest ingest, then latest hour, then lowest zone id), the other delivery counted in data_quality_hourly.
        judged.trip_id,
        judged.device_id,
        judged.vehicle_type,  -- The vehicle's MDS type (`scooter_standing`, `bicycle`, ...): from the latest vehicles snapshot, else the trip's own record (MDS 1.2 and 0.4 carry it; 1.x `scooter` is 2.0 `scooter_standing`).
        judged.start_time,  -- When the trip started (UTC).
        judged.end_time,  -- When the trip ended (UTC); the trip's partition hour.
        make_timestamp(epoch_us(judged.start_time) + start_offset.offset_us) as start_time_local,  -- start_time in the zone's local time zone (naive local timestamp).
        make_timestamp(epoch_us(judged.end_time) + end_offset.offset_us) as end_time_local,  -- end_time in the zone's local time zone (naive local timestamp).
        judged.timezone,
        judged.duration_s,  -- Seconds from start_time to end_time.
        judged.reported_duration_s,  -- The duration the provider reported, in seconds.
        judged.distance_m,  -- The distance the provider reported, in metres.
        judged.distance_m / nullif(
            case judged.flags_duration_source when 'times' then judged.duration_s when 'reported' then judged.reported_duration_s end, 0
        ) * 3.6 as avg_speed_kph,  -- distance_m over duration_s in km/h, over the reported duration when the times are binned (null for a zero duration, or binned times without one).
        judged.start_lat,  -- Latitude of the start location.
        judged.start_lng,  -- Longitude of the start location.
        judged.end_lat,  -- Latitude of the end location.
        judged.end_lng,  -- Longitude of the end location.
        start_area.area_id as start_area_id,  -- The most specific zone area containing the start (null outside every area).
        case when versions.valid_from is not null then coalesce(start_area.area_type, 'outside') end as start_area_type,  -- That area's type, or 'outside'; null when the zone's areas are not known.
        end_area.area_id as end_area_id,  -- The most specific zone area containing the end (null outside every area).
        case when versions.valid_from is not null then coalesce(end_area.area_type, 'outside') end as end_area_type,  -- That area's type, or 'outside'; null when the zone's areas are not known.
        case when versions.has_operations_area then coalesce(end_area.in_operations, false) end as end_in_operations,  -- The end lies inside an operations area; null when the zone's areas (or an operations area among them) are not known.
        case when versions.valid_from is not null then coalesce(end_area.in_parking_spot, false) end as end_in_parking_spot,  -- The end lies inside a parking spot; null when the zone's areas are not known.
        case
            when judged.longest_s < 10 then true when judged.shortest_s >= 10 then false
        end as is_under_10s,  -- The trip lasted under 10 seconds (null when binned times cannot tell, see flags_duration_source).
        case
            when judged.shortest_s > 5 * 3600 then true when judged.longest_s <= 5 * 3600 then false
        end as is_over_5h,  -- The trip lasted over 5 hours (null when binned times cannot tell).
        -- No e-scooter or e-bike averages 45 km/h over a trip: the distance or the times are wrong.
        case
            when judged.flags_duration_source = 'times'
                then coalesce(judged.distance_m / nullif(judged.duration_s, 0) * 3.6 > 45, false)
            when judged.longest_s > 0 and judged.distance_m / judged.longest_s * 3.6 > 45 then true
            when judged.shortest_s > 0 and judged.distance_m / judged.shortest_s * 3.6 <= 45 then false
        end as is_impossible_speed,  -- The average speed exceeds 45 km/h (null when binned times cannot tell).
        judged.trip_type,  -- MDS trip types (e.g. rider); null for a trip delivered in MDS 1.2 or 0.4, which have none.
        judged.delivery_hour,  -- The UTC hour of the partition that delivered this version of the trip.
        start_label.area_name as start_area_name,  -- The start area's name in the zone API (null outside every area or when unnamed).
        case when versions.valid_from is not null then coalesce(start_label.area_label, 'Outside every area') end
            as start_area_label,  -- A readable label of the start area: its name (else its type and id), or 'Outside every area'; null when the zone's areas are not known.
        end_label.area_name as end_area_name,  -- The end area's name in the zone API (null outside every area or when unnamed).
        case when versions.valid_from is not null then coalesce(end_label.area_label, 'Outside every area') end
            as end_area_label,  -- A readable label of the end area: its name (else its type and id), or 'Outside every area'; null when the zone's areas are not known.
        judged.timestamp_bin_s,  -- The bin (seconds) the times of the trip's end hour are rounded to (core.int_timestamp_bins); null when they are not.
        judged.flags_duration_source,  -- What the anomaly flags judge: 'times' (end_time - start_time), 'reported' (the provider's duration, the times being binned) or 'binned_times' (no reported duration: the times give or take a bin).
        versions.valid_from as areas_captured_at,  -- Capture time (UTC) of the zone areas the trip was placed in: the snapshot in force at its end, the first one for earlier trips; null when the lake has none.
        not (
            judged.start_lat between extents.min_lat and extents.max_lat
            and judged.start_lng between extents.min_lng and extents.max_lng
            and judged.end_lat between extents.min_lat and extents.max_lat
            and judged.end_lng between extents.min_lng and extents.max_lng
        ) as is_far_from_zone,  -- The start or end lies more than 50 km beyond the box of every area the zone API gave the zone (a GPS glitch or a vehicle carried away; null when the zone has no areas).
        judged.mds_version,  -- The MDS version the trip was delivered in: '2.0', '1.2' or '0.4' (docs/mds_versions.md says what the older ones lack); null for lake files older than the column.
    from judged
    left join core.int_zone_extents as extents on judged.zone_id = extents.zone_id
    left join core.int_zone_offsets as start_offset
        on judged.zone_id = start_offset.zone_id
        and time_bucket(interval 15 minute, judged.start_time) = start_offset.bucket
    left join core.int_zone_offsets as end_offset
        on judged.zone_id = end_offset.zone_id
        and time_bucket(interval 15 minute, judged.end_time) = end_offset.bucket
    left join versions
        on judged.zone_id = versions.zone_id
        and judged.end_time >= versions.span_start
        and judged.end_time < versions.span_end
    left join places as start_area
        on judged.zone_id = start_area.zone_id
        and versions.valid_from = start_area.valid_from
        and judged.start_lng = start_area.lng
        and judged.start_lat = start_area.lat
    left join places as end_area
        on judged.zone_id = end_area.zone_id
        and versions.valid_from = end_area.valid_from
        and judged.end_lng = end_area.lng
        and judged.end_lat = end_area.lat
    -- Both areas named as the zone API named them at the trip's end (the time they were placed at).
    left join core.int_zone_area_labels as start_label
        on judged.zone_id = start_label.zone_id
        and start_area.area_id = start_label.area_id
        and judged.end_time >= start_label.span_start
        and judged.end_time < start_label.span_end
    left join core.int_zone_area_labels as end_label
        on judged.zone_id = end_label.zone_id
        and end_area.area_id = end_label.area_id
        and judged.end_time >= end_label.span_start
        and judged.end_time < end_label.span_end
)

select * from final
