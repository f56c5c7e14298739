"""cost_estimate: the power-law time model with a clamped exponent, the linear memory model,
calibration on a synthetic table, the budget from dbt_project.yml vars and the cost gate.
(The 2x accuracy check against real fits runs on the demo: tests/integration/test_selection_cost_explain_demo.py.)"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dwml_py import cost_estimate as ce
from dwml_py.errors import ConfigError, InputError
from dwml_py.training_set import TrainingSpec


def make_table(n=4000, seed=0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "premium", "family"], size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x1 - x2 - 1)))).astype(int)
    return pa.table({"id": np.arange(n), "x1": x1, "x2": x2, "plan": plan.tolist(), "label": y})


SPEC = TrainingSpec("m", "classification", "model.p.f", "main", "f", ["id"], None, "model.p.f", "main", "f",
                    "label", None, ["x1", "x2", "plan"])


def test_calibration_sizes():
    assert ce.calibration_sizes(29_687) == [1855, 3710, 7421]
    assert ce.calibration_sizes(1_000) == [250, 500, 1000]  # small sets calibrate on all their rows
    assert ce.calibration_sizes(10_000_000)[-1] == ce.MAX_CALIBRATION_ROWS
    with pytest.raises(InputError, match="too few"):
        ce.calibration_sizes(20)


def points(c, a, b, sizes=(1000, 2000, 4000)):
    return [{"rows": n, "seconds": c + a * n ** b, "peak_mb": 1 + 0.002 * n} for n in sizes]


def test_time_model_recovers_a_power_law_with_overhead():
    model = ce.fit_time_model(points(0.2, 1e-4, 1.0), "xgboost")
    assert model["b"] == pytest.approx(1.0, abs=0.02)
    assert model["c"] == pytest.approx(0.2, rel=0.1)
    predicted = ce.predict(points(0.2, 1e-4, 1.0), "xgboost", 64_000)["predicted_seconds"]
    assert predicted == pytest.approx(0.2 + 6.4, rel=0.05)


def test_exponent_is_clamped_to_the_algorithm_range():
    # Noise that makes small fits look quadratic must not extrapolate quadratically.
    steep = ce.fit_time_model(points(0.0, 1e-8, 2.0), "xgboost")
    assert steep["b"] == ce.EXPONENTS["xgboost"][1]
    flat = ce.fit_time_model(points(0.0, 0.05, 0.1), "random_forest")
    assert flat["b"] == ce.EXPONENTS["random_forest"][0]


def test_memory_model_is_linear_and_adds_the_arrow_data():
    calibration = points(0.1, 1e-4, 1.0)
    mm = ce.fit_memory_model(calibration)
    assert mm["m0"] == pytest.approx(1.0, rel=1e-6) and mm["k"] == pytest.approx(0.002, rel=1e-6)
    result = ce.predict(calibration, "xgboost", 10_000, data_mb=5.0)
    assert result["predicted_peak_mb"] == pytest.approx(1 + 20 + 5, rel=1e-4)


def test_measure_and_estimate_from_a_sample():
    table = make_table()
    measured = ce.measure_fit(table.slice(0, 500), SPEC, "logistic")
    assert measured["rows"] == 500 and measured["seconds"] > 0 and measured["peak_mb"] > 0
    result = ce.estimate_from_sample(table.slice(0, 1000), SPEC, "logistic", rows=4000, repeats=1)
    assert set(result) >= {"algorithm", "rows", "columns", "predicted_seconds", "predicted_peak_mb", "calibration",
                           "method"}
    assert (result["algorithm"], result["rows"], result["columns"]) == ("logistic", 4000, 3)
    assert [p["rows"] for p in result["calibration"]] == [250, 500, 1000]
    assert result["predicted_seconds"] > 0 and result["predicted_peak_mb"] > result["data_mb"] > 0
    # Linear algorithms are called by their task's name.
    assert ce.estimate_from_sample(table.slice(0, 200), SPEC, "linear", rows=200, repeats=1)["algorithm"] == "logistic"
    with pytest.raises(InputError, match="Unknown algorithm"):
        ce.estimate_from_sample(table, SPEC, "svm", rows=100)


def test_cost_budget_from_project_vars():
    assert ce.cost_budget({}) == {"max_seconds": None, "max_memory_mb": None}
    config = {"vars": {"dwml": {"cost": {"max_seconds": 60, "max_memory_mb": 512}}}}
    assert ce.cost_budget(config) == {"max_seconds": 60.0, "max_memory_mb": 512.0}
    with pytest.raises(ConfigError, match="max_secs"):
        ce.cost_budget({"vars": {"dwml": {"cost": {"max_secs": 60}}}})
    with pytest.raises(ConfigError, match="positive number"):
        ce.cost_budget({"vars": {"dwml": {"cost": {"max_seconds": -1}}}})
    with pytest.raises(ConfigError, match="mapping"):
        ce.cost_budget({"vars": {"dwml": {"cost": 60}}})


def test_cost_gate():
    estimate = {"predicted_seconds": 90.0, "predicted_peak_mb": 700.0}
    assert ce.cost_gate(estimate) == {"passed": True, "reasons": [],
                                      "budget": {"max_seconds": None, "max_memory_mb": None}}
    config = {"vars": {"dwml": {"cost": {"max_seconds": 60, "max_memory_mb": 512}}}}
    gate = ce.cost_gate(estimate, project_config=config)
    assert not gate["passed"] and len(gate["reasons"]) == 2
    assert "90 s exceeds the budget of 60 s" in gate["reasons"][0] and "700 MB" in gate["reasons"][1]
    # Explicit budgets win over the project's.
    assert ce.cost_gate(estimate, budget_seconds=120, budget_mb=1024, project_config=config)["passed"]
    with pytest.raises(InputError, match="budget_seconds"):
        ce.cost_gate(estimate, budget_seconds=0)


def test_doctests():
    import doctest

    assert doctest.testmod(ce).failed == 0
