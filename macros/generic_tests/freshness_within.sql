{#
  freshness_within(column_name, max_age_hours)

  Fails when the latest value of the timestamp/date column `column_name` is more than
  `max_age_hours` old, measured against the warehouse's current time
  (dbt.current_timestamp(), dbt.datediff in minutes / 60). An empty model, or one whose
  column is all NULL, fails: nothing in it is fresh. Timestamps without a time zone are
  read in the warehouse session's time zone (dwml writes UTC).

  Tiers — the same design for every dwml test: each returned row is one failing unit
  (here: the model, so 0 or 1 row), with the observed age and the limit; set tiers with
  dbt's own configs on that count. A rule with two value levels is two declarations:

      columns:
        - name: loaded_at
          data_tests:
            - dwml.freshness_within:           # warn after 1 day
                arguments: {max_age_hours: 24}
                config: {severity: warn}
            - dwml.freshness_within:           # error after 3 days
                arguments: {max_age_hours: 72}

  Rows: column_name, latest, age_hours, max_age_hours.
#}
{% test freshness_within(model, column_name, max_age_hours) %}
  {% do dwml._dwml_require_number('freshness_within', 'max_age_hours', max_age_hours, 0) %}
  {{ return(adapter.dispatch('test_freshness_within', 'dwml')(model, column_name, max_age_hours)) }}
{% endtest %}

{% macro default__test_freshness_within(model, column_name, max_age_hours) %}
  with latest as (
    select max({{ column_name }}) as latest from {{ model }}
  ),
  aged as (
    select
      latest,
      {{ dbt.datediff('latest', dbt.current_timestamp(), 'minute') }} / 60.0 as age_hours
    from latest
  )
  select
    {{ dwml._dwml_sql_string(column_name) }} as column_name,
    latest,
    age_hours,
    {{ max_age_hours }} as max_age_hours
  from aged
  where latest is null
     or age_hours > {{ max_age_hours }}
{% endmacro %}
