"""get_ml_status on a real DuckDB warehouse whose dwml tables hold known rows: every part of the
overview is the right row (latest version, current alias, last run, last drift check, last batch,
latest evaluated window), in a fixed number of queries whatever the number of models."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from dwml_py.errors import NotFoundError
from dwml_py.ml_status import ml_status
from dwml_py.tables import DWML_SCHEMA, ensure_tables
from dwml_py.tracking import table_rows, to_json, utcnow
from dwml_py.warehouse.duckdb import DuckDBWarehouse

T0 = datetime(2026, 1, 1, 8, 0, 0)
HOSTILE = 'o\'brien"; drop table x --'


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def write(warehouse, table: str, rows: list[dict]) -> None:
    warehouse.write_arrow(table_rows(table, rows), DWML_SCHEMA, table)


def run(run_id, model, status, started, task=None, gates=None, error=None, experiment=None):
    return {"run_id": run_id, "experiment": experiment or model, "model_name": model, "status": status,
            "started_at": started, "finished_at": started + timedelta(minutes=5) if status != "running" else None,
            "task": task, "algorithm": "xgboost", "gates": to_json(gates), "error": error, "created_by": "ana"}


def version(model, number, run_id, created, task="classification"):
    return {"model_name": model, "version": number, "run_id": run_id, "status": "registered", "task": task,
            "algorithm": "xgboost", "feature_model": "customer_features", "artifact_sha256": "0" * 64,
            "metrics": to_json({"roc_auc": 0.7 + number / 100}), "created_at": created, "created_by": "ana"}


def drift(drift_run_id, model, ver, computed, dataset_drift, drifting=(), score_drift=None):
    rows = [{"drift_run_id": drift_run_id, "model_name": model, "version": ver, "feature": "__dataset__",
             "statistic": "drift_share", "value": 0.5 if dataset_drift else 0.1, "threshold": 0.3,
             "is_drift": dataset_drift, "severity": "major" if dataset_drift else "none",
             "current_window": "main.customer_features, all rows", "computed_at": computed}]
    for feature, statistic in [("tenure_days", "psi"), ("tenure_days", "ks"), ("plan_code", "js_distance"),
                               ("monthly_price", "psi")]:
        rows.append({"drift_run_id": drift_run_id, "model_name": model, "version": ver, "feature": feature,
                     "statistic": statistic, "value": 0.3, "threshold": 0.1, "is_drift": feature in drifting,
                     "severity": "moderate", "computed_at": computed})
    if score_drift is not None:
        rows.append({"drift_run_id": drift_run_id, "model_name": model, "version": ver, "feature": "__score__",
                     "statistic": "psi", "value": 0.2, "threshold": 0.1, "is_drift": score_drift,
                     "severity": "none", "computed_at": computed})
    return rows


def predictions(model, ver, batch_id, scored, n, source="batch"):
    return [{"model_name": model, "version": ver, "entity_key": str(i), "score": 0.5, "batch_id": batch_id,
             "source": source, "scored_at": scored} for i in range(n)]


def performance(evaluation_id, model, ver, computed, windows):
    rows = []
    for start, metrics in windows:
        for metric, (value, degraded) in metrics.items():
            rows.append({"evaluation_id": evaluation_id, "model_name": model, "version": ver,
                         "window_start": start, "window_end": start + timedelta(days=30), "metric": metric,
                         "value": value, "baseline": 0.8, "is_degraded": degraded, "row_count": 100,
                         "computed_at": computed})
    return rows


@pytest.fixture(scope="module")
def warehouse():
    wh = DuckDBWarehouse(":memory:")
    ensure_tables(wh)
    gates = {g: {"passed": True, "decision": "pass", "audit_event_id": g} for g in ("quality", "governance", "cost")}
    write(wh, "runs", [
        run("r1", "churn", "finished", at(0), "classification", gates),
        run("r2", "churn", "finished", at(1), "classification", gates),
        run("r3", "churn", "finished", at(2), "classification", {**gates, "quality": {"decision": "overridden"}}),
        run("p1", "price", "finished", at(0), "regression", gates),
        run("p2", "price", "failed", at(3), "regression", error="GateRefused: the quality gate refused: nulls"),
        run("d1", "draft", "running", utcnow() - timedelta(hours=30)),
        run("x1", None, "finished", at(9), experiment="notebook"),  # no model: not in the overview
        run("h1", HOSTILE, "finished", at(1), "classification"),
    ])
    write(wh, "run_metrics", [
        {"run_id": "r3", "metric": "roc_auc", "value": 0.83, "split": "holdout", "logged_at": at(2.1)},
        {"run_id": "r3", "metric": "log_loss", "value": 0.41, "split": "holdout", "logged_at": at(2.1)},
        {"run_id": "r3", "metric": "roc_auc", "value": 0.95, "split": "train", "logged_at": at(2.1)},
        {"run_id": "r2", "metric": "roc_auc", "value": 0.79, "split": "holdout", "logged_at": at(1.1)},
        {"run_id": "p1", "metric": "rmse", "value": 12.5, "split": "holdout", "logged_at": at(0.1)},
        {"run_id": "p1", "metric": "mae", "value": 9.0, "split": "holdout", "logged_at": at(0.1)},
    ])
    write(wh, "model_versions", [version("churn", 1, "r1", at(0.2)), version("churn", 2, "r2", at(1.2)),
                                 version("churn", 3, "r3", at(2.2)), version("price", 1, "p1", at(0.2), "regression"),
                                 version(HOSTILE, 1, "h1", at(1.2))])
    write(wh, "model_aliases", [
        {"model_name": "churn", "alias": "production", "version": 1, "reason": None, "set_at": at(0.5), "set_by": "ana"},
        {"model_name": "churn", "alias": "production", "version": 2, "previous_version": 1, "reason": "better auc",
         "set_at": at(1.5), "set_by": "agent:mcp"},
        {"model_name": "churn", "alias": "staging", "version": 3, "set_at": at(2.5), "set_by": "bo"},
    ])
    write(wh, "drift_metrics", [
        *drift("dr1", "churn", 1, at(1.0), True, drifting=("tenure_days", "plan_code"), score_drift=True),
        *drift("dr2", "churn", 2, at(4.0), False, drifting=("tenure_days",), score_drift=False),
        {"drift_run_id": "dr2", "model_name": "churn", "version": 2, "feature": "age_years", "statistic": "ks",
         "value": 0.2, "threshold": 0.1, "is_drift": True, "severity": "moderate", "computed_at": at(4.0)},
        *drift("dp1", "price", 1, at(4.0), True, drifting=("tenure_days", "plan_code", "monthly_price")),
    ])
    write(wh, "predictions", [*predictions("churn", 1, "b-old", at(1.0), 5),
                              *predictions("churn", 2, "b-new", at(3.0), 3, source="sql"),
                              *predictions("price", 1, "b-price", at(2.0), 4)])
    write(wh, "performance_metrics", [
        *performance("e1", "churn", 1, at(1.0), [(at(-1000), {"roc_auc": (0.5, True)})]),
        *performance("e2", "churn", 2, at(5.0), [(at(-800), {"roc_auc": (0.82, False), "log_loss": (0.4, False)}),
                                                 (at(-100), {"roc_auc": (0.71, True), "log_loss": (0.45, False)})]),
        *performance("ep", "price", 1, at(5.0), [(at(-800), {"rmse": (15.0, True)}), (at(-100), {"rmse": (12.0, False)})]),
    ])
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def status(warehouse):
    result = ml_status(warehouse)
    return result, {m["model_name"]: m for m in result["models"]}


def test_lists_every_model_with_a_version_or_a_run_in_seven_queries(status):
    result, models = status
    assert sorted(models) == sorted(["churn", "price", "draft", HOSTILE])
    assert result["count"] == 4 and result["queries"] == 7
    assert "message" not in result
    json.dumps(result)  # JSON-ready


def test_versions_and_current_aliases(status):
    _, models = status
    churn = models["churn"]
    assert churn["versions"]["count"] == 3 and churn["versions"]["latest"] == 3
    assert churn["versions"]["metrics"] == {"roc_auc": pytest.approx(0.73)}
    assert churn["aliases"] == {
        "production": {"version": 2, "previous_version": 1, "set_at": at(1.5).isoformat(), "set_by": "agent:mcp",
                       "reason": "better auc"},
        "staging": {"version": 3, "previous_version": None, "set_at": at(2.5).isoformat(), "set_by": "bo",
                    "reason": None}}
    assert models["price"]["aliases"] == {}
    assert models["draft"]["versions"] is None


def test_last_training_run_with_gates_and_headline_metric(status):
    _, models = status
    churn = models["churn"]["last_training"]
    assert churn["run_id"] == "r3" and churn["status"] == "finished" and churn["registered_version"] == 3
    assert churn["gates"] == {"quality": "overridden", "governance": "pass", "cost": "pass"}
    assert churn["holdout_metrics"] == {"roc_auc": 0.83, "log_loss": 0.41}  # the train split is not holdout
    assert churn["holdout_metric"] == {"name": "roc_auc", "value": 0.83}

    price = models["price"]
    assert price["last_training"]["run_id"] == "p2" and price["last_training"]["status"] == "failed"
    assert price["last_training"]["holdout_metric"] is None and price["last_training"]["registered_version"] is None
    assert price["attention"] == ["last training run failed: GateRefused: the quality gate refused: nulls",
                                  "dataset drift in the last check (v1, 50% of features: monthly_price, plan_code, "
                                  "tenure_days)",
                                  "performance degraded in an earlier window of the last evaluation (v1, window from "
                                  "2025-11-29); the latest window is within bounds"]
    draft = models["draft"]["last_training"]
    assert draft["status"] == "running" and draft["stale"] is True
    assert "has been running for more than 24 hours" in models["draft"]["attention"][0]


def test_last_drift_check_is_the_newest(status):
    _, models = status
    drift = models["churn"]["last_drift"]
    assert drift["drift_run_id"] == "dr2" and drift["version"] == 2 and drift["computed_at"] == at(4).isoformat()
    assert drift["dataset_drift"] is False and drift["drift_share"] == 0.1 and drift["drift_share_threshold"] == 0.3
    assert drift["drifted_features"] == ["tenure_days"]  # age_years crossed KS only: recorded, not drifting
    assert drift["crossed_thresholds"] == {"age_years": ["ks"], "tenure_days": ["ks", "psi"]}
    assert drift["score_drift"] is False
    assert models["price"]["last_drift"]["score_drift"] is None  # no score compared in that check
    assert models["draft"]["last_drift"] is None


def test_last_predictions_batch(status):
    _, models = status
    assert models["churn"]["last_predictions"] == {"batch_id": "b-new", "version": 2, "source": "sql",
                                                   "scored_at": at(3).isoformat(), "row_count": 3}
    assert models["price"]["last_predictions"]["row_count"] == 4
    assert models["draft"]["last_predictions"] is None


def test_latest_window_of_the_last_evaluation(status):
    _, models = status
    perf = models["churn"]["last_performance"]
    assert perf["evaluation_id"] == "e2" and perf["version"] == 2
    assert perf["window_start"] == at(-100).isoformat() and perf["row_count"] == 100
    assert perf["metrics"] == {"log_loss": {"value": 0.45, "baseline": 0.8, "is_degraded": False},
                               "roc_auc": {"value": 0.71, "baseline": 0.8, "is_degraded": True}}
    assert perf["degraded"] is True and perf["degraded_metrics"] == ["roc_auc"]
    assert perf["last_degraded_window"] == {"window_start": at(-100).isoformat(),
                                            "window_end": (at(-100) + timedelta(days=30)).isoformat()}
    assert models["churn"]["attention"] == ["performance degraded in the latest window (v2: roc_auc below the "
                                            "allowed floor)"]
    price = models["price"]["last_performance"]
    assert price["evaluation_id"] == "ep" and price["degraded"] is False
    assert price["metrics"] == {"rmse": {"value": 12.0, "baseline": 0.8, "is_degraded": False}}
    assert price["last_degraded_window"]["window_start"] == at(-800).isoformat()
    assert models["draft"]["last_performance"] is None


def test_one_model_and_hostile_names(warehouse):
    result = ml_status(warehouse, model=HOSTILE)
    assert [m["model_name"] for m in result["models"]] == [HOSTILE]
    assert result["models"][0]["versions"]["latest"] == 1
    churn = ml_status(warehouse, model="churn")
    assert churn["count"] == 1 and churn["models"][0]["last_training"]["run_id"] == "r3"
    with pytest.raises(NotFoundError) as err:
        ml_status(warehouse, model="chrun")
    assert "did you mean 'churn'" in err.value.hint


def test_more_models_cost_no_more_queries():
    extra = DuckDBWarehouse(":memory:")
    ensure_tables(extra)
    write(extra, "runs", [run(f"r{i}", f"m{i}", "finished", at(i)) for i in range(30)])
    write(extra, "model_versions", [version(f"m{i}", v, f"r{i}", at(i)) for i in range(30) for v in (1, 2)])
    result = ml_status(extra)
    assert result["count"] == 30 and result["queries"] == 7  # as for four models
    assert {m["versions"]["count"] for m in result["models"]} == {2}
    extra.close()


def test_empty_warehouse_gives_a_friendly_result():
    empty = DuckDBWarehouse(":memory:")
    result = ml_status(empty)
    assert result["count"] == 0 and result["models"] == [] and result["queries"] == 0
    assert "dwml train" in result["message"]
    assert not empty.table_exists(DWML_SCHEMA, "runs")  # status only reads: nothing was created
    empty.close()


def test_cli_status_renders_for_people_and_json(project):
    from dwml_py.cli import app

    empty = CliRunner().invoke(app, ["status"])
    assert empty.exit_code == 0 and "No models yet" in empty.output
    with DuckDBWarehouse(str(project.profile.settings["path"])) as wh:
        ensure_tables(wh)
        write(wh, "runs", [run("r1", "churn", "failed", at(0), error="boom")])
        write(wh, "model_versions", [version("churn", 1, "r1", at(0))])
    table = CliRunner().invoke(app, ["status"])
    assert table.exit_code == 0, table.output
    assert "churn" in table.output and "v1 of 1" in table.output and "last training run failed: boom" in table.output
    as_json = CliRunner().invoke(app, ["status", "churn", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["models"][0]["last_training"]["error"] == "boom"
    missing = CliRunner().invoke(app, ["status", "nope"])
    assert missing.exit_code == 1 and "No model named 'nope'" in missing.output


@pytest.mark.parametrize("width", [120, 80])
def test_renderer_shows_every_part_at_any_width(status, monkeypatch, width):
    import re

    from dwml_py.cli_render import RENDERERS
    from dwml_py.console import stdout

    monkeypatch.setattr(stdout, "_width", width)
    result, models = status
    with stdout.capture() as capture:
        RENDERERS["get_ml_status"](result)
    text = re.sub(r"\x1b\[[0-9;]*m", "", capture.get())
    churn = text[text.index("churn"):]
    assert "v3 of 3" in churn and "production→v2" in churn and "staging→v3" in churn
    assert "roc_auc 0.83" in churn and "quality overridden, 2 pass" in churn
    assert "v2 2026-01-01 12:00 1 feature(s)" in churn  # the last drift check, not the earlier one
    assert "3 rows (sql)" in churn and "DEGRADED roc_auc 0.71" in churn
    assert "attention draft: training run d1 has been running for more than 24 hours" in " ".join(text.split())
    assert "4 model(s), 3 need attention" in text
    with stdout.capture() as capture:  # partial results (older or foreign JSON) still render
        RENDERERS["get_ml_status"]({"models": [{"model_name": "x"}]})
        RENDERERS["get_ml_status"]({})
    assert "x" in capture.get() and "No models yet" in capture.get()


def test_experiment_runs_do_not_replace_the_last_training(project):
    """A create_experiment/log_metrics run started after a training run is not the last training;
    a run whose artifact was registered is one even without an algorithm; a model known only by
    an experiment run is listed without a last training."""
    from dwml_py.tools.experiment_tools import create_experiment, log_metrics
    from dwml_py.warehouse import connect

    with connect(project) as wh:
        ensure_tables(wh)
        write(wh, "runs", [run("train-1", "churn", "finished", at(0), "classification"),
                           {**run("agent-1", "price", "finished", at(0)), "algorithm": None},
                           {**run("agent-2", "price", "finished", at(1)), "algorithm": None}])
        write(wh, "model_versions", [version("churn", 1, "train-1", at(0.5)), version("price", 1, "agent-1", at(0.5))])
    for model in ("churn", "price", "notebook"):
        created = create_experiment(project, f"{model}-ideas", model_name=model, params=["lr=0.1"])
        log_metrics(project, created["run_id"], metrics=["roc_auc=0.99"], split="holdout", finish=True)

    with connect(project) as wh:
        models = {m["model_name"]: m for m in ml_status(wh)["models"]}
        experiments = {r["model_name"]: r["run_id"] for r in wh.fetch_rows(
            "select model_name, run_id from dwml.runs where experiment like '%-ideas'")}
    assert sorted(models) == ["churn", "notebook", "price"]
    churn = models["churn"]["last_training"]
    assert churn["run_id"] == "train-1" and churn["registered_version"] == 1 and churn["algorithm"] == "xgboost"
    assert models["price"]["last_training"]["run_id"] == "agent-1"  # registered: it trained; agent-2 did not
    assert models["notebook"]["last_training"] is None and models["notebook"]["versions"] is None
    assert set(experiments) == {"churn", "price", "notebook"}  # the experiment runs exist, newer than the trainings
