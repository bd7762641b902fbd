-- The latest known description of each vehicle (type, propulsion) from the MDS vehicles snapshots.
-- grain: (zone_id, device_id) one row per zone_id and device_id
-- inputs: lake.mds_vehicles
-- materialized: incremental(captured_at)
-- unique_key: zone_id, device_id
-- keep: latest
-- A table, not a view: hourly snapshots of a large fleet are millions of rows a month. A window build reads the
-- snapshots taken since the window began (they run on their own schedule, often after the newest MDS hour); a
-- vehicle's newer stored description stays.
with source as (
    select * from lake.mds_vehicles
    where date >= cast(timezone('UTC', $window_start) as date) and captured_at >= $window_start
),

latest as (
    select *
    from source
    where try_cast(device_id as uuid) is not null  -- as in stg_mds__trips: an unreadable id never fails a build
    qualify row_number() over (partition by zone_id, device_id order by captured_at desc) = 1
),

final as (
    select
        zone_id,
        try_cast(device_id as uuid) as device_id,  -- As in the other MDS staging tables.
        vehicle_id,
        vehicle_type,
        propulsion_types,
        maximum_speed_kph,
        captured_at,
    from latest
)

select * from final
