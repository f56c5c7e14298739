"""`dwml runs ...` and `dwml models ...` in-process: exit codes, --json output, one-line errors."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

import dwml_py
from dwml_py import tracking
from dwml_py.cli import app
from dwml_py.warehouse import connect

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def invoke_json(*args, code: int = 0):
    result = invoke(*args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def _artifact_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_ARTIFACT_DIR", str(tmp_path / "artifacts"))


@pytest.fixture
def runs(project):
    """Two finished runs of 'churn' that differ in max_depth, and one failed run."""
    made = []
    for depth in (4, 6):
        with dwml_py.start_run(experiment="churn", model_name="churn", project=project,
                               params={"max_depth": depth}) as run:
            run.set(task="classification", algorithm="xgboost", data_fingerprint="fp", row_count=100)
            run.log_metrics({"roc_auc": 0.7 + depth / 100}, split="holdout")
            run.log_artifact(b"model %d" % depth, name="model.ubj")
        made.append(run.run_id)
    with pytest.raises(RuntimeError), dwml_py.start_run(experiment="churn", project=project) as failed:
        raise RuntimeError("out of memory")
    made.append(failed.run_id)
    return made


def test_commands_exist_with_the_common_flags():
    for args in (["runs", "list"], ["runs", "show"], ["runs", "compare"], ["models", "list"],
                 ["models", "versions"], ["models", "register"]):
        help_text = invoke(*args, "--help").output
        assert "--json" in help_text and "--project-dir" in help_text, args


def test_runs_list_on_an_empty_warehouse():
    assert invoke_json("runs", "list") == {"filters": {"experiment": None, "model": None, "status": None,
                                                       "limit": 50}, "count": 0, "runs": [], "marked_stale": []}
    assert invoke_json("models", "list") == {"count": 0, "models": []}


def test_runs_list_show_and_compare(runs):
    first, second, failed = runs
    listed = invoke_json("runs", "list")
    assert [r["run_id"] for r in listed["runs"]] == [failed, second, first]
    assert listed["runs"][2]["metrics"] == {"holdout.roc_auc": 0.74}
    assert invoke_json("runs", "list", "--status", "failed")["runs"][0]["error"] == "RuntimeError: out of memory"
    assert invoke_json("runs", "list", "--limit", "1")["count"] == 1
    assert invoke_json("runs", "list", "--model", "nobody")["count"] == 0

    shown = invoke_json("runs", "show", first[:8])
    assert shown["run_id"] == first and shown["params"] == {"max_depth": 4}
    assert shown["latest_metrics"] == {"holdout.roc_auc": 0.74} and shown["model_versions"] == []
    assert isinstance(shown["started_at"], str)

    compared = invoke_json("runs", "compare", first, second)
    assert compared["differs"] == ["params.max_depth", "metrics.holdout.roc_auc"]
    assert compared["same_data"] is True

    for args in (("runs", "list"), ("runs", "show", first), ("runs", "compare", first, second)):
        assert invoke(*args).exit_code == 0  # the human rendering works too


def test_register_versions_and_list_models(runs):
    first, second, failed = runs
    registered = invoke_json("models", "register", first, "--description", "baseline")
    assert registered["registered"] is True and registered["version"] == 1
    assert registered["model_name"] == "churn" and registered["task"] == "classification"
    assert registered["metrics"] == {"roc_auc": 0.74} and registered["artifact_format"] == "xgboost-ubj"
    assert invoke_json("models", "register", second, "--name", "churn")["version"] == 2

    versions = invoke_json("models", "versions", "churn")
    assert versions["count"] == 2 and [v["run_id"] for v in versions["versions"]] == [first, second]
    assert versions["aliases"] == {} and versions["alias_history"] == []
    models = invoke_json("models", "list")
    assert models["models"][0]["model_name"] == "churn" and models["models"][0]["latest_version"] == 2
    assert invoke_json("runs", "show", first)["model_versions"] == [{"model_name": "churn", "version": 1}]
    assert invoke("models", "versions", "churn").exit_code == 0


def test_errors_exit_1_with_a_hint(runs):
    first, _, failed = runs
    result = invoke("models", "register", failed, "--name", "churn")
    assert result.exit_code == 1 and "only a finished run" in result.output
    invoke_json("models", "register", first)
    error = invoke_json("models", "versions", "chrn", code=1)
    assert error["error"] == "NotFoundError" and "churn" in error["hint"]
    assert invoke("runs", "compare", first).exit_code == 1
    assert invoke("runs", "show", "ffffffff").exit_code == 1
    assert invoke("runs", "list", "--status", "done").exit_code == 1
    result = invoke("models", "register", first, "--name", "bad name")
    assert result.exit_code == 1 and "not a valid name" in result.output


def test_runs_list_marks_stale_runs_only_when_asked(project):
    killed = dwml_py.start_run(experiment="churn", project=project)  # never finishes: its process "died"
    with connect(project) as warehouse:
        warehouse.execute(tracking.update_statement("runs", {"started_at": tracking.utcnow() - timedelta(hours=2)},
                                           killed._where()))
    listed = invoke_json("runs", "list", "--stale-hours", "1")
    assert listed["runs"][0]["status"] == "running" and listed["runs"][0]["stale"] is True
    assert listed["marked_stale"] == []
    marked = invoke_json("runs", "list", "--mark-stale", "--stale-hours", "1")
    assert marked["marked_stale"] == [killed.run_id] and marked["runs"][0]["status"] == "failed"


def test_tools_are_in_the_registry():
    from dwml_py.tools.registry import load_tools

    tools = {t.name: t for t in load_tools()}
    for name in ("list_runs", "show_run", "compare_experiments", "list_models", "get_model_versions",
                 "register_model"):
        assert name in tools
    assert tools["register_model"].read_only is False and tools["compare_experiments"].read_only is True
    schema = tools["compare_experiments"].json_schema()
    assert schema["properties"]["runs"]["type"] == "array" and schema["required"] == ["runs"]
