"""evaluate_model, ab_test_models, `dwml monitor` and the monitoring dbt tests on one small demo
warehouse (built once for the module): metrics checked against scikit-learn on an independent
join, the three ways of getting labelled rows agreeing, the shifted period flagged and a stable
one not, and `dbt test` on the drift/performance tables warning and erroring as configured."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import numpy as np
import pytest
from sklearn import metrics as skm
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from tests.conftest import DEMO_DIR, duckdb_rows, isolated_paths, shared_env, use_shared_env
from dwml_py.demo import DemoConfig, generate_demo
from dwml_py.demo.generator import shift_start

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = DemoConfig(customers=1500, seed=11)
SHIFT = shift_start(CONFIG)  # 2025-08-01


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    """The demo built, churn v1 (xgboost, production, scored) and v2 (logistic, not scored yet) trained."""
    from dwml_py.batch_scoring import predict
    from dwml_py.deployment import deploy
    from dwml_py.project import Project
    from dwml_py.training_run import train

    env = isolated_paths(tmp_path_factory.mktemp("monitor_demo"))
    with shared_env(env):
        project = Project.locate(DEMO_DIR)
        generate_demo(project, CONFIG)
        assert run_dbt(project, ["build"]).success
        train(project, "churn", params={"n_estimators": 40})
        train(project, "churn", algorithm="logistic")
        deploy(project, "churn", 1)
        predict(project, "churn", version=1)
        con = duckdb.connect(env["DWML_DUCKDB_PATH"])
        con.sql("create table main.churn_labelled as select f.*, l.churned_30d from main.customer_features f "
                "join main.customer_labels l using (customer_id, snapshot_date) where l.churned_30d is not null")
        con.close()
    return env


@pytest.fixture
def demo(demo_env, monkeypatch, project):
    use_shared_env(monkeypatch, demo_env)
    return project


def sql(demo_env, query):
    return duckdb_rows(demo_env["DWML_DUCKDB_PATH"], query)


def labelled_scores(demo_env, version):
    """(month, score, label) by an independent join of the version's predictions to the labels."""
    rows = sql(demo_env, f"""
        select date_trunc('month', p.snapshot_at)::date, p.score, l.churned_30d
        from dwml.predictions p join main.customer_labels l
          on p.entity_key = cast(l.customer_id as varchar) and p.snapshot_at = cast(l.snapshot_date as timestamp)
        where p.model_name = 'churn' and p.version = {version} and l.churned_30d is not null""")
    return rows


def test_evaluate_matches_scikit_learn_per_month(demo, demo_env):
    from dwml_py.performance import evaluate_performance

    result = evaluate_performance(demo, "churn", version=1)
    rows = labelled_scores(demo_env, 1)
    assert result["rows"] == len(rows) > 0
    months = sorted({r[0] for r in rows})
    assert [w["window_start"][:10] for w in result["windows"]] == [m.isoformat() for m in months]
    for window in result["windows"]:
        month = date.fromisoformat(window["window_start"][:10])
        y = np.array([r[2] for r in rows if r[0] == month])
        s = np.array([r[1] for r in rows if r[0] == month])
        assert window["rows"] == len(y)
        assert window["metrics"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
        assert window["metrics"]["pr_auc"] == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
        assert window["metrics"]["log_loss"] == pytest.approx(skm.log_loss(y, s), abs=1e-12)
        assert window["metrics"]["brier"] == pytest.approx(skm.brier_score_loss(y, s), abs=1e-12)
        assert window["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, s >= 0.5), abs=1e-12)
        assert window["metrics"]["f1"] == pytest.approx(skm.f1_score(y, s >= 0.5), abs=1e-12)
    holdout = json.loads(sql(demo_env, "select metrics from dwml.model_versions where version = 1")[0][0])
    assert result["baseline"]["roc_auc"] == holdout["roc_auc"]
    stored = sql(demo_env, "select metric, value, baseline, is_degraded, row_count from dwml.performance_metrics "
                           f"where evaluation_id = '{result['evaluation_id']}'")
    assert len(stored) == 6 * len(result["windows"])
    degraded = {w["window_start"] for w in result["windows"] if w["degraded"]}
    assert result["alert"] == bool(degraded)
    assert all(r[3] is None for r in stored if r[0] != "roc_auc")  # only roc_auc is judged by default

    # maturity: as of 2025-10-15 with the 30-day horizon, snapshots after 2025-09-15 do not count
    early = evaluate_performance(demo, "churn", version=1, as_of="2025-10-15")
    assert early["windows"][-1]["window_start"][:10] == "2025-09-01" and early["matured_until"][:10] == "2025-09-15"
    assert early["label_delay_days"] == 30

    # scoring a labelled relation with the version gives the same numbers as its batch predictions
    direct = evaluate_performance(demo, "churn", version=1, relation="main.churn_labelled", after="2025-06-01")
    from_predictions = {w["window_start"]: w for w in result["windows"]}
    assert direct["windows"] and all(w["window_start"] >= "2025-06" for w in direct["windows"])
    for window in direct["windows"]:
        assert window["rows"] == from_predictions[window["window_start"]]["rows"]
        assert window["metrics"]["roc_auc"] == pytest.approx(
            from_predictions[window["window_start"]]["metrics"]["roc_auc"], abs=1e-9)

    cli = CliRunner().invoke(app, ["evaluate", "churn", "--window", "week", "--after", "2025-11-01", "--json"])
    out = json.loads(cli.stdout)
    assert cli.exit_code == (2 if out["alert"] else 0), cli.output
    assert out["window"] == "week" and out["windows"]
    for w in out["windows"]:  # ISO weeks start on Monday: 2025-11-01 (a Saturday) is in the week of 10-27
        start = date.fromisoformat(w["window_start"][:10])
        assert start.weekday() == 0 and w["window_end"][:10] > "2025-11-01"
    unscored = CliRunner().invoke(app, ["evaluate", "churn", "--version", "2"])
    assert unscored.exit_code == 1 and "dwml predict churn --version 2" in unscored.output


def test_abtest_same_rows_three_ways(demo, demo_env):
    from dwml_py import ab_stats
    from dwml_py.ab_testing import ab_test
    from dwml_py.batch_scoring import predict

    # v2 has no predictions yet: both versions score the champion's labelled training rows
    scored = ab_test(demo, "churn", 1, 2, resamples=200, after="2025-06-01")
    assert scored["source"].startswith("customer_features joined to its labels")
    by_relation = ab_test(demo, "churn", 1, 2, resamples=200, after="2025-06-01", relation="main.churn_labelled")
    predict(demo, "churn", version=2)
    from_predictions = ab_test(demo, "churn", 1, 2, resamples=200, after="2025-06-01")
    assert from_predictions["source"].startswith("dwml.predictions")
    assert scored["rows"] == by_relation["rows"] == from_predictions["rows"] > 0
    for other in (scored, by_relation):
        for mine, theirs in zip(other["comparisons"], from_predictions["comparisons"]):
            assert mine["metric"] == theirs["metric"]
            assert mine["challenger_value"] == pytest.approx(theirs["challenger_value"], abs=1e-9)
            assert mine["champion_value"] == pytest.approx(theirs["champion_value"], abs=1e-9)

    # the numbers, from the predictions and labels joined independently
    rows = sql(demo_env, """
        select p1.score, p2.score, l.churned_30d from dwml.predictions p1
        join dwml.predictions p2 on p1.entity_key = p2.entity_key and p1.snapshot_at = p2.snapshot_at
        join main.customer_labels l
          on p1.entity_key = cast(l.customer_id as varchar) and p1.snapshot_at = cast(l.snapshot_date as timestamp)
        where p1.version = 1 and p2.version = 2 and l.churned_30d is not null and p1.snapshot_at >= '2025-06-01'""")
    s1, s2, y = (np.array(c) for c in zip(*rows))
    assert from_predictions["rows"] == len(y)
    auc = from_predictions["comparisons"][0]
    assert auc["metric"] == "roc_auc" and from_predictions["metric"] == "roc_auc"
    assert auc["champion_value"] == pytest.approx(skm.roc_auc_score(y, s1), abs=1e-12)
    assert auc["challenger_value"] == pytest.approx(skm.roc_auc_score(y, s2), abs=1e-12)
    assert auc["p_value"] == pytest.approx(ab_stats.delong_test(y, s1, s2)["p_value"], abs=1e-12)
    assert auc["ci_low"] <= auc["difference"] <= auc["ci_high"]
    assert auc["verdict"] == ab_stats.verdict("roc_auc", auc["ci_low"], auc["ci_high"], auc["p_value"])
    accuracy = from_predictions["comparisons"][1]
    assert accuracy["metric"] == "accuracy" and "McNemar" in accuracy["method"]
    assert accuracy["p_value"] == pytest.approx(
        ab_stats.mcnemar_test((s1 >= 0.5) == y, (s2 >= 0.5) == y)["p_value"], abs=1e-12)
    stored = sql(demo_env, "select metric, verdict, rule, row_count from dwml.ab_tests "
                           f"where test_id = '{from_predictions['test_id']}'")
    assert sorted(r[0] for r in stored) == ["accuracy", "roc_auc"] and all(r[3] == len(y) for r in stored)
    assert all("CI" in r[2] and "p-value" in r[2] for r in stored)

    cli = CliRunner().invoke(app, ["abtest", "churn", "--champion", "1", "--challenger", "2", "--metric",
                                   "log_loss", "--resamples", "100", "--after", "2025-06-01"])
    assert cli.exit_code == 0, cli.output
    assert "Verdict on log_loss" in cli.output
    bad = CliRunner().invoke(app, ["abtest", "churn", "--champion", "1", "--challenger", "2", "--metric", "rmse"])
    assert bad.exit_code == 1 and "not a classification metric" in bad.output


def test_monitor_flags_the_shifted_period_and_dbt_tests_alert(demo, demo_env):
    from dwml_py.monitoring import monitor

    shifted = monitor(demo, after=SHIFT.isoformat())
    assert shifted["alert"] is True and shifted["alerting"] == ["churn"]
    churn = shifted["models"][0]
    assert churn["version"] == 1
    assert {"monthly_price", "country_code"} <= set(churn["drift"]["major_features"]), churn["drift"]
    assert any(r.startswith("major drift of") for r in churn["alerts"])
    assert churn["performance"]["windows"] > 0 and "error" not in churn["performance"]

    # the monitoring dbt tests over the tables the monitor run just filled
    run = run_dbt(demo, ["test", "--select", "tag:dwml_monitoring"])
    status = {n.name: (n.status, n.failures) for n in run.nodes if n.resource_type == "test"}
    assert set(status) == {"churn_drift_moderate", "churn_drift_major", "churn_roc_auc_warn", "churn_roc_auc_error"}
    assert status["churn_drift_moderate"][0] == "warn"
    major = len(churn["drift"]["major_features"]) + int((churn["drift"]["score"] or {}).get("psi", 0) > 0.25)
    # dbt reports a failure at the error tier as "fail"
    assert status["churn_drift_major"] == ("fail" if major > 2 else "warn", major)
    latest = churn["performance"]["latest"]["metrics"]["roc_auc"]
    assert status["churn_roc_auc_warn"][0] == ("warn" if latest < 0.75 else "pass")
    assert status["churn_roc_auc_error"][0] == ("fail" if latest < 0.65 else "pass")
    assert run.success is (major <= 2 and latest >= 0.65)

    cli = CliRunner().invoke(app, ["monitor", "--after", SHIFT.isoformat()])
    assert cli.exit_code == 2 and "ALERT" in cli.output and "major drift of" in cli.output

    # a stable stretch of the training period: nothing fires
    stable = monitor(demo, after="2025-01-01", before=SHIFT.isoformat())
    assert stable["alert"] is False, stable["models"][0]["alerts"]
    assert stable["models"][0]["drift"]["major_features"] == []
    cli = CliRunner().invoke(app, ["monitor", "--after", "2025-01-01", "--before", SHIFT.isoformat(), "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["alert"] is False

    none = CliRunner().invoke(app, ["monitor", "--alias", "staging", "--json"])
    assert none.exit_code == 0 and json.loads(none.stdout)["models"] == []
