-- Data quality of the MDS hourly deliveries: what arrived, what was rejected, repeated, late or unmatched.
-- grain: (zone_id, hour) one row per zone_id and hour (UTC), every hour from the zone's first to its last delivered partition
-- inputs: int_hourly_partitions, lake.quarantine, int_mds_deliveries, int_trip_event_links, stg_mds__trips, stg_mds__events, compliance_unjudged, int_zone_timezones, int_warm_up_hours, int_unreadable_records, int_zone_extents, int_timestamp_bins, int_event_order
-- materialized: incremental(hour)
-- unique_key: zone_id, hour
-- Delivery counts (records, quarantined, duplicates, conflicts, partitions) belong to the hour of the partition; the others
-- belong to the hour of the record (a trip's end, an event's time), which is also the partition it arrives in.
-- A record delivered again is a duplicate when its content is the same as the delivery before (in ingest order), a
-- conflict when it differs (the newest delivery wins in staging); both also count the copies one response repeated.
-- Late: published after its hour was served, the provider's ready delay (READY_DELAY in pipelines/voi/publication.py)
-- after the hour ended, so an ingest of the hour as soon as the provider served it missed the event; only
-- re-ingesting the hour brings it in.
-- Warm-up: an hour whose opening vehicle states are not all known yet (core.int_warm_up_hours), the first hours of a
-- zone's history (a backfill's lead-in) or of its resumption after a gap.
-- A window build also rebuilds the hours its trips' events fall in, and those of the trips its events name: a trip
-- arriving now changes what an earlier hour counts as an event without a trip, and the other way round.
with window_trips as (
    select start_time, end_time
    from staging.stg_mds__trips
    where end_time >= $window_start and end_time < $window_end
),

named_trips as (
    select trips.end_time
    from staging.stg_mds__trips as trips
    semi join (
        select unnest(trip_ids) as trip_id
        from staging.stg_mds__events
        where event_time >= $window_start and event_time < $window_end
    ) as named on trips.trip_id = named.trip_id
),

bounds as (
    select
        time_bucket(interval 1 hour, least($window_start, (select min(start_time) from window_trips))) as first_hour,
        greatest(
            $window_end, time_bucket(interval 1 hour, (select max(end_time) from named_trips)) + interval 1 hour
        ) as end_hour,
),

-- One bound per subquery: DuckDB turns a comparison with a scalar subquery into a range read of the table.
event_bounds as (
    select least(
        (select first_hour from bounds),
        (
            select min(start_time) from staging.stg_mds__trips
            where end_time >= (select first_hour from bounds) and end_time < (select end_hour from bounds)
        )
    ) as events_from,
),

partitions as (
    select dataset, zone_id, partition_hour, records, complete
    from core.int_hourly_partitions
    where dataset in ('mds_trips', 'mds_events')
),

window_deliveries as (
    select record_key
    from core.int_mds_deliveries
    where
        partition_hour >= (select first_hour from bounds)
        and partition_hour < (select end_hour from bounds)
        and delivery in ('kept', 'superseded')
),

-- Deliveries sharing an id hash (a narrow column, read fast) with a window delivery, the window's own included
-- (an hour after the window may have been delivered before it); only hashes delivered more than once can be
-- repeats, and only their ids are fetched (by row id) to be compared.
candidates as (
    select deliveries.rowid as delivery_row, deliveries.record_key, deliveries.partition_hour,
    from core.int_mds_deliveries as deliveries
    semi join window_deliveries on deliveries.record_key = window_deliveries.record_key
    where deliveries.delivery in ('kept', 'superseded')
),

repeated_keys as (
    select record_key from candidates group by record_key having count(*) > 1
),

repeated_deliveries as (
    select
        deliveries.dataset,
        deliveries.zone_id,
        deliveries.record_id,
        deliveries.partition_hour,
        deliveries.content_key,
        deliveries.delivered_at,
    from candidates
    semi join repeated_keys on candidates.record_key = repeated_keys.record_key
    inner join core.int_mds_deliveries as deliveries on deliveries.rowid = candidates.delivery_row
),

-- The copies a response repeated, in the hour of its partition.
in_response as (
    select
        zone_id,
        partition_hour,
        count(*) filter (where dataset = 'mds_trips' and delivery = 'duplicate_in_response') as mds_trips_duplicates,
        count(*) filter (where dataset = 'mds_events' and delivery = 'duplicate_in_response') as mds_events_duplicates,
        count(*) filter (where dataset = 'mds_trips' and delivery = 'conflict_in_response') as mds_trips_conflicts,
        count(*) filter (where dataset = 'mds_events' and delivery = 'conflict_in_response') as mds_events_conflicts,
    from core.int_mds_deliveries
    where
        delivery in ('duplicate_in_response', 'conflict_in_response')
        and partition_hour >= (select first_hour from bounds)
        and partition_hour < (select end_hour from bounds)
    group by zone_id, partition_hour
),

quarantine as (
    select
        dataset,
        zone_id,
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as partition_hour,
    from lake.quarantine
    where
        dataset in ('mds_trips', 'mds_events')
        and partition_hour >= (select first_hour from bounds)
        and partition_hour < (select end_hour from bounds)
),

trips as (
    select zone_id, trip_id, start_time, time_bucket(interval 1 hour, end_time) as record_hour
    from staging.stg_mds__trips
    where end_time >= (select first_hour from bounds) and end_time < (select end_hour from bounds)
),

events as (
    select
        zone_id,
        event_id,
        event_time,
        publication_time,
        time_bucket(interval 1 hour, event_time) as record_hour,
    from staging.stg_mds__events
),

-- The events of trips ending in the window (they begin no earlier than the window's earliest trip start), and
-- the trip events of the window.
trip_events as (
    select
        zone_id, event_id, event_time, time_bucket(interval 1 hour, event_time) as record_hour, is_start, is_end, trip_id,
    from core.int_trip_event_links
    where event_time >= (select events_from from event_bounds) and event_time < (select end_hour from bounds)
),

zone_spans as (
    select zone_id, min(partition_hour) as first_hour, max(partition_hour) as last_hour,
    from partitions
    group by zone_id
),

grid as (
    select zone_id, hour
    from (
        select zone_id, unnest(generate_series(first_hour, last_hour, interval 1 hour)) as hour,
        from zone_spans
    )
    where hour >= (select first_hour from bounds) and hour < (select end_hour from bounds)
),

-- Each delivery of an id after its first, in the order they were ingested (files of older versions, without an
-- ingest time, first; then by hour, then by zone), counts in the partition that carried it: a duplicate when its
-- content is the delivery before's, a conflict when not. Another zone's delivery of the id counts too: a trip from
-- one zone into another may come in both zones' feeds, and staging keeps it once (in the zone of its newest
-- delivery), so the other delivery is a repeat.
ordered_deliveries as (
    select
        dataset,
        zone_id,
        partition_hour,
        content_key,
        lag(content_key) over (
            partition by dataset, record_id order by delivered_at nulls first, partition_hour, zone_id
        ) as previous_content_key,
    from repeated_deliveries
),

repeats as (
    select dataset, zone_id, partition_hour, content_key = previous_content_key as is_same_content,
    from ordered_deliveries
    where
        previous_content_key is not null
        and partition_hour >= (select first_hour from bounds)
        and partition_hour < (select end_hour from bounds)
),

delivered as (
    select
        zone_id,
        partition_hour,
        bool_or(dataset = 'mds_trips' and complete) as has_mds_trips_partition,
        bool_or(dataset = 'mds_events' and complete) as has_mds_events_partition,
        coalesce(sum(records) filter (where dataset = 'mds_trips'), 0)::bigint as mds_trips_records,
        coalesce(sum(records) filter (where dataset = 'mds_events'), 0)::bigint as mds_events_records,
    from partitions
    group by zone_id, partition_hour
),

quarantined as (
    select
        zone_id,
        partition_hour,
        count(*) filter (where dataset = 'mds_trips') as mds_trips_quarantined,
        count(*) filter (where dataset = 'mds_events') as mds_events_quarantined,
    from quarantine
    group by zone_id, partition_hour
),

duplicates as (
    select
        zone_id,
        partition_hour,
        sum(mds_trips_duplicates) as mds_trips_duplicates,
        sum(mds_events_duplicates) as mds_events_duplicates,
        sum(mds_trips_conflicts) as mds_trips_conflicts,
        sum(mds_events_conflicts) as mds_events_conflicts,
    from (
        select
            zone_id,
            partition_hour,
            count(*) filter (where dataset = 'mds_trips' and is_same_content) as mds_trips_duplicates,
            count(*) filter (where dataset = 'mds_events' and is_same_content) as mds_events_duplicates,
            count(*) filter (where dataset = 'mds_trips' and not is_same_content) as mds_trips_conflicts,
            count(*) filter (where dataset = 'mds_events' and not is_same_content) as mds_events_conflicts,
        from repeats
        group by zone_id, partition_hour
        union all
        select * from in_response
    )
    group by zone_id, partition_hour
),

late as (
    select
        zone_id,
        record_hour,
        count(*) as late_events,
    from events
    where
        publication_time > record_hour + interval 1 hour + $ready_delay
        and event_time >= (select first_hour from bounds)
        and event_time < (select end_hour from bounds)
    group by zone_id, record_hour
),

trip_matches as (
    select
        trips.zone_id,
        trips.record_hour,
        trips.trip_id,
        coalesce(bool_or(trip_events.is_start), false) as has_start_event,
        coalesce(bool_or(trip_events.is_end), false) as has_end_event,
    from trips
    -- By id alone: a trip is kept once across zones (stg_mds__trips), and its events may have come in the other
    -- zone's feed (a trip from one zone into another).
    left join trip_events on trips.trip_id = trip_events.trip_id
    group by trips.zone_id, trips.record_hour, trips.trip_id
),

unmatched_trips as (
    select
        zone_id,
        record_hour,
        count(*) filter (where not has_start_event) as trips_without_start_event,
        count(*) filter (where not has_end_event) as trips_without_end_event,
    from trip_matches
    group by zone_id, record_hour
),

-- The trip events of the window's hours, and which of the trips they name the lake holds: the few named ids are
-- hashed and every trip's id streamed past them (hashing every trip's id to look a few up took 0.13 s of this
-- model's 0.29 s in an hour of the 30-day 10,000-vehicle city).
window_trip_events as (
    select zone_id, record_hour, event_id, trip_id,
    from trip_events
    where event_time >= (select first_hour from bounds)
),

held_trips as (
    select every_trip.trip_id
    from staging.stg_mds__trips as every_trip
    -- Unnested from one list, the ids are known to be few: DuckDB takes a CTE's rows for many and would hash the
    -- trips instead.
    semi join (select unnest((select list(distinct trip_id) from window_trip_events)) as trip_id) as named
        on every_trip.trip_id = named.trip_id
),

-- An event naming no trip, or only trips the lake does not hold (yet: a trip is delivered in its end hour).
orphan_events as (
    select
        window_trip_events.zone_id,
        window_trip_events.record_hour,
        count(distinct window_trip_events.event_id) as trip_events_without_trip,
    from window_trip_events
    anti join held_trips on window_trip_events.trip_id = held_trips.trip_id
    group by window_trip_events.zone_id, window_trip_events.record_hour
),

-- What the compliance rules could not judge (compliance_unjudged), by the hour of the trip's end or counted hour.
unjudged as (
    select
        zone_id,
        time_bucket(interval 1 hour, evidence_at) as record_hour,
        count(distinct trip_id) as trips_not_judged,
        count(*) filter (where reason = 'no_zone_areas' and rule = 'parking_outside_operations')
            as trips_without_zone_areas,
        count(*) filter (where reason = 'no_operations_area') as trips_without_operations_area,
        count(*) filter (where reason = 'no_parking_mode') as trips_without_parking_mode,
        count(*) filter (where reason = 'no_geofencing') as trips_without_geofencing,
        count(*) filter (where rule = 'speeding' and reason in ('no_speed_limit', 'no_local_time'))
            as trips_without_speed_limit,
        count(*) filter (where rule in ('fleet_cap_exceeded', 'fleet_below_minimum')) as fleet_rules_not_judged,
        count(*) filter (where rule in ('idle_too_long', 'time_in_state_exceeded')) as vehicle_states_not_judged,
    from main.compliance_unjudged
    where evidence_at >= (select first_hour from bounds) and evidence_at < (select end_hour from bounds)
    group by all
),

warm_up as (
    select zone_id, hour,
    from core.int_warm_up_hours
    where hour >= (select first_hour from bounds) and hour < (select end_hour from bounds)
),

unreadable as (
    select
        zone_id,
        partition_hour,
        count(*) filter (where dataset = 'mds_trips') as mds_trips_unreadable,
        count(*) filter (where dataset = 'mds_events') as mds_events_unreadable,
    from core.int_unreadable_records
    where partition_hour >= (select first_hour from bounds) and partition_hour < (select end_hour from bounds)
    group by zone_id, partition_hour
),

contradicting as (
    select
        zone_id,
        time_bucket(interval 1 hour, event_time) as record_hour,
        count(*) as events_contradicting_state,
    from staging.stg_mds__events
    where
        state_contradicts_event
        and event_time >= (select first_hour from bounds)
        and event_time < (select end_hour from bounds)
    group by zone_id, record_hour
),

-- Locations more than 50 km beyond the zone's areas (core.int_zone_extents; a zone without areas counts none).
far_trips as (
    select
        trips.zone_id,
        time_bucket(interval 1 hour, trips.end_time) as record_hour,
        count(*) as trips_far_from_zone,
    from staging.stg_mds__trips as trips
    inner join core.int_zone_extents as extents on trips.zone_id = extents.zone_id
    where
        trips.end_time >= (select first_hour from bounds)
        and trips.end_time < (select end_hour from bounds)
        and not (
            trips.start_lat between extents.min_lat and extents.max_lat
            and trips.start_lng between extents.min_lng and extents.max_lng
            and trips.end_lat between extents.min_lat and extents.max_lat
            and trips.end_lng between extents.min_lng and extents.max_lng
        )
    group by trips.zone_id, record_hour
),

far_events as (
    select
        events.zone_id,
        time_bucket(interval 1 hour, events.event_time) as record_hour,
        count(*) as events_far_from_zone,
    from staging.stg_mds__events as events
    inner join core.int_zone_extents as extents on events.zone_id = extents.zone_id
    where
        events.event_time >= (select first_hour from bounds)
        and events.event_time < (select end_hour from bounds)
        and not (
            events.lat between extents.min_lat and extents.max_lat
            and events.lng between extents.min_lng and extents.max_lng
        )
    group by events.zone_id, record_hour
),

-- Rounded times (core.int_timestamp_bins), and the events that share their vehicle and time with another, which
-- rounding makes common (core.int_event_order puts them in state-machine order).
bins as (
    select zone_id, hour, timestamp_bin_s,
    from core.int_timestamp_bins
    where hour >= (select first_hour from bounds) and hour < (select end_hour from bounds)
),

tied as (
    select zone_id, time_bucket(interval 1 hour, event_time) as record_hour, count(*) as tied_events,
    from core.int_event_order
    where event_time >= (select first_hour from bounds) and event_time < (select end_hour from bounds)
    group by all
),

final as (
    select
        grid.zone_id,
        grid.hour,  -- Start of the UTC hour.
        coalesce(delivered.mds_trips_records, 0) as mds_trips_records,  -- Trips in the hour's mds_trips partition (0 when it is empty or missing).
        coalesce(delivered.mds_events_records, 0) as mds_events_records,  -- Events in the hour's mds_events partition (0 when it is empty or missing).
        coalesce(quarantined.mds_trips_quarantined, 0) as mds_trips_quarantined,  -- Trip records of the hour's delivery rejected into the quarantine (invalid, or ending outside the hour).
        coalesce(quarantined.mds_events_quarantined, 0) as mds_events_quarantined,  -- Event records of the hour's delivery rejected into the quarantine (invalid, or outside the hour).
        coalesce(duplicates.mds_trips_duplicates, 0)::bigint as mds_trips_duplicates,  -- Trips of the hour's partition delivered before with the same content (by an earlier delivery of this zone or another, or earlier in the same response).
        coalesce(duplicates.mds_events_duplicates, 0)::bigint as mds_events_duplicates,  -- Events of the hour's partition delivered before with the same content (by an earlier delivery of this zone or another, or earlier in the same response).
        coalesce(late.late_events, 0) as late_events,  -- Events of the hour published later than the provider's ready delay after the hour ended.
        coalesce(unmatched_trips.trips_without_start_event, 0) as trips_without_start_event,  -- Trips ending in the hour that no trip_start event names.
        coalesce(unmatched_trips.trips_without_end_event, 0) as trips_without_end_event,  -- Trips ending in the hour that no trip_end event names.
        coalesce(orphan_events.trip_events_without_trip, 0) as trip_events_without_trip,  -- trip_start/trip_end events of the hour naming no trip the lake holds (yet).
        coalesce(delivered.has_mds_trips_partition, false) as has_mds_trips_partition,  -- Whether the lake has an mds_trips partition for the hour (empty ones count; an imported archive's only for hours it covers completely).
        coalesce(delivered.has_mds_events_partition, false) as has_mds_events_partition,  -- Whether the lake has an mds_events partition for the hour (empty ones count; an imported archive's only for hours it covers completely).
        2
        - coalesce(delivered.has_mds_trips_partition, false)::integer
        - coalesce(delivered.has_mds_events_partition, false)::integer as missing_partitions,  -- Hourly datasets (of 2) without a partition for the hour.
        (
            coalesce(delivered.has_mds_trips_partition, false)::integer
            + coalesce(delivered.has_mds_events_partition, false)::integer
        ) / 2 as coverage,  -- Share of the expected partitions (mds_trips, mds_events) present, 0 to 1.
        coalesce(duplicates.mds_trips_conflicts, 0)::bigint as mds_trips_conflicts,  -- Trips of the hour's partition delivered before with other content (a correction: the newest delivery wins), by an earlier delivery of this zone or another, or earlier in the same response.
        coalesce(duplicates.mds_events_conflicts, 0)::bigint as mds_events_conflicts,  -- Events of the hour's partition delivered before with other content (the newest delivery wins), by an earlier delivery of this zone or another, or earlier in the same response.
        timezones.timezone_source,  -- Where the zone's time zone comes from (configuration, gbfs_system_information, zone_geometry); null when unknown: local times are then null.
        coalesce(unjudged.trips_not_judged, 0) as trips_not_judged,  -- Trips ending in the hour that some compliance rule could not judge (compliance_unjudged).
        coalesce(unjudged.trips_without_zone_areas, 0) as trips_without_zone_areas,  -- Of those, trips whose end could not be placed: no zone areas known (parking rules not judged).
        coalesce(unjudged.trips_without_operations_area, 0) as trips_without_operations_area,  -- Trips not judged for parking_outside_operations: the areas in force name no operations area.
        coalesce(unjudged.trips_without_parking_mode, 0) as trips_without_parking_mode,  -- Trips not judged for parking_outside_spot: no zone_info, so the parking mode is unknown.
        coalesce(unjudged.trips_without_geofencing, 0) as trips_without_geofencing,  -- Trips not judged for start_not_allowed: no GBFS geofencing_zones known.
        coalesce(unjudged.trips_without_speed_limit, 0) as trips_without_speed_limit,  -- Trips not judged for speeding: no speed limit from a policy, the zone API or GBFS (or one for some hours, with the local time unknown).
        coalesce(unjudged.fleet_rules_not_judged, 0) as fleet_rules_not_judged,  -- Fleet count rules not judged at the hour: limited to some days or hours, with the local time unknown.
        coalesce(unjudged.vehicle_states_not_judged, 0) as vehicle_states_not_judged,  -- Vehicle states begun in the hour that a time rule for some days or hours only could not judge (local time unknown).
        warm_up.hour is not null as warm_up,  -- Whether the hour's opening vehicle states are still uncertain: within the lead-in (FLEETLAKE_LEAD_IN_HOURS) after the zone's first MDS events hour or after a missing one.
        coalesce(unreadable.mds_trips_unreadable, 0) as mds_trips_unreadable,  -- Rows of the hour's mds_trips partition left out of staging: an id that does not read as a UUID (a file from before ingestion checked ids whole; `fleetlake reparse` quarantines them).
        coalesce(unreadable.mds_events_unreadable, 0) as mds_events_unreadable,  -- Rows of the hour's mds_events partition left out of staging: an id that does not read as a UUID (as mds_trips_unreadable).
        coalesce(contradicting.events_contradicting_state, 0) as events_contradicting_state,  -- Events of the hour flagged state_contradicts_event: a vehicle_state the MDS state machine does not reach by the event's last type (kept as delivered).
        coalesce(far_trips.trips_far_from_zone, 0) as trips_far_from_zone,  -- Trips ending in the hour whose start or end lies more than 50 km beyond the zone's areas (kept, flagged trips.is_far_from_zone).
        coalesce(far_events.events_far_from_zone, 0) as events_far_from_zone,  -- Events of the hour located more than 50 km beyond the zone's areas (kept as delivered).
        bins.timestamp_bin_s,  -- The bin (seconds) all the hour's MDS times are rounded to (900: the 15 minutes of published open data), null when they are not rounded or fewer than two; trips ending in a binned hour judge their anomaly flags on the reported duration.
        coalesce(tied.tied_events, 0) as tied_events,  -- Events of the hour that share their vehicle and timestamp with another (ordered along the MDS state machine in vehicle_state_intervals).
    from grid
    left join delivered on grid.zone_id = delivered.zone_id and grid.hour = delivered.partition_hour
    left join quarantined on grid.zone_id = quarantined.zone_id and grid.hour = quarantined.partition_hour
    left join duplicates on grid.zone_id = duplicates.zone_id and grid.hour = duplicates.partition_hour
    left join late on grid.zone_id = late.zone_id and grid.hour = late.record_hour
    left join unmatched_trips
        on grid.zone_id = unmatched_trips.zone_id and grid.hour = unmatched_trips.record_hour
    left join orphan_events on grid.zone_id = orphan_events.zone_id and grid.hour = orphan_events.record_hour
    left join core.int_zone_timezones as timezones on grid.zone_id = timezones.zone_id
    left join unjudged on grid.zone_id = unjudged.zone_id and grid.hour = unjudged.record_hour
    left join warm_up on grid.zone_id = warm_up.zone_id and grid.hour = warm_up.hour
    left join unreadable on grid.zone_id = unreadable.zone_id and grid.hour = unreadable.partition_hour
    left join contradicting on grid.zone_id = contradicting.zone_id and grid.hour = contradicting.record_hour
    left join far_trips on grid.zone_id = far_trips.zone_id and grid.hour = far_trips.record_hour
    left join far_events on grid.zone_id = far_events.zone_id and grid.hour = far_events.record_hour
    left join bins on grid.zone_id = bins.zone_id and grid.hour = bins.hour
    left join tied on grid.zone_id = tied.zone_id and grid.hour = tied.record_hour
)

select * from final
