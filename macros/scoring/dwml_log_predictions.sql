{#
  dwml_log_predictions(entity, timestamp=none)

  A post_hook for a scoring model (one that selects from dwml_predict): copies the rows it built
  into dwml.predictions with source 'sql', so that `dwml monitor`, detect_model_drift's score drift
  and evaluate_model see SQL scoring as they see `dwml predict` batches.

      {{ config(materialized='table', tags=['dwml_scoring'],
                post_hook="{{ dwml.dwml_log_predictions(['customer_id'], timestamp='snapshot_date') }}") }}

  `entity` is the version's entity key column(s) and `timestamp` its snapshot column (the scaffold
  of `dwml deploy --scaffold` writes them from the version's spec; they must be the key_columns
  dwml.scoring_sql holds for the version scored). Each row becomes one prediction: model_name and
  version from the row itself, entity_key as batch scoring writes it (dwml_prediction_key),
  snapshot_at = the timestamp as a timestamp, score, predicted_label, scored_at = now in UTC
  (no time zone), batch_id 'dbt:<invocation_id>:<model name>': a rerun in the same dbt invocation
  replaces the batch, each new `dbt run` adds one, as `dwml predict` batches do.

  It runs where dbt runs the model's post-hooks: inside the model's transaction on DuckDB and
  Postgres, so a failing copy leaves the previous table and no rows of the batch. Spark has no
  transactions (see dwml_py/warehouse/spark.py): there the table is already replaced when the copy runs.

  Off for every model with `vars: dwml: scoring: log_predictions: false` (or --vars on one run).
#}
{% macro dwml_log_predictions(entity, timestamp=none) %}
  {% if not execute or not dwml._dwml_log_predictions_enabled() %}
    {{ return('') }}
  {% endif %}
  {% set entity = [entity] if entity is string else entity %}
  {% if entity is not iterable or entity is mapping or entity | length == 0 %}
    {{ exceptions.raise_compiler_error("dwml_log_predictions: `entity` must be the entity key column or a list of them, got " ~ dwml._dwml_show(entity)) }}
  {% endif %}
  {% for column in entity %}
    {% do dwml._dwml_require_string('dwml_log_predictions', 'entity', column) %}
  {% endfor %}
  {% if timestamp is not none %}
    {% do dwml._dwml_require_string('dwml_log_predictions', 'timestamp', timestamp) %}
  {% endif %}
  {% do adapter.dispatch('dwml_log_predictions', 'dwml')(entity, timestamp) %}
  {{ return('') }}
{% endmacro %}

{% macro default__dwml_log_predictions(entity, timestamp) %}
  {% set columns = dwml._dwml_scored_columns(entity, timestamp) %}
  {% set schema_name = var('dwml_schema', 'dwml') %}
  {% set database = target.database if target.database is defined else none %}
  {% set predictions = adapter.get_relation(database=database, schema=schema_name, identifier='predictions') %}
  {% if predictions is none %}
    {{ exceptions.raise_compiler_error("dwml_log_predictions: " ~ schema_name ~ ".predictions does not exist, so the scores of " ~ this ~ " cannot be logged. dbt creates it on run start unless the var dwml_manage_tables is false, and `dwml deploy` creates it. Or turn logging off: vars: {dwml: {scoring: {log_predictions: false}}}") }}
  {% endif %}
  {% do dwml._dwml_check_key_columns(columns, entity, timestamp, database, schema_name) %}

  {% set batch_id = 'dbt:' ~ invocation_id ~ ':' ~ (model.name if model is defined and model.name else this.identifier) %}
  {#- as dwml_py.tracking.utcnow(): UTC without a time zone, as every dwml writer stores time #}
  {% set scored_at = modules.datetime.datetime.now(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f') %}
  {% set snapshot = ("cast(" ~ dwml._dwml_quote(columns[timestamp | lower].name) ~ " as " ~ dbt.type_timestamp() ~ ")")
                    if timestamp is not none else ("cast(null as " ~ dbt.type_timestamp() ~ ")") %}
  {% set targets = ['model_name', 'version', 'entity_key', 'snapshot_at', 'score', 'predicted_label', 'batch_id',
                    'source', 'scored_at'] %}
  {% set insert %}
    insert into {{ predictions }} ({% for name in targets %}{{ dwml._dwml_quote(name) }}{{ ", " if not loop.last }}{% endfor %})
    select
      {{ dwml._dwml_quote(columns['model_name'].name) }},
      {{ dwml._dwml_quote(columns['version'].name) }},
      {{ dwml.dwml_prediction_key(entity, columns) }},
      {{ snapshot }},
      {{ dwml._dwml_quote(columns['score'].name) }},
      {{ dwml._dwml_quote(columns['predicted_label'].name) }},
      {{ dwml._dwml_sql_string(batch_id) }},
      'sql',
      cast({{ dwml._dwml_sql_string(scored_at) }} as {{ dbt.type_timestamp() }})
    from {{ this }}
  {% endset %}
  {% do dwml.dwml_delete_prediction_batch(predictions, batch_id) %}
  {% do run_query(insert) %}
{% endmacro %}

{#- The var, read as dwml's Python reads vars: dwml: (a global var whatever the project). #}
{% macro _dwml_log_predictions_enabled() %}
  {% set settings = var('dwml', {}) %}
  {% set scoring = settings.get('scoring', {}) if settings is mapping else {} %}
  {% set enabled = scoring.get('log_predictions', true) if scoring is mapping else true %}
  {{ return(enabled not in [false, 'false', 'False', 0, 'no', 'off']) }}
{% endmacro %}

{#- {lower-case name: column} of the scored table, refusing when a column the copy needs is missing. #}
{% macro _dwml_scored_columns(entity, timestamp) %}
  {% set found = {} %}
  {% for column in adapter.get_columns_in_relation(this) %}
    {% do found.update({column.name | lower: column}) %}
  {% endfor %}
  {% set needed = entity + ([timestamp] if timestamp is not none else []) + ['score', 'predicted_label', 'model_name', 'version'] %}
  {% set missing = [] %}
  {% for name in needed if name | lower not in found %}
    {% do missing.append(name) %}
  {% endfor %}
  {% if missing %}
    {{ exceptions.raise_compiler_error("dwml_log_predictions: " ~ this ~ " has no column(s) " ~ missing | join(', ') ~ " (it has " ~ found.keys() | list | join(', ') ~ "). The model must select the columns of dwml_predict: the key columns, score, predicted_label, model_name and version. If the deployed version has other key columns, write the scoring model again: dwml deploy NAME --version N --scaffold --force") }}
  {% endif %}
  {{ return(found) }}
{% endmacro %}

{#- The version(s) scored must keep the key columns this hook names: dwml.scoring_sql.key_columns
    is entity + [timestamp] for each deployed version. #}
{% macro _dwml_check_key_columns(columns, entity, timestamp, database, schema_name) %}
  {% set scoring = adapter.get_relation(database=database, schema=schema_name, identifier='scoring_sql') %}
  {% if scoring is none %}
    {{ return(none) }}
  {% endif %}
  {% set lookup %}
    select distinct k.key_columns
    from (select distinct {{ dwml._dwml_quote(columns['model_name'].name) }} as model_name,
                          {{ dwml._dwml_quote(columns['version'].name) }} as version
          from {{ this }}) as s
    join {{ scoring }} as k
      on k.model_name = s.model_name and k.version = s.version and k.dialect = {{ dwml._dwml_sql_string(target.type) }}
  {% endset %}
  {% set expected = (entity + ([timestamp] if timestamp is not none else [])) | map('lower') | list %}
  {% for row in run_query(lookup).rows if row[0] %}
    {% set stored = fromjson(row[0]) | map('lower') | list %}
    {% if stored != expected %}
      {{ exceptions.raise_compiler_error("dwml_log_predictions: the version scored in " ~ this ~ " keys its rows by " ~ stored | join(', ') ~ ", but the hook logs them by " ~ expected | join(', ') ~ " (entity " ~ entity | join(', ') ~ (", timestamp " ~ timestamp if timestamp is not none else ", no timestamp") ~ "). Write the scoring model again for the deployed version: dwml deploy NAME --version N --scaffold --force") }}
    {% endif %}
  {% endfor %}
{% endmacro %}

{#- Removes the rows of a batch of source 'sql', so a rerun replaces it; rows of other sources with
    the same batch id (dwml_py/prediction_batches.py: a batch belongs to its source) stay. #}
{% macro dwml_delete_prediction_batch(relation, batch_id) %}
  {{ return(adapter.dispatch('dwml_delete_prediction_batch', 'dwml')(relation, batch_id)) }}
{% endmacro %}

{% macro default__dwml_delete_prediction_batch(relation, batch_id) %}
  {% do run_query("delete from " ~ relation ~ " where " ~ dwml._dwml_batch_condition(batch_id)) %}
{% endmacro %}

{#- Spark's parquet tables have no DELETE: as dwml_py/warehouse/spark.py does, the rows to keep go
    to a staging table and the table is overwritten from it; only when the batch has rows already
    (a new dbt invocation's batch never has, so its copy is a plain INSERT). #}
{% macro spark__dwml_delete_prediction_batch(relation, batch_id) %}
  {% set where = dwml._dwml_batch_condition(batch_id) %}
  {% set found = run_query("select count(*) from " ~ relation ~ " where " ~ where) %}
  {% if found.rows[0][0] > 0 %}
    {% set staging = api.Relation.create(schema=relation.schema, identifier='_dwml_rewrite_predictions_' ~ (invocation_id | replace('-', '_'))) %}
    {% do run_query("drop table if exists " ~ staging) %}
    {% do run_query("create table " ~ staging ~ " using parquet as select * from " ~ relation ~ " where not coalesce(" ~ where ~ ", false)") %}
    {% do run_query("insert overwrite table " ~ relation ~ " select * from " ~ staging) %}
    {% do run_query("drop table if exists " ~ staging) %}
  {% endif %}
{% endmacro %}

{#- The rows of one SQL-scored batch: its id and source 'sql'. #}
{% macro _dwml_batch_condition(batch_id) %}
  {{ return("(" ~ dwml._dwml_quote('batch_id') ~ " = " ~ dwml._dwml_sql_string(batch_id) ~ " and " ~ dwml._dwml_quote('source') ~ " = 'sql')") }}
{% endmacro %}
