-- The bin a zone-hour's MDS times are rounded to, when they all are: whole seconds, minutes, 15 minutes, ...
-- grain: (zone_id, hour) one row per zone_id and hour (UTC) with MDS events or trips
-- inputs: stg_mds__events, stg_mds__trips
-- materialized: incremental(hour)
-- unique_key: zone_id, hour
-- Real feeds round times (to the second; published open data to 15 minutes); then a duration taken from two times
-- is off by up to a bin, and the trips' anomaly flags judge the provider's reported duration instead.
-- The times are the hour's events and the start and end of the trips ending in it. The bin is the largest divisor
-- of an hour that divides all of them, in seconds: a divisor of 3600 = 2^4 x 3^2 x 5^2, so it is the product of
-- the smallest of each time's common factor with 16, 9 and 25 (plain minimums, no sort). Fewer than two times
-- cannot tell a bin from chance, and times with milliseconds are not binned: both null.
-- A window build reads the whole hours its window touches and replaces their rows (a window need not begin on the
-- hour).
with hours as (
    select
        time_bucket(interval 1 hour, $window_start) as first_hour,
        time_bucket(interval 1 hour, $window_end - interval 1 microsecond) + interval 1 hour as end_hour,
),

times as (
    select zone_id, time_bucket(interval 1 hour, event_time) as hour, epoch_ms(event_time) as at_ms,
    from staging.stg_mds__events
    where event_time >= (select first_hour from hours) and event_time < (select end_hour from hours)
    union all
    select zone_id, time_bucket(interval 1 hour, end_time) as hour, unnest([epoch_ms(start_time), epoch_ms(end_time)]) as at_ms,
    from staging.stg_mds__trips
    where end_time >= (select first_hour from hours) and end_time < (select end_hour from hours)
),

factors as (
    select
        zone_id,
        hour,
        count(*) as times,
        bool_and(at_ms % 1000 = 0) as whole_seconds,
        min(gcd(at_ms // 1000, 16)) as twos,
        min(gcd(at_ms // 1000, 9)) as threes,
        min(gcd(at_ms // 1000, 25)) as fives,
    from times
    group by zone_id, hour
),

final as (
    select
        zone_id,
        hour,
        times,
        if(whole_seconds and times >= 2, twos * threes * fives, null)::integer as timestamp_bin_s,
    from factors
)

select * from final
