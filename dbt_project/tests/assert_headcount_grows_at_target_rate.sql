-- Shown in Dagster as an asset check of fct_workforce_snapshot.
{{ config(meta={'dagster': {'ref': {'name': 'fct_workforce_snapshot'}}}) }}
-- The simulated year's end-of-year active headcount must equal
-- round(start-of-year headcount * (1 + target_growth_rate)), within 0.1%
-- (the hire count is computed to hit it exactly; the tolerance only guards rounding).
-- With a calibrated var('hire_rate') only the start year, the year it was calibrated on, is held
-- to the target: later years drift as the workforce ages (retirements), which the run shows.
-- Returns a row when the year is off target.
{%- set year = var('simulation_year') | int %}

with starting as (

    select count(*) as headcount from {{ ref('int_baseline_workforce') }}

),

ending as (

    select count(*) as headcount
    from {{ ref('fct_workforce_snapshot') }}
    where simulation_year = {{ year }} and employment_status = 'active'

),

comparison as (

    select
        starting.headcount as starting_headcount,
        ending.headcount as ending_headcount,
        round(starting.headcount * (1 + {{ var('target_growth_rate') }})) as target_headcount
    from starting, ending

)

select *
from comparison
where abs(ending_headcount - target_headcount) > greatest(1, 0.001 * target_headcount)
{%- if var('hire_rate', none) is not none and year != var('start_year') | int %}
  and false
{%- endif %}
