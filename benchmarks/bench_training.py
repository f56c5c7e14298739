"""Target 5: training overhead, dwml's fit against bare XGBoost on the same matrix (<= 1.15x).

`dwml train` has no switch that turns the gates off (governance cannot be overridden at all), and
its gates need a dbt-built feature model with test results, which the generated data is not. So
this times the fitting part of a run: `dwml_py.training.fit` on the Arrow training table (feature
schema, preprocessing into the model matrix, the XGBoost fit, the artifact's bookkeeping) against
`xgboost.XGBClassifier.fit` with the same effective parameters on the matrix dwml built. The
gates' own time is reported by `dwml train` in its result (`durations.gates`) and in dwml.runs;
see docs/benchmarks.md for a measurement on the demo.
"""

from __future__ import annotations

import time

from benchmarks.common import Figure


def run(ctx) -> list[Figure]:
    import xgboost as xgb

    trained = ctx.model()
    model, train = trained["model"], trained["train"]
    x = model.transform(train)
    y = (train.column(model.label).to_numpy() == model.classes[1]).astype(int)
    params = dict(model.params)
    started = time.perf_counter()
    xgb.XGBClassifier(random_state=model.seed, **params).fit(x, y)
    bare_s = time.perf_counter() - started
    info = model.fit_info
    return [Figure("training", "fit_vs_bare_xgboost", train.num_rows,
                   f"dwml training.fit, {info['inputs']} model inputs, {params.get('n_estimators')} trees",
                   trained["fit_seconds"], "XGBClassifier.fit on the same matrix", bare_s, target=1.15,
                   notes="gates not included: no switch turns them off, and they need a dbt feature model",
                   extra={"prepare_s": info["prepare_seconds"], "fit_s": info["fit_seconds"],
                          "train_rows": train.num_rows})]
