-- The span of each zone's MDS event deliveries: its first delivered hour and its data horizon, the end of its
-- latest delivered hour, the clock that open state intervals run to.
-- grain: (zone_id) one row per zone_id with at least one delivered MDS events partition
-- inputs: int_hourly_partitions
-- materialized: view
-- From the list of the lake's hourly files (a few per hour), not the events: an hour delivered without events
-- still happened (every vehicle kept its state through it), and the list is read in a millisecond where the
-- events' times cost a scan of every event.
select
    zone_id,
    min(partition_hour) as first_hour,  -- Start of the zone's first delivered MDS events hour (UTC).
    max(partition_hour) + interval 1 hour as horizon,  -- End of its latest delivered MDS events hour (UTC).
from core.int_hourly_partitions
where dataset = 'mds_events'
group by zone_id
