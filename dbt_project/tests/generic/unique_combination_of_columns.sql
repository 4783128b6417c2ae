{#
  Passes when no two rows share the same values in all of `combination_of_columns`
  (e.g. [simulation_year, employee_id]). Written here instead of using dbt_utils so the
  project needs no packages.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}
