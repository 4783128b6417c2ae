-- Shown in Dagster as an asset check of fct_yearly_events.
{{ config(meta={'dagster': {'ref': {'name': 'fct_yearly_events'}}}) }}
-- Every event of a year must belong to an employee who was part of that year's
-- workforce: terminations, promotions and merits to someone active on Jan 1 (the
-- census for the start year, the previous year's active snapshot otherwise), hires to
-- someone who was NOT in it. Checked for every simulated year up to the current one.
{%- set year = var('simulation_year') | int %}
{%- set start = var('start_year') | int %}

with events as (

    select * from {{ ref('fct_yearly_events') }}
    where simulation_year <= {{ year }}

),

active_on_january_first as (

    select {{ start }} as simulation_year, employee_id from {{ ref('stg_census') }}
    union all
    select simulation_year + 1 as simulation_year, employee_id
    from {{ ref('fct_workforce_snapshot') }}
    where employment_status = 'active' and simulation_year < {{ year }}

)

select events.event_id, events.event_type, events.employee_id, events.simulation_year
from events
left join active_on_january_first as active
    on  active.employee_id = events.employee_id
    and active.simulation_year = events.simulation_year
where (events.event_type = 'hire' and active.employee_id is not null)
   or (events.event_type <> 'hire' and active.employee_id is null)
