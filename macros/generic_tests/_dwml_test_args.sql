{#
  Argument checks shared by dwml's generic tests. They run before any SQL is built, so a
  wrong argument stops `dbt parse`/`dbt build` with a message that names the test, the
  argument and the value received, instead of a confusing SQL error later.
#}

{% macro _dwml_require_number(test_name, arg_name, value, min_value=none, max_value=none, allow_none=false) %}
  {% if value is none and allow_none %}
    {{ return(none) }}
  {% endif %}
  {% if value is none or value is boolean or value is not number %}
    {{ exceptions.raise_compiler_error(test_name ~ ": `" ~ arg_name ~ "` must be a number"
        ~ (" (or omitted)" if allow_none else "") ~ ", got " ~ dwml._dwml_show(value)
        ~ ". Write it unquoted in the yml, e.g. " ~ arg_name ~ ": 0.05") }}
  {% endif %}
  {% if min_value is not none and value < min_value %}
    {{ exceptions.raise_compiler_error(test_name ~ ": `" ~ arg_name ~ "` must be >= " ~ min_value ~ ", got " ~ value) }}
  {% endif %}
  {% if max_value is not none and value > max_value %}
    {{ exceptions.raise_compiler_error(test_name ~ ": `" ~ arg_name ~ "` must be <= " ~ max_value ~ ", got " ~ value) }}
  {% endif %}
{% endmacro %}

{% macro _dwml_require_string(test_name, arg_name, value) %}
  {% if value is none or value is not string or value | trim | length == 0 %}
    {{ exceptions.raise_compiler_error(test_name ~ ": `" ~ arg_name ~ "` must be a non-empty name, got "
        ~ dwml._dwml_show(value)) }}
  {% endif %}
{% endmacro %}

{# A value as the user wrote it: strings in quotes, so that '0.05' (a string) is told apart from 0.05. #}
{% macro _dwml_show(value) %}
  {{ return(("'" ~ value ~ "'") if value is string else (value | string)) }}
{% endmacro %}

{# A SQL string literal with quotes doubled: the one way test arguments enter SQL as values. #}
{% macro _dwml_sql_string(value) %}
  {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{% endmacro %}
