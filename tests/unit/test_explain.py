"""explain: one-hot columns map back to their feature, importances per original feature, and
per-row contributions that add up to the model output (XGBoost margin, linear decision
function, random forest probability); explain_model loads a registered version."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import dwml_py
from dwml_py import explain as ex
from dwml_py import tracking
from dwml_py.errors import InputError
from dwml_py.training import fit
from dwml_py.training_set import TrainingSpec

FEATURES = ["x1", "x2", "noise", "plan", "city", "flag"]
FAST = {"xgboost": {"n_estimators": 40}, "random_forest": {"n_estimators": 30}}


def make_table(n=800, seed=0, task="classification", classes=2) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1, x2, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "premium", "family"], size=n)
    signal = 2.0 * x1 - x2 + (plan == "premium") * 1.5
    if task == "regression":
        y = pa.array(signal * 10 + rng.normal(size=n))
    elif classes == 2:
        y = pa.array((rng.random(n) < 1 / (1 + np.exp(-(signal - 0.5)))).astype(int))
    else:
        y = pa.array(np.array(["low", "mid", "high"])[np.digitize(signal + rng.normal(size=n) * 0.5, [-0.5, 0.8])])
    return pa.table({
        "id": np.arange(n),
        "x1": pa.array([None if i % 13 == 0 else v for i, v in enumerate(x1.tolist())]),
        "x2": x2, "noise": noise, "plan": plan.tolist(),
        "city": [f"c{i}" for i in rng.integers(0, 80, size=n)],
        "flag": pa.array((rng.random(n) < 0.5).tolist()),
        "label": y,
    })


def make_spec(task="classification") -> TrainingSpec:
    return TrainingSpec("m", task, "model.p.f", "main", "f", ["id"], None, "model.p.f", "main", "f", "label",
                        None, FEATURES)


def trained(algorithm, task="classification", classes=2):
    return fit(make_table(task=task, classes=classes), make_spec(task), algorithm, params=FAST.get(algorithm), seed=0)


@pytest.mark.parametrize("algorithm", ["xgboost", "logistic", "random_forest"])
def test_every_transformed_column_maps_to_its_feature(algorithm):
    model = trained(algorithm)
    sources = ex.source_features(model)
    assert len(sources) == len(model.transformed_names) == model.transform(make_table(n=5)).shape[1]
    assert set(sources) == set(FEATURES)
    named = dict(zip(model.transformed_names, sources))
    assert named["plan_premium"] == "plan"
    if algorithm != "xgboost":  # XGBoost routes missing values itself: no indicator column
        assert named["missingindicator_x1"] == "x1"


def test_xgboost_contributions_add_up_to_the_margin():
    model = trained("xgboost")
    table = make_table(n=50, seed=3)
    result = ex.row_contributions(model, table, rows=20, keys=["id"])
    margin = model.estimator.get_booster().predict(__import__("xgboost").DMatrix(model.transform(table.slice(0, 20))),
                                                   output_margin=True)
    assert result["space"] == "log-odds margin" and result["additivity_error"] < 1e-5
    for row, m in zip(result["rows"], margin):
        assert row["bias"] + sum(row["contributions"].values()) == pytest.approx(float(m), abs=1e-5)
        assert row["output"] == pytest.approx(float(m), abs=1e-6)
        assert set(row["contributions"]) == set(FEATURES)
    assert result["rows"][3]["keys"] == {"id": 3}
    scores = model.predict_score(table.slice(0, 20))
    assert [r["score"] for r in result["rows"]] == pytest.approx(scores.tolist())
    first = list(result["rows"][0]["contributions"].values())
    assert first == sorted(first, key=abs, reverse=True)  # largest effect first


def test_linear_contributions_add_up_to_the_decision_function():
    model = trained("logistic")
    table = make_table(n=30, seed=4)
    result = ex.row_contributions(model, table, rows=30)
    decision = model.estimator.decision_function(model.transform(table))
    for row, d in zip(result["rows"], decision):
        assert row["bias"] == pytest.approx(float(model.estimator.intercept_[0]))
        assert row["bias"] + sum(row["contributions"].values()) == pytest.approx(float(d), abs=1e-9)
    # coefficient x value, summed over the one-hot columns of plan
    x = model.transform(table.slice(0, 1))[0]
    coef = model.estimator.coef_[0]
    plan_cols = [i for i, n in enumerate(model.transformed_names) if n.startswith("plan_")]
    assert result["rows"][0]["contributions"]["plan"] == pytest.approx(float((coef[plan_cols] * x[plan_cols]).sum()))


def test_regression_and_multiclass_contributions_add_up():
    ridge = trained("linear", task="regression")
    table = make_table(n=20, task="regression", seed=5)
    result = ex.row_contributions(ridge, table, rows=20)
    assert result["space"] == "prediction" and result["additivity_error"] < 1e-8
    assert [r["output"] for r in result["rows"]] == pytest.approx(ridge.predict(table).tolist())
    for algorithm in ("xgboost", "logistic"):
        model = trained(algorithm, classes=3)
        result = ex.row_contributions(model, make_table(n=20, classes=3, seed=6), rows=20)
        assert result["additivity_error"] < 1e-5, algorithm


def test_random_forest_path_decomposition_adds_up_to_the_probability():
    model = trained("random_forest")
    table = make_table(n=25, seed=7)
    result = ex.row_contributions(model, table, rows=25)
    assert result["method"].startswith("tree path") and result["space"] == "probability"
    assert result["additivity_error"] < 1e-9
    assert [r["output"] for r in result["rows"]] == pytest.approx(model.predict_score(table).tolist())
    regression = trained("random_forest", task="regression")
    result = ex.row_contributions(regression, make_table(n=10, task="regression"), rows=10)
    assert result["additivity_error"] < 1e-9


@pytest.mark.parametrize("algorithm", ["xgboost", "logistic", "random_forest"])
def test_importance_finds_the_signal(algorithm):
    model = trained(algorithm)
    result = ex.explain(model, make_table(n=600, seed=9), rows=3, repeats=3)
    kinds = {"xgboost": "total_gain", "logistic": "abs_coefficient", "random_forest": "impurity"}
    assert result["model_importance_kind"] == kinds[algorithm]
    assert result["permutation"]["available"] and result["permutation"]["metric"] == "roc_auc"
    importance = {e["feature"]: e for e in result["importance"]}
    assert set(importance) == set(FEATURES)
    assert sum(e["model_importance"] for e in importance.values()) == pytest.approx(1.0, abs=1e-5)
    assert result["importance"][0]["feature"] == "x1"  # the strongest signal ranks first by permutation
    assert importance["x1"]["permutation_mean"] > importance["noise"]["permutation_mean"] + 0.02
    assert importance["x1"]["model_importance"] > importance["noise"]["model_importance"]
    assert len(result["contributions"]["rows"]) == 3


def test_permutation_needs_a_label_and_regression_uses_r2():
    model = trained("xgboost")
    table = make_table(n=100).drop_columns(["label"])
    result = ex.explain(model, table, rows=2)
    assert result["permutation"]["available"] is False and "label" in result["permutation"]["reason"]
    assert all(e["permutation_mean"] is None for e in result["importance"])
    ridge = trained("linear", task="regression")
    assert ex.explain(ridge, make_table(n=200, task="regression"), rows=1)["permutation"]["metric"] == "r2"
    with pytest.raises(InputError, match="lacks feature"):
        ex.explain(model, table.drop_columns(["x1"]))
    with pytest.raises(InputError, match="at least 1"):
        ex.row_contributions(model, table, rows=0)


def test_explain_model_tool_loads_a_registered_version(project):
    from dwml_py.tools.registry import load_tools
    from dwml_py.warehouse import connect

    model = trained("xgboost")
    with connect(project) as warehouse:
        tracking.ensure_once(warehouse)
        with dwml_py.start_run(experiment="m", model_name="m", project=project, warehouse=warehouse) as run:
            run.set(task="classification", algorithm="xgboost")
            run.log_artifact(model.to_bytes(), name="model.zip")
            run.register("m")
        warehouse.write_arrow(make_table(n=300, seed=11), "main", "explain_rows", mode="replace")
    result = load_tools()["explain_model"].call(project, name="m", relation="main.explain_rows", rows=2, repeats=2)
    assert (result["model"], result["version"], result["algorithm"]) == ("m", 1, "xgboost")
    assert result["source"].startswith("main.explain_rows") and result["permutation"]["available"]
    assert len(result["contributions"]["rows"]) == 2 and result["contributions"]["additivity_error"] < 1e-5


def test_doctests():
    import doctest

    assert doctest.testmod(ex).failed == 0
