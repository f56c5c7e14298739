"""fit / evaluate / TrainedModel on small synthetic Arrow tables: every algorithm and task,
metrics against sklearn.metrics, reproducibility, the artifact round trip and clear errors."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from dwml_py.artifacts import UntrustedArtifactError
from dwml_py.errors import InputError
from dwml_py.progress import Progress, Step
from dwml_py.training import ALGORITHMS, TrainedModel, default_params, evaluate, fit
from dwml_py.training_set import TrainingSpec

FEATURES = ["x1", "x2", "plan", "city", "flag"]
FAST = {"xgboost": {"n_estimators": 30}, "random_forest": {"n_estimators": 30}}


def make_table(n=600, seed=0, task="classification", classes=2):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "premium", "family"], size=n)
    signal = 1.5 * x1 - x2 + (plan == "premium") * 1.0
    if task == "regression":
        y = pa.array(signal * 10 + rng.normal(size=n))
    elif classes == 2:
        y = pa.array((rng.random(n) < 1 / (1 + np.exp(-(signal - 1.5)))).astype(int))
    else:
        y = pa.array(np.array(["low", "mid", "high"])[np.digitize(signal + rng.normal(size=n) * 0.5, [-0.5, 0.8])])
    return pa.table({
        "x1": pa.array([None if i % 13 == 0 else v for i, v in enumerate(x1.tolist())]),
        "x2": x2, "plan": plan.tolist(),
        "city": [f"c{i}" for i in rng.integers(0, 80, size=n)],
        "flag": pa.array((rng.random(n) < 0.5).tolist()),
        "label": y,
    })


def make_spec(task="classification"):
    return TrainingSpec("m", task, "model.p.f", "main", "f", ["id"], None, "model.p.f", "main", "f", "label",
                        None, FEATURES)


def small(algorithm):
    return FAST.get(algorithm, {})


@pytest.mark.parametrize("algorithm", ["logistic", "random_forest", "xgboost"])
def test_binary_classification_metrics_match_sklearn(algorithm):
    train, holdout = make_table(seed=0), make_table(seed=1, n=300)
    model = fit(train, make_spec(), algorithm, params=small(algorithm), seed=3)
    result = evaluate(model, holdout)
    m = result["metrics"]
    y = holdout.column("label").to_numpy()
    score = model.predict_proba(holdout)[:, 1]
    pred = (score >= 0.5).astype(int)
    assert result["task"] == "classification" and result["rows"] == 300
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score)) and m["roc_auc"] > 0.75
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, score))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, score))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred)) and m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["threshold"] == 0.5 and np.array_equal(model.predict(holdout), pred)
    assert np.array_equal(model.predict_score(holdout), score)
    bins = result["calibration"]
    assert len(bins) == 10 and sum(b["count"] for b in bins) == 300
    filled = [b for b in bins if b["count"]]
    expected_ece = sum(b["count"] * abs(b["mean_score"] - b["observed_rate"]) for b in filled) / 300
    assert m["ece"] == pytest.approx(expected_ece)
    assert model.classes == [0, 1] and model.positive_class == 1


@pytest.mark.parametrize("algorithm", ["linear", "random_forest", "xgboost"])
def test_regression_metrics_match_sklearn(algorithm):
    train, holdout = make_table(task="regression"), make_table(seed=1, n=200, task="regression")
    model = fit(train, make_spec("regression"), algorithm, params=small(algorithm))
    m = evaluate(model, holdout)["metrics"]
    y, pred = holdout.column("label").to_numpy(), model.predict(holdout)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred)) and m["r2"] > 0.6
    assert model.threshold is None and model.classes is None


def test_linear_with_l1_ratio_is_elastic_net():
    model = fit(make_table(task="regression"), make_spec("regression"), "linear", params={"alpha": 0.1, "l1_ratio": 0.5})
    assert type(model.estimator).__name__ == "ElasticNet"
    assert type(fit(make_table(), make_spec(), "linear").estimator).__name__ == "LogisticRegression"


@pytest.mark.parametrize("algorithm", ["logistic", "random_forest", "xgboost"])
def test_multiclass(algorithm):
    train, holdout = make_table(classes=3), make_table(seed=1, n=300, classes=3)
    model = fit(train, make_spec(), algorithm, params=small(algorithm))
    assert model.classes == ["high", "low", "mid"]
    m = evaluate(model, holdout)["metrics"]
    proba = model.predict_proba(holdout)
    assert proba.shape == (300, 3) and m["accuracy"] > 0.5
    assert set(model.predict(holdout)) <= {"high", "low", "mid"}
    assert np.array_equal(model.predict_score(holdout), proba.max(axis=1))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_same_metrics_and_artifact_round_trip(algorithm):
    task = "regression" if algorithm == "linear" else "classification"
    train, holdout = make_table(task=task), make_table(seed=1, n=200, task=task)
    first = fit(train, make_spec(task), algorithm, params=small(algorithm), seed=7)
    second = fit(train, make_spec(task), algorithm, params=small(algorithm), seed=7)
    assert evaluate(first, holdout) == evaluate(second, holdout)
    data = first.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        meta = json.loads(archive.read("meta.json"))
    expected = {"meta.json", "preprocessor.skops", "model.json" if algorithm == "xgboost" else "estimator.skops"}
    assert names == expected
    if algorithm == "xgboost":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert "learner" in json.loads(archive.read("model.json"))  # XGBoost's own JSON
    assert meta["algorithm"] == first.algorithm and meta["seed"] == 7 and meta["features"] == first.features
    loaded = TrainedModel.from_bytes(data)
    assert np.array_equal(loaded.predict_score(holdout), first.predict_score(holdout))
    assert evaluate(loaded, holdout) == evaluate(first, holdout)
    assert loaded.feature_schema() == first.feature_schema() and loaded.params == first.params


def test_different_seed_changes_a_randomised_model():
    train, holdout = make_table(), make_table(seed=1, n=200)
    a = fit(train, make_spec(), "random_forest", params=small("random_forest"), seed=1)
    b = fit(train, make_spec(), "random_forest", params=small("random_forest"), seed=2)
    assert not np.array_equal(a.predict_score(holdout), b.predict_score(holdout))


def test_unseen_category_and_missing_values_at_predict_time():
    model = fit(make_table(), make_spec(), "xgboost", params=small("xgboost"))
    new = make_table(n=4, seed=5)
    new = new.set_column(2, "plan", pa.array(["enterprise", None, "basic", "basic"]))
    new = new.set_column(3, "city", pa.array(["atlantis", None, "c1", "c2"]))
    new = new.set_column(0, "x1", pa.array([None, None, 1.0, 2.0]))
    assert model.predict_proba(new).shape == (4, 2)
    with pytest.raises(InputError, match="lacks feature column"):
        model.predict(new.drop_columns(["plan"]))


def test_class_imbalance_is_weighted():
    train = make_table()
    y = train.column("label").to_numpy()
    model = fit(train, make_spec(), "xgboost", params=small("xgboost"))
    assert model.params["scale_pos_weight"] == pytest.approx((y == 0).sum() / (y == 1).sum())
    assert fit(train, make_spec(), "logistic").estimator.class_weight == "balanced"
    assert fit(train, make_spec(), "logistic", balance_classes=False).estimator.class_weight is None
    assert "scale_pos_weight" not in fit(train, make_spec(), "xgboost", params=small("xgboost"),
                                         balance_classes=False).params


def test_threshold_is_used_for_labels():
    train, holdout = make_table(), make_table(seed=1, n=200)
    model = fit(train, make_spec(), "logistic", threshold=0.8)
    score = model.predict_score(holdout)
    assert np.array_equal(model.predict(holdout), (score >= 0.8).astype(int))
    assert evaluate(model, holdout)["metrics"]["threshold"] == 0.8


def test_untrusted_types_are_refused_by_name():
    from sklearn.preprocessing import Normalizer

    model = fit(make_table(), make_spec(), "logistic")
    model.preprocessor = Normalizer()  # a type dwml does not put in its artifacts
    data = model.to_bytes()
    with pytest.raises(UntrustedArtifactError, match="sklearn.preprocessing._data.Normalizer"):
        TrainedModel.from_bytes(data)
    loaded = TrainedModel.from_bytes(data, trusted=["sklearn.preprocessing._data.Normalizer"])
    assert isinstance(loaded.preprocessor, Normalizer)


def test_not_an_artifact():
    from dwml_py.artifacts import ArtifactFormatError

    with pytest.raises(ArtifactFormatError, match="Not a dwml model artifact"):
        TrainedModel.from_bytes(b"not a zip")


def test_clear_errors():
    train = make_table()
    single = train.set_column(5, "label", pa.array([1] * train.num_rows))
    with pytest.raises(InputError, match="single class") as info:
        fit(single, make_spec(), "logistic")
    assert "maturity" in info.value.hint
    with pytest.raises(InputError, match="training set is empty"):
        fit(train.slice(0, 0), make_spec(), "logistic")
    nulls = train.set_column(5, "label", pa.array([None] + [1, 0] * 299 + [1]))
    with pytest.raises(InputError, match="1 training rows have a NULL label"):
        fit(nulls, make_spec(), "logistic")
    with pytest.raises(InputError, match="Unknown algorithm 'xgbost'") as info:
        fit(train, make_spec(), "xgbost")
    assert "xgboost" in info.value.hint
    with pytest.raises(InputError, match="'logistic' is for classification"):
        fit(train, make_spec("regression"), "logistic")
    with pytest.raises(InputError, match="Unknown parameter\\(s\\) 'depth'") as info:
        fit(train, make_spec(), "random_forest", params={"depth": 3})
    assert "max_depth" in info.value.hint
    empty = train.append_column("gone", pa.array([None] * train.num_rows, type=pa.string()))
    spec = make_spec()
    spec.features = FEATURES + ["gone"]
    with pytest.raises(InputError, match="'gone' is NULL in every one"):
        fit(empty, spec, "xgboost")
    with pytest.raises(InputError, match="predict_proba is for classification"):
        fit(make_table(task="regression"), make_spec("regression"), "linear").predict_proba(train)


def test_progress_reports_steps():
    seen = []

    class Recording(Progress):
        @contextlib.contextmanager
        def step(self, title):
            step = Step(title)
            step.update = lambda detail: seen.append(detail)
            seen.append(title)
            yield step

    train = make_table()
    fit(train, make_spec(), "xgboost", params={"n_estimators": 50}, progress=Recording())
    assert seen[0].startswith("Preparing 5 features of 600 rows")
    assert any(s.startswith("Fitting xgboost on 600 rows") for s in seen)
    assert "tree 25/50" in seen and "tree 50/50" in seen


def test_default_params_and_describe():
    assert default_params("xgboost", "classification")["tree_method"] == "hist"
    assert default_params("linear", "classification") == default_params("logistic", "classification")
    model = fit(make_table(), make_spec(), "logistic")
    info = model.describe()
    assert info["spec"]["label_column"] == "label" and info["fit_info"]["train_rows"] == 600
    assert set(info["package_versions"]) >= {"scikit-learn", "xgboost", "skops"}
    assert json.loads(json.dumps(info)) == info


def _mixed_table(n, seed):
    """NULLs everywhere, literal "nan"/"__missing__" strings, dictionary and large strings, booleans."""
    rng = np.random.default_rng(seed)
    words = np.array(["a", "b", "c", "zzz", "__missing__", "nan", ""], dtype=object)
    return pa.table({
        "num": pa.array(rng.normal(size=n), mask=rng.random(n) < 0.1),
        "count": pa.array(rng.integers(-2, 7, size=n), type=pa.int64()),
        "flag": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.1),
        "plan": pa.array(list(rng.choice(words, n)), mask=rng.random(n) < 0.1, type=pa.string()),
        "city": pa.array([None if v < 0.1 else f"city{int(v * 1000) % 90}" for v in rng.random(n)],
                         type=pa.large_string()),
        "tier": pa.array(list(rng.choice(["x", "y", "w"], n))).dictionary_encode(),
        "label": pa.array((rng.random(n) < 0.4).astype(int)),
    })


def test_xgboost_preprocessing_fitted_on_the_category_witness_equals_a_full_fit():
    """fit() learns XGBoost's preprocessing from a few rows holding every distinct category: the
    fitted state and the model matrix must be those of fitting on the whole table."""
    import pyarrow.compute as pc

    from dwml_py.preprocessing import build_preprocessor, infer_feature_schema, to_frame
    from dwml_py.training import category_witness

    train, new = _mixed_table(3000, 0), _mixed_table(500, 1)
    features = ["num", "count", "flag", "plan", "city", "tier"]
    schema, _ = infer_feature_schema(train, features, high_cardinality=20)
    assert {f["encoding"] for f in schema if f["kind"] == "categorical"} == {"onehot", "high_cardinality"}
    witness = category_witness(train, schema)
    assert witness.num_rows == len(pc.unique(train.column("city")))  # the widest categorical sets the rows
    full = build_preprocessor(schema, "xgboost", "classification")
    full.fit(to_frame(train, schema))
    model = fit(train, {"label_column": "label", "task": "classification", "features": features},
                "xgboost", {"n_estimators": 5}, high_cardinality=20)
    fitted = {name: step for name, step, _ in model.preprocessor.transformers_}
    for name, step, _ in full.transformers_:
        encoder = step.steps[-1][1] if hasattr(step, "steps") else step
        mine = fitted[name].steps[-1][1] if hasattr(fitted[name], "steps") else fitted[name]
        for theirs, ours in zip(getattr(encoder, "categories_", []), getattr(mine, "categories_", [])):
            assert list(map(str, theirs)) == list(map(str, ours))  # str: NaN == NaN
    assert list(full.get_feature_names_out()) == model.transformed_names
    for table in (train, new):
        expected = np.asarray(full.transform(to_frame(table, schema)), dtype=np.float64)
        assert model.transform(table).tobytes() == expected.tobytes()
