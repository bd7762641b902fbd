-- Each zone's system as GBFS last described it; the time zone gives every local-time column.
-- grain: (zone_id) one row per zone_id
-- inputs: lake.gbfs_system_information
-- materialized: view
-- A snapshot whose time zone DuckDB does not know (ingestion quarantines those; older lake files may hold one) is
-- skipped: every local time is computed in it, and an unknown name would stop every build. The latest valid
-- snapshot holds.
with source as (
    select * from lake.gbfs_system_information
    where timezone in (select name from pg_timezone_names())
),

latest as (
    select *
    from source
    qualify row_number() over (partition by zone_id order by captured_at desc) = 1
),

final as (
    select
        zone_id,
        system_id,
        name as system_name,
        timezone,
        captured_at,
    from latest
)

select * from final
