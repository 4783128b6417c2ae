{#
  New hires during var('simulation_year'). The number of hires closes the gap between
  the employees who stay and the growth target:

      target_headcount = round(baseline_headcount * (1 + target_growth_rate))
      hires            = target_headcount - (baseline_headcount - terminations)

  (never negative; with negative growth larger than attrition the target is missed), or, when
  var('hire_rate') is set (the demo's calibration finds it), a fixed share of the headcount:

      hires            = round(baseline_headcount * hire_rate)
  New hires get new ids 'EMP<year>_<nnnnnnn>', mostly at junior levels.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_simulation_year() }}"
) }}

{%- set year = var('simulation_year') | int %}

with baseline_headcount as (

    select count(*) as headcount from {{ ref('int_baseline_workforce') }}

),

terminations as (

    select count(*) as terminated
    from {{ ref('int_termination_events') }}
    where simulation_year = {{ year }}

),

hire_count as (

    select
        {%- if var('hire_rate', none) is not none %}
        round(headcount * {{ var('hire_rate') }})::bigint as hires
        {%- else %}
        greatest(
            0,
            round(headcount * (1 + {{ var('target_growth_rate') }}))::bigint - (headcount - terminated)
        ) as hires
        {%- endif %}
    from baseline_headcount, terminations

),

draws as (

    select
        printf('EMP%d_%07d', {{ year }}, range + 1) as employee_id,
        {{ rand_uniform("'hire_level'", year, 'range') }}    as u_level,
        {{ rand_uniform("'hire_age'", year, 'range') }}      as u_age,
        {{ rand_uniform("'hire_birthday'", year, 'range') }} as u_birthday,
        {{ rand_uniform("'hire_date'", year, 'range') }}     as u_date,
        {{ rand_uniform("'hire_salary'", year, 'range') }}   as u_salary,
        {{ rand_int(6, "'hire_department'", year, 'range') }} as department_index
    from range((select hires from hire_count))

),

leveled as (

    select
        *,
        case
            when u_level < 0.55 then 1
            when u_level < 0.85 then 2
            when u_level < 0.97 then 3
            else 4
        end as level
    from draws

),

aged as (

    select *, (22 + (level - 1) * 4 + floor(u_age * 12))::integer as age_at_hire
    from leveled

)

select
    {{ year }} as simulation_year,
    employee_id,
    (make_date({{ year }}, 1, 1) + floor(u_date * 365)::integer)::date as effective_date,
    (make_date({{ year }} - age_at_hire - 1, 1, 2) + floor(u_birthday * 364)::integer)::date as birth_date,
    level,
    {{ department_for('department_index') }} as department,
    {{ salary_for_level('level', 'u_salary') }} as salary
from aged
