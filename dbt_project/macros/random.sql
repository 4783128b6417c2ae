{#
  Deterministic pseudo-randomness. Never use random(): every draw is a hash of the
  seed plus the keys that identify it (purpose, year, employee), mapped to [0, 1).
  Same seed + same vars => identical simulation; different purposes are independent.

    {{ rand_uniform("'termination'", 'simulation_year', 'employee_id') }}

  The keys are joined into ONE string before hashing on purpose: DuckDB's multi-argument
  hash(a, b, c) combines the per-argument hashes too weakly (draws of consecutive years
  for the same employee come out ~0.99 correlated), while hashing the joined string
  gives independent-looking draws. The top 53 bits of the hash / 2^53 is exactly
  representable as a double and strictly below 1.
#}
{% macro rand_uniform() -%}
    ((hash(concat_ws('|', {{ var('random_seed') }}{% for key in varargs %}, {{ key }}{% endfor %})) >> 11)::double / 9007199254740992.0)
{%- endmacro %}


{# Integer in [0, n) drawn the same way. #}
{% macro rand_int(n) -%}
    floor({{ rand_uniform(*varargs) }} * {{ n }})::integer
{%- endmacro %}
