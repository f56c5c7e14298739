"""dwml's generated SQL executed on PostgreSQL and on DuckDB over the same rows: the profile, the
training-set join (DuckDB's ASOF join against the window join Postgres gets), the fingerprint and
the drift counts agree between the engines and with numpy (the checks: tests/engine_sql_checks.py)."""

from __future__ import annotations

import pytest

from tests.engine_sql_checks import check_drift_counts, check_fingerprint, check_profile, check_window_join, load

pytestmark = [pytest.mark.postgres]

HOSTILE = 'x"; drop table t; --'


@pytest.fixture(scope="module")
def engines(pg_module_warehouse):
    pg = pg_module_warehouse
    loaded = load(pg, "postgres", "s", HOSTILE)
    yield loaded
    loaded.duckdb.close()


def test_profile_is_the_same_on_both_engines_and_equals_numpy(engines):
    check_profile(engines)


def test_window_join_on_postgres_equals_duckdbs_asof_join(engines):
    check_window_join(engines)


def test_postgres_fingerprint_sees_every_value_but_not_the_order(engines):
    check_fingerprint(engines, "postgres-md5-sum64")


def test_drift_counts_are_the_same_on_both_engines_and_equal_numpy(engines):
    check_drift_counts(engines)
