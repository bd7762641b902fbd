-- The warm-up hours of each zone: hours whose opening vehicle states rest on events the lake may not hold. A vehicle
-- parked and silent since before the lake's first MDS events hour (or since before a gap in it) is invisible until
-- its next event; once the lead-in ($lead_in_hours, FLEETLAKE_LEAD_IN_HOURS) of hours before an hour are all
-- delivered, every vehicle that spoke within the lead-in is known. One silent for longer is still not (the MDS
-- Metrics methodology lets a city set such vehicles aside as anomalous after 48 hours).
-- grain: (zone_id, hour) one row per zone_id and warm-up hour, from the zone's first to its last delivered MDS events hour
-- inputs: int_hourly_partitions
-- materialized: table
-- An hour is warm-up when the last hour without an MDS events partition before it (the hour before the first one, at
-- the latest) lies within the lead-in. From the hourly file list, a few rows an hour: rebuilt whole every build.
with delivered as (
    select distinct zone_id, partition_hour as hour,
    from core.int_hourly_partitions
    where dataset = 'mds_events' and complete  -- an imported hour its archive may not cover whole is not delivered
),

spans as (
    select zone_id, min(hour) as first_hour, max(hour) as last_hour,
    from delivered
    group by zone_id
),

hours as (
    select series.zone_id, series.hour, delivered.hour is not null as has_events,
    from (
        select zone_id, unnest(generate_series(first_hour, last_hour, interval 1 hour)) as hour,
        from spans
    ) as series
    left join delivered on series.zone_id = delivered.zone_id and series.hour = delivered.hour
),

last_missing as (
    select
        hours.zone_id,
        hours.hour,
        coalesce(
            max(hours.hour) filter (where not hours.has_events) over (
                partition by hours.zone_id order by hours.hour rows between unbounded preceding and 1 preceding
            ),
            spans.first_hour - interval 1 hour
        ) as last_missing_hour,
    from hours
    inner join spans on hours.zone_id = spans.zone_id
),

final as (
    select
        zone_id,
        hour,  -- Start of the warm-up UTC hour.
        last_missing_hour,  -- The latest hour before it without an MDS events partition (before the history: the hour before its first).
    from last_missing
    where last_missing_hour >= hour - to_hours($lead_in_hours::bigint)
)

select * from final
