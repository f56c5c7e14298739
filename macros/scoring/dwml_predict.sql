{#
  dwml_predict(model_name, relation, alias='production')

  The SELECT that scores `relation` inside the warehouse with the version of the ML model
  `model_name` that `alias` points at now: its entity key column(s) and timestamp, `score`
  (P(positive class) for binary classification, the highest class probability for multiclass,
  the prediction for regression), `predicted_label` (at the version's threshold; the most probable
  class for multiclass; NULL for regression), `model_name` and `version`.

      {{ config(materialized='table', tags=['dwml_scoring']) }}
      select * from ({{ dwml.dwml_predict('churn', ref('customer_features')) }}) as scored

  `dwml deploy NAME --version N` compiles the version's preprocessing and model to SQL for the
  target's dialect and stores it in dwml.scoring_sql; this macro only looks it up (at execution,
  with run_query: the alias's latest move in dwml.model_aliases, then that version's query) and
  puts `relation` in place of its placeholder. At parse time it queries nothing. No deployed
  version, no SQL for this target's dialect, or a version that cannot be scored in SQL: a
  compiler error that says which and what to run. Rolling back (`dwml deploy NAME --version
  <earlier>`) changes what the next `dbt run` scores with; the model file does not change.
#}
{% macro dwml_predict(model_name, relation, alias='production') %}
  {% do dwml._dwml_require_string('dwml_predict', 'model_name', model_name) %}
  {% do dwml._dwml_require_string('dwml_predict', 'alias', alias) %}
  {{ return(adapter.dispatch('dwml_predict', 'dwml')(model_name, relation, alias)) }}
{% endmacro %}

{% macro default__dwml_predict(model_name, relation, alias) %}
  {% if not execute %}
    {{ return("select 1 as dwml_predict_at_parse_time") }}
  {% endif %}
  {% set schema_name = var('dwml_schema', 'dwml') %}
  {#- Spark targets have no database above the schema #}
  {% set database = target.database if target.database is defined else none %}
  {% set aliases = api.Relation.create(database=database, schema=schema_name, identifier='model_aliases') %}
  {% set scoring = api.Relation.create(database=database, schema=schema_name, identifier='scoring_sql') %}
  {% set deploy_hint = "Deploy one first: dwml deploy " ~ model_name ~ " --version N" ~ ("" if alias == 'production' else " --alias " ~ alias) %}
  {% set lookup %}
    with moves as (
      select version, set_at from {{ aliases }}
      where model_name = {{ dwml._dwml_sql_string(model_name) }} and alias = {{ dwml._dwml_sql_string(alias) }}
    ),
    current_version as (
      select version from moves where set_at = (select max(set_at) from moves)
    )
    select current_version.version as alias_version, scoring.status, scoring.query_sql,
           scoring.relation_placeholder, scoring.error
    from current_version
    left join {{ scoring }} as scoring
      on scoring.model_name = {{ dwml._dwml_sql_string(model_name) }}
     and scoring.version = current_version.version
     and scoring.dialect = {{ dwml._dwml_sql_string(target.type) }}
  {% endset %}
  {% set found = run_query(lookup) %}
  {% if found.rows | length == 0 %}
    {{ exceptions.raise_compiler_error("dwml_predict: the ML model '" ~ model_name ~ "' has no version deployed under the alias '" ~ alias ~ "'. " ~ deploy_hint) }}
  {% endif %}
  {% set row = found.rows[0] %}
  {% set version = row['alias_version'] %}
  {% if row['status'] is none %}
    {{ exceptions.raise_compiler_error("dwml_predict: version " ~ version ~ " of '" ~ model_name ~ "' (alias '" ~ alias ~ "') has no SQL compiled for the " ~ target.type ~ " target. Deploy it again with this target, which compiles it: dwml deploy " ~ model_name ~ " --version " ~ version ~ " --target " ~ target.name) }}
  {% endif %}
  {% if row['status'] != 'ready' %}
    {{ exceptions.raise_compiler_error("dwml_predict: version " ~ version ~ " of '" ~ model_name ~ "' (alias '" ~ alias ~ "') cannot be scored in SQL: " ~ row['error'] ~ " Score it with `dwml predict " ~ model_name ~ "` instead.") }}
  {% endif %}
  {{ return(row['query_sql'] | replace(row['relation_placeholder'], relation | string)) }}
{% endmacro %}
