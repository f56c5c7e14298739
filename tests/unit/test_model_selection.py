"""model_selection: warehouse-side characteristics on a small DuckDB table, the ranking rules,
the warehouse sample, cross-validation folds (time folds never share a snapshot) and the bake-off
with its time budget."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from dwml_py import model_selection as ms
from dwml_py.errors import InputError
from dwml_py.training_set import TrainingSpec, split
from dwml_py.warehouse.duckdb import DuckDBWarehouse

FEATURES = ["x1", "x2", "plan", "city", "flag"]


def make_table(n=800, snapshots=8, seed=0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "premium", "family"], size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x1 - x2 + (plan == "premium") - 1.5)))).astype(int)
    start = dt.date(2024, 1, 1)
    return pa.table({
        "id": np.arange(n) % (n // snapshots),
        "ts": [start + dt.timedelta(days=30 * (i // (n // snapshots))) for i in range(n)],
        "x1": pa.array([None if i % 10 == 0 else v for i, v in enumerate(x1.tolist())]),  # 10% missing
        "x2": x2, "plan": plan.tolist(),
        "city": [f"c{i}" for i in rng.integers(0, 80, size=n)],  # high cardinality
        "flag": pa.array((rng.random(n) < 0.5).tolist()),
        "label": y,
    })


def make_spec(timestamp="ts", task="classification") -> TrainingSpec:
    return TrainingSpec("m", task, "model.p.f", "main", "f", ["id"], timestamp, "model.p.f", "main", "f", "label",
                        None, FEATURES)


@pytest.fixture
def warehouse():
    wh = DuckDBWarehouse(":memory:")
    wh.write_arrow(make_table(), "main", "f", mode="replace")
    yield wh
    wh.close()


def test_characteristics_are_counted_in_the_warehouse(warehouse):
    table = make_table()
    ch = ms.data_characteristics(warehouse, make_spec())
    assert ch["rows"] == table.num_rows == 800
    assert (ch["numeric"], ch["boolean"], ch["categorical"]) == (2, 1, 2)
    assert ch["high_cardinality"] == ["city"] and ch["max_cardinality"] == 80
    assert ch["missing"] == {"x1": 0.1} and ch["max_missing_rate"] == 0.1
    assert ch["snapshots"] == 8
    labels = table.column("label").to_numpy()
    assert ch["label"]["classes"] == {"0": int((labels == 0).sum()), "1": int((labels == 1).sum())}
    # train_rows is exactly what split() leaves for fitting.
    train, _, _ = split(table, make_spec())
    assert ch["train_rows"] == train.num_rows
    train, _, _ = split(table, make_spec(timestamp=None))
    assert ms.data_characteristics(warehouse, make_spec(timestamp=None))["train_rows"] == train.num_rows
    # inputs: x1 + indicator, x2, flag, plan one-hot (3), city ordinal/target (1)
    assert ch["model_inputs"] == 2 + 1 + 1 + 3 + 1


def test_regression_label_stats(warehouse):
    ch = ms.data_characteristics(warehouse, make_spec(task="regression"))
    assert set(ch["label"]) == {"mean", "std", "min", "max"} and ch["label"]["min"] == 0.0


def base_characteristics(**overrides) -> dict:
    ch = {"task": "classification", "rows": 50_000, "train_rows": 40_000, "model_inputs": 40, "features_used": 20,
          "categorical": 2, "high_cardinality": [], "max_missing_rate": 0.0, "label": {"minority_share": 0.3}}
    ch.update(overrides)
    return ch


def names(ranking):
    return [r["algorithm"] for r in ranking]


def test_ranking_rules():
    assert names(ms.rank_algorithms(base_characteristics())) == ["xgboost", "random_forest", "logistic"]
    small = ms.rank_algorithms(base_characteristics(train_rows=400))
    assert names(small)[0] == "logistic"
    assert any("400 training rows" in r for r in small[0]["reasons"])
    big = ms.rank_algorithms(base_characteristics(train_rows=1_000_000))
    assert names(big)[0] == "xgboost" and names(big)[-1] == "random_forest"
    missing = ms.rank_algorithms(base_characteristics(max_missing_rate=0.3))
    assert any("missing" in r for r in missing[0]["reasons"])
    rare = ms.rank_algorithms(base_characteristics(label={"minority_share": 0.005}))
    assert all(any("PR AUC" in r for r in entry["reasons"]) for entry in rare)
    regression = ms.rank_algorithms(base_characteristics(task="regression", label={}))
    assert "linear" in names(regression) and "logistic" not in names(regression)
    assert [r["rank"] for r in regression] == [1, 2, 3]


def test_sample_is_deterministic_and_sorted(warehouse):
    spec = make_spec()
    first = ms.sample_training_table(warehouse, spec, 100, seed=1)
    assert first.num_rows == 100
    assert first.equals(ms.sample_training_table(warehouse, spec, 100, seed=1))
    assert not first.equals(ms.sample_training_table(warehouse, spec, 100, seed=2))
    ts = first.column("ts").to_pylist()
    assert ts == sorted(ts) and len(set(ts)) > 4  # a random sample spans the snapshots
    assert ms.sample_training_table(warehouse, spec, 10_000).num_rows == 800
    with pytest.raises(InputError, match="at least 1 row"):
        ms.sample_training_table(warehouse, spec, 0)


def test_time_folds_never_share_a_snapshot():
    table, spec = make_table(), make_spec()
    kind, folds = ms.cv_folds(table, spec, folds=4)
    assert kind == "time" and len(folds) == 4
    ts = np.array(table.column("ts").to_pylist())
    for train_idx, test_idx in folds:
        assert max(ts[train_idx]) < min(ts[test_idx])  # the past predicts the future
    kind, folds = ms.cv_folds(table, make_spec(timestamp=None), folds=4)
    assert kind == "stratified" and sum(len(t) for _, t in folds) == table.num_rows
    assert ms.cv_folds(table, make_spec(timestamp=None, task="regression"), folds=3)[0] == "kfold"
    with pytest.raises(InputError, match="at least 2"):
        ms.cv_folds(table, spec, folds=1)


def test_bake_off_reports_mean_and_std_per_algorithm():
    table, spec = make_table(), make_spec()
    fast = {"xgboost": {"n_estimators": 20}, "random_forest": {"n_estimators": 20}}
    result = ms.bake_off(table, spec, ["xgboost", "logistic", "random_forest"], folds=3, params=fast)
    assert (result["metric"], result["cv"], result["folds"], result["skipped"]) == ("roc_auc", "time", 3, [])
    assert {r["algorithm"] for r in result["results"]} == {"xgboost", "logistic", "random_forest"}
    for r in result["results"]:
        assert 0.5 < r["mean"] <= 1 and r["std"] >= 0 and r["seconds"] > 0 and len(r["scores"]) == 3
        assert r["mean"] == pytest.approx(np.mean(r["scores"]), abs=1e-6)
    means = [r["mean"] for r in result["results"]]
    assert means == sorted(means, reverse=True) and result["best"] == result["results"][0]["algorithm"]


def test_bake_off_skips_what_does_not_fit_the_time_budget():
    table, spec = make_table(), make_spec()
    # A budget smaller than one fold: the first algorithm gets one fold, then the projection stops it
    # and everything after it is skipped for lack of time.
    result = ms.bake_off(table, spec, ["random_forest", "xgboost"], folds=3, time_budget_seconds=1e-3,
                         params={"random_forest": {"n_estimators": 10}})
    assert result["results"] == []
    assert [s["algorithm"] for s in result["skipped"]] == ["random_forest", "xgboost"]
    assert all("time budget" in s["reason"] for s in result["skipped"])
    with pytest.raises(InputError, match="positive"):
        ms.bake_off(table, spec, ["xgboost"], time_budget_seconds=0)


def test_select_model_without_and_with_bake_off(warehouse):
    result = ms.select_model(warehouse, make_spec())
    assert set(result) == {"model", "characteristics", "ranking", "bake_off"} and result["bake_off"] is None
    assert [r["rank"] for r in result["ranking"]] == [1, 2, 3]
    result = ms.select_model(warehouse, make_spec(timestamp=None), run_bake_off=True, folds=2, sample_rows=300,
                             time_budget_seconds=120)
    bake = result["bake_off"]
    assert bake["rows"] == 300 and bake["cv"] == "stratified" and bake["folds"] == 2
    assert len(bake["results"]) + len(bake["skipped"]) == 3


def test_doctests():
    import doctest

    assert doctest.testmod(ms).failed == 0
