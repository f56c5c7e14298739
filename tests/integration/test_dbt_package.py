"""dwml installed as a dbt package into another project: its macros, generic tests and the
models over dwml's tables arrive; the demo models do not build there."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _dbt(args, cwd, env):
    dbt = Path(sys.executable).parent / "dbt"
    return subprocess.run([str(dbt), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_package_builds_dwml_models_but_no_demo(repo_root, tmp_path):
    consumer = tmp_path / "consumer"
    shutil.copytree(repo_root / "tests/package_consumer", consumer)
    (consumer / "packages.yml").write_text(f"packages:\n  - local: {repo_root}\n")
    env = {**os.environ, "CONSUMER_DUCKDB_PATH": str(tmp_path / "consumer.duckdb"),
           "DBT_TARGET_PATH": str(consumer / "target"), "DBT_LOG_PATH": str(consumer / "logs")}
    flags = ["--project-dir", str(consumer), "--profiles-dir", str(consumer)]

    deps = _dbt(["deps", *flags], consumer, env)
    assert deps.returncode == 0, deps.stdout + deps.stderr

    listed = _dbt(["ls", "--resource-type", "model", "--output", "name", "--quiet", *flags], consumer, env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    models = set(listed.stdout.split())
    assert "orders" in models
    assert {"dwml_runs", "dwml_predictions", "dwml_audit_log"} <= models
    assert not {"customer_features", "customer_labels"} & models, "demo models must not build in a consumer"
    assert not any(name.startswith("stg_") for name in models)

    import duckdb

    # An earlier version's on-run-start declared 'double' columns with dbt.type_float(), DuckDB's
    # 4-byte FLOAT, and a score was written to it: the build widens the column and keeps the row.
    with duckdb.connect(str(tmp_path / "consumer.duckdb")) as old:
        old.execute("create schema dwml")
        old.execute("create table dwml.predictions (model_name varchar, version bigint, entity_key varchar, "
                    "snapshot_at timestamp, score float, predicted_label varchar, batch_id varchar, source varchar, "
                    "scored_at timestamp)")
        old.execute("insert into dwml.predictions values ('m', 1, '7', null, 0.25, '0', 'b', 'batch', now())")

    build = _dbt(["build", *flags], consumer, env)
    assert build.returncode == 0, build.stdout[-3000:]

    con = duckdb.connect(str(tmp_path / "consumer.duckdb"), read_only=True)
    tables = {r[0] for r in con.sql("select table_name from information_schema.tables where table_schema = 'dwml'").fetchall()}
    assert {"runs", "model_versions", "predictions", "audit_log"} <= tables
    types = dict(con.sql("select table_name || '.' || column_name, data_type from information_schema.columns "
                         "where table_schema = 'dwml'").fetchall())
    # created by dbt (run_metrics) or widened (predictions): 8-byte doubles, as Python declares them
    assert types["run_metrics.value"] == "DOUBLE" and types["predictions.score"] == "DOUBLE"
    assert con.sql("select entity_key, score from dwml.predictions").fetchall() == [("7", 0.25)]
    assert con.sql("select count(*) from main.orders").fetchall() == [(2,)]
