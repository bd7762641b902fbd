-- MDS vehicle events as delivered, kept once even when an event was delivered more than once or by more than one zone.
-- grain: (event_id) one row per event_id
-- inputs: lake.mds_events
-- materialized: incremental(delivery_hour)
-- unique_key: event_id
-- keep: latest(ingested_at)
-- A table, not a view: each build reads only the window's partitions of the lake (`lake_window` holds the
-- window's days, see Warehouse._window_views; `$window_hour_from`/`_to` are its hours when it lies within one
-- day, else 0 and 23), and readers need not deduplicate the whole lake again.
with source as (
    select * from lake_window.mds_events
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

-- Ids as UUIDs: 16 bytes instead of 36 characters, so every later lookup by id (deduplication, window builds
-- replacing rows by key, joins) reads and compares a third as much. Ingestion admits no other ids, yet a row
-- whose id does not read as one (a file written before a check existed) is left out here, never failing the
-- build, and counted by core.int_unreadable_records (data_quality_hourly.mds_events_unreadable).
in_window as (
    select
        * replace (
            try_cast(event_id as uuid) as event_id,
            try_cast(device_id as uuid) as device_id,
            try_cast(provider_id as uuid) as provider_id,
            try_cast(trip_ids as uuid[]) as trip_ids,
        ),
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as delivery_hour,
    from source
    where
        delivery_hour >= $window_start and delivery_hour < $window_end
        and try_cast(source.event_id as uuid) is not null
        and try_cast(source.device_id as uuid) is not null
        and try_cast(source.provider_id as uuid) is not null
        and not list_contains(list_transform(try_cast(source.trip_ids as uuid[]), id -> id is null), true)
),

-- Repeats are few: only their records are sorted; the rest pass through without a window over every record.
-- An event is one event wherever it was delivered: the events of a ride from one zone into another may come in
-- both zones' feeds (same id). Its zone is the one of its newest delivery, by the same rule as a re-delivery into
-- another hour (and as stg_mds__trips), so that a window build, its rebuild and a full build all keep the same
-- row (the unique key is event_id); the other zone's delivery stays counted in data_quality_hourly.
repeated as (
    select event_id from in_window group by event_id having count(*) > 1
),

deduplicated as (
    select * from in_window anti join repeated using (event_id)
    union all
    select *
    from (select * from in_window semi join repeated using (event_id))
    -- The newest delivery wins: the latest ingest, then the latest hour (files of older versions have no
    -- ingest time), then, between zones' deliveries of one ingest time and hour, the lowest zone id.
    qualify row_number() over (
        partition by event_id order by ingested_at desc nulls last, delivery_hour desc, zone_id
    ) = 1
),

final as (
    select
        zone_id,
        event_id,
        device_id,
        provider_id,  -- The provider that reported the event (the MDS Metrics provider_id dimension).
        timestamp as event_time,
        publication_time,
        event_types,
        event_types[len(event_types)] as event_type,
        vehicle_state,
        lat,
        lng,
        battery_percent,
        trip_ids,
        delivery_hour,
        ingested_at,
        -- The MDS 2.0 state machine (docs/modes/micromobility.md, "Vehicle State Events"): the states the last of
        -- `event_types` may leave a vehicle in; `unspecified` may leave it in any. MDS does not enforce it at
        -- ingest and either field may be the wrong one, so the event is kept as delivered and flagged.
        coalesce(
            not list_contains(
                case event_types[len(event_types)]
                    when 'battery_low' then ['non_operational']
                    when 'maintenance' then ['non_operational', 'available']
                    when 'off_hours' then ['non_operational']
                    when 'system_suspend' then ['non_operational']
                    when 'reservation_start' then ['reserved']
                    when 'comms_lost' then ['non_contactable']
                    when 'compliance_pick_up' then ['removed']
                    when 'maintenance_pick_up' then ['removed']
                    when 'rebalance_pick_up' then ['removed']
                    when 'agency_pick_up' then ['removed']
                    when 'decommissioned' then ['removed']
                    when 'trip_start' then ['on_trip']
                    when 'trip_enter_jurisdiction' then ['on_trip']
                    when 'changed_geographies' then ['on_trip']
                    when 'located' then ['available', 'elsewhere', 'non_operational', 'on_trip', 'removed', 'reserved']
                    when 'comms_restored'
                        then ['available', 'elsewhere', 'non_operational', 'on_trip', 'removed', 'reserved']
                    when 'not_located' then ['missing']
                    when 'battery_charged' then ['available']
                    when 'on_hours' then ['available']
                    when 'system_resume' then ['available']
                    when 'trip_cancel' then ['available']
                    when 'trip_end' then ['available']
                    when 'trip_leave_jurisdiction' then ['elsewhere']
                    when 'agency_drop_off' then ['available']
                    when 'provider_drop_off' then ['available']
                    when 'reservation_cancel' then ['available']
                end,
                vehicle_state
            ),
            false
        ) as state_contradicts_event,
        -- The MDS version the event was delivered in ('2.0', '1.2', '0.4'; pipelines/lake/mds_versions.py maps the
        -- older versions' states and event types); null for files older than the column.
        mds_version,
    from deduplicated
)

select * from final
