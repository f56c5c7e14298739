{#
  Create one of dwml's tables when missing, and add the columns its definition gained since
  (never drops or rewrites rows). dbt_project.yml runs dwml_ensure_tables() on run start
  (one thread, so no two threads race to create the schema), so `dbt build` works before the
  dwml companion wrote anything. Set the var dwml_manage_tables: false to turn it off. The column list comes from
  dwml_table_specs(), generated from dwml_py/tables.py, the one definition.
#}
{% macro dwml_ensure_table(name) %}
  {{ return(adapter.dispatch('dwml_ensure_table', 'dwml')(name)) }}
{% endmacro %}

{% macro default__dwml_ensure_table(name) %}
  {% if execute %}
    {% set specs = dwml.dwml_table_specs() %}
    {% if name not in specs %}
      {{ exceptions.raise_compiler_error("dwml_ensure_table: unknown dwml table '" ~ name ~ "'; known: " ~ (specs.keys() | list | join(', '))) }}
    {% endif %}
    {% set schema_name = var('dwml_schema', 'dwml') %}
    {% set relation = api.Relation.create(database=target.database, schema=schema_name, identifier=name) %}
    {% do adapter.create_schema(relation) %}
    {% set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list %}
    {% if existing | length == 0 %}
      {% set ddl %}
        create table if not exists {{ relation }} (
          {%- for col in specs[name] %}
          {{ adapter.quote(col[0]) }} {{ dwml.dwml_logical_type(col[1]) }}{{ "," if not loop.last }}
          {%- endfor %}
        )
      {% endset %}
      {% do run_query(ddl) %}
    {% else %}
      {% for col in specs[name] if col[0] | lower not in existing %}
        {% do run_query("alter table " ~ relation ~ " add column " ~ adapter.quote(col[0]) ~ " " ~ dwml.dwml_logical_type(col[1])) %}
      {% endfor %}
    {% endif %}
  {% endif %}
{% endmacro %}

{#- Spark: no database level above the schema, ALTER TABLE adds columns with ADD COLUMNS (...), and
    dbt.type_float() is Spark's 4-byte FLOAT: 'double' columns are declared DOUBLE, as Python does. #}
{% macro spark__dwml_ensure_table(name) %}
  {% if execute %}
    {% set specs = dwml.dwml_table_specs() %}
    {% if name not in specs %}
      {{ exceptions.raise_compiler_error("dwml_ensure_table: unknown dwml table '" ~ name ~ "'; known: " ~ (specs.keys() | list | join(', '))) }}
    {% endif %}
    {% set relation = api.Relation.create(schema=var('dwml_schema', 'dwml'), identifier=name) %}
    {% do adapter.create_schema(relation) %}
    {% set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list %}
    {% if existing | length == 0 %}
      {% set ddl %}
        create table if not exists {{ relation }} (
          {%- for col in specs[name] %}
          {{ adapter.quote(col[0]) }} {{ dwml._dwml_spark_type(col[1]) }}{{ "," if not loop.last }}
          {%- endfor %}
        ) using parquet
      {% endset %}
      {% do run_query(ddl) %}
    {% else %}
      {% set missing = [] %}
      {% for col in specs[name] if col[0] | lower not in existing %}
        {% do missing.append(adapter.quote(col[0]) ~ " " ~ dwml._dwml_spark_type(col[1])) %}
      {% endfor %}
      {% if missing %}
        {% do run_query("alter table " ~ relation ~ " add columns (" ~ missing | join(", ") ~ ")") %}
      {% endif %}
    {% endif %}
  {% endif %}
{% endmacro %}

{% macro _dwml_spark_type(logical) %}
  {{ return('double' if logical == 'double' else dwml.dwml_logical_type(logical)) }}
{% endmacro %}

{% macro dwml_ensure_tables() %}
  {% if execute and var('dwml_manage_tables', true) %}
    {% for name in dwml.dwml_table_specs() %}
      {% do dwml.dwml_ensure_table(name) %}
    {% endfor %}
  {% endif %}
{% endmacro %}
