{#
  null_rate_below(column_name, max_rate)

  Fails when the share of NULLs in `column_name` is above `max_rate` (0..1; equal passes).
  An empty model passes: it has no rate.

  Tiers — the same design for every dwml test: each returned row is one failing unit
  (here: the column, so 0 or 1 row), with the observed value and the threshold; set tiers
  with dbt's own configs on that count. A rule with two value levels is two declarations:

      columns:
        - name: email
          data_tests:
            - dwml.null_rate_below:            # warn above 5% nulls
                arguments: {max_rate: 0.05}
                config: {severity: warn}
            - dwml.null_rate_below:            # error above 20% nulls
                arguments: {max_rate: 0.20}
                config: {severity: error}

  Rows: column_name, row_count, null_count, null_rate, max_rate.
#}
{% test null_rate_below(model, column_name, max_rate) %}
  {% do dwml._dwml_require_number('null_rate_below', 'max_rate', max_rate, 0, 1) %}
  {{ return(adapter.dispatch('test_null_rate_below', 'dwml')(model, column_name, max_rate)) }}
{% endtest %}

{% macro default__test_null_rate_below(model, column_name, max_rate) %}
  with counts as (
    select
      count(*) as row_count,
      sum(case when {{ column_name }} is null then 1 else 0 end) as null_count
    from {{ model }}
  )
  select
    {{ dwml._dwml_sql_string(column_name) }} as column_name,
    row_count,
    null_count,
    cast(null_count as {{ dbt.type_float() }}) / row_count as null_rate,
    {{ max_rate }} as max_rate
  from counts
  where row_count > 0
    and null_count > {{ max_rate }} * row_count
{% endmacro %}
