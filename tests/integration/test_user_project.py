"""dwml in a user's own dbt project (tests/user_project), used as the README says: packages.yml
with dwml, `dbt deps`, `dbt build`, then the `dwml` and `dbt` commands, each its own process.

The shop's models reuse common names, some the demo's too (stg_customers, customers, orders,
customer_features, churn_scores); it has no timestamp column, NULL labels and a regression target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, duckdb_execute, duckdb_rows
from tests.user_project.make_seeds import write_seeds

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent


def run(command: str, *args, project: Path, env: dict, code: int | None = 0) -> subprocess.CompletedProcess:
    """`dbt ARGS` or `dwml ARGS` in the project folder, as a user types them."""
    done = subprocess.run([str(BIN / command), *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)
    if code is not None:
        assert done.returncode == code, f"{command} {' '.join(args)} -> {done.returncode}\n{done.stdout[-4000:]}\n" \
                                        f"{done.stderr[-4000:]}"
    return done


def dwml_json(*args, project: Path, env: dict, code: int = 0) -> dict:
    return json.loads(run("dwml", *args, "--json", project=project, env=env, code=code).stdout)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> dict:
    """The shop's project copied, seeded, with dwml installed (`dbt deps`) and built (`dbt build`)."""
    from dwml_py.project import copy_project

    base = tmp_path_factory.mktemp("shop")
    project = copy_project(REPO_ROOT / "tests" / "user_project", base / "shop")
    write_seeds(project)
    database = base / "shop.duckdb"
    env = {**os.environ, "SHOP_DUCKDB_PATH": str(database), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DWML_ARTIFACT_DIR": str(base / "artifacts")}
    for name in ("DWML_DUCKDB_PATH", "DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_PROFILES_DIR", "DBT_PROJECT_DIR",
                 "DBT_TARGET"):
        env.pop(name, None)
    # An earlier dwml's on-run-start declared 'double' columns with dbt.type_float(), DuckDB's 4-byte
    # FLOAT, and a score was written to it: the build must widen the column and keep the row.
    duckdb_execute(database, "create schema dwml; create table dwml.predictions (model_name varchar, version "
                   "bigint, entity_key varchar, snapshot_at timestamp, score float, predicted_label varchar, batch_id "
                   "varchar, source varchar, scored_at timestamp); insert into dwml.predictions values ('m', 1, '7', "
                   "null, 0.25, '0', 'b', 'batch', now())")
    run("dbt", "deps", project=project, env=env)
    run("dbt", "parse", project=project, env=env)
    run("dbt", "build", project=project, env=env)
    return {"project": project, "env": env, "database": database}


def _models(shop, *args) -> set[str]:
    listed = run("dbt", "ls", "--resource-type", "model", "--output", "name", "--quiet", *args,
                 project=shop["project"], env=shop["env"])
    return set(listed.stdout.split())


def test_names_like_the_demos_do_not_clash_and_dwml_models_are_tagged(shop):
    models = _models(shop)
    assert {"stg_customers", "customers", "orders", "customer_features", "churn_scores"} <= models
    assert {"dwml_runs", "dwml_predictions", "dwml_audit_log"} <= models
    assert not {"customer_labels", "stg_daily_usage", "customer_engagement"} & models, "no demo model in a user project"
    assert not {m for m in _models(shop, "--exclude", "tag:dwml") if m.startswith("dwml_")}


def test_dwml_tables_are_created_and_old_float_scores_widened(shop):
    database = shop["database"]
    tables = {r[0] for r in duckdb_rows(database, "select table_name from information_schema.tables "
                                                  "where table_schema = 'dwml'")}
    assert {"runs", "model_versions", "predictions", "audit_log"} <= tables
    types = dict(duckdb_rows(database, "select table_name || '.' || column_name, data_type "
                                       "from information_schema.columns where table_schema = 'dwml'"))
    # created by dbt (run_metrics) or widened (predictions): 8-byte doubles, as Python declares them
    assert types["run_metrics.value"] == "DOUBLE" and types["predictions.score"] == "DOUBLE"
    assert duckdb_rows(database, "select entity_key, score from dwml.predictions where batch_id = 'b'") == [("7", 0.25)]


def test_train_deploy_scaffold_and_score_with_dbt(shop):
    project, env, database = shop["project"], shop["env"], shop["database"]
    labelled, null_labels = duckdb_rows(database, "select count(churned), count(*) - count(churned) "
                                                  "from main.customer_features")[0]
    assert null_labels > 0

    churn = dwml_json("train", "churn", "--param", "n_estimators=30", project=project, env=env)
    assert churn["version"] == 1 and churn["split"]["method"] == "random"
    assert churn["data_fingerprint"]["row_count"] == labelled  # rows with a NULL label do not train
    # the other ML model's label in the same feature model is an outcome, never a feature
    assert "next_year_spend" not in churn["features"] and "churned" not in churn["features"]
    spend = dwml_json("train", "spend", "--param", "n_estimators=30", project=project, env=env)
    assert spend["task"] == "regression" and "churned" not in spend["features"]

    # the default scaffold name, churn_scores, is the shop's own model: refused, nothing moves
    refused = run("dwml", "deploy", "churn", "--version", "1", "--scaffold", project=project, env=env, code=1)
    message = " ".join((refused.stdout + refused.stderr).split())  # the console wraps long lines
    assert "A dbt model named 'churn_scores' already exists in 'shop': models/marts/churn_scores.sql" in message, message
    assert "--scaffold-name" in message
    assert duckdb_rows(database, "select count(*) from dwml.model_aliases") == [(0,)]
    assert not (project / "models" / "ml_scoring").exists()

    for ml_model, scores in (("churn", "churn_model_scores"), ("spend", "spend_scores")):
        extra = ("--scaffold-name", scores) if ml_model == "churn" else ()
        deployed = dwml_json("deploy", ml_model, "--version", "1", "--scaffold", *extra, project=project, env=env)
        assert deployed["sql_scoring"]["available"] and deployed["scaffold"]["model"] == scores
        run("dbt", "run", "--select", scores, project=project, env=env)
        batch = dwml_json("predict", ml_model, project=project, env=env)
        rows, worst = duckdb_rows(database, f"""
            select count(*), max(abs(s.score - p.score) / greatest(1, abs(p.score)))
            from main.{scores} s join dwml.predictions p
              on p.entity_key = cast(s.customer_id as varchar) and p.batch_id = '{batch['batch_id']}'""")[0]
        assert rows == duckdb_rows(database, "select count(*) from main.customer_features")[0][0]
        assert worst < 1e-6, (ml_model, worst)
