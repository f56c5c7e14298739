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


def test_the_gate_passes_on_an_upper_bound_and_calibrates_in_full_near_the_budget():
    """One fit at the smallest size bounds the run from above: t(s) * (n/s)^b_max >= c + a*n^b for
    any c >= 0 and b <= b_max, and m(s) * n/s >= m0 + k*n. Within the budget that is the verdict."""
    table, rows = make_table(), 16_000
    bound = ce.bound_from_sample(table, SPEC, "logistic", rows)
    size = ce.calibration_sizes(rows)[0]
    (point,) = bound["calibration"]
    assert bound["upper_bound"] and point["rows"] == size and bound["algorithm"] == "logistic"
    scale = rows / size
    assert bound["predicted_seconds"] == pytest.approx(point["seconds"] * scale ** ce.EXPONENTS["logistic"][1],
                                                       rel=1e-2)
    assert point["threads"] == 1 and point["peak_rows"] == size // 2  # memory traced on half the rows
    assert bound["predicted_peak_mb"] == pytest.approx(point["peak_mb"] * rows / (size // 2) + bound["data_mb"],
                                                       rel=1e-2)
    # the bound lies above any curve the full calibration may fit through points at or above s
    model = ce.fit_time_model(points(0.05, 1e-4, 1.25, sizes=(size, 2 * size, 4 * size)), "logistic")
    through = model["c"] + model["a"] * rows ** model["b"]
    assert points(0.05, 1e-4, 1.25, sizes=(size,))[0]["seconds"] * scale ** 1.25 >= through * (1 - 1e-6)
    assert ce.within_budget(bound, {"max_seconds": bound["predicted_seconds"], "max_memory_mb": None})
    assert not ce.within_budget(bound, {"max_seconds": None, "max_memory_mb": bound["predicted_peak_mb"] / 2})


def test_estimate_with_a_budget_bounds_first_and_calibrates_in_full_only_near_it(tmp_path):
    from dwml_py.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    try:
        warehouse.write_arrow(make_table(n=12_000), "main", "f", mode="replace")
        roomy = ce.estimate_training_cost(warehouse, SPEC, "logistic", budget={"max_seconds": 1e6,
                                                                               "max_memory_mb": 1e6})
        assert roomy["upper_bound"] and len(roomy["calibration"]) == 1 and roomy["rows"] == 9_600
        assert roomy["method"] == ce.BOUND_METHOD
        tight = ce.estimate_training_cost(warehouse, SPEC, "logistic", repeats=1,
                                          budget={"max_seconds": roomy["predicted_seconds"] / 1e6,
                                                  "max_memory_mb": None})
        assert "upper_bound" not in tight and len(tight["calibration"]) == 3 and tight["method"] == ce.METHOD
        assert not ce.cost_gate(tight, budget_seconds=roomy["predicted_seconds"] / 1e6)["passed"]
        unbudgeted = ce.estimate_training_cost(warehouse, SPEC, "logistic", repeats=1)
        assert len(unbudgeted["calibration"]) == 3  # `dwml estimate` always calibrates in full
    finally:
        warehouse.close()
