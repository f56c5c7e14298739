"""Tracking: a run is `running`, then `finished` with everything or `failed` with its error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

import dwml_py
from dwml_py import model_registry as registry
from dwml_py import tracking
from dwml_py.artifacts import ArtifactError, ArtifactStore
from dwml_py.errors import InputError, NotFoundError
from dwml_py.warehouse import connect


@pytest.fixture(autouse=True)
def _artifact_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_ARTIFACT_DIR", str(tmp_path / "artifacts"))


@pytest.fixture
def warehouse(project):
    w = connect(project)
    yield w
    w.close()


def _metric_rows(warehouse, run_id):
    return tracking.select_rows(warehouse, "run_metrics",
                                tracking.sqlmod.column("run_id").eq(tracking.sqlmod.literal(run_id)))


def test_start_run_is_exported_lazily():
    assert dwml_py.start_run is tracking.start_run
    assert "start_run" in dwml_py.__all__


def test_a_finished_run_records_params_metrics_and_fingerprint(project, monkeypatch):
    monkeypatch.setenv("DWML_ACTOR", "ana")
    with dwml_py.start_run(experiment="churn", project_dir=project.project_dir, params={"max_depth": 4},
                           tags={"team": "growth"}) as run:
        run.log_params({"eta": 0.1, "features": {"a", "b"}})
        run.log_metrics({"roc_auc": 0.81, "log_loss": 0.4}, split="holdout")
        run.log_metric("train_loss", 0.7, split="train", step=1)
        run.log_metric("train_loss", 0.5, split="train", step=2)
        run.set(data_fingerprint="fp-123", row_count=1000, feature_model="customer_features",
                label="customer_features.churned", task="classification", algorithm="xgboost", seed=42,
                manifest_checksum="abc", dbt_invocation_id="inv-1", gates={"quality": "pass"})
        with run.timed("fit"):
            pass
        ref = run.log_artifact(b"bytes of the model", name="model.ubj")
    assert run.status == "finished"
    with connect(project) as warehouse:
        row = tracking.get_run(warehouse, run.run_id)
    assert row["status"] == "finished" and row["finished_at"] >= row["started_at"]
    assert row["experiment"] == "churn" and row["created_by"] == "ana"
    assert row["params"] == {"max_depth": 4, "eta": 0.1, "features": ["a", "b"]}
    assert row["tags"] == {"team": "growth"}
    assert row["data_fingerprint"] == "fp-123" and row["row_count"] == 1000 and row["seed"] == 42
    assert row["gates"] == {"quality": "pass"} and "fit" in row["durations"]
    assert row["package_versions"]["duckdb"] and row["package_versions"]["scikit-learn"]
    assert row["git_sha"] is None or len(row["git_sha"]) == 40  # the checkout is a git repo
    assert row["artifacts"] == [{"name": "model.ubj", "uri": ref.uri, "sha256": ref.sha256, "size": ref.size,
                                 "format": "xgboost-ubj"}]
    assert len(row["metrics"]) == 4
    assert tracking.latest_metrics(row["metrics"]) == {"holdout.log_loss": 0.4, "holdout.roc_auc": 0.81,
                                                       "train.train_loss": 0.5}


def test_git_sha_is_quietly_none_outside_a_repo(tmp_path):
    assert tracking.git_sha(tmp_path) is None
    assert tracking.git_sha(None) is None


def test_the_running_row_is_visible_while_the_run_is_open(project):
    run = dwml_py.start_run(experiment="nb", project=project)
    with connect(project) as warehouse:  # the run does not hold the warehouse between writes
        assert tracking.get_run(warehouse, run.run_id)["status"] == "running"
    run.finish()
    with connect(project) as warehouse:
        assert tracking.get_run(warehouse, run.run_id)["status"] == "finished"


def test_a_run_that_raises_is_failed_with_its_error_and_no_metrics(project):
    with pytest.raises(ValueError, match="boom"), dwml_py.start_run(experiment="churn", project=project) as run:
        run.log_metrics({"roc_auc": 0.9}, split="holdout")
        run.log_params({"eta": 0.3})
        raise ValueError("boom")
    with connect(project) as warehouse:
        row = tracking.get_run(warehouse, run.run_id)
        assert row["status"] == "failed" and row["error"] == "ValueError: boom"
        assert row["params"] == {"eta": 0.3}
        assert row["metrics"] == [] and _metric_rows(warehouse, run.run_id) == []
        assert registry.list_models(warehouse) == []


def test_keyboard_interrupt_marks_the_run_failed_and_propagates(project):
    with pytest.raises(KeyboardInterrupt), dwml_py.start_run(experiment="churn", project=project) as run:
        raise KeyboardInterrupt
    with connect(project) as warehouse:
        row = tracking.get_run(warehouse, run.run_id)
    assert row["status"] == "failed" and row["error"] == "KeyboardInterrupt"


def test_an_artifact_that_cannot_be_written_fails_the_run(project, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ArtifactError), dwml_py.start_run(experiment="churn", project=project,
                                                         store=ArtifactStore(blocker / "sub")) as run:
        run.log_artifact(b"model", name="model.ubj")
    with connect(project) as warehouse:
        row = tracking.get_run(warehouse, run.run_id)
    assert row["status"] == "failed" and "Cannot write artifact" in row["error"]


def test_results_that_cannot_be_written_leave_a_failed_run_without_half_its_metrics(project, warehouse, monkeypatch):
    original = warehouse.write_arrow

    def failing_write(data, schema, name, mode="append"):
        if name == "run_metrics":
            original(data.slice(0, 1), schema, name, mode)  # half of the metrics land, then the disk fails
            raise OSError("disk full")
        return original(data, schema, name, mode)

    run = dwml_py.start_run(experiment="churn", project=project, warehouse=warehouse)
    monkeypatch.setattr(warehouse, "write_arrow", failing_write)
    with pytest.raises(OSError, match="disk full"), run:
        run.log_metrics({"a": 1.0, "b": 2.0, "c": 3.0})
    row = tracking.get_run(warehouse, run.run_id)
    assert row["status"] == "failed" and "could not record the run's results" in row["error"]
    assert _metric_rows(warehouse, run.run_id) == []  # the transaction took the partial write back


def test_a_run_with_a_given_warehouse_leaves_it_open(project, warehouse):
    with dwml_py.start_run(experiment="churn", project=project, warehouse=warehouse) as run:
        run.log_metrics({"rmse": 1.5})
    assert tracking.get_run(warehouse, run.run_id)["status"] == "finished"
    assert warehouse.fetch_scalar("select 1") == 1


@pytest.mark.parametrize("bad, match", [
    ({"auc": float("nan")}, "finite"), ({"auc": float("inf")}, "finite"), ({"auc": "high"}, "must be a number"),
    ({"auc": True}, "finite"), ({"": 1.0}, "non-empty"),
])
def test_bad_metrics_are_refused_with_the_metric_named(project, bad, match):
    run = tracking.Run(experiment="x", model_name=None, project=project)
    with pytest.raises(InputError, match=match):
        run.log_metrics(bad)


def test_bad_run_fields_are_refused(project):
    run = tracking.Run(experiment="x", model_name=None, project=project)
    with pytest.raises(InputError, match="cannot be set") as info:
        run.set(data_fingerprnt="x")
    assert "data_fingerprint" in info.value.hint
    with pytest.raises(InputError, match="task must be one of"):
        run.set(task="clustering")
    with pytest.raises(InputError, match="must be int"):
        run.set(row_count="many")
    import numpy as np

    run.set(row_count=np.int64(5))
    assert run.fields["row_count"] == 5 and type(run.fields["row_count"]) is int
    with pytest.raises(InputError, match="experiment"):
        tracking.start_run(project=project)


def test_nothing_can_be_logged_after_the_run_ended(project):
    with dwml_py.start_run(experiment="churn", project=project) as run:
        pass
    with pytest.raises(InputError, match="already finished"):
        run.log_metrics({"a": 1.0})


def test_hostile_names_and_values_are_stored_verbatim(project):
    hostile = "x'; DROP TABLE dwml.runs; --"
    with dwml_py.start_run(experiment=hostile, project=project, params={hostile: hostile}) as run:
        run.log_metrics({hostile: 1.0}, split=hostile)
    with connect(project) as warehouse:
        row = tracking.get_run(warehouse, run.run_id)
        assert row["experiment"] == hostile and row["params"] == {hostile: hostile}
        assert row["metrics"][0]["metric"] == hostile
        assert tracking.list_runs(warehouse, experiment=hostile)[0]["run_id"] == run.run_id


def test_list_runs_filters_and_validates(project):
    with dwml_py.start_run(experiment="a", model_name="m1", project=project):
        pass
    with pytest.raises(RuntimeError), dwml_py.start_run(experiment="b", project=project):
        raise RuntimeError("x")
    with connect(project) as warehouse:
        assert [r["experiment"] for r in tracking.list_runs(warehouse)] == ["b", "a"]
        assert [r["experiment"] for r in tracking.list_runs(warehouse, status="failed")] == ["b"]
        assert [r["model_name"] for r in tracking.list_runs(warehouse, model_name="m1")] == ["m1"]
        assert len(tracking.list_runs(warehouse, limit=1)) == 1
        with pytest.raises(InputError, match="status must be one of"):
            tracking.list_runs(warehouse, status="done")
        with pytest.raises(InputError, match="limit"):
            tracking.list_runs(warehouse, limit=0)


def test_run_ids_resolve_by_unique_prefix(project):
    with dwml_py.start_run(experiment="a", project=project) as run:
        pass
    with connect(project) as warehouse:
        assert tracking.resolve_run_id(warehouse, run.run_id[:8]) == run.run_id
        with pytest.raises(NotFoundError, match="No run with id"):
            tracking.resolve_run_id(warehouse, "ffffffffffff")
        with pytest.raises(NotFoundError):
            tracking.resolve_run_id(warehouse, "abc%")


def test_mark_stale_runs_fails_old_running_rows_only(project):
    old = dwml_py.start_run(experiment="old", project=project)
    fresh = dwml_py.start_run(experiment="fresh", project=project)
    with connect(project) as warehouse:
        warehouse.execute(tracking.update_statement("runs", {"started_at": tracking.utcnow() - timedelta(hours=30)},
                                           old._where()))
        listed = {r["run_id"]: r for r in tracking.list_runs(warehouse)}
        assert listed[old.run_id]["stale"] and not listed[fresh.run_id]["stale"]
        assert tracking.mark_stale_runs(warehouse, older_than_hours=24) == [old.run_id]
        row = tracking.get_run(warehouse, old.run_id)
        assert row["status"] == "failed" and "likely killed" in row["error"]
        assert tracking.get_run(warehouse, fresh.run_id)["status"] == "running"
        with pytest.raises(InputError):
            tracking.mark_stale_runs(warehouse, older_than_hours=-1)
    old.status = "failed"  # this object's process "died": it must not overwrite the verdict
    fresh.finish()


_CHILD = textwrap.dedent("""
    import sys, time
    import dwml_py
    from dwml_py.project import Project
    from dwml_py.warehouse import connect

    project = Project.locate(sys.argv[1])
    warehouse = connect(project)  # held open for the whole run, as train_model does
    run = dwml_py.start_run(experiment="killed", model_name="churn", project=project, warehouse=warehouse)
    run.log_metrics({"roc_auc": 0.9}, split="holdout")
    run.log_artifact(b"half-trained model", name="model.ubj")
    run.register()
    print(run.run_id, flush=True)
    time.sleep(120)
""")


def test_a_killed_process_leaves_no_version_and_the_next_run_works(project, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(project.project_dir)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        killed_id = child.stdout.readline().strip()
        assert killed_id, child.stderr.read()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with connect(project) as warehouse:  # DuckDB recovers the file the killed process held open
        row = tracking.get_run(warehouse, killed_id)
        assert row["status"] == "running" and row["metrics"] == []
        assert registry.list_models(warehouse) == []
        assert tracking.list_runs(warehouse, status="running")[0]["run_id"] == killed_id

    with dwml_py.start_run(experiment="retry", model_name="churn", project=project) as run:
        run.log_metrics({"roc_auc": 0.8}, split="holdout")
        run.log_artifact(b"model", name="model.ubj")
        run.register()
    assert run.version["version"] == 1 and run.version["metrics"] == {"roc_auc": 0.8}

    with connect(project) as warehouse:
        with pytest.raises(InputError, match="is running"):
            registry.register_run(warehouse, killed_id)
        assert tracking.mark_stale_runs(warehouse, older_than_hours=0) == [killed_id]
        with pytest.raises(InputError, match="is failed"):
            registry.register_run(warehouse, killed_id)
        assert [v["run_id"] for v in registry.get_model_versions(warehouse, "churn")] == [run.run_id]
