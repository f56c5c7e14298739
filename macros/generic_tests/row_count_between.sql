{#
  row_count_between(min_rows=none, max_rows=none)

  Fails when the model's row count is below `min_rows` or above `max_rows` (bounds
  included; give at least one of them).

  Tiers — the same design for every dwml test: each returned row is one failing unit
  (here: the model, so 0 or 1 row), with the observed value and the bounds; set tiers with
  dbt's own configs on that count. A rule with two value levels is two declarations:

      data_tests:
        - dwml.row_count_between:              # warn below 10k rows
            arguments: {min_rows: 10000}
            config: {severity: warn}
        - dwml.row_count_between:              # error below 1k or above 10M rows
            arguments: {min_rows: 1000, max_rows: 10000000}

  Rows: row_count, min_rows, max_rows.
#}
{% test row_count_between(model, min_rows=none, max_rows=none) %}
  {% do dwml._dwml_require_number('row_count_between', 'min_rows', min_rows, 0, allow_none=true) %}
  {% do dwml._dwml_require_number('row_count_between', 'max_rows', max_rows, 0, allow_none=true) %}
  {% if min_rows is none and max_rows is none %}
    {{ exceptions.raise_compiler_error("row_count_between: give `min_rows`, `max_rows` or both, got neither") }}
  {% endif %}
  {% if min_rows is not none and max_rows is not none and min_rows > max_rows %}
    {{ exceptions.raise_compiler_error("row_count_between: `min_rows` (" ~ min_rows ~ ") must not be above `max_rows` (" ~ max_rows ~ ")") }}
  {% endif %}
  {{ return(adapter.dispatch('test_row_count_between', 'dwml')(model, min_rows, max_rows)) }}
{% endtest %}

{% macro default__test_row_count_between(model, min_rows, max_rows) %}
  with counted as (
    select count(*) as row_count from {{ model }}
  )
  select
    row_count,
    {{ min_rows if min_rows is not none else 'null' }} as min_rows,
    {{ max_rows if max_rows is not none else 'null' }} as max_rows
  from counted
  where {% if min_rows is not none %}row_count < {{ min_rows }}{% else %}1 = 0{% endif %}
     or {% if max_rows is not none %}row_count > {{ max_rows }}{% else %}1 = 0{% endif %}
{% endmacro %}
