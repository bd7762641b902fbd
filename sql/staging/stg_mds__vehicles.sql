-- The latest known description of each vehicle (type, propulsion) from the MDS vehicles snapshots.
-- grain: one row per zone_id and device_id
-- inputs: lake.mds_vehicles
-- materialized: view
with source as (
    select * from lake.mds_vehicles
),

latest as (
    select *
    from source
    qualify row_number() over (partition by zone_id, device_id order by captured_at desc) = 1
),

final as (
    select
        zone_id,
        device_id,
        vehicle_id,
        vehicle_type,
        propulsion_types,
        maximum_speed_kph,
        captured_at,
    from latest
)

select * from final
