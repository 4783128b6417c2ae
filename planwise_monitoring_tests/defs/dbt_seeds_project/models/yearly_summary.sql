-- fails for the year in var('fail_year'), so a test can watch a build that partly succeeds
{% if var('simulation_year') == var('fail_year') %}
select * from no_such_table_for_the_failing_year
{% else %}
select simulation_year, sum(headcount) as headcount from {{ ref('headcount_by_department') }} group by simulation_year
{% endif %}
