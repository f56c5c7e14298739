{#
  dwml_drift_below(model_name, max_value=none, statistic='psi')

  Fails when, in the latest drift run of the ML model `model_name` (the drift_run_id with
  the newest computed_at in dwml_drift_metrics), a feature's `statistic` is above
  `max_value`; with max_value omitted, above the threshold stored with each row. Returns
  those features. A model with no drift run yet passes (nothing to judge).

  The rows come from the dwml_drift_metrics model (the view over dwml.drift_metrics): attach
  the test to any model — usually the feature model the ML model uses — and dbt runs it
  after dwml_drift_metrics.

  Tiers — the same design for every dwml test: each returned row is one failing unit
  (here: one drifting feature), with the observed value and the threshold; set tiers with
  dbt's own configs on that count:

      data_tests:
        - dwml.dwml_drift_below:
            arguments: {model_name: churn, max_value: 0.2, statistic: psi}
            config: {warn_if: ">0", error_if: ">2"}   # one or two drifting features warn, three error

  Rows: drift_run_id, model_name, version, feature, statistic, value, threshold, computed_at.
#}
{% test dwml_drift_below(model, model_name, max_value=none, statistic='psi') %}
  {% do dwml._dwml_require_string('dwml_drift_below', 'model_name', model_name) %}
  {% do dwml._dwml_require_string('dwml_drift_below', 'statistic', statistic) %}
  {% do dwml._dwml_require_number('dwml_drift_below', 'max_value', max_value, allow_none=true) %}
  {{ return(adapter.dispatch('test_dwml_drift_below', 'dwml')(model, model_name, max_value, statistic)) }}
{% endtest %}

{% macro default__test_dwml_drift_below(model, model_name, max_value, statistic) %}
  with drift as (
    select * from {{ ref('dwml', 'dwml_drift_metrics') }}
    where model_name = {{ dwml._dwml_sql_string(model_name) }}
  ),
  runs as (
    select drift_run_id, max(computed_at) as run_at from drift group by drift_run_id
  ),
  latest_run as (
    select drift_run_id from runs where run_at = (select max(run_at) from runs)
  )
  select
    drift.drift_run_id, drift.model_name, drift.version, drift.feature, drift.statistic,
    drift.value, drift.threshold, drift.computed_at
  from drift
  inner join latest_run on drift.drift_run_id = latest_run.drift_run_id
  where drift.statistic = {{ dwml._dwml_sql_string(statistic) }}
    and drift.value > {{ max_value if max_value is not none else 'drift.threshold' }}
{% endmacro %}
