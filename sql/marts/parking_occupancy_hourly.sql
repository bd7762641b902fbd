-- Parking-spot occupancy per hour: vehicles parked in each spot (occupancy_hourly's parked: available, reserved or
-- non_operational, by the area of the event that began the state; a trip that starts in the spot leaves it) against the spot's capacity, beside the occupancy the zone API itself reported.
-- grain: (zone_id, area_id, hour) one row per zone_id, parking-spot area_id and hour (every hour of occupancy_hourly, zeros included)
-- inputs: occupancy_hourly, stg_zone__areas, lake.zone_area_occupancy
-- materialized: incremental(hour)
-- whole_when_grows: occupancy_hourly
-- Capacity is the one in force in the hour: the last the zone API reported for the spot by the hour's end (the
-- first reported, for hours before any report), so a later change leaves earlier hours as they were and an hour
-- built alone equals the full build; reported occupancy averages the API's snapshots captured in the hour (null
-- when none was).
with occupancy as (
    select zone_id, scope, area_id, area_type, hour, hour_local, timezone, vehicle_state, avg_vehicles, max_vehicles,
    from main.occupancy_hourly
    where vehicle_state = 'parked' and hour >= $window_start and hour < $window_end
),

areas as (
    select zone_id, area_id, area_type, area_name, valid_from, from staging.stg_zone__areas
),

area_occupancy as (
    select zone_id, area_id, occupancy, capacity, captured_at, from lake.zone_area_occupancy
),

spots as (
    select zone_id, area_id, area_name, area_type,
    from areas
    where area_type = 'parking-spot'
    qualify row_number() over (partition by zone_id, area_id order by valid_from desc) = 1
),

zone_hours as (
    select zone_id, hour, hour_local, timezone, from occupancy where scope = 'zone'
),

parked as (
    select zone_id, area_id, hour, avg_vehicles, max_vehicles,
    from occupancy
    where area_type = 'parking-spot'
),

first_capacities as (
    select zone_id, area_id, capacity,
    from area_occupancy
    qualify row_number() over (partition by zone_id, area_id order by captured_at) = 1
),

spot_hours as (
    select spots.*, zone_hours.* exclude (zone_id), zone_hours.hour + interval 1 hour as hour_end,
    from spots
    inner join zone_hours on spots.zone_id = zone_hours.zone_id
),

capacities as (
    select
        spot_hours.zone_id,
        spot_hours.area_id,
        spot_hours.hour,
        coalesce(in_force.capacity, first.capacity) as capacity,
    from spot_hours
    asof left join area_occupancy as in_force
        on spot_hours.zone_id = in_force.zone_id
        and spot_hours.area_id = in_force.area_id
        and spot_hours.hour_end > in_force.captured_at
    left join first_capacities as first
        on spot_hours.zone_id = first.zone_id and spot_hours.area_id = first.area_id
),

reported as (
    select
        zone_id,
        area_id,
        to_timestamp(floor(epoch(captured_at) / 3600) * 3600) as hour,
        avg(occupancy) as reported_occupancy,
        count(*) as reported_snapshots,
    from area_occupancy
    where captured_at >= $window_start and captured_at < $window_end
    group by zone_id, area_id, to_timestamp(floor(epoch(captured_at) / 3600) * 3600)
),

final as (
    select
        spots.zone_id,
        spots.area_id,  -- The parking spot: a zone area of type 'parking-spot'.
        spots.area_name,  -- The spot's name, from its latest version in the zone API.
        zone_hours.hour,  -- Start of the UTC hour.
        zone_hours.hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        zone_hours.timezone,  -- The zone's IANA time zone (core.int_zone_timezones: configuration, GBFS or geometry; null when unknown).
        coalesce(parked.avg_vehicles, 0)
            as avg_vehicles,  -- Time-weighted average of vehicles parked in the spot (occupancy_hourly's parked).
        coalesce(parked.max_vehicles, 0)
            as max_vehicles,  -- Most vehicles parked in the spot at any moment of the hour.
        capacities.capacity,  -- The spot's capacity in vehicles in force in the hour (zone API; null if never).
        coalesce(parked.avg_vehicles, 0) / nullif(capacities.capacity, 0)
            as avg_occupancy_rate,  -- avg_vehicles over capacity (1 = full; null without a capacity).
        reported.reported_occupancy,  -- Vehicles in the spot per the zone API, averaged over the hour's snapshots.
        reported.reported_occupancy / nullif(capacities.capacity, 0)
            as reported_occupancy_rate,  -- reported_occupancy over capacity (1 = full; null without either).
        coalesce(reported.reported_snapshots, 0)
            as reported_snapshots,  -- Zone API occupancy snapshots of the spot captured in the hour.
        spots.area_type,  -- The area's type: always 'parking-spot'.
        coalesce(nullif(trim(spots.area_name), ''), spots.area_type || ' ' || spots.area_id)
            as area_label,  -- A readable label of the spot: its name, or its type and id when the zone API gives none.
    from spots
    inner join zone_hours on spots.zone_id = zone_hours.zone_id
    left join parked
        on spots.zone_id = parked.zone_id and spots.area_id = parked.area_id and zone_hours.hour = parked.hour
    left join capacities
        on spots.zone_id = capacities.zone_id
        and spots.area_id = capacities.area_id
        and zone_hours.hour = capacities.hour
    left join reported
        on spots.zone_id = reported.zone_id and spots.area_id = reported.area_id and zone_hours.hour = reported.hour
)

select * from final
