{#
  dwml_performance_above(model_name, metric, min_value)

  Fails when, in the latest evaluation window of each version of the ML model `model_name`
  (newest window_end, then newest computed_at, in dwml_performance_metrics), `metric` is
  below `min_value`. Returns those versions' rows. A model not evaluated yet passes
  (nothing to judge); NULL values are not judged.

  The rows come from the dwml_performance_metrics model (the view over
  dwml.performance_metrics): attach the test to any model — usually the feature model the
  ML model uses — and dbt runs it after dwml_performance_metrics.

  Tiers — the same design for every dwml test: each returned row is one failing unit
  (here: one model version whose latest window is below the floor), with the observed value
  and the floor; set tiers with dbt's own configs on that count. A rule with two value
  levels is two declarations:

      data_tests:
        - dwml.dwml_performance_above:         # warn below 0.75 AUC
            arguments: {model_name: churn, metric: roc_auc, min_value: 0.75}
            config: {severity: warn}
        - dwml.dwml_performance_above:         # error below 0.65 AUC
            arguments: {model_name: churn, metric: roc_auc, min_value: 0.65}

  Rows: evaluation_id, model_name, version, window_start, window_end, metric, value,
  min_value, baseline, row_count, computed_at.
#}
{% test dwml_performance_above(model, model_name, metric, min_value) %}
  {% do dwml._dwml_require_string('dwml_performance_above', 'model_name', model_name) %}
  {% do dwml._dwml_require_string('dwml_performance_above', 'metric', metric) %}
  {% do dwml._dwml_require_number('dwml_performance_above', 'min_value', min_value) %}
  {{ return(adapter.dispatch('test_dwml_performance_above', 'dwml')(model, model_name, metric, min_value)) }}
{% endtest %}

{% macro default__test_dwml_performance_above(model, model_name, metric, min_value) %}
  with scoped as (
    select
      *,
      row_number() over (
        partition by version
        order by coalesce(window_end, computed_at) desc, computed_at desc
      ) as window_rank
    from {{ ref('dwml', 'dwml_performance_metrics') }}
    where model_name = {{ dwml._dwml_sql_string(model_name) }}
      and metric = {{ dwml._dwml_sql_string(metric) }}
  )
  select
    evaluation_id, model_name, version, window_start, window_end, metric, value,
    {{ min_value }} as min_value, baseline, row_count, computed_at
  from scoped
  where window_rank = 1
    and value < {{ min_value }}
{% endmacro %}
