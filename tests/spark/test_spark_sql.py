"""dwml's generated SQL executed on Spark and on DuckDB over the same rows: the profile (Spark's
exact `percentile`), the training-set join (DuckDB's ASOF join against the window join Spark
gets), the fingerprint (xxhash64) and the drift counts agree between the engines and with numpy.
Column names are hostile (quotes, backticks, semicolons); Spark's metastore only takes plain
table names."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from dwml_py.training_set import build_training_query, fingerprint
from tests.engine_sql_checks import (check_drift_counts, check_fingerprint, check_profile, check_window_join, load,
                                     spec)

pytestmark = [pytest.mark.spark]

HOSTILE = 'x"; drop `table` t; --'
S = "sql_s"  # this module's schema in the session's one metastore


@pytest.fixture(scope="module")
def engines(spark_session):
    from dwml_py.warehouse.spark import SparkWarehouse

    loaded = load(SparkWarehouse(spark_session), "spark", S, HOSTILE)
    yield loaded
    loaded.duckdb.close()


def test_profile_is_the_same_on_both_engines_and_equals_numpy(engines):
    check_profile(engines)


def test_window_join_on_spark_equals_duckdbs_asof_join(engines):
    check_window_join(engines)


def test_spark_fingerprint_sees_every_value_but_not_the_order(engines):
    check_fingerprint(engines, "spark-xxhash64-sum64")


def test_drift_counts_are_the_same_on_both_engines_and_equal_numpy(engines):
    check_drift_counts(engines)


def test_spark_fingerprint_tells_where_the_nulls_are(engines):
    """xxhash64 skips NULL arguments; the fingerprint hashes an IS NULL flag after each value."""
    sp = engines.other
    assert sp.fetch_scalar("SELECT xxhash64(CAST(NULL AS STRING), 'x') = xxhash64('x', CAST(NULL AS STRING))") is True

    def fp(a, b) -> str:
        sp.write_arrow(pa.table({"id": [1], "a": pa.array([a], pa.string()), "b": pa.array([b], pa.string()),
                                 "ts": [dt.date(2024, 1, 1)]}), S, "nulls", mode="replace")
        nulls = spec(engines, feature_model="model.p.nulls", feature_table="nulls", label_model="model.p.nulls",
                     label_table="nulls", label_column="b", features=["a"], label_timestamp=None, horizon_days=None)
        return fingerprint(sp, build_training_query(nulls, "spark"))["hash"]

    assert fp(None, "x") != fp("x", None)
    assert fp("", "x") != fp(None, "x")
