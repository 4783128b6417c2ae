-- Shown in Dagster as an asset check of scd_workforce_state.
{{ config(meta={'dagster': {'ref': {'name': 'scd_workforce_state'}}}) }}
-- scd_workforce_state must agree with the snapshots:
--   * each employee's current version equals their state in their latest snapshot year
--   * versions are contiguous: each starts the year after the previous one ends
{%- set year = var('simulation_year') | int %}

with latest_snapshot as (

    select employee_id, level, department, salary, employment_status
    from {{ ref('fct_workforce_snapshot') }}
    where simulation_year <= {{ year }}
    qualify row_number() over (partition by employee_id order by simulation_year desc) = 1

),

current_versions as (

    select * from {{ ref('scd_workforce_state') }} where is_current

),

state_mismatches as (

    select 'current state differs' as problem, latest_snapshot.employee_id
    from latest_snapshot
    left join current_versions on current_versions.employee_id = latest_snapshot.employee_id
    where current_versions.employee_id is null
       or current_versions.level <> latest_snapshot.level
       or current_versions.department <> latest_snapshot.department
       or current_versions.salary <> latest_snapshot.salary
       or current_versions.employment_status <> latest_snapshot.employment_status

),

gaps as (

    select 'versions not contiguous' as problem, employee_id
    from (
        select
            employee_id,
            valid_from_year,
            lag(valid_to_year) over (partition by employee_id order by version_number) as previous_valid_to_year,
            version_number
        from {{ ref('scd_workforce_state') }}
    )
    where version_number > 1 and valid_from_year <> previous_valid_to_year + 1

)

select * from state_mismatches
union all
select * from gaps
