"""Artifact storage: atomic content-addressed writes, sha256 verified before every load, no pickle."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from dwml_py import artifacts
from dwml_py.artifacts import (ArtifactError, ArtifactFormatError, ArtifactIntegrityError, ArtifactNotFoundError,
                               ArtifactStore, UntrustedArtifactError, artifact_root, dump_sklearn, dump_xgboost,
                               load_sklearn, load_xgboost)
from dwml_py.errors import DwmlError, InputError


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def test_docstring_examples():
    assert doctest.testmod(artifacts).failed == 0


def test_put_get_round_trip_content_addressed(store):
    ref = store.put(b"model bytes", "model.ubj")
    path = Path(ref.uri.removeprefix("file://"))
    assert path == store.root / ref.sha256[:2] / ref.sha256 / "model.ubj"
    assert ref.size == len(b"model bytes") and ref.name == "model.ubj"
    assert store.get(ref.uri, ref.sha256) == b"model bytes"
    assert store.put(b"model bytes", "model.ubj") == ref  # same content: same place, written once
    assert [p.name for p in path.parent.iterdir()] == ["model.ubj"]  # no temp files left behind


def test_put_is_atomic_when_the_rename_fails(store, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts.os, "replace", broken_replace)
    with pytest.raises(ArtifactError, match="No space left") as info:
        store.put(b"x" * 1000, "model.ubj")
    assert "disk space" in info.value.hint
    leftovers = [p for p in store.root.rglob("*") if p.is_file()]
    assert leftovers == []  # neither a partial final file nor a temp file


def test_tampered_artifact_is_refused_with_both_hashes(store):
    ref = store.put(b"the original model", "model.ubj")
    path = Path(ref.uri.removeprefix("file://"))
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01  # flip one bit on disk
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError) as info:
        store.get(ref.uri, ref.sha256)
    message = str(info.value)
    assert "model.ubj" in message and ref.sha256 in message
    assert artifacts.sha256_hex(bytes(data)) in message
    assert "retrain" in info.value.hint
    assert isinstance(info.value, DwmlError)


def test_missing_artifact_names_the_fix(store):
    ref = store.put(b"abc", "model.ubj")
    Path(ref.uri.removeprefix("file://")).unlink()
    with pytest.raises(ArtifactNotFoundError, match="missing") as info:
        store.get(ref.uri, ref.sha256)
    assert "DWML_ARTIFACT_DIR" in info.value.hint


def test_moved_artifact_directory_is_found_under_the_new_root(tmp_path):
    old = ArtifactStore(tmp_path / "old")
    ref = old.put(b"abc", "model.ubj")
    (tmp_path / "old").rename(tmp_path / "new")
    assert ArtifactStore(tmp_path / "new").get(ref.uri, ref.sha256) == b"abc"


def test_unwritable_root_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the artifact folder should be")
    with pytest.raises(ArtifactError, match="Cannot write artifact 'model.ubj'") as info:
        ArtifactStore(blocker / "artifacts").put(b"abc", "model.ubj")
    assert "DWML_ARTIFACT_DIR" in info.value.hint


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 300, "model.tmp", "semi;colon"])
def test_artifact_names_must_be_plain_file_names(store, name):
    with pytest.raises(InputError, match="plain file name"):
        store.put(b"abc", name)


def test_bad_expected_hash_is_an_input_error(store):
    ref = store.put(b"abc", "a.bin")
    with pytest.raises(InputError, match="64 hex"):
        store.get(ref.uri, "nope")


def test_artifact_root_precedence(project, tmp_path, monkeypatch):
    monkeypatch.delenv("DWML_ARTIFACT_DIR", raising=False)
    assert artifact_root(project) == project.project_dir / "artifacts"
    project.config.setdefault("vars", {})["dwml_artifact_dir"] = "custom_artifacts"
    try:
        assert artifact_root(project) == project.project_dir / "custom_artifacts"
        monkeypatch.setenv("DWML_ARTIFACT_DIR", str(tmp_path / "env"))
        assert artifact_root(project) == tmp_path / "env"
    finally:
        del project.config["vars"]["dwml_artifact_dir"]


# -- serialisation -----------------------------------------------------------------------------

def _data():
    import pandas as pd

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"tenure": rng.normal(size=80), "plan": rng.choice(["a", "b", "c"], size=80)})
    X.loc[::7, "tenure"] = np.nan
    y = (rng.random(80) > 0.5).astype(int)
    return X, y


def _pipeline(estimator):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["tenure"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
    ])
    return Pipeline([("pre", pre), ("model", estimator)])


@pytest.mark.parametrize("make", ["logistic", "forest", "xgboost"])
def test_sklearn_pipelines_round_trip_through_skops(make):
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    estimator = {"logistic": LogisticRegression(), "forest": RandomForestClassifier(n_estimators=5, random_state=0),
                 "xgboost": xgb.XGBClassifier(n_estimators=5, max_depth=2)}[make]
    X, y = _data()
    model = _pipeline(estimator).fit(X, y)
    data = dump_sklearn(model)
    assert not data.startswith(b"\x80")  # a zip of JSON and arrays, not a pickle stream
    loaded = load_sklearn(data)
    np.testing.assert_array_equal(model.predict_proba(X), loaded.predict_proba(X))


def test_untrusted_skops_type_is_refused_and_named():
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _data()
    data = dump_sklearn(KNeighborsClassifier().fit(X[["tenure"]].fillna(0), y))
    with pytest.raises(UntrustedArtifactError) as info:
        load_sklearn(data)
    assert "sklearn.neighbors._classification.KNeighborsClassifier" in info.value.message
    assert "trusted=" in info.value.hint
    # an explicit decision to trust it lets it load
    trusted = sorted(artifacts.skops_types(data) - set(artifacts.TRUSTED_TYPES))
    assert load_sklearn(data, trusted=trusted).predict(X[["tenure"]].fillna(0)).shape == (80,)


def test_trusted_types_are_explicit_and_cover_dwml_models():
    assert "sklearn.pipeline.Pipeline" in artifacts.TRUSTED_TYPES
    assert "xgboost.sklearn.XGBClassifier" in artifacts.TRUSTED_TYPES
    dangerous = ("os.", "subprocess.", "builtins.eval", "builtins.exec", "builtins.getattr")
    assert not any(t.startswith(dangerous) for t in artifacts.TRUSTED_TYPES)


def test_not_a_skops_file_is_a_format_error():
    with pytest.raises(ArtifactFormatError, match="Not a skops file"):
        load_sklearn(b"definitely not a zip")


@pytest.mark.parametrize("raw_format", ["json", "ubj"])
def test_xgboost_round_trips_predict_identically(raw_format):
    import xgboost as xgb

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 2, size=200)
    classifier = xgb.XGBClassifier(n_estimators=10, max_depth=3, tree_method="hist").fit(X, y)
    loaded = load_xgboost(dump_xgboost(classifier, raw_format))
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(classifier.predict_proba(X), loaded.predict_proba(X))

    regressor = xgb.XGBRegressor(n_estimators=10).fit(X, rng.normal(size=200))
    assert isinstance(load_xgboost(dump_xgboost(regressor, raw_format)), xgb.XGBRegressor)

    booster = classifier.get_booster()
    loaded_booster = load_xgboost(dump_xgboost(booster, raw_format))
    assert isinstance(loaded_booster, xgb.Booster)
    matrix = xgb.DMatrix(X)
    np.testing.assert_array_equal(booster.predict(matrix), loaded_booster.predict(matrix))
    assert classifier.get_booster().attr("scikit_learn") is None  # dumping left the model untouched


def test_xgboost_refuses_garbage_and_wrong_objects():
    with pytest.raises(ArtifactFormatError, match="Not a valid XGBoost model"):
        load_xgboost(b"garbage")
    with pytest.raises(InputError, match="expects an xgboost"):
        dump_xgboost(object())
    with pytest.raises(InputError, match="raw_format"):
        dump_xgboost(object(), "pickle")


def test_no_pickle_in_the_storage_modules():
    root = Path(artifacts.__file__).parent
    for module in ("artifacts.py", "tracking.py", "model_registry.py"):
        source = (root / module).read_text()
        assert "import pickle" not in source and "joblib" not in source, module
