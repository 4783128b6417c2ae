{#
  All workforce events of var('simulation_year') in one table: the union of the four
  event models, in a common shape. One row per event; event_id is unique across years.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_simulation_year() }}"
) }}

{%- set year = var('simulation_year') | int %}

with terminations as (

    select
        simulation_year, employee_id, 'termination' as event_type, termination_reason as event_reason,
        effective_date, department,
        level as previous_level, null::integer as new_level,
        salary as previous_salary, null::decimal(14, 2) as new_salary
    from {{ ref('int_termination_events') }}
    where simulation_year = {{ year }}

),

hires as (

    select
        simulation_year, employee_id, 'hire' as event_type, null as event_reason,
        effective_date, department,
        null::integer as previous_level, level as new_level,
        null::decimal(14, 2) as previous_salary, salary as new_salary
    from {{ ref('int_hire_events') }}
    where simulation_year = {{ year }}

),

promotions as (

    select
        simulation_year, employee_id, 'promotion' as event_type, null as event_reason,
        effective_date, department,
        previous_level, new_level,
        previous_salary, new_salary
    from {{ ref('int_promotion_events') }}
    where simulation_year = {{ year }}

),

merits as (

    select
        simulation_year, employee_id, 'merit' as event_type, null as event_reason,
        effective_date, department,
        level as previous_level, level as new_level,
        previous_salary, new_salary
    from {{ ref('int_merit_events') }}
    where simulation_year = {{ year }}

),

all_events as (

    select * from terminations
    union all
    select * from hires
    union all
    select * from promotions
    union all
    select * from merits

)

select
    event_type || '-' || simulation_year || '-' || employee_id as event_id,
    simulation_year,
    employee_id,
    event_type,
    event_reason,
    effective_date,
    department,
    previous_level,
    new_level,
    previous_salary,
    new_salary
from all_events
