"""The model registry: versions from finished runs only, aliases with history, run comparison."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import dwml_py
from dwml_py import model_registry as registry
from dwml_py import tracking
from dwml_py.artifacts import ArtifactFormatError, ArtifactIntegrityError, ArtifactRef, ArtifactStore
from dwml_py.errors import InputError, NotFoundError
from dwml_py.warehouse import connect

FEATURES = [{"name": "tenure_months", "type": "numeric"}, {"name": "plan", "type": "categorical"}]


@pytest.fixture(autouse=True)
def _artifact_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_ARTIFACT_DIR", str(tmp_path / "artifacts"))


@pytest.fixture
def warehouse(project):
    w = connect(project)
    tracking.ensure_once(w)
    yield w
    w.close()


def _finished_run(project, warehouse, model_bytes=b"model", **fields):
    with dwml_py.start_run(experiment="churn", model_name="churn", project=project, warehouse=warehouse,
                           params=fields.pop("params", {"max_depth": 4})) as run:
        run.set(task="classification", algorithm="xgboost", feature_model="customer_features", features=FEATURES,
                **fields)
        run.log_metrics({"roc_auc": 0.8}, split="holdout")
        ref = run.log_artifact(model_bytes, name="model.ubj")
    return run, ref


def _register(warehouse, run, ref, name="churn"):
    return registry.register_model(warehouse, run.run_id, name, ref, task="classification", algorithm="xgboost",
                                   feature_model="customer_features", features=FEATURES, metrics={"roc_auc": 0.8},
                                   artifact_format="xgboost-ubj", description="first", actor="ana")


def test_versions_increment_per_model(project, warehouse):
    run, ref = _finished_run(project, warehouse)
    first = _register(warehouse, run, ref)
    second = _register(warehouse, run, ref)
    other = _register(warehouse, run, ref, name="upsell")
    assert (first["version"], second["version"], other["version"]) == (1, 2, 1)
    assert first["artifact_sha256"] == ref.sha256 and first["features"] == FEATURES
    assert first["metrics"] == {"roc_auc": 0.8} and first["created_by"] == "ana"
    assert first["status"] == "registered" and first["run_id"] == run.run_id
    assert [v["version"] for v in registry.get_model_versions(warehouse, "churn")] == [1, 2]
    models = {m["model_name"]: m for m in registry.list_models(warehouse)}
    assert models["churn"]["latest_version"] == 2 and models["churn"]["versions"] == 2
    assert models["upsell"]["latest_version"] == 1


def test_failed_and_unknown_runs_never_get_a_version(project, warehouse):
    with pytest.raises(RuntimeError), dwml_py.start_run(experiment="churn", project=project,
                                                        warehouse=warehouse) as failed:
        ref = failed.log_artifact(b"model", name="model.ubj")
        raise RuntimeError("fit diverged")
    with pytest.raises(InputError, match="is failed.*fit diverged"):
        registry.register_model(warehouse, failed.run_id, "churn", ref, task="classification", algorithm="x",
                                feature_model=None, features=None, metrics=None, artifact_format=None)
    running = dwml_py.start_run(experiment="churn", project=project, warehouse=warehouse)
    with pytest.raises(InputError, match="is running") as info:
        registry.register_model(warehouse, running.run_id, "churn", ref, task=None, algorithm=None,
                                feature_model=None, features=None, metrics=None, artifact_format=None)
    assert "--mark-stale" in info.value.hint
    with pytest.raises(NotFoundError, match="No run with id"):
        registry.register_model(warehouse, "0" * 32, "churn", ref, task=None, algorithm=None, feature_model=None,
                                features=None, metrics=None, artifact_format=None)
    assert registry.list_models(warehouse) == []
    running.finish()


def test_register_refuses_bad_arguments(project, warehouse):
    run, ref = _finished_run(project, warehouse)
    for bad_name in ("", "x'; DROP TABLE dwml.model_versions; --", "a b", "../x"):
        with pytest.raises(InputError, match="not a valid name"):
            _register(warehouse, run, ref, name=bad_name)
    with pytest.raises(InputError, match="task must be one of"):
        registry.register_model(warehouse, run.run_id, "churn", ref, task="ranking", algorithm=None,
                                feature_model=None, features=None, metrics=None, artifact_format=None)
    with pytest.raises(InputError, match="sha256"):
        registry.register_model(warehouse, run.run_id, "churn", ArtifactRef("file:///x", "abc", 1), task=None,
                                algorithm=None, feature_model=None, features=None, metrics=None, artifact_format=None)


def test_run_register_is_atomic_with_the_finish(project, warehouse):
    with dwml_py.start_run(experiment="churn", model_name="churn", project=project, warehouse=warehouse) as run:
        run.set(task="classification", features=FEATURES)
        run.log_metrics({"roc_auc": 0.7, "f1": 0.5}, split="holdout")
        run.log_metrics({"roc_auc": 0.9}, split="train")
        run.log_artifact(b"model", name="model.ubj")
        run.log_artifact(b"{}", name="preprocessor.skops")
        run.register(description="from the run")
    assert run.version["version"] == 1 and run.version["metrics"] == {"f1": 0.5, "roc_auc": 0.7}
    assert run.version["artifact_format"] == "xgboost-ubj" and run.version["features"] == FEATURES

    # a registration that cannot happen fails the run, which then has neither metrics nor a version
    with pytest.raises(NotFoundError, match="no artifact named 'missing'"), dwml_py.start_run(
            experiment="churn", model_name="churn", project=project, warehouse=warehouse) as bad:
        bad.log_metrics({"roc_auc": 0.7}, split="holdout")
        bad.log_artifact(b"model", name="model.ubj")
        bad.register(artifact="missing")
    row = tracking.get_run(warehouse, bad.run_id)
    assert row["status"] == "failed" and row["metrics"] == []
    assert [v["version"] for v in registry.get_model_versions(warehouse, "churn")] == [1]


def test_register_run_picks_the_model_artifact(project, warehouse):
    with dwml_py.start_run(experiment="e", model_name="churn", project=project, warehouse=warehouse) as run:
        run.log_artifact(b"a", name="model.json")
        run.log_artifact(b"b", name="model.ubj")
    with pytest.raises(InputError, match="cannot tell which one") as info:
        registry.register_run(warehouse, run.run_id)
    assert "--artifact" in info.value.hint
    version = registry.register_run(warehouse, run.run_id, artifact_name="model.ubj")
    assert version["artifact_format"] == "xgboost-ubj"
    with pytest.raises(NotFoundError) as info:
        registry.register_run(warehouse, run.run_id, artifact_name="model.ub")
    assert "model.ubj" in info.value.hint


def test_get_version_by_number_alias_or_latest_with_did_you_mean(project, warehouse):
    run, ref = _finished_run(project, warehouse)
    _register(warehouse, run, ref)
    _register(warehouse, run, ref)
    registry.set_alias(warehouse, "churn", "production", 1)
    assert registry.get_version(warehouse, "churn")["version"] == 2
    assert registry.get_version(warehouse, "churn", version=1)["aliases"] == ["production"]
    assert registry.get_version(warehouse, "churn", alias="production")["version"] == 1
    with pytest.raises(NotFoundError, match="No registered model named 'chrn'") as info:
        registry.get_version(warehouse, "chrn")
    assert "churn" in info.value.hint
    with pytest.raises(NotFoundError, match="no alias 'prodution'") as info:
        registry.get_version(warehouse, "churn", alias="prodution")
    assert "production" in info.value.hint
    with pytest.raises(NotFoundError, match="no version 7") as info:
        registry.get_version(warehouse, "churn", version=7)
    assert "1, 2" in info.value.hint
    with pytest.raises(InputError, match="not both"):
        registry.get_version(warehouse, "churn", version=1, alias="production")


def test_alias_history_and_rollback(project, warehouse):
    run, ref = _finished_run(project, warehouse)
    for _ in range(3):
        _register(warehouse, run, ref)
    first = registry.set_alias(warehouse, "churn", "production", 1, reason="deploy")
    assert first["previous_version"] is None and first["changed"]
    registry.set_alias(warehouse, "churn", "production", 2, reason="deploy")
    registry.set_alias(warehouse, "churn", "staging", 3)
    rollback = registry.set_alias(warehouse, "churn", "production", 1, reason="rollback", actor="oncall")
    assert rollback["previous_version"] == 2 and rollback["set_by"] == "oncall"
    same = registry.set_alias(warehouse, "churn", "production", 1)
    assert same["changed"] is False

    history = registry.alias_history(warehouse, "churn")
    assert [(h["alias"], h["version"], h["previous_version"]) for h in history] == [
        ("production", 1, None), ("production", 2, 1), ("staging", 3, None), ("production", 1, 2)]
    assert registry.get_version(warehouse, "churn", alias="production")["version"] == 1
    versions = {v["version"]: v["aliases"] for v in registry.get_model_versions(warehouse, "churn")}
    assert versions == {1: ["production"], 2: [], 3: ["staging"]}
    assert registry.list_models(warehouse)[0]["aliases"] == {"production": 1, "staging": 3}
    with pytest.raises(NotFoundError):
        registry.set_alias(warehouse, "churn", "production", 9)
    with pytest.raises(InputError, match="not a valid name"):
        registry.set_alias(warehouse, "churn", "prod uction", 1)


def test_load_model_bytes_verifies_the_hash(project, warehouse, tmp_path):
    run, ref = _finished_run(project, warehouse, model_bytes=b"the real model")
    version = _register(warehouse, run, ref)
    store = ArtifactStore(tmp_path / "artifacts")
    assert registry.load_model_bytes(store, version) == b"the real model"
    Path(ref.uri.removeprefix("file://")).write_bytes(b"the fake model")
    with pytest.raises(ArtifactIntegrityError, match=ref.sha256):
        registry.load_model_bytes(store, version)


def test_compare_runs_names_what_differs(project, warehouse):
    a, _ = _finished_run(project, warehouse, data_fingerprint="fp1", seed=1, params={"max_depth": 4, "eta": 0.1})
    b, _ = _finished_run(project, warehouse, data_fingerprint="fp1", seed=1, params={"max_depth": 6, "eta": 0.1})
    c, _ = _finished_run(project, warehouse, data_fingerprint="fp2", seed=1, params={"max_depth": 4, "eta": 0.1})
    same_data = registry.compare_runs(warehouse, [a.run_id, b.run_id[:6]])
    assert same_data["run_ids"] == [a.run_id, b.run_id]
    assert same_data["differs"] == ["params.max_depth"]
    assert same_data["params"]["max_depth"] == [4, 6] and same_data["params"]["eta"] == [0.1, 0.1]
    assert same_data["metrics"]["holdout.roc_auc"] == [0.8, 0.8]
    assert same_data["same_data"] is True
    other = registry.compare_runs(warehouse, [a.run_id, c.run_id])
    assert other["differs"] == ["data_fingerprint"] and other["same_data"] is False
    assert other["fingerprints"]["data_fingerprint"] == ["fp1", "fp2"]
    with pytest.raises(InputError, match="at least two"):
        registry.compare_runs(warehouse, [a.run_id])
    with pytest.raises(InputError, match="only one run"):
        registry.compare_runs(warehouse, [a.run_id, a.run_id])
    with pytest.raises(NotFoundError):
        registry.compare_runs(warehouse, [a.run_id, "nope"])


def test_the_spec_is_kept_with_the_version_and_read_without_the_artifact(project, warehouse, tmp_path):
    """Drift reads a version's spec (entity, timestamp, feature table) from its row: the artifact
    is not touched, even when it is gone. A version registered without one falls back to the artifact."""
    spec = {"entity": ["customer_id"], "timestamp": "snapshot_date", "feature_table": "customer_features"}
    with dwml_py.start_run(experiment="churn", model_name="churn", project=project, warehouse=warehouse) as run:
        run.set(task="classification", algorithm="xgboost", features=FEATURES)
        ref = run.log_artifact(b"not a model", name="model.ubj")
        run.register(spec=spec)
    assert ref.size > 0
    row = registry.get_version(warehouse, "churn", version=run.version["version"])
    assert row["spec"] == spec
    shutil.rmtree(tmp_path / "artifacts")  # no artifact to load: the row must suffice
    assert registry.version_spec(ArtifactStore(tmp_path / "nowhere"), row) == spec

    without, without_ref = _finished_run(project, warehouse)
    older = _register(warehouse, without, without_ref)
    assert older["spec"] is None
    with pytest.raises(ArtifactFormatError, match="Not a dwml model artifact"):  # the fallback loaded b"model"
        registry.version_spec(ArtifactStore.for_project(project), older)
