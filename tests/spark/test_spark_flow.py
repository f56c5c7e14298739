"""The whole flow on Spark (dbt-spark's session method, one local SparkSession shared by dbt and
dwml), checked against the same flow on DuckDB.

The demo generator is seeded, so both engines hold the same raw rows; dbt builds the same
feature models on each. Everything computed from them must then agree: the training set (rows,
not the engine-specific fingerprint hash), the trained model and its holdout metrics, every
batch score, dbt's SQL scoring (equal to the batch scores), the profile's statistics (and those
match numpy on the fetched table) and the drift statistics. On Spark alone: dwml's tables
created by dbt's on-run-start hook match the Python definition; version numbers; rows written;
a second prediction batch under the same id replaces the first (DELETE rewritten for Spark).
"""

from __future__ import annotations

import pytest

from dwml_py.demo.generator import shift_start
from dwml_py.project import Project
from dwml_py.tables import DWML_SCHEMA
from dwml_py.warehouse import connect
from tests.engine_flow_checks import (CONFIG, assert_dwml_tables_from_dbt, assert_flow_matches_duckdb, ok, run_flow,
                                      table_rows)

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]


def test_the_flow_on_spark_matches_duckdb(project, spark_home, monkeypatch, tmp_path):
    drift_after = shift_start(CONFIG).isoformat()
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "duckdb_target"))
    duck = run_flow(project, drift_after)

    monkeypatch.setenv("DWML_SPARK_WAREHOUSE", str(spark_home))
    monkeypatch.setenv("DBT_TARGET", "spark")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "spark_target"))
    spark_project = Project.locate(project.project_dir)

    # dwml's tables from the dbt side first: the on-run-start hook (spark__dwml_ensure_table)
    assert_dwml_tables_from_dbt(spark_project)
    sp = run_flow(spark_project, drift_after)

    # -- gates ---------------------------------------------------------------------------------------
    for gate in ("check", "governance"):
        assert sp[gate]["passed"] is True and duck[gate]["passed"] is True, sp[gate]

    assert_flow_matches_duckdb(sp, duck, "spark-xxhash64-sum64")
    assert set(sp["runs"].values()) == {"finished"} and len(sp["runs"]) == 2  # UPDATE rewritten for Spark
    assert sp["deploy"]["sql_scoring"]["available"] is True

    # -- the same batch id again: its rows are replaced, not added (DELETE rewritten for Spark) ------
    again = ok("predict", "churn", "--batch-id", "cmp")
    assert again["replaced_rows"] == again["rows"] == sp["predict"]["rows"]
    with connect(spark_project) as warehouse:
        assert len(table_rows(warehouse, "predictions", ["batch_id"])) == sp["prediction_rows"]
        assert not [t for t in warehouse.fetch_rows(f"SHOW TABLES IN {DWML_SCHEMA}")
                    if t["tableName"].startswith(("_dwml_rewrite", "_predictions_staging"))]  # nothing left behind
