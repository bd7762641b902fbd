-- MDS trips as delivered, kept once even when a trip was delivered in more than one hour or by more than one zone.
-- grain: (trip_id) one row per trip_id
-- inputs: lake.mds_trips
-- materialized: incremental(delivery_hour)
-- unique_key: trip_id
-- keep: latest(ingested_at)
-- A table, not a view: each build reads only the window's partitions of the lake (`lake_window` holds the
-- window's days, see Warehouse._window_views; `$window_hour_from`/`_to` are its hours when it lies within one
-- day, else 0 and 23), and readers need not deduplicate the whole lake again.
with source as (
    select * from lake_window.mds_trips
    where
        date between cast(timezone('UTC', $window_start) as date) and cast(timezone('UTC', $window_end) as date)
        and hour between $window_hour_from and $window_hour_to
),

-- Ids as UUIDs: 16 bytes instead of 36 characters, so every later lookup by id (deduplication, window builds
-- replacing rows by key, joins) reads and compares a third as much. Ingestion admits no other ids, yet a row
-- whose id does not read as one (a file written before a check existed) is left out here, never failing the
-- build, and counted by core.int_unreadable_records (data_quality_hourly.mds_trips_unreadable).
in_window as (
    select
        * replace (
            try_cast(trip_id as uuid) as trip_id,
            try_cast(device_id as uuid) as device_id,
            try_cast(provider_id as uuid) as provider_id,
        ),
        make_timestamptz(year(date), month(date), day(date), hour, 0, 0, 'UTC') as delivery_hour,
    from source
    where
        delivery_hour >= $window_start and delivery_hour < $window_end
        and try_cast(source.trip_id as uuid) is not null
        and try_cast(source.device_id as uuid) is not null
        and try_cast(source.provider_id as uuid) is not null
),

-- Repeats are few: only their records are sorted; the rest pass through without a window over every record.
-- A trip is one trip wherever it was delivered: a trip from one zone into another may come in both zones' feeds
-- (same id), and counted in each it would count twice. Its zone is the one of its newest delivery, by the same
-- rule as a re-delivery into another hour, so that a window build, its rebuild and a full build all keep the
-- same row (the unique key is trip_id); the other zone's delivery stays counted in data_quality_hourly (a
-- duplicate or a conflict in the hour that carried it).
repeated as (
    select trip_id from in_window group by trip_id having count(*) > 1
),

deduplicated as (
    select * from in_window anti join repeated using (trip_id)
    union all
    select *
    from (select * from in_window semi join repeated using (trip_id))
    -- The newest delivery wins: the latest ingest, then the latest hour (files of older versions have no
    -- ingest time), then, between zones' deliveries of one ingest time and hour, the lowest zone id.
    qualify row_number() over (
        partition by trip_id order by ingested_at desc nulls last, delivery_hour desc, zone_id
    ) = 1
),

final as (
    select
        zone_id,
        trip_id,
        device_id,
        provider_id,
        start_time,
        end_time,
        start_lat,
        start_lng,
        end_lat,
        end_lng,
        duration_s as reported_duration_s,
        distance_m,
        trip_type,
        delivery_hour,
        ingested_at,
        -- The vehicle type the trip record itself says (MDS 1.2 and 0.4 do; 2.0 says it in /vehicles only).
        vehicle_type as reported_vehicle_type,
        -- The MDS version the trip was delivered in ('2.0', '1.2', '0.4'); null for files older than the column.
        mds_version,
    from deduplicated
)

select * from final
