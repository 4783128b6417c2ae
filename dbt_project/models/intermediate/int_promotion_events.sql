{#
  Promotions during var('simulation_year'): employees of the Jan 1 workforce who stay
  the whole year, are below level 5 and have at least one year of tenure are promoted
  with probability promotion_rate. Promotion moves them up one level with a raise of
  promotion_raise_pct, at least to the bottom of the new level's salary band.
  Promotions take effect on March 1 (before merit raises on April 1).
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

promoted as (

    select *
    from stayers
    where level < 5
      and tenure_years >= 1
      and {{ rand_uniform("'promotion'", 'simulation_year', 'employee_id') }} < {{ var('promotion_rate') }}

)

select
    simulation_year,
    employee_id,
    make_date({{ year }}, 3, 1) as effective_date,
    department,
    level as previous_level,
    level + 1 as new_level,
    salary as previous_salary,
    greatest(
        round(salary * (1 + {{ var('promotion_raise_pct') }}), 2),
        {{ salary_band_min('level + 1') }}
    )::decimal(14, 2) as new_salary
from promoted
