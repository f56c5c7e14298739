"""The training core on the real demo: dbt build, the churn spec from the yml, the fingerprint in
DuckDB, the Arrow fetch, the time split, XGBoost and logistic fits, reproducibility, the artifact
round trip and the reference profile."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def demo_catalog(project):
    from dwml_py.catalog import Catalog
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.demo import DemoConfig, generate_demo

    generate_demo(project, DemoConfig(customers=2000, seed=11))
    build = run_dbt(project, ["build"])
    assert build.success, build.to_dict()
    return Catalog.load(project, refresh=True)


def test_churn_training_core_on_the_demo(project, demo_catalog):
    from dwml_py.reference_profile import SCORE_FEATURE, reference_profile
    from dwml_py.training import TrainedModel, evaluate, fit
    from dwml_py.training_set import build_training_query, fetch_training_table, fingerprint, resolve_spec, split
    from dwml_py.warehouse import connect

    timings = {}
    spec = resolve_spec(demo_catalog, "churn")
    assert (spec.task, spec.entity, spec.timestamp, spec.label_column, spec.join) == (
        "classification", ["customer_id"], "snapshot_date", "churned_30d", "snapshot")
    assert "tenure_days" in spec.features and "customer_id" not in spec.features
    assert "churned_30d" not in spec.features

    with connect(project) as wh:
        query = build_training_query(spec, wh.dialect, asof_join=wh.capabilities.asof_join)
        started = time.perf_counter()
        first = fingerprint(wh, query)
        timings["fingerprint"] = time.perf_counter() - started
        assert fingerprint(wh, query) == first
        started = time.perf_counter()
        table = fetch_training_table(wh, query, batch_size=2048)
        timings["fetch"] = time.perf_counter() - started
        assert table.num_rows == first["row_count"] > 1000
        assert table.column("churned_30d").null_count == 0  # immature labels dropped
        # The last snapshot has no mature churn label, so it is not in the training set.
        last = wh.fetch_scalar("SELECT max(snapshot_date) FROM main.customer_features")
        assert max(table.column("snapshot_date").to_pylist()) < last

        train, holdout, info = split(table, spec)
        train_dates = set(train.column("snapshot_date").to_pylist())
        hold_dates = set(holdout.column("snapshot_date").to_pylist())
        assert not train_dates & hold_dates and max(train_dates) < min(hold_dates)
        assert info["method"] == "time" and 0.1 < info["holdout_fraction"] < 0.4

        results = {}
        for algorithm in ("xgboost", "logistic"):
            started = time.perf_counter()
            model = fit(train, spec, algorithm, seed=0)
            timings[f"fit_{algorithm}"] = time.perf_counter() - started
            result = evaluate(model, holdout)
            auc = result["metrics"]["roc_auc"]
            assert 0.6 < auc < 0.98, (algorithm, result["metrics"])
            results[algorithm] = (model, result)

        model, result = results["xgboost"]
        assert evaluate(fit(train, spec, "xgboost", seed=0), holdout) == result  # same inputs + seed
        loaded = TrainedModel.from_bytes(model.to_bytes())
        assert np.array_equal(loaded.predict_proba(holdout), model.predict_proba(holdout))

        # Categories never seen in training do not crash scoring.
        unseen = holdout.slice(0, 5)
        for name in ("plan_code", "country_code", "city", "acquisition_channel"):
            unseen = unseen.set_column(unseen.column_names.index(name), name,
                                       pa.array(["never-seen-" + name] * 5))
        for algorithm, (fitted, _) in results.items():
            assert fitted.predict_proba(unseen).shape == (5, 2)

        rows = reference_profile(train, model, model.predict_score(train))
        assert [r["feature"] for r in rows] == model.feature_names + [SCORE_FEATURE]
        assert all(sum(json.loads(r["bin_counts"])) == round(train.num_rows * (1 - r["missing_rate"])) for r in rows)

        # Changing one value of one training row changes the fingerprint, not the row count.
        wh.execute("UPDATE main.customer_features SET tenure_days = tenure_days + 1 WHERE customer_id = "
                   f"{int(table.column('customer_id')[0].as_py())} AND snapshot_date = DATE "
                   f"'{table.column('snapshot_date')[0].as_py().isoformat()}'")
        changed = fingerprint(wh, query)
        assert changed["row_count"] == first["row_count"] and changed["hash"] != first["hash"]

    print(json.dumps({"rows": table.num_rows, "split": {k: info[k] for k in ("cut", "train_rows", "holdout_rows")},
                      "metrics": {a: {k: round(v, 4) for k, v in r["metrics"].items() if isinstance(v, float)}
                                  for a, (_, r) in results.items()},
                      "seconds": {k: round(v, 3) for k, v in timings.items()}}))


def test_revenue_regression_on_the_demo(project, demo_catalog):
    from dwml_py.training import evaluate, fit
    from dwml_py.training_set import build_training_query, fetch_training_table, resolve_spec, split
    from dwml_py.warehouse import connect

    spec = resolve_spec(demo_catalog, "revenue")
    with connect(project, read_only=True) as wh:
        table = fetch_training_table(wh, build_training_query(spec, wh.dialect))
    train, holdout, _ = split(table, spec)
    metrics = evaluate(fit(train, spec, "linear"), holdout)["metrics"]
    assert metrics["r2"] > 0.2 and metrics["rmse"] > 0
