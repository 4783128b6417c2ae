{#
  Year handling for the multi-year simulation.

  Year-partitioned models (events, snapshot) are incremental tables holding every
  simulated year. Before a year is (re)built, delete_simulation_year() runs as a
  pre-hook and removes that year's rows, then the model appends the freshly computed
  rows. Re-running a year therefore always leaves exactly one copy of it, even if the
  new run produces zero rows (which delete+insert keyed on the new rows would not clean).
#}
{% macro delete_simulation_year() -%}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {%- if existing is not none -%}
        delete from {{ existing }} where simulation_year = {{ var('simulation_year') }}
    {%- else -%}
        select 1 /* {{ this.identifier }} does not exist yet: nothing to delete */
    {%- endif -%}
{%- endmacro %}


{#
  The previous year's workforce snapshot, read by int_baseline_workforce.

  It cannot be a ref(): fct_workforce_snapshot itself depends on int_baseline_workforce,
  and the dependency is only "on the previous year's partition", which dbt's DAG cannot
  express. So the relation is addressed directly, and when the model actually executes
  (not during parse) the macro checks that the previous year exists and fails clearly
  if it does not.
#}
{% macro previous_year_snapshot() -%}
    {%- set year = var('simulation_year') | int -%}
    {%- set previous_year = year - 1 -%}
    {%- set relation = api.Relation.create(database=this.database, schema=this.schema, identifier='fct_workforce_snapshot') -%}
    {%- if execute -%}
        {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier='fct_workforce_snapshot') -%}
        {%- set found = 0 -%}
        {%- if existing is not none -%}
            {%- set result = run_query("select count(*) from " ~ existing ~ " where simulation_year = " ~ previous_year ~ " and employment_status = 'active'") -%}
            {%- set found = result.columns[0].values()[0] -%}
        {%- endif -%}
        {%- if found == 0 -%}
            {{ exceptions.raise_compiler_error(
                "Simulation year " ~ year ~ " needs year " ~ previous_year ~ "'s workforce snapshot, "
                ~ "but fct_workforce_snapshot has no active employees for " ~ previous_year ~ "; run "
                ~ previous_year ~ " first (years must be simulated in order starting at start_year="
                ~ var('start_year') ~ ")."
            ) }}
        {%- endif -%}
    {%- endif -%}
    {{ relation }}
{%- endmacro %}


{# Fail early on a year before the simulation starts. #}
{% macro assert_valid_simulation_year() -%}
    {%- if (var('simulation_year') | int) < (var('start_year') | int) -%}
        {{ exceptions.raise_compiler_error(
            "simulation_year=" ~ var('simulation_year') ~ " is before start_year=" ~ var('start_year')
        ) }}
    {%- endif -%}
{%- endmacro %}
