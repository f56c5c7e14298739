"""SQL is rendered per dialect in one place; identifiers are always quoted."""

import doctest

import pytest
from sqlglot import exp

from dwml_py import sql


def test_doctests():
    assert doctest.testmod(sql).failed == 0


@pytest.mark.parametrize("dialect,expected", [
    ("duckdb", 'SELECT "a b" FROM "dwml"."runs"'),
    ("postgres", 'SELECT "a b" FROM "dwml"."runs"'),
    ("spark", "SELECT `a b` FROM `dwml`.`runs`"),
    ("snowflake", 'SELECT "a b" FROM "dwml"."runs"'),
    ("bigquery", "SELECT `a b` FROM `dwml`.`runs`"),
])
def test_quoted_identifiers_per_dialect(dialect, expected):
    query = exp.select(sql.column("a b")).from_(sql.table("dwml", "runs"))
    assert sql.render(query, dialect) == expected


def test_hostile_identifier_cannot_escape_its_quotes():
    import duckdb

    hostile = 'x"; drop table t; --'
    con = duckdb.connect()
    con.sql("create table t (a int)")
    con.sql(f"create table {sql.render(sql.table(None, hostile), 'duckdb')} ({sql.render(sql.ident(hostile), 'duckdb')} int)")
    assert con.sql("select count(*) from t").fetchall() == [(0,)]  # t still exists
    names = [r[0] for r in con.sql("select table_name from information_schema.tables").fetchall()]
    assert hostile in names


def test_literals_are_escaped():
    assert sql.render(sql.literal("it's"), "duckdb") == "'it''s'"
    assert sql.render(sql.literal(None), "duckdb") == "NULL"
    assert sql.render(sql.literal(True), "duckdb") == "TRUE"
    assert sql.render(sql.literal(2.5), "duckdb") == "2.5"
