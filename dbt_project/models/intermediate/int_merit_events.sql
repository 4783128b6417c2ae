{#
  Merit raises on April 1 of var('simulation_year') for employees of the Jan 1 workforce
  who stay the whole year. Raises average merit_raise_pct (0.5x - 1.5x by a performance
  draw); the lowest 10% of performers get no raise. A raise applies to the salary after
  any promotion earlier in the year.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_simulation_year() }}"
) }}

{%- set year = var('simulation_year') | int %}

with stayers as (

    select baseline.*
    from {{ ref('int_baseline_workforce') }} as baseline
    anti join (
        select employee_id from {{ ref('int_termination_events') }}
        where simulation_year = {{ year }}
    ) as terminated
        on baseline.employee_id = terminated.employee_id

),

current_salary as (

    select
        stayers.simulation_year,
        stayers.employee_id,
        stayers.department,
        coalesce(promotions.new_level, stayers.level)   as level,
        coalesce(promotions.new_salary, stayers.salary) as salary,
        {{ rand_uniform("'performance'", 'stayers.simulation_year', 'stayers.employee_id') }} as performance
    from stayers
    left join {{ ref('int_promotion_events') }} as promotions
        on  promotions.employee_id = stayers.employee_id
        and promotions.simulation_year = {{ year }}

)

select
    simulation_year,
    employee_id,
    make_date({{ year }}, 4, 1) as effective_date,
    department,
    level,
    salary as previous_salary,
    -- performance in [0.1, 1) maps to a raise of 0.5x .. 1.5x merit_raise_pct
    round(salary * (1 + {{ var('merit_raise_pct') }} * (0.5 + (performance - 0.1) / 0.9)), 2)::decimal(14, 2) as new_salary
from current_salary
where performance >= 0.10
