{#
  The workforce at the end of var('simulation_year'): the Jan 1 workforce with the
  year's events applied, plus the year's new hires. Employees terminated during the
  year appear once more with employment_status = 'terminated' (and then never again);
  next year's int_baseline_workforce starts from the 'active' rows.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_simulation_year() }}"
) }}

{%- set year = var('simulation_year') | int %}

with events as (

    select * from {{ ref('fct_yearly_events') }}
    where simulation_year = {{ year }}

),

terminations as (select * from events where event_type = 'termination'),
promotions   as (select * from events where event_type = 'promotion'),
merits       as (select * from events where event_type = 'merit'),
hires        as (select * from {{ ref('int_hire_events') }} where simulation_year = {{ year }}),

existing_employees as (

    select
        baseline.employee_id,
        baseline.birth_date,
        baseline.hire_date,
        coalesce(promotions.new_level, baseline.level) as level,
        baseline.department,
        coalesce(merits.new_salary, promotions.new_salary, baseline.salary) as salary,
        case when terminations.employee_id is null then 'active' else 'terminated' end as employment_status,
        terminations.effective_date as termination_date,
        false as is_new_hire
    from {{ ref('int_baseline_workforce') }} as baseline
    left join terminations on terminations.employee_id = baseline.employee_id
    left join promotions   on promotions.employee_id   = baseline.employee_id
    left join merits       on merits.employee_id       = baseline.employee_id

),

new_hires as (

    select
        employee_id,
        birth_date,
        effective_date as hire_date,
        level,
        department,
        salary,
        'active' as employment_status,
        null::date as termination_date,
        true as is_new_hire
    from hires

),

workforce as (

    select * from existing_employees
    union all
    select * from new_hires

)

select
    {{ year }} as simulation_year,
    employee_id,
    birth_date,
    hire_date,
    extract(year from age(make_date({{ year }}, 12, 31), birth_date))::integer as age,
    round(date_diff('day', hire_date, make_date({{ year }}, 12, 31)) / 365.25, 2) as tenure_years,
    level,
    department,
    salary,
    employment_status,
    termination_date,
    is_new_hire
from workforce
