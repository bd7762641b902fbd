-- Every breach of the city's rules: trip ends, trip starts, speeds, idle vehicles, GBFS positions, fleet counts.
-- grain: (violation_key) one row per violation (rule, and the trip, vehicle interval, GBFS sighting or zone hour it concerns)
-- inputs: int_violations_parking_in_forbidden_area, int_violations_parking_outside_operations, int_violations_parking_outside_spot, int_violations_start_not_allowed, int_violations_speeding, int_violations_time_in_state, int_violations_parked_in_forbidden_area, int_violations_fleet_counts, int_zone_area_labels
-- materialized: view
-- window: evidence_at
-- The rows of every rule family (core.int_violations_<rule>, one model each, each re-judged by window builds on
-- its own), with each row's area labelled. A view: the families are stored, and uniting them costs less than a
-- copy of them all at every build.
-- Limits: an MDS policy rule in force (the strictest) wins, else the zone API, else the GBFS global rules; the idle
-- limit falls back to the default rule of core.policy_rules. Rules are evaluated independently: one trip may break
-- several. Within one policy, the first rule a trip or vehicle matches is the one that holds (MDS Policy's order
-- of operations: "parking allowed at hubs" before "no parking downtown" exempts the hubs); across policies the
-- strictest holds. A policy rule that names geographies holds only there: for a trip, where it starts and ends; for a
-- vehicle, where its state began. One that names none holds zone-wide. It holds on its days and hours (local
-- time; `policy_rule_in_effect`, the runner's macro, see pipelines/warehouse/policy.py): at a trip's start, when
-- a vehicle's state began, at an hour's start for fleet counts. A rule whose input is not known (the zone's areas,
-- a speed limit, the parking mode, GBFS geofencing, the local time of a rule for some days or hours) is not judged:
-- no violation is told, and compliance_unjudged lists the trip or hour with the reason.
with violations as (
    select * from core.int_violations_parking_in_forbidden_area
    union all by name
    select * from core.int_violations_parking_outside_operations
    union all by name
    select * from core.int_violations_parking_outside_spot
    union all by name
    select * from core.int_violations_start_not_allowed
    union all by name
    select * from core.int_violations_speeding
    union all by name
    select * from core.int_violations_time_in_state
    union all by name
    select * from core.int_violations_parked_in_forbidden_area
    union all by name
    select * from core.int_violations_fleet_counts
),

-- Each violation's area as the zone API named it at the time of the record judged (when its place was found).
labelled as (
    select violations.*, labels.area_type, labels.area_label,
    from violations
    left join core.int_zone_area_labels as labels
        on violations.zone_id = labels.zone_id
        and violations.area_id = labels.area_id
        and violations.evidence_at >= labels.span_start
        and violations.evidence_at < labels.span_end
),

final as (
    select
        zone_id,
        rule,  -- The rule broken: parking_outside_spot, speeding, idle_too_long, ... (compliance_daily lists all 10).
        device_id,  -- The vehicle (MDS device_id); null for parked_in_forbidden_area and the fleet counts.
        trip_id,  -- The trip (MDS trip_id) for the trip rules; null for the idle, GBFS and fleet-count rules.
        observed_at,  -- When (UTC): trip end (start for start_not_allowed), idle limit hit, GBFS capture or counted hour.
        lat,  -- Latitude of the trip end or start, idle vehicle or GBFS sighting; null for fleet counts.
        lng,  -- Longitude of the trip end or start, idle vehicle or GBFS sighting; null for fleet counts.
        area_id,  -- Zone area at lat/lng (parking_in_forbidden_area: the forbidden one); null outside or for counts.
        detail,  -- A readable account of the breach, e.g. 'trip ended in a no-riding area'.
        observed_value,  -- What was measured: average speed in km/h, idle seconds or deployed devices; else null.
        limit_value,  -- The limit broken, in observed_value's unit: km/h, seconds or devices; else null.
        evidence_at,  -- Time of the record judged (trip end, interval start, GBFS capture, counted hour): what window builds rebuild by.
        violation_key,  -- Identifies the violation across builds: rule and trip, interval, sighting or counted hour.
        area_type,  -- The type of area_id (null without one).
        area_label,  -- A readable label of area_id: its name in the zone API at evidence_at, else its type and id (null without one).
    from labelled
)

select * from final
