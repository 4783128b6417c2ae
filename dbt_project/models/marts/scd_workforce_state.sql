{#
  SCD type 2 history of each employee's state (level, department, salary, status)
  across the simulated years: one row per period in which the state did not change.

  Re-runs: this is a plain table rebuilt on every run from all snapshot years up to and
  including var('simulation_year'), so it is always consistent with the snapshots and
  re-running a year (or an earlier year) simply recomputes the history as of that year.
  valid_to_year is the last year of a version; the current version has valid_to_year
  null and is_current = true. A terminated employee's current version has
  employment_status = 'terminated' (they have no later snapshots).
#}
{%- set year = var('simulation_year') | int %}

with snapshots as (

    select employee_id, simulation_year, level, department, salary, employment_status
    from {{ ref('fct_workforce_snapshot') }}
    where simulation_year <= {{ year }}

),

-- a version starts in an employee's first snapshot and whenever a tracked attribute changes
version_starts as (

    select *
    from snapshots
    window w as (partition by employee_id order by simulation_year)
    qualify lag(simulation_year) over w is null
         or lag(level) over w is distinct from level
         or lag(department) over w is distinct from department
         or lag(salary) over w is distinct from salary
         or lag(employment_status) over w is distinct from employment_status

),

versions as (

    select
        *,
        row_number() over w as version_number,
        lead(simulation_year) over w as next_version_year
    from version_starts
    window w as (partition by employee_id order by simulation_year)

)

select
    employee_id || '-' || version_number as scd_id,
    employee_id,
    version_number::integer as version_number,
    simulation_year as valid_from_year,
    next_version_year - 1 as valid_to_year,
    next_version_year is null as is_current,
    level,
    department,
    salary,
    employment_status
from versions
