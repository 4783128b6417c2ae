{#
  The active workforce on Jan 1 of var('simulation_year').
  - first year (start_year): the census
  - later years: the active employees of the previous year's fct_workforce_snapshot
    (addressed by previous_year_snapshot(), which fails clearly if that year is missing)
  Rebuilt as a table on every run; it only ever holds the year being simulated.
#}
-- depends_on: {{ ref('stg_census') }}
{{ assert_valid_simulation_year() }}

{%- set year = var('simulation_year') | int %}

with source_workforce as (

{% if year == var('start_year') | int %}
    select employee_id, birth_date, hire_date, level, department, salary
    from {{ ref('stg_census') }}
{% else %}
    select employee_id, birth_date, hire_date, level, department, salary
    from {{ previous_year_snapshot() }}
    where simulation_year = {{ year - 1 }}
      and employment_status = 'active'
{% endif %}

)

select
    {{ year }} as simulation_year,
    employee_id,
    birth_date,
    hire_date,
    extract(year from age(make_date({{ year }}, 1, 1), birth_date))::integer as age,
    date_diff('day', hire_date, make_date({{ year }}, 1, 1)) / 365.25 as tenure_years,
    level,
    department,
    salary
from source_workforce
