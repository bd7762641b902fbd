-- Vehicle counts per state from the GBFS vehicle_status snapshots, per zone, zone area and UTC hour, beside the
-- MDS-derived time-weighted average of occupancy_hourly for the same zone, area, hour and state.
-- grain: (zone_id, scope, area_id, hour, vehicle_state) one row per zone_id, scope ('zone': the whole zone; 'area': one zone area; 'outside': in no area), area_id, hour and vehicle_state
-- inputs: int_gbfs_vehicle_positions, occupancy_hourly, int_zone_area_labels, int_zone_timezones
-- materialized: incremental(hour)
-- whole_when_grows: occupancy_hourly
-- GBFS lists parked vehicles only: disabled ones are non_operational (even when also reserved), reserved ones
-- reserved, the rest available; parked is every listed vehicle (GBFS lists no vehicle on a trip, so it is compared
-- with occupancy_hourly's parked, not with dockless.deployed, which counts trips too). Averages are over the
-- snapshots captured in the hour (a snapshot is one sample), min and max over the same snapshots. Each hour has rows
-- for the zone and every area a vehicle was listed in during that hour, for all four states, zeros included.
with positions as (
    select zone_id, captured_at, vehicle_id, area_id, area_type, is_reserved, is_disabled,
    from core.int_gbfs_vehicle_positions
    where captured_at >= $window_start and captured_at < $window_end
),

occupancy as (
    select zone_id, area_id, area_type, hour, vehicle_state, avg_vehicles,
    from main.occupancy_hourly
    where hour >= $window_start and hour < $window_end
),

systems as (
    select zone_id, timezone from core.int_zone_timezones
),

stated as (
    select
        zone_id,
        captured_at,
        to_timestamp(floor(epoch(captured_at) / 3600) * 3600) as hour,
        area_id,
        coalesce(area_type, 'outside') as area_type,
        case
            when is_disabled then 'non_operational'
            when is_reserved then 'reserved'
            else 'available'
        end as vehicle_state,
    from positions
),

labelled as (
    select zone_id, captured_at, hour, area_id, area_type, vehicle_state, from stated
    union all
    select zone_id, captured_at, hour, area_id, area_type, 'parked' as vehicle_state, from stated
),

keyed as (
    select zone_id, captured_at, hour, area_id, area_type, vehicle_state, from labelled
    union all
    select zone_id, captured_at, hour, cast(null as varchar) as area_id, 'zone' as area_type, vehicle_state,
    from labelled
),

snapshots as (
    select distinct zone_id, captured_at, hour from stated
),

series as (
    select distinct keyed.zone_id, keyed.hour, keyed.area_id, keyed.area_type, states.vehicle_state,
    from keyed
    cross join (values ('available'), ('reserved'), ('non_operational'), ('parked')) as states (vehicle_state)
),

counted as (
    select zone_id, captured_at, area_id, area_type, vehicle_state, count(*) as vehicles,
    from keyed
    group by zone_id, captured_at, area_id, area_type, vehicle_state
),

per_snapshot as (
    select
        series.zone_id,
        series.area_id,
        series.area_type,
        series.hour,
        series.vehicle_state,
        snapshots.captured_at,
        coalesce(counted.vehicles, 0) as vehicles,
    from series
    inner join snapshots on series.zone_id = snapshots.zone_id and series.hour = snapshots.hour
    left join counted
        on series.zone_id = counted.zone_id
        and snapshots.captured_at = counted.captured_at
        and series.area_id is not distinct from counted.area_id
        and series.area_type = counted.area_type
        and series.vehicle_state = counted.vehicle_state
),

hourly as (
    select
        zone_id,
        area_id,
        area_type,
        hour,
        vehicle_state,
        count(*) as snapshots,
        avg(vehicles) as avg_vehicles,
        cast(min(vehicles) as integer) as min_vehicles,
        cast(max(vehicles) as integer) as max_vehicles,
    from per_snapshot
    group by zone_id, area_id, area_type, hour, vehicle_state
),

final as (
    select
        hourly.zone_id,
        hourly.area_id,  -- The zone area the vehicle was listed in (null for area_type 'zone' and 'outside').
        hourly.area_type,  -- That area's type, 'outside' when in no area, or 'zone' for the whole zone.
        hourly.hour,  -- Start of the UTC hour in which the snapshots were captured.
        timezone(systems.timezone, hourly.hour)
            as hour_local,  -- hour in the zone's local time zone (naive local timestamp).
        systems.timezone
            as timezone,  -- The zone's IANA time zone (core.int_zone_timezones: configuration, GBFS or geometry; null when unknown), used by hour_local.
        hourly.vehicle_state,  -- available, reserved, non_operational (disabled) or parked (every listed vehicle).
        hourly.snapshots,  -- GBFS vehicle_status snapshots of the zone captured in the hour: the samples averaged.
        hourly.avg_vehicles,  -- Average vehicles listed in the state and area per snapshot of the hour.
        hourly.min_vehicles,  -- Fewest vehicles listed in the state and area in any snapshot of the hour.
        hourly.max_vehicles,  -- Most vehicles listed in the state and area in any snapshot of the hour.
        occupancy.avg_vehicles
            as mds_avg_vehicles,  -- occupancy_hourly's time-weighted MDS average for the row (null without one).
        hourly.avg_vehicles - occupancy.avg_vehicles
            as avg_vehicles_difference,  -- avg_vehicles minus mds_avg_vehicles: GBFS minus MDS, in vehicles.
        case hourly.area_type when 'zone' then 'zone' when 'outside' then 'outside' else 'area' end
            as scope,  -- What the row counts: 'zone' (the whole zone), 'area' (one zone area) or 'outside' (in no area).
        labels.area_name,  -- The area's name in the zone API in force at the hour (null for the other scopes or when unnamed).
        case hourly.area_type
            when 'zone' then 'Whole zone'
            when 'outside' then 'Outside every area'
            else coalesce(labels.area_label, hourly.area_type || ' ' || hourly.area_id)
        end as area_label,  -- A readable label of the row's scope: the area's name (else its type and id), 'Whole zone' or 'Outside every area'.
    from hourly
    left join occupancy
        on hourly.zone_id = occupancy.zone_id
        and hourly.area_id is not distinct from occupancy.area_id
        and hourly.area_type = occupancy.area_type
        and hourly.hour = occupancy.hour
        and hourly.vehicle_state = occupancy.vehicle_state
    left join systems on hourly.zone_id = systems.zone_id
    left join core.int_zone_area_labels as labels
        on hourly.zone_id = labels.zone_id
        and hourly.area_id = labels.area_id
        and hourly.hour >= labels.hour_span_start
        and hourly.hour < labels.span_end
)

select * from final
