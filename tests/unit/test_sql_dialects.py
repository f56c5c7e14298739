"""Every SQL statement dwml generates, rendered for each target dialect, parsed back and compared.

For duckdb, postgres, spark, snowflake and bigquery: the rendering parses in that dialect, is a
fixed point of parse-and-render (what we send is what sqlglot understands it to be), keeps its
output columns, keeps hostile identifiers intact, and uses the construct that dialect needs
(quantiles, NaN tests, row hashes, ASOF or window joins, type names, quoting). Execution on real
engines: DuckDB in tests/unit (test_profiling, test_drift, test_training_set) and PostgreSQL in
tests/postgres/test_postgres_sql.py.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from dwml_py import drift, tables
from dwml_py import sql as sqlmod
from dwml_py.profiling import (ColumnSpec, build_duplicates_query, build_profile_query, build_quantile_query,
                               build_top_values_query)
from dwml_py.training_set import TrainingSpec, build_training_query, fingerprint_query

DIALECTS = ("duckdb", "postgres", "spark", "snowflake", "bigquery")
HOSTILE = 'odd "name"; drop table x; --'
RELATION = sqlmod.table("main", "t")
COLUMNS = [
    ColumnSpec(HOSTILE, "DOUBLE", "numeric", is_float=True),
    ColumnSpec("n", "BIGINT", "numeric"),
    ColumnSpec("s", "TEXT", "string"),
    ColumnSpec("b", "BOOLEAN", "categorical", is_bool=True),
    ColumnSpec("d", "DATE", "temporal"),
]


def _spec(**kw) -> TrainingSpec:
    base = dict(model_name="churn", task="classification", feature_model="model.p.f", feature_schema="main",
                feature_table="f", entity=["id"], timestamp="ts", label_model="model.p.l", label_schema="main",
                label_table="l", label_column="y", horizon_days=30, features=["x", HOSTILE])
    return TrainingSpec(**{**base, **kw})


def statements(dialect: str) -> dict[str, exp.Expression]:
    """Every statement family, built for `dialect`."""
    window = drift.window_filter("ts", "2024-01-01", "2024-07-01")
    training = build_training_query(_spec(), dialect)
    return {
        "profile": build_profile_query(RELATION, COLUMNS, dialect, approx_distinct=dialect != "postgres")[0],
        "profile_exact_distinct": build_profile_query(RELATION, COLUMNS, dialect, approx_distinct=False)[0],
        "quantiles": build_quantile_query(RELATION, COLUMNS, dialect, (0.25, 0.5, 0.75))[0],
        "quantiles_sampled": build_quantile_query(RELATION, COLUMNS, dialect, (0.5,), sample_percent=5.0)[0],
        "top_values": build_top_values_query(RELATION, ["s", HOSTILE], 5),
        "duplicates": build_duplicates_query(RELATION, ["id", HOSTILE]),
        "fingerprint": fingerprint_query(training, dialect),
        "training_snapshot": training,
        "training_asof": build_training_query(_spec(label_timestamp="event_ts"), dialect),
        "training_entity": build_training_query(_spec(timestamp=None), dialect),
        "drift_numeric": drift.numeric_counts_query(RELATION, [(HOSTILE, [0.5, 1.5]), ("b", [0.0])], window,
                                                    frozenset({"b"})),
        "drift_categorical": drift.categorical_counts_query(RELATION, [(HOSTILE, ["a", "it's", "__other__"])], window),
        "ddl_create": tables.create_table_statement(tables.TABLES["runs"]),
        "ddl_add_column": tables.add_column_statement(
            tables.TABLES["drift_metrics"], next(c for c in tables.TABLES["drift_metrics"].columns if c.name == "is_drift")),
    }


CASES = [(d, name) for d in DIALECTS for name in statements(d)]


@pytest.mark.parametrize(("dialect", "name"), CASES, ids=[f"{d}-{n}" for d, n in CASES])
def test_renders_parse_back_to_the_same_statement(dialect, name):
    expression = statements(dialect)[name]
    rendered = sqlmod.render(expression, dialect)
    parsed = sqlglot.parse_one(rendered, read=dialect)
    again = parsed.sql(dialect)
    # A fixed point: rendering what was parsed and parsing that again changes nothing more
    # (sqlglot may spell a function its own way once, e.g. Snowflake's STDDEV for STDDEV_SAMP).
    assert sqlglot.parse_one(again, read=dialect).sql(dialect) == again
    assert type(parsed) is type(expression)
    if isinstance(expression, exp.Select):
        assert parsed.named_selects == expression.named_selects
    names = {i.this for i in parsed.find_all(exp.Identifier)}
    if HOSTILE in {i.this for i in expression.find_all(exp.Identifier)}:
        assert HOSTILE in names  # quoted, so it survives as one identifier, semicolon and all


def _sql(dialect: str, name: str) -> str:
    return sqlmod.render(statements(dialect)[name], dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_identifiers_are_quoted_the_dialects_way(dialect):
    quote = "`" if dialect in ("spark", "bigquery") else '"'
    assert f"{quote}main{quote}.{quote}t{quote}" in _sql(dialect, "profile")
    escaped = HOSTILE.replace('"', '""') if quote == '"' else HOSTILE
    assert f"{quote}{escaped}{quote}" in _sql(dialect, "profile")


QUANTILE_FORMS = {
    "duckdb": r"QUANTILE_CONT\(CAST\(.+ AS DOUBLE\), \[0\.01, 0\.05, 0\.25, 0\.5, 0\.75, 0\.95, 0\.99\]\)",
    "postgres": r"PERCENTILE_CONT\(0\.01\) WITHIN GROUP \(ORDER BY CAST\(.+ AS DOUBLE PRECISION\)\)",
    "snowflake": r"PERCENTILE_CONT\(0\.01\) WITHIN GROUP \(ORDER BY CAST\(.+ AS DOUBLE\)\)",
    "spark": r"PERCENTILE\(CAST\(.+ AS DOUBLE\), ARRAY\(0\.01, 0\.05, 0\.25, 0\.5, 0\.75, 0\.95, 0\.99\)\)",
    "bigquery": r"APPROX_QUANTILES\(CAST\(.+ AS FLOAT64\), 100\)\[1\]",
}
NAN_TESTS = {"duckdb": "ISNAN(", "spark": "ISNAN(", "bigquery": "IS_NAN(",
             "postgres": "= CAST('NaN' AS DOUBLE PRECISION)", "snowflake": "= CAST('NaN' AS DOUBLE)"}
DISTINCT = {"duckdb": "APPROX_COUNT_DISTINCT(", "spark": "APPROX_COUNT_DISTINCT(", "snowflake": "APPROX_COUNT_DISTINCT(",
            "bigquery": "APPROX_COUNT_DISTINCT(", "postgres": "COUNT(DISTINCT "}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_profiling_uses_each_engines_quantiles_nan_test_and_distinct_count(dialect):
    sql = _sql(dialect, "profile")
    assert re.search(QUANTILE_FORMS[dialect], sql), sql[:400]
    assert NAN_TESTS[dialect] in sql and DISTINCT[dialect] in sql
    assert "COUNT(DISTINCT " in _sql(dialect, "profile_exact_distinct")
    assert "APPROX_COUNT_DISTINCT" not in _sql(dialect, "profile_exact_distinct")
    assert "GROUP BY GROUPING SETS (" in _sql(dialect, "top_values")
    assert "ROW_NUMBER() OVER (PARTITION BY CASE WHEN GROUPING(" in _sql(dialect, "top_values")
    assert re.search(r"HAVING COUNT\(\*\) > 1", _sql(dialect, "duplicates"))
    sample = {"duckdb": "TABLESAMPLE BERNOULLI (5.0 PERCENT) REPEATABLE (", "postgres": "TABLESAMPLE BERNOULLI (5.0) REPEATABLE ("}
    if dialect in sample:  # executed on both engines: tests/unit/test_profiling.py, tests/postgres
        assert sample[dialect] in _sql(dialect, "quantiles_sampled")


ROW_HASHES = {
    "duckdb": r"HASH\(\"t\"\.\"id\", .+\) AS INT128\)",
    "postgres": r"CAST\(CAST\('x' \|\| SUBSTRING\(MD5\(CAST\(ROW\(\"t\"\.\"id\", .+\) AS TEXT\)\) FROM 1 FOR 15\) "
                r"AS BIT\(60\)\) AS BIGINT\)",
    "spark": r"XXHASH64\(`t`\.`id`, .+\) AS DECIMAL\(38, 0\)\)",
    "snowflake": r"HASH\(\"t\"\.\"id\", .+\) AS DECIMAL\(38, 0\)\)",
    "bigquery": r"FARM_FINGERPRINT\(TO_JSON_STRING\(STRUCT\(`t`\.`id`, .+\)\)\) AS BIGNUMERIC\)",
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fingerprint_sums_each_engines_row_hash_modulo_2_64(dialect):
    sql = _sql(dialect, "fingerprint")
    assert re.search(ROW_HASHES[dialect], sql), sql
    assert sql.count("18446744073709551616") == 3  # ((s mod m) + m) mod m: never negative
    assert "ORDER BY" not in sql  # the order of rows does not matter to a sum
    # every output column of the training query is hashed, in order
    columns = ["id", "ts", "x", HOSTILE, "y"]
    hashed = sqlglot.parse_one(sql, read=dialect).find(exp.Sum).find_all(exp.Column)
    if dialect == "spark":  # xxhash64 skips NULLs: each value is followed by its IS NULL flag
        columns = columns + columns  # (find_all walks breadth-first: the flags are one level deeper)
        assert "`t`.`id` IS NULL" in sql
    assert [c.name for c in hashed] == columns


@pytest.mark.parametrize("dialect", DIALECTS)
def test_training_joins_asof_on_duckdb_and_by_window_elsewhere(dialect):
    asof = _sql(dialect, "training_asof")
    if dialect == "duckdb":
        assert "ASOF INNER JOIN" in asof and "ROW_NUMBER" not in asof
    else:
        assert "ASOF" not in asof and "ROW_NUMBER() OVER (PARTITION BY" in asof
        assert re.search(r"WHERE .__dwml_rn. = 1 AND NOT .y. IS NULL", asof)
    horizon = {"duckdb": "INTERVAL 30 DAY", "postgres": "INTERVAL '30 DAY'", "spark": "DATE_ADD(`f`.`ts`, 30)",
               "snowflake": "DATEADD(DAY, 30, \"f\".\"ts\")", "bigquery": "DATE_ADD(`f`.`ts`, INTERVAL 30 DAY)"}
    assert horizon[dialect] in asof
    snapshot = _sql(dialect, "training_snapshot")
    assert "INNER JOIN" in snapshot and "ROW_NUMBER" not in snapshot and "ASOF" not in snapshot


TYPES = {  # text, double, timestamp as dwml's tables get them
    "duckdb": ("TEXT", "DOUBLE", "TIMESTAMP"), "postgres": ("TEXT", "DOUBLE PRECISION", "TIMESTAMP"),
    "spark": ("STRING", "DOUBLE", "TIMESTAMP"), "snowflake": ("VARCHAR", "DOUBLE", "TIMESTAMP"),
    "bigquery": ("STRING", "FLOAT64", "DATETIME"),
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dwml_tables_ddl_uses_each_engines_types(dialect):
    text, double, timestamp = TYPES[dialect]
    create = _sql(dialect, "ddl_create")
    assert create.startswith("CREATE TABLE IF NOT EXISTS")
    assert re.search(rf"run_id.? {text},", create) and re.search(rf"started_at.? {timestamp},", create)
    assert len(re.findall(r"(?:^|, |\()[`\"]\w+[`\"] ", create)) == len(tables.TABLES["runs"].columns)
    add = _sql(dialect, "ddl_add_column")
    boolean = "BOOL" if dialect == "bigquery" else "BOOLEAN"
    assert add.endswith(f"is_drift{'`' if dialect in ('spark', 'bigquery') else chr(34)} {boolean}")
    assert ("ADD COLUMN" in add) == (dialect != "snowflake")  # Snowflake's ALTER says ADD only
    double_column = tables.create_table_statement(tables.TABLES["run_metrics"])
    assert re.search(rf"value.? {double},", sqlmod.render(double_column, dialect))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_drift_counts_cast_to_double_and_booleans_through_int(dialect):
    sql = _sql(dialect, "drift_numeric")
    double = TYPES[dialect][1]
    integer = "INT64" if dialect == "bigquery" else "INT"
    assert f'CAST(CAST({"`b`" if dialect in ("spark", "bigquery") else chr(34) + "b" + chr(34)} AS {integer}) ' \
           f"AS {double})" in sql
    assert f"<= CAST(0.5 AS {double})" in sql and f"> CAST(1.5 AS {double})" in sql
    categorical = _sql(dialect, "drift_categorical")
    assert "'it''s'" in categorical or "'it\\'s'" in categorical  # values are literals, quotes escaped
    assert "GROUP BY GROUPING SETS" in categorical
