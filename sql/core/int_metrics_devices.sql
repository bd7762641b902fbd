-- The provider each vehicle's events came from: the MDS Metrics provider_id dimension of the vehicle's states.
-- grain: (zone_id, device_id, provider_id) one row per zone_id, device_id and provider_id
-- inputs: stg_mds__events
-- materialized: accumulating
-- A window build adds the vehicles its events name (a few thousand rows), so the metrics models find a vehicle's
-- provider without reading every event. A vehicle that two providers reported (a resold fleet) has a row for each;
-- core.int_metrics_vehicles counts its states with the provider of the event that began each state.
select distinct
    zone_id,
    device_id,
    provider_id,  -- The provider that reported the vehicle (MDS provider_id).
from staging.stg_mds__events
where event_time >= $window_start and event_time < $window_end
