-- one row per department for the simulated year
{{ config(meta={"component_type": "WORKFORCE_PREPARATION"}) }}
select department_id, department, {{ var('simulation_year') }} as simulation_year, 10 * department_id as headcount
from {{ ref('departments') }}
