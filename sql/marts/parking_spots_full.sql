-- The parking spots most often full: per spot, the hours in which the vehicles parked in it reached its capacity,
-- ranked, over the whole history.
-- grain: (zone_id, area_id) one row per zone_id and parking spot
-- inputs: parking_occupancy_hourly
-- materialized: view
-- A ready-made answer (README.md, "Example queries"): `from parking_spots_full where zone_id = '145' order by
-- rank limit 10`. Full is measured from the MDS events (parking_occupancy_hourly.max_vehicles); the zone API's own
-- occupancy is beside it. A spot whose capacity the zone API never gave is not known to be full or not: its counts
-- are null and it has no rank.
with spot_hours as (
    select
        zone_id,
        area_id,
        count(*) as hours,
        count(*) filter (where capacity is not null) as hours_with_capacity,
        count(*) filter (where max_vehicles >= capacity) as full_hours,
        count(*) filter (where reported_occupancy_rate >= 1) as reported_full_hours,
        avg(avg_occupancy_rate) as avg_occupancy_rate,
        arg_max(capacity, hour) as capacity,
        arg_max(area_label, hour) as area_label,
        arg_max(area_type, hour) as area_type,
    from main.parking_occupancy_hourly
    group by zone_id, area_id
),

final as (
    select
        zone_id,
        rank() over (partition by zone_id order by full_hours desc nulls last)
            as rank,  -- 1 for the spot full in the most hours of the zone; ties share a rank; null without a capacity.
        area_id,  -- The parking spot: a zone area of type 'parking-spot'.
        area_type,  -- The area's type: always 'parking-spot'.
        area_label,  -- A readable label of the spot: its name, or its type and id when the zone API gives none.
        capacity,  -- The spot's latest capacity in vehicles (zone API; null if it never gave one).
        hours,  -- Hours of the history (parking_occupancy_hourly's, every hour of occupancy_hourly).
        hours_with_capacity,  -- Of those, hours with a capacity in force: the hours full_hours is judged on.
        if(hours_with_capacity = 0, null, full_hours)
            as full_hours,  -- Hours in which the vehicles parked in the spot reached its capacity at some moment (null: capacity unknown).
        if(hours_with_capacity = 0, null, full_hours / hours_with_capacity)
            as full_share,  -- full_hours over hours_with_capacity (0 to 1).
        avg_occupancy_rate,  -- Mean of the hours' time-weighted occupancy rates (1 = full on average; null without a capacity).
        reported_full_hours,  -- Hours whose average occupancy reported by the zone API reached the capacity.
    from spot_hours
)

select * from final
