"""A multiclass model scored by dbt: `dwml deploy --scaffold` of a 4-class XGBoost model (the demo's
plan_code, predicted from the other customer features) compiles it to SQL; `dbt build` of the
scaffolded model passes its tests, and its scores and labels equal batch scoring's on every row,
and its post_hook logs them into dwml.predictions.

The project is copied into tmp_path first, so the scaffolded model never lands in the checkout."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.project import copy_project
from tests.conftest import duckdb_rows as query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLANS = ["basic", "family", "premium", "standard"]


@pytest.fixture
def demo_copy(demo_dir, tmp_path):
    from dwml_py.demo import DemoConfig, generate_demo
    from dwml_py.project import Project

    project = Project.locate(copy_project(demo_dir, tmp_path / "project"))
    generate_demo(project, DemoConfig(customers=600, seed=4))
    return project


def test_dbt_scores_a_multiclass_model_as_batch_scoring_does(demo_copy, duckdb_path):
    from dwml_py.batch_scoring import predict
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.training_run import train

    project = demo_copy
    build = run_dbt(project, ["build"])
    assert build.success, build.to_dict()
    trained = train(project, "plan", feature_model="customer_features", label_column="plan_code",
                    task="classification", exclude=["monthly_price"], params={"n_estimators": 25})
    assert trained["version"] == 1

    result = CliRunner().invoke(app, ["deploy", "plan", "--version", "1", "--scaffold", "--scaffold-dir",
                                      "models/ml_scoring", "--project-dir", str(project.project_dir), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    deployed = json.loads(result.stdout)
    assert deployed["sql_scoring"]["available"] is True, deployed["sql_scoring"]
    assert deployed["scaffold"]["model"] == "plan_scores"
    [(status, text)] = query(duckdb_path, "select status, query_sql from dwml.scoring_sql where model_name = 'plan'")
    assert status == "ready" and "__dwml_margin3" in text and "__dwml_margin4" not in text  # a margin per class

    built = run_dbt(project, ["build", "--select", "plan_scores"])
    assert built.success, built.to_dict()
    tests = [n for n in built.nodes if n.resource_type == "test"]
    assert tests and all(n.status == "pass" for n in tests), [(n.name, n.status) for n in tests]

    batch = predict(project, "plan", batch_id="compare")
    rows = query(duckdb_path, """select count(*), max(abs(s.score - p.score)),
            sum(case when s.predicted_label = p.predicted_label then 0 else 1 end),
            min(s.score), count(distinct s.predicted_label)
        from main.plan_scores s join dwml.predictions p
          on p.entity_key = cast(s.customer_id as varchar) and p.snapshot_at = cast(s.snapshot_date as timestamp)
         and p.batch_id = 'compare' and p.model_name = 'plan'""")
    count, max_diff, label_mismatches, lowest, labels = rows[0]
    assert count == batch["rows"] == query(duckdb_path, "select count(*) from main.plan_scores")[0][0] > 0
    assert max_diff < 1e-6 and label_mismatches == 0
    assert lowest >= 0.25 and labels >= 2  # the score is the top class's probability: never below 1/4
    assert {r[0] for r in query(duckdb_path, "select distinct predicted_label from main.plan_scores")} <= set(PLANS)
    # the post_hook logged the SQL scores as it does for binary models
    assert query(duckdb_path, "select count(*) from dwml.predictions where source = 'sql' and model_name = 'plan'"
                 )[0][0] == count
