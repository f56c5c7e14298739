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
    {% set columns = adapter.get_columns_in_relation(relation) %}
    {% set existing = columns | map(attribute='name') | map('lower') | list %}
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
      {#- 'double' columns declared as a 4-byte float by an earlier version (dbt.type_float() on
          DuckDB) are widened in place, as dwml_py.tables.ensure_tables does #}
      {% if target.type in ['duckdb', 'postgres'] %}
        {% set doubles = specs[name] | selectattr(1, 'equalto', 'double') | map(attribute=0) | map('lower') | list %}
        {% for column in columns if column.name | lower in doubles and column.dtype | lower | trim in ['float', 'float4', 'real'] %}
          {% do run_query("alter table " ~ relation ~ " alter column " ~ adapter.quote(column.name) ~ " type " ~ dwml.dwml_double_type()) %}
        {% endfor %}
      {% endif %}
    {% endif %}
  {% endif %}
{% endmacro %}

{#- Spark: no database level above the schema, and ALTER TABLE adds columns with ADD COLUMNS (...). #}
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
          {{ adapter.quote(col[0]) }} {{ dwml.dwml_logical_type(col[1]) }}{{ "," if not loop.last }}
          {%- endfor %}
        ) using parquet
      {% endset %}
      {% do run_query(ddl) %}
    {% else %}
      {% set missing = [] %}
      {% for col in specs[name] if col[0] | lower not in existing %}
        {% do missing.append(adapter.quote(col[0]) ~ " " ~ dwml.dwml_logical_type(col[1])) %}
      {% endfor %}
      {% if missing %}
        {% do run_query("alter table " ~ relation ~ " add columns (" ~ missing | join(", ") ~ ")") %}
      {% endif %}
    {% endif %}
  {% endif %}
{% endmacro %}

{#- The type of dwml's 'double' columns (scores, metrics). dbt.type_float() is an 8-byte float on
    PostgreSQL, Snowflake, BigQuery and Redshift, but a 4-byte FLOAT on DuckDB and Spark, which
    would keep 7 digits of every score: DOUBLE there, as Python's ensure_tables declares it. #}
{% macro dwml_double_type() %}
  {{ return(adapter.dispatch('dwml_double_type', 'dwml')()) }}
{% endmacro %}

{% macro default__dwml_double_type() %}
  {{ return(dbt.type_float()) }}
{% endmacro %}

{% macro duckdb__dwml_double_type() %}
  {{ return('double') }}
{% endmacro %}

{% macro spark__dwml_double_type() %}
  {{ return('double') }}
{% endmacro %}

{% macro dwml_ensure_tables() %}
  {% if execute and var('dwml_manage_tables', true) %}
    {% for name in dwml.dwml_table_specs() %}
      {% do dwml.dwml_ensure_table(name) %}
    {% endfor %}
  {% endif %}
{% endmacro %}
