-- Shown in Dagster as an asset check of fct_workforce_snapshot.
{{ config(meta={'dagster': {'ref': {'name': 'fct_workforce_snapshot'}}}) }}
-- The year's snapshot must be the Jan 1 workforce with the year's events applied:
--   active at year end = Jan 1 headcount - terminations + hires
--   terminated rows    = terminations
--   salary / level of each employee = the last event's new value (or unchanged)
{%- set year = var('simulation_year') | int %}

with events as (

    select * from {{ ref('fct_yearly_events') }} where simulation_year = {{ year }}

),

snapshot as (

    select * from {{ ref('fct_workforce_snapshot') }} where simulation_year = {{ year }}

),

counts as (

    select
        (select count(*) from {{ ref('int_baseline_workforce') }}) as starting_headcount,
        (select count(*) from events where event_type = 'termination') as terminations,
        (select count(*) from events where event_type = 'hire') as hires,
        (select count(*) from snapshot where employment_status = 'active') as active_at_end,
        (select count(*) from snapshot where employment_status = 'terminated') as terminated_rows

),

count_mismatches as (

    select 'headcount' as problem, null as employee_id
    from counts
    where active_at_end <> starting_headcount - terminations + hires
       or terminated_rows <> terminations

),

last_event as (

    select employee_id, new_level, new_salary
    from events
    where event_type <> 'termination'
    qualify row_number() over (partition by employee_id order by effective_date desc, event_type) = 1

),

employee_mismatches as (

    select 'employee state' as problem, snapshot.employee_id
    from snapshot
    join last_event on last_event.employee_id = snapshot.employee_id
    where snapshot.salary <> last_event.new_salary
       or snapshot.level <> last_event.new_level

)

select * from count_mismatches
union all
select * from employee_mismatches
