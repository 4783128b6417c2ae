{#
  Passes when every value of `column_name` (the entity key) has exactly one row where
  `current_flag` is true: the invariant of an SCD type 2 table.
#}
{% test exactly_one_current_row(model, column_name, current_flag='is_current') %}

select
    {{ column_name }},
    count(*) filter (where {{ current_flag }}) as current_rows
from {{ model }}
group by {{ column_name }}
having count(*) filter (where {{ current_flag }}) <> 1

{% endtest %}
