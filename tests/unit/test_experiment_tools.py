"""create_experiment and log_metrics: a run that lives in the warehouse between stateless calls,
and tracking.resume_run / Run.flush under them."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from dwml_py import audit, tracking
from dwml_py.errors import InputError, NotFoundError
from dwml_py.tools.registry import load_tools
from dwml_py.warehouse import connect

TOOLS = load_tools()


def call(project, tool, **arguments):
    return TOOLS[tool].call(project, **arguments)


def metric_rows(project, run_id):
    with connect(project) as warehouse:
        return sorted((m["metric"], m["value"], m["split"], m["step"]) for m in tracking.select_rows(
            warehouse, "run_metrics", tracking.sqlmod.column("run_id").eq(tracking.sqlmod.literal(run_id))))


def events(project, action):
    with connect(project) as warehouse:
        return audit.read_events(warehouse, action=action)


def test_create_log_and_finish_round_trip(project, monkeypatch, tmp_path):
    monkeypatch.setenv("DWML_ACTOR", "agent:test")
    created = call(project, "create_experiment", experiment="churn-exp", model_name="churn",
                   params=["max_depth=4", "objective=binary:logistic"], tags=["owner=ana"])
    run_id = created["run_id"]
    assert created["status"] == "running" and created["created_by"] == "agent:test"
    assert created["params"] == {"max_depth": 4, "objective": "binary:logistic"} and created["tags"] == {"owner": "ana"}
    assert created["metrics"] == {} and created["finished_at"] is None
    [event] = events(project, "run.create")
    assert event["actor"] == "agent:test" and event["object_name"] == run_id
    assert event["event_id"] == created["audit_event_id"]
    assert event["details"] == {"experiment": "churn-exp", "model_name": "churn"}

    # a learning curve over two calls, by a unique prefix of the id
    call(project, "log_metrics", run_id=run_id[:6], metrics=["train_loss=0.7"], split="train", step=1)
    second = call(project, "log_metrics", run_id=run_id[:6], metrics=["train_loss=0.5"], split="train", step=2,
                  params=["eta=0.1"])
    assert second["status"] == "running" and second["run_id"] == run_id
    assert second["metrics"] == {"train.train_loss": 0.5} and second["metric_rows"] == 2
    assert second["params"] == {"max_depth": 4, "objective": "binary:logistic", "eta": 0.1}
    assert second["logged"] == {"metrics": ["train_loss"], "params": ["eta"], "artifacts": [], "split": "train",
                                "step": 2}
    assert second["audit_event_id"] is None  # plain logging is in the run itself, not the audit log

    model_file = tmp_path / "model.json"
    model_file.write_text('{"trees": []}')
    done = call(project, "log_metrics", run_id=run_id, metrics=["roc_auc=0.81", "log_loss=0.4"], split="holdout",
                artifacts=[str(model_file)], finish=True)
    assert done["status"] == "finished" and done["finished_at"] is not None
    assert done["metrics"] == {"holdout.log_loss": 0.4, "holdout.roc_auc": 0.81, "train.train_loss": 0.5}
    assert done["artifacts"] == [{"name": "model.json", "sha256": hashlib.sha256(b'{"trees": []}').hexdigest(),
                                  "size": 13, "format": None}]
    assert metric_rows(project, run_id) == [("log_loss", 0.4, "holdout", None), ("roc_auc", 0.81, "holdout", None),
                                            ("train_loss", 0.5, "train", 2), ("train_loss", 0.7, "train", 1)]
    [finished] = events(project, "run.finish")
    assert finished["actor"] == "agent:test" and finished["event_id"] == done["audit_event_id"]

    with pytest.raises(InputError, match="already finished"):
        call(project, "log_metrics", run_id=run_id, metrics=["x=1"])
    # the registry can register what the run logged, like any finished run
    with connect(project) as warehouse:
        assert tracking.get_run(warehouse, run_id)["params"]["eta"] == 0.1


def test_failing_a_run_keeps_what_the_call_logged(project):
    run_id = call(project, "create_experiment", experiment="exp")["run_id"]
    failed = call(project, "log_metrics", run_id=run_id, metrics=["rows_seen=1200"], status="failed",
                  error="out of memory at fold 3")
    assert failed["status"] == "failed" and failed["error"] == "out of memory at fold 3"
    assert metric_rows(project, run_id) == [("rows_seen", 1200.0, None, None)]
    [event] = events(project, "run.fail")
    assert event["details"]["error"] == "out of memory at fold 3"

    other = call(project, "create_experiment", experiment="exp")["run_id"]
    ended = call(project, "log_metrics", run_id=other, finish=True, status="failed")
    assert ended["status"] == "failed" and ended["error"] == "failed (reported by the caller)"


def test_bad_calls_name_the_problem(project):
    run_id = call(project, "create_experiment", experiment="exp")["run_id"]
    with pytest.raises(NotFoundError) as unknown:
        call(project, "log_metrics", run_id=run_id[:-1] + "x", metrics=["a=1"])
    assert "No run with id" in unknown.value.message and run_id in unknown.value.hint  # did you mean ...
    with pytest.raises(InputError, match="Nothing to log"):
        call(project, "log_metrics", run_id=run_id)
    with pytest.raises(InputError, match="must be a number"):
        call(project, "log_metrics", run_id=run_id, metrics=["auc=high"])
    with pytest.raises(InputError, match="--metric takes KEY=VALUE"):
        call(project, "log_metrics", run_id=run_id, metrics=["auc"])
    with pytest.raises(InputError, match="--error describes a failed run"):
        call(project, "log_metrics", run_id=run_id, finish=True, error="x")
    with pytest.raises(InputError, match="no --metric"):
        call(project, "log_metrics", run_id=run_id, params=["a=1"], split="holdout")
    with pytest.raises(InputError, match="must be one of"):
        call(project, "log_metrics", run_id=run_id, status="done")
    with pytest.raises(InputError, match="experiment name is needed"):
        call(project, "create_experiment", experiment="  ")
    # nothing of the refused calls was written
    assert metric_rows(project, run_id) == []


def test_resume_run_and_flush_from_python(project):
    run = tracking.start_run(experiment="nb", project=project, params={"a": 1})
    run.set(row_count=10, task="classification")
    run.flush()
    later = tracking.resume_run(run.run_id[:8], project=project)  # another process, a restarted notebook
    assert later.run_id == run.run_id and later.experiment == "nb" and later.params == {"a": 1}
    assert later.fields == {"row_count": 10, "task": "classification"}
    later.log_metric("auc", 0.7, split="holdout")
    later.flush()
    later.log_metric("auc", 0.75, split="holdout", step=2)
    later.finish()  # writes only what the flush did not
    with connect(project) as warehouse:
        row = tracking.get_run(warehouse, run.run_id)
    assert row["status"] == "finished" and row["row_count"] == 10 and row["params"] == {"a": 1}
    assert sorted((m["value"], m["step"]) for m in row["metrics"]) == [(0.7, None), (0.75, 2)]
    with pytest.raises(InputError, match="already finished"):
        tracking.resume_run(run.run_id, project=project)


def test_cli_round_trip_renders(project):
    from dwml_py.cli import app

    runner = CliRunner()
    created = runner.invoke(app, ["runs", "create", "cli-exp", "--model", "churn", "--param", "depth=3", "--json"])
    assert created.exit_code == 0, created.output
    run_id = json.loads(created.stdout)["run_id"]
    logged = runner.invoke(app, ["runs", "log", run_id[:8], "--metric", "roc_auc=0.8", "--split", "holdout"])
    assert logged.exit_code == 0, logged.output
    assert "Logged 1 metrics (split holdout)" in logged.output and "roc_auc=0.8" in logged.output
    finished = runner.invoke(app, ["runs", "log", run_id[:8], "--finish"])
    assert finished.exit_code == 0 and "finished" in finished.output
    again = runner.invoke(app, ["runs", "log", run_id[:8], "--metric", "a=1"])
    assert again.exit_code == 1 and "already finished" in again.output
    shown = runner.invoke(app, ["runs", "create", "other"])
    assert shown.exit_code == 0 and "Started run" in shown.output and "dwml runs log" in shown.output


def test_renderers_survive_partial_results():
    from dwml_py.cli_render import RENDERERS
    from dwml_py.console import stdout

    with stdout.capture() as capture:
        RENDERERS["create_experiment"]({})
        RENDERERS["log_metrics"]({"run_id": "abc", "status": "failed", "error": "boom", "logged": {"metrics": ["a"]}})
    text = capture.get()
    assert "Started run" in text and "Logged 1 metrics to run abc" in text and "boom" in text
