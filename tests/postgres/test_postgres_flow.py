"""The whole flow on PostgreSQL, checked against the same flow on DuckDB.

The demo generator is seeded, so both engines hold the same raw rows; dbt builds the same
feature models on each. Everything computed from them must then agree: the training set (rows,
not the engine-specific fingerprint hash), the trained model and its holdout metrics, every
batch score, dbt's SQL scoring (equal to the batch scores), the profile's statistics (and those
match numpy on the fetched table) and the drift statistics. On Postgres alone: dwml's tables
created by dbt's on-run-start hook match the Python definition; version numbers and the rows
each step writes.
"""

from __future__ import annotations

import pytest

from dwml_py.demo.generator import shift_start
from dwml_py.project import Project
from tests.engine_flow_checks import CONFIG, assert_dwml_tables_from_dbt, assert_flow_matches_duckdb, run_flow

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.slow]


def test_the_flow_on_postgres_matches_duckdb(project, pg_database, monkeypatch, tmp_path):
    drift_after = shift_start(CONFIG).isoformat()
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "duckdb_target"))
    duck = run_flow(project, drift_after)

    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBT_TARGET", "postgres")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "postgres_target"))
    pg_project = Project.locate(project.project_dir)

    # dwml's tables from the dbt side first: the on-run-start hook on an empty database
    assert_dwml_tables_from_dbt(pg_project)
    # the cost gate's calibration fits are CPU-bound and tested elsewhere; on Postgres it runs
    # once, for its sample query
    pg = run_flow(pg_project, drift_after, cost_gate=True)

    # -- gates ---------------------------------------------------------------------------------------
    for gate in ("check", "governance"):
        assert pg[gate]["passed"] is True and duck[gate]["passed"] is True, pg[gate]
    assert pg["train1"]["gates"]["cost"]["decision"] == "pass" and pg["train1"]["gates"]["cost"]["estimate"]
    assert "estimate" not in duck["train1"]["gates"]["cost"]  # no budget, nothing estimated

    assert_flow_matches_duckdb(pg, duck, "postgres-md5-sum64")
