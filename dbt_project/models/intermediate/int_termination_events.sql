{#
  Terminations during var('simulation_year') among the Jan 1 workforce:
  - everyone at or above retirement_age retires
  - everyone else leaves with probability termination_rate (80% voluntary)
  New hires of the year are not eligible (they are not in the baseline).
#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_simulation_year() }}"
) }}

{%- set year = var('simulation_year') | int %}

with baseline as (

    select
        *,
        {{ rand_uniform("'termination'", 'simulation_year', 'employee_id') }}        as u_termination,
        {{ rand_uniform("'termination_reason'", 'simulation_year', 'employee_id') }} as u_reason,
        {{ rand_uniform("'termination_date'", 'simulation_year', 'employee_id') }}   as u_date
    from {{ ref('int_baseline_workforce') }}

)

select
    simulation_year,
    employee_id,
    case
        when age >= {{ var('retirement_age') }} then 'retirement'
        when u_reason < 0.80 then 'voluntary'
        else 'involuntary'
    end as termination_reason,
    (make_date({{ year }}, 1, 1) + floor(u_date * 365)::integer)::date as effective_date,
    level,
    department,
    salary
from baseline
where age >= {{ var('retirement_age') }}
   or u_termination < {{ var('termination_rate') }}
