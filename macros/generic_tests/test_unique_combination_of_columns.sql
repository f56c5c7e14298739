{#
  Fails with the duplicated key combinations: each returned row is a key that occurs more
  than once.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
  {% if combination_of_columns is string or combination_of_columns | length == 0 %}
    {{ exceptions.raise_compiler_error("unique_combination_of_columns: `combination_of_columns` must be a non-empty list of column names, got " ~ combination_of_columns) }}
  {% endif %}
  {% set columns_csv = combination_of_columns | join(', ') %}
  select {{ columns_csv }}, count(*) as occurrences
  from {{ model }}
  group by {{ columns_csv }}
  having count(*) > 1
{% endtest %}
