{#
  Salary bands per job level (1 = entry ... 5 = executive).
  salary_for_level places an employee inside the band using u in [0, 1).
#}
{% macro salary_band_min(level) -%}
    (case {{ level }} when 1 then 50000 when 2 then 65000 when 3 then 85000 when 4 then 110000 else 150000 end)
{%- endmacro %}

{% macro salary_band_max(level) -%}
    (case {{ level }} when 1 then 70000 when 2 then 90000 when 3 then 120000 when 4 then 160000 else 250000 end)
{%- endmacro %}

{% macro salary_for_level(level, u) -%}
    round({{ salary_band_min(level) }} + {{ u }} * ({{ salary_band_max(level) }} - {{ salary_band_min(level) }}), 2)::decimal(14, 2)
{%- endmacro %}


{# The departments of the simulated company; index with a 0-based integer. #}
{% macro department_for(index) -%}
    (['Engineering', 'Sales', 'Operations', 'Finance', 'Marketing', 'Customer Support'])[{{ index }} + 1]
{%- endmacro %}
