-- GBFS 2.3 sightings (Voi's account-wide free_bike_status) per UTC hour and the zone each was placed in by geometry, vehicles outside every known zone included.
-- grain: (hour, zone_id) one row per hour and zone_id (null: outside every known zone) with sightings in the GBFS 2.3 snapshots captured in the hour
-- inputs: int_gbfs_v2_vehicle_zones
-- materialized: incremental(hour)
-- GBFS 2.3 lists every zone's vehicles in one feed without their zone; core.int_gbfs_v2_vehicle_zones places each
-- sighting (pipelines/warehouse/gbfs_v2.py). The placed ones feed gbfs_occupancy_hourly; this mart says how many
-- were placed and how, and counts the ones beyond every zone the lake knows, which no zone's occupancy holds.
with sightings as (
    select zone_id, captured_at, zone_placement,
    from core.int_gbfs_v2_vehicle_zones
    where captured_at >= $window_start and captured_at < $window_end
),

hours as (
    select time_bucket(interval 1 hour, captured_at) as hour, count(distinct captured_at) as snapshots,
    from sightings
    group by all
),

counted as (
    select
        time_bucket(interval 1 hour, captured_at) as hour,
        zone_id,
        count(*) as sightings,
        count(*) filter (where zone_placement = 'inside') as inside_sightings,
        count(*) filter (where zone_placement = 'near') as near_sightings,
        count(*) filter (where zone_placement = 'outside') as outside_sightings,
    from sightings
    group by all
),

final as (
    select
        counted.hour,  -- Start of the UTC hour in which the GBFS 2.3 snapshots were captured.
        counted.zone_id,  -- The zone the sightings were placed in; null for vehicles outside every known zone.
        hours.snapshots,  -- GBFS 2.3 free_bike_status snapshots captured in the hour (the account's, all zones).
        counted.sightings,  -- Vehicles listed, summed over the hour's snapshots.
        counted.sightings / hours.snapshots
            as avg_vehicles,  -- Average vehicles listed per snapshot of the hour.
        counted.inside_sightings,  -- Sightings inside one of the zone's areas.
        counted.near_sightings,  -- Sightings in no area but within 50 km of the zone's areas, placed in the nearest such zone.
        counted.outside_sightings,  -- Sightings beyond every known zone (more than 50 km from every zone's areas): kept, in no zone.
    from counted
    inner join hours on counted.hour = hours.hour
)

select * from final
