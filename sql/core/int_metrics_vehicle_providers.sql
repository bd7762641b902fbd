-- The provider each vehicle's states count for in the MDS Metrics pieces: the one that reported it, the first by id
-- when two did (a resold fleet), so every build and every query assigns a vehicle to the same provider.
-- grain: (zone_id, device_id) one row per zone_id and device_id with at least one MDS event
-- inputs: int_metrics_devices
-- materialized: view
-- The one home of that choice: core.int_metrics_vehicles, core.int_metrics_activity and the Metrics API's activity
-- of days and months (pipelines/metrics/query.py) read it, so their seconds are split by provider alike.
select
    zone_id,
    device_id,
    min(provider_id) as provider_id,  -- The provider the vehicle's states count for (MDS provider_id).
from core.int_metrics_devices
group by zone_id, device_id
