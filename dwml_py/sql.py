"""SQL is built as sqlglot expressions and rendered for the target's dialect here, in one place.

User values never enter SQL through string formatting: identifiers go through `ident`/`table`
(always quoted), values through `literal`. `literal` is also where text enters dwml's tables, so
it scrubs secrets from profiles.yml out of it (dwml_py.redaction): no table can store one. Settings
statements, which must reach the engine as they are (a DuckDB setting from the profile may be a
secret), use `setting_literal`.

>>> render(select_all(table("dwml", "runs")), "duckdb")
'SELECT * FROM "dwml"."runs"'
>>> render(select_all(table("dwml", "runs")), "spark")
'SELECT * FROM `dwml`.`runs`'
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from dwml_py.redaction import scrub

# Names of dbt adapter types -> sqlglot dialects.
ADAPTER_DIALECTS = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "redshift": "redshift",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "spark": "spark",
    "databricks": "databricks",
    "trino": "trino",
}


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: safe for any name, quotes and semicolons included."""
    return exp.to_identifier(str(name), quoted=True)


def column(name: str, table_alias: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table_alias) if table_alias else None)


def table(schema: str | None, name: str, database: str | None = None, alias: str | None = None) -> exp.Table:
    return exp.Table(
        this=ident(name),
        db=ident(schema) if schema else None,
        catalog=ident(database) if database else None,
        alias=exp.TableAlias(this=ident(alias)) if alias else None,
    )


def literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(scrub(str(value)))


def setting_literal(value: Any) -> exp.Expression:
    """A literal for a settings statement (SET), not scrubbed: its value may be a secret from the
    profile, or happen to equal one. Errors about such a statement must not quote it (see
    warehouse/duckdb.py)."""
    if value is None or isinstance(value, (bool, int, float)):
        return literal(value)
    return exp.Literal.string(str(value))


def select_all(source: exp.Table) -> exp.Select:
    return exp.select("*").from_(source)


def drop(kind: str, target: exp.Table, cascade: bool = False) -> exp.Drop:
    """DROP <kind> IF EXISTS <target>: sqlglot 30 moved the dropped object from `this` to `tables`.

    >>> render(drop("SCHEMA", table(None, "raw"), cascade=True), "postgres")
    'DROP SCHEMA IF EXISTS "raw" CASCADE'
    """
    where = {"tables": [target]} if "tables" in exp.Drop.arg_types else {"this": target}
    return exp.Drop(kind=kind, exists=True, cascade=cascade or None, **where)


def render(expression: exp.Expression, dialect: str) -> str:
    """Render one expression for a sqlglot dialect."""
    return expression.sql(dialect=dialect)


def transpile(sql: str, read: str, write: str) -> str:
    """Transpile hand-written SQL of one dialect into another (one statement)."""
    return sqlglot.transpile(sql, read=read, write=write)[0]
