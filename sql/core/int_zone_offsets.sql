-- Each zone's offset from UTC, per 15-minute UTC bucket: local times by arithmetic instead of a time zone lookup
-- per row (DuckDB resolves a time zone named by a column anew for every row: seconds per million rows).
-- grain: (zone_id, bucket) one row per zone_id and 15-minute UTC bucket, a day either side of the zone's trips and events
-- inputs: stg_mds__trips, stg_mds__events, int_zone_timezones
-- materialized: incremental(bucket)
-- unique_key: zone_id, bucket
-- A window build adds the buckets a day either side of the window's trips (from their starts) and events.
-- Exact: every time zone in use changes its offset at a quarter hour of UTC (offsets are whole quarter hours and
-- changes happen at whole local hours). A zone whose time zone is unknown (core.int_zone_timezones) has no
-- offsets: its local times are null, not UTC.
with spans as (
    select zone_id, min(first_at) as first_at, max(last_at) as last_at,
    from (
        select zone_id, min(start_time) as first_at, max(end_time) as last_at,
        from staging.stg_mds__trips
        where end_time >= $window_start and end_time < $window_end
        group by zone_id
        union all
        select zone_id, min(event_time) as first_at, max(event_time) as last_at,
        from staging.stg_mds__events
        where event_time >= $window_start and event_time < $window_end
        group by zone_id
    )
    group by zone_id
),

buckets as (
    select
        spans.zone_id,
        systems.timezone as timezone,
        unnest(generate_series(
            time_bucket(interval 15 minute, spans.first_at) - interval 1 day,
            spans.last_at + interval 1 day,
            interval 15 minute
        )) as bucket,
    from spans
    inner join core.int_zone_timezones as systems on spans.zone_id = systems.zone_id
    where systems.timezone is not null
),

final as (
    select
        zone_id,
        timezone,
        bucket,
        epoch_us(timezone(timezone, bucket)) - epoch_us(bucket) as offset_us,
    from buckets
)

select * from final
