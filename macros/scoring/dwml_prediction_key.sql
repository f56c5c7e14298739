{#
  dwml_prediction_key(entity, columns)

  The SQL expression of dwml.predictions.entity_key for the entity column(s) `entity`, equal to
  the text batch scoring writes (dwml_py.entity_keys.entity_keys), so that SQL and batch scores
  of the same row share a key. `columns` maps each lower-case column name to its dbt Column (for
  its type).

  One column: the value as text, as pyarrow's cast to string writes it: integers, decimals, text,
  dates and booleans as the engine casts them, timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff'.
  Several: JSON text as Python's json.dumps({column: value, ...}, default=str) writes it, e.g.
  {"customer_id": 42, "snapshot_date": "2024-03-05"}: integers, floats and booleans as JSON
  values, everything else as a JSON string of its text, timestamps as Python's str(datetime)
  ('YYYY-MM-DD HH:MM:SS', with '.ffffff' only when there are microseconds). Either way the
  evaluation's join (dwml_py.performance._key_match) reads it back per column.

  Known differences from the Python text (rare key types): floats (pyarrow writes 2.0 as '2',
  engines may write '2.0'), timestamps with a time zone, timestamps of another precision than
  microseconds, and, inside JSON, non-ASCII characters (Python escapes them as \uXXXX).
#}
{% macro dwml_prediction_key(entity, columns) %}
  {% if entity | length == 1 %}
    {% set column = columns[entity[0] | lower] %}
    {% set value = dwml._dwml_quote(column.name) %}
    {% if dwml._dwml_key_kind(column) == 'timestamp' %}
      {{ return(dwml.dwml_timestamp_text(value)) }}
    {% endif %}
    {{ return("cast(" ~ value ~ " as " ~ dbt.type_string() ~ ")") }}
  {% endif %}
  {% set parts = [] %}
  {% for name in entity %}
    {% set column = columns[name | lower] %}
    {% set value = dwml._dwml_quote(column.name) %}
    {% set kind = dwml._dwml_key_kind(column) %}
    {% if kind in ['integer', 'float', 'boolean'] %}
      {% set json = "cast(" ~ value ~ " as " ~ dbt.type_string() ~ ")" %}
    {% elif kind == 'timestamp' %}
      {% set text = dwml.dwml_timestamp_text(value) %}
      {#- Python's str(datetime) leaves out the fraction when it is zero #}
      {% set json = dbt.concat(["'\"'", "case when substr(" ~ text ~ ", 21, 6) = '000000' then substr(" ~ text ~ ", 1, 19) else " ~ text ~ " end", "'\"'"]) %}
    {% else %}
      {% set json = dwml.dwml_json_string("cast(" ~ value ~ " as " ~ dbt.type_string() ~ ")") %}
    {% endif %}
    {% do parts.append(dwml._dwml_sql_string(("{" if loop.first else ", ") ~ tojson(name) ~ ": ")) %}
    {% do parts.append("case when " ~ value ~ " is null then 'null' else " ~ json ~ " end") %}
  {% endfor %}
  {% do parts.append("'}'") %}
  {{ return(dbt.concat(parts)) }}
{% endmacro %}

{#- integer, float, boolean, timestamp (without a time zone) or text: how a key value is written. #}
{% macro _dwml_key_kind(column) %}
  {% set dtype = column.dtype | lower | trim %}
  {% if column.is_integer() or dtype in ['int', 'tinyint', 'smallint', 'bigint', 'long', 'short', 'byte'] %}
    {{ return('integer') }}
  {% elif column.is_float() or dtype in ['double', 'float', 'real', 'double precision'] %}
    {{ return('float') }}
  {% elif dtype in ['boolean', 'bool'] %}
    {{ return('boolean') }}
  {% elif dtype in ['timestamp', 'timestamp without time zone', 'timestamp_ntz', 'datetime'] %}
    {{ return('timestamp') }}
  {% endif %}
  {{ return('text') }}
{% endmacro %}

{#- A timestamp as 'YYYY-MM-DD HH:MM:SS.ffffff', pyarrow's text of a microsecond timestamp. #}
{% macro dwml_timestamp_text(value) %}
  {{ return(adapter.dispatch('dwml_timestamp_text', 'dwml')(value)) }}
{% endmacro %}

{#- Elsewhere the engine's own text of a timestamp: it may differ from pyarrow's. #}
{% macro default__dwml_timestamp_text(value) %}
  {{ return("cast(" ~ value ~ " as " ~ dbt.type_string() ~ ")") }}
{% endmacro %}

{% macro postgres__dwml_timestamp_text(value) %}
  {{ return("to_char(" ~ value ~ ", 'YYYY-MM-DD HH24:MI:SS.US')") }}
{% endmacro %}

{% macro duckdb__dwml_timestamp_text(value) %}
  {{ return("strftime(" ~ value ~ ", '%Y-%m-%d %H:%M:%S.%f')") }}
{% endmacro %}

{% macro spark__dwml_timestamp_text(value) %}
  {{ return("date_format(" ~ value ~ ", 'yyyy-MM-dd HH:mm:ss.SSSSSS')") }}
{% endmacro %}

{#- A text value as a JSON string (quoted, with its quotes, backslashes and control characters
    escaped), by the engine's JSON function. #}
{% macro dwml_json_string(value) %}
  {{ return(adapter.dispatch('dwml_json_string', 'dwml')(value)) }}
{% endmacro %}

{% macro default__dwml_json_string(value) %}
  {{ return("cast(to_json(" ~ value ~ ") as " ~ dbt.type_string() ~ ")") }}
{% endmacro %}

{#- Spark's to_json takes a struct: {"v":<the string>}, less its first 5 and last character. #}
{% macro spark__dwml_json_string(value) %}
  {% set wrapped = "to_json(named_struct('v', " ~ value ~ "))" %}
  {{ return("substr(" ~ wrapped ~ ", 6, length(" ~ wrapped ~ ") - 6)") }}
{% endmacro %}

{#- An identifier quoted with its quote characters doubled (adapter.quote only wraps the name). #}
{% macro _dwml_quote(name) %}
  {{ return(adapter.dispatch('_dwml_quote', 'dwml')(name)) }}
{% endmacro %}

{% macro default___dwml_quote(name) %}
  {{ return('"' ~ (name | replace('"', '""')) ~ '"') }}
{% endmacro %}

{% macro spark___dwml_quote(name) %}
  {{ return('`' ~ (name | replace('`', '``')) ~ '`') }}
{% endmacro %}
