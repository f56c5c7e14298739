"""Out-of-core XGBoost training (dwml_py.out_of_core) against the in-memory path on the same DuckDB table."""

from __future__ import annotations

import os
import tracemalloc
import warnings

import numpy as np
import pyarrow as pa
import pytest

from dwml_py import out_of_core as ooc
from dwml_py.errors import ConfigError, InputError
from dwml_py.training import TrainedModel, evaluate, fit
from dwml_py.training_set import TrainingSpec, build_training_query, fetch_training_table, split
from dwml_py.warehouse.duckdb import DuckDBWarehouse

ROWS, BATCH = 20_000, 2_000
FEATURES = ["amount", "visits", "active", "plan", "city", "signup"]
PARAMS = {"n_estimators": 40}


def _table(rows: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 30.0, rows)
    visits = rng.poisson(4, rows)
    active = rng.random(rows) < 0.6
    plan = rng.choice(["basic", "plus", "pro", "team", "max"], rows, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    city = np.char.add("c", (rng.zipf(1.4, rows) % 120).astype(str))  # 120 values: ordinal codes
    logit = 0.02 * amount - 0.3 * visits + 0.8 * active + (plan == "pro") * 1.2 - 1.0 + rng.normal(0, 1, rows)
    amount_missing = rng.random(rows) < 0.05
    plan_missing = rng.random(rows) < 0.03
    return pa.table({
        "id": pa.array(np.arange(rows) % (rows // 10), pa.int64()),
        "snapshot": pa.array(np.datetime64("2024-01-01") + 30 * (np.arange(rows) // (rows // 10))),
        "amount": pa.array(amount, mask=amount_missing),
        "visits": pa.array(visits, pa.int32()),
        "active": pa.array(active),
        "plan": pa.array(plan.astype(object), pa.string(), mask=plan_missing),
        "city": pa.array(city.astype(object), pa.string()),
        "signup": pa.array(np.full(rows, np.datetime64("2020-01-01"))),  # a date: dropped by both paths
        "churned": pa.array((logit > 0).astype(np.int64)),
        "spend_next": pa.array(amount * 0.5 + visits * 3 + rng.normal(0, 5, rows)),
    })


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    wh = DuckDBWarehouse(str(tmp_path_factory.mktemp("ooc") / "w.duckdb"))
    wh.write_arrow(_table(ROWS), "main", "feats", mode="replace")
    yield wh
    wh.close()


def _spec(task: str = "classification", label: str = "churned", timestamp: str | None = "snapshot") -> TrainingSpec:
    # Without a timestamp the entity is (id, snapshot), so that the training query's order is unique.
    entity = ["id"] if timestamp else ["id", "snapshot"]
    return TrainingSpec(model_name="m", task=task, feature_model="model.p.feats", feature_schema="main",
                        feature_table="feats", entity=entity, timestamp=timestamp, label_model="model.p.feats",
                        label_schema="main", label_table="feats", label_column=label, features=list(FEATURES))


def _both(warehouse, spec, method, params=PARAMS):
    query = build_training_query(spec, "duckdb")
    table = fetch_training_table(warehouse, query)
    train, holdout, info = split(table, spec, method=method, holdout_fraction=0.2, seed=0)
    in_memory = fit(train, spec, "xgboost", params, seed=0)
    data = ooc.StreamedTrainingSet.plan(warehouse, query, spec, method=method, holdout_fraction=0.2, seed=0,
                                        batch_rows=BATCH)
    streamed, sample = ooc.fit_streamed(data, spec, "xgboost", params, seed=0)
    return {"train": train, "holdout": holdout, "info": info, "in_memory": in_memory, "data": data,
            "streamed": streamed, "sample": sample}


@pytest.fixture(scope="module")
def time_split(warehouse):
    return _both(warehouse, _spec(), "time")


def test_streamed_split_is_the_in_memory_split(time_split):
    assert time_split["data"].split_info == time_split["info"]


def test_streamed_schema_and_preprocessing_equal_the_in_memory_ones(time_split):
    a, b = time_split["in_memory"], time_split["streamed"]
    assert b.features == a.features  # categories, missing flags, encodings, types
    assert b.dropped == a.dropped == [{"name": "signup", "type": "date32[day]",
                                       "reason": "date/time: derive an age in the dbt model instead"}]
    assert b.transformed_names == a.transformed_names
    assert b.params == a.params  # scale_pos_weight computed from streamed class counts
    assert b.fit_info["class_counts"] == a.fit_info["class_counts"]
    holdout = time_split["holdout"]
    np.testing.assert_array_equal(b.transform(holdout), a.transform(holdout))


def test_streamed_model_matches_the_in_memory_model(time_split):
    a, b, holdout = time_split["in_memory"], time_split["streamed"], time_split["holdout"]
    # Same max_bin on the same rows: XGBoost's quantile sketch of 16k rows in 2k-row batches gives
    # the same cut points here, so the models agree to float32 rounding.
    np.testing.assert_allclose(b.predict_score(holdout), a.predict_score(holdout), atol=1e-5)
    expected = evaluate(a, holdout)
    got = ooc.evaluate_streamed(b, time_split["data"])
    assert got["rows"] == expected["rows"] == holdout.num_rows
    for name, value in expected["metrics"].items():
        assert got["metrics"][name] == pytest.approx(value, abs=1e-4), name


def test_the_artifact_is_a_normal_trained_model(time_split):
    b, holdout = time_split["streamed"], time_split["holdout"]
    loaded = TrainedModel.from_bytes(b.to_bytes())
    assert type(loaded.estimator).__name__ == "XGBClassifier"
    np.testing.assert_array_equal(loaded.predict_score(holdout), b.predict_score(holdout))
    assert loaded.fit_info["out_of_core"]["batch_rows"] == BATCH


def test_the_query_runs_once_and_later_passes_read_the_spill_file(warehouse, time_split):
    data = time_split["data"]
    assert data.passes >= 3 and data.queries == 1  # statistics + XGBoost's passes, one query
    spill = data._spill_path()
    assert os.path.getsize(spill) > 0
    data.close()
    assert not os.path.exists(spill)
    # without the spill file every pass re-runs the query, with the same model
    spec = _spec()
    fresh = ooc.StreamedTrainingSet.plan(warehouse, build_training_query(spec, "duckdb"), spec, method="time",
                                         batch_rows=BATCH)
    fresh.spill = False
    model, _ = ooc.fit_streamed(fresh, spec, "xgboost", PARAMS, seed=0)
    assert fresh.queries == fresh.passes >= 3
    holdout = time_split["holdout"]
    np.testing.assert_array_equal(model.predict_score(holdout), time_split["streamed"].predict_score(holdout))


def _pages(folder: str) -> dict[str, int]:
    """{path: bytes} of XGBoost's page cache files under an out-of-core work folder."""
    import os

    return {os.path.join(root, f): os.path.getsize(os.path.join(root, f))
            for root, _, files in os.walk(folder) if "xgboost-pages-" in root for f in files}


def test_the_quantised_matrix_is_paged_to_disk_and_the_cache_removed(warehouse, monkeypatch):
    import xgboost as xgb

    seen = []
    train = xgb.train

    def recording_train(params, dtrain, *args, **kwargs):  # the real xgb.train, noting what it trains on
        seen.append((type(dtrain).__name__, _pages(data.work_dir())))
        return train(params, dtrain, *args, **kwargs)

    monkeypatch.setattr(xgb, "train", recording_train)
    spec = _spec()
    data = ooc.StreamedTrainingSet.plan(warehouse, build_training_query(spec, "duckdb"), spec, method="time",
                                        batch_rows=BATCH)
    ooc.fit_streamed(data, spec, "xgboost", PARAMS, seed=0)
    (matrix, pages), = seen
    assert matrix == "ExtMemQuantileDMatrix"
    # one byte per cell at 256 bins: 16k training rows x 65 inputs, in pages on disk, not in memory
    assert sum(pages.values()) >= data.split_info["train_rows"] * 60
    assert pages and not _pages(data.work_dir())  # removed after the fit
    assert os.path.exists(data._spill_path())  # the spill file stays for the holdout pass

    # a fit that fails (XGBoost refuses a parameter) removes its cache too, after XGBoost let go
    # of it (else XGBoost warns that it could not remove its files)
    seen.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="refused its parameters"):
            ooc.fit_streamed(data, spec, "xgboost", {**PARAMS, "max_depth": -1}, seed=0)
    assert seen and seen[0][1] and not _pages(data.work_dir())
    assert not [w for w in caught if "cache file" in str(w.message)]
    data.close()
    assert not os.path.exists(data._spill_dir or "/nonexistent")


def test_memory_is_bounded_by_the_batch(warehouse, time_split):
    data = time_split["data"]
    assert data.largest_batch_rows == BATCH  # never more rows held than one batch
    assert data.split_info["train_rows"] / BATCH >= 8  # many batches
    spec, query = _spec(), build_training_query(_spec(), "duckdb")
    fresh = ooc.StreamedTrainingSet.plan(warehouse, query, spec, method="time", batch_rows=BATCH)
    tracemalloc.start()
    try:
        ooc.fit_streamed(fresh, spec, "xgboost", {"n_estimators": 5}, seed=0, sample_rows=500)
        streamed = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # tracemalloc sees Python's and numpy's allocations (not Arrow's or XGBoost's, which the
    # benchmark's RSS covers): the streamed fit holds what one batch needs, never the whole
    # training set's (measured: 0.3 MB, against 1.0 MB for one batch's float64 model matrix and
    # 8.3 MB for the training set's)
    inputs = len(time_split["streamed"].transformed_names)
    one_batch, whole = BATCH * inputs * 8, data.split_info["train_rows"] * inputs * 8
    assert streamed < 3 * one_batch < whole / 2, (streamed, one_batch, whole)


def test_the_profile_sample_is_every_training_row_when_small(time_split):
    sample, train = time_split["sample"], time_split["train"]
    assert sample.num_rows == train.num_rows
    assert sample.column("amount").equals(train.column("amount"))


def test_random_split_matches(warehouse):
    both = _both(warehouse, _spec(timestamp=None), "random")
    assert both["data"].split_info == both["info"]
    a, b, holdout = both["in_memory"], both["streamed"], both["holdout"]
    np.testing.assert_allclose(b.predict_score(holdout), a.predict_score(holdout), atol=1e-5)


def test_regression_matches(warehouse):
    both = _both(warehouse, _spec(task="regression", label="spend_next"), "time")
    a, b, holdout = both["in_memory"], both["streamed"], both["holdout"]
    assert b.classes is None and b.threshold is None
    expected = evaluate(a, holdout)["metrics"]
    got = ooc.evaluate_streamed(b, both["data"])["metrics"]
    assert got["rmse"] == pytest.approx(expected["rmse"], rel=1e-4)
    assert got["r2"] == pytest.approx(expected["r2"], abs=1e-4)


def test_multiclass_with_balanced_weights_matches(warehouse):
    # three classes: XGBoost's softprob objective, and per-class weights passed batch by batch
    import pyarrow.compute as pc

    table = _table(ROWS)
    tier = pc.if_else(pc.greater(table["amount"], 80), "high", pc.if_else(pc.greater(table["visits"], 4), "mid", "low"))
    warehouse.write_arrow(table.append_column("tier", tier), "main", "tiers", mode="replace")
    spec = _spec(label="tier")
    spec.feature_table = spec.label_table = "tiers"
    both = _both(warehouse, spec, "time", params={"n_estimators": 20})
    a, b, holdout = both["in_memory"], both["streamed"], both["holdout"]
    assert b.classes == a.classes == ["high", "low", "mid"]
    np.testing.assert_allclose(b.predict_proba(holdout), a.predict_proba(holdout), atol=1e-6)
    expected = evaluate(a, holdout)["metrics"]
    got = ooc.evaluate_streamed(b, both["data"])["metrics"]
    assert got["log_loss"] == pytest.approx(expected["log_loss"], abs=1e-6)


def test_choose_mode(warehouse):
    query = build_training_query(_spec(), "duckdb")
    auto = ooc.choose_mode(warehouse, query, ROWS, "xgboost", None, max_in_memory_mb=4096)
    assert auto["out_of_core"] is False and auto["estimated_peak_mb"] > 0
    small = ooc.choose_mode(warehouse, query, ROWS, "xgboost", None, max_in_memory_mb=0.01)
    assert small["out_of_core"] is True
    linear = ooc.choose_mode(warehouse, query, ROWS, "logistic", None, max_in_memory_mb=0.01)
    assert linear["out_of_core"] is False and "only XGBoost" in linear["reason"]
    with pytest.raises(InputError, match="XGBoost only"):
        ooc.choose_mode(warehouse, query, ROWS, "logistic", True, max_in_memory_mb=4096)


def test_training_settings():
    assert ooc.training_settings({}) == {"max_in_memory_mb": 4096.0, "batch_rows": 100_000}
    got = ooc.training_settings({"vars": {"dwml": {"training": {"max_in_memory_mb": 512, "batch_rows": 5000}}}})
    assert got == {"max_in_memory_mb": 512, "batch_rows": 5000}
    with pytest.raises(ConfigError, match="batch_rows"):
        ooc.training_settings({"vars": {"dwml": {"training": {"batch_rows": 0}}}})


def test_total_order_breaks_ties_with_the_other_columns():
    spec = _spec(timestamp=None)
    spec.entity = ["id"]
    sql = ooc.total_order(build_training_query(spec, "duckdb")).sql("duckdb")
    assert sql.endswith('ORDER BY "f"."id", "amount", "visits", "active", "plan", "city", "signup", "churned"')


def test_tied_order_keys_still_give_a_sound_model():
    # 300k rows: DuckDB sorts in parallel, so rows that tie on the order keys (ten snapshots of an
    # id, no timestamp declared) could come back in another order on each pass. XGBoost takes the
    # labels from one pass and the features from another: without a total order the model is noise
    # (ROC AUC 0.61 when measured so, in an in-memory database).
    wh = DuckDBWarehouse(":memory:")
    try:
        wh.write_arrow(_table(300_000), "main", "feats", mode="replace")
        spec = _spec(timestamp=None)
        spec.entity = ["id"]
        data = ooc.StreamedTrainingSet.plan(wh, build_training_query(spec, "duckdb"), spec, method="random",
                                            batch_rows=20_000)
        model, _ = ooc.fit_streamed(data, spec, "xgboost", {"n_estimators": 20}, seed=0)
        assert ooc.evaluate_streamed(model, data)["metrics"]["roc_auc"] > 0.8
    finally:
        wh.close()
