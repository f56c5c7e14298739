{#
  values_within_range(column_name, min_value=none, max_value=none, max_share_outside=0)

  Checks that the non-NULL values of `column_name` lie in [min_value, max_value] (bounds
  included; give at least one). Up to `max_share_outside` (0..1) of them may lie outside:
  the test fails only when the share outside is larger, and then returns every value
  outside. NULLs are not judged here (see null_rate_below).

  Tiers — the same design for every dwml test: each returned row is one failing unit
  (here: one value outside the range), with the observed share and the limit; set tiers with
  dbt's own configs on that count:

      columns:
        - name: age
          data_tests:
            - dwml.values_within_range:
                arguments: {min_value: 0, max_value: 120}
                config: {warn_if: ">0", error_if: ">100"}   # a few bad ages warn, many error

  Rows: value, rows_outside, rows_checked, share_outside, max_share_outside.
#}
{% test values_within_range(model, column_name, min_value=none, max_value=none, max_share_outside=0) %}
  {% do dwml._dwml_require_number('values_within_range', 'min_value', min_value, allow_none=true) %}
  {% do dwml._dwml_require_number('values_within_range', 'max_value', max_value, allow_none=true) %}
  {% do dwml._dwml_require_number('values_within_range', 'max_share_outside', max_share_outside, 0, 1) %}
  {% if min_value is none and max_value is none %}
    {{ exceptions.raise_compiler_error("values_within_range: give `min_value`, `max_value` or both, got neither") }}
  {% endif %}
  {% if min_value is not none and max_value is not none and min_value > max_value %}
    {{ exceptions.raise_compiler_error("values_within_range: `min_value` (" ~ min_value ~ ") must not be above `max_value` (" ~ max_value ~ ")") }}
  {% endif %}
  {{ return(adapter.dispatch('test_values_within_range', 'dwml')(model, column_name, min_value, max_value, max_share_outside)) }}
{% endtest %}

{% macro default__test_values_within_range(model, column_name, min_value, max_value, max_share_outside) %}
  {%- set outside -%}
    ({% if min_value is not none %}value < {{ min_value }}{% else %}1 = 0{% endif %}
     or {% if max_value is not none %}value > {{ max_value }}{% else %}1 = 0{% endif %})
  {%- endset %}
  with checked as (
    select {{ column_name }} as value from {{ model }} where {{ column_name }} is not null
  ),
  totals as (
    select
      count(*) as rows_checked,
      sum(case when {{ outside }} then 1 else 0 end) as rows_outside
    from checked
  )
  select
    checked.value,
    totals.rows_outside,
    totals.rows_checked,
    cast(totals.rows_outside as {{ dbt.type_float() }}) / totals.rows_checked as share_outside,
    {{ max_share_outside }} as max_share_outside
  from checked
  cross join totals
  where {{ outside }}
    and totals.rows_outside > {{ max_share_outside }} * totals.rows_checked
{% endmacro %}
