{#
  SCD type 2 history of each employee's state (level, department, salary, status)
  across the simulated years: one row per period in which the state did not change.

  Re-runs: this is a plain table rebuilt on every run from all snapshot years up to and
  including var('simulation_year'), so it is always consistent with the snapshots and
  re-running a year (or an earlier year) simply recomputes the history as of that year.
  valid_to_year is the last year of a version; the current version has valid_to_year
  null and is_current = true. A terminated employee's current version has
  employment_status = 'terminated'.
#}
{%- set year = var('simulation_year') | int %}

with snapshots as (

    select
        employee_id,
        simulation_year,
        level,
        department,
        salary,
        employment_status,
        md5(concat_ws('|', level, department, salary, employment_status)) as state_hash
    from {{ ref('fct_workforce_snapshot') }}
    where simulation_year <= {{ year }}

),

changes as (

    select
        *,
        case
            when lag(state_hash) over (partition by employee_id order by simulation_year) = state_hash then 0
            else 1
        end as is_new_version
    from snapshots

),

numbered as (

    select
        *,
        sum(is_new_version) over (
            partition by employee_id order by simulation_year
            rows between unbounded preceding and current row
        ) as version_number
    from changes

),

versions as (

    select
        employee_id,
        version_number,
        min(simulation_year) as valid_from_year,
        any_value(level) as level,
        any_value(department) as department,
        any_value(salary) as salary,
        any_value(employment_status) as employment_status,
        any_value(state_hash) as state_hash
    from numbered
    group by employee_id, version_number

)

select
    employee_id || '-' || version_number as scd_id,
    employee_id,
    version_number::integer as version_number,
    valid_from_year,
    lead(valid_from_year) over (partition by employee_id order by version_number) - 1 as valid_to_year,
    lead(valid_from_year) over (partition by employee_id order by version_number) is null as is_current,
    level,
    department,
    salary,
    employment_status,
    state_hash
from versions
