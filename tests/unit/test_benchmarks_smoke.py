"""The benchmark harness runs end to end on tiny data and writes the JSON its docs describe.
No timing is asserted (timings on shared machines are noise); the correctness checks the harness
makes along the way are: dwml's drift counts equal a numpy/pandas count of the same bins, and the
bare scorer it compares against scores as dwml does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from benchmarks.run import main

    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "result.json"
    with pytest.MonkeyPatch.context() as patch:  # open_project points the process env at the bench files
        for name in ("DWML_DUCKDB_PATH", "DWML_ARTIFACT_DIR", "DBT_TARGET_PATH", "DBT_LOG_PATH"):
            patch.setenv(name, str(tmp / name))
        main(["--rows", "2000", "--train-rows", "1000", "--trees", "5", "--repeat", "1", "--threads", "1",
              "--catalog-models", "40", "--batch-size", "700", "--data-dir", str(tmp / "data"), "--json", str(out)])
    return json.loads(out.read_text())


def test_json_shape(result):
    assert {"machine", "versions", "options", "figures", "seconds"} <= set(result)
    assert {"platform", "cpus", "date", "python"} <= set(result["machine"])
    assert result["versions"]["duckdb"] and result["versions"]["xgboost"]
    keys = {"bench", "name", "rows", "what", "seconds", "baseline", "baseline_seconds", "ratio", "target",
            "target_op", "met", "notes", "extra"}
    for figure in result["figures"]:
        assert keys <= set(figure), figure
        assert figure["met"] in (True, False, None)
    names = {(f["bench"], f["name"]) for f in result["figures"]}
    assert {("profile", "profile_vs_floor"), ("drift", "drift_vs_floor"), ("drift", "numpy_vs_dwml"),
            ("drift", "evidently_per_row_vs_dwml"), ("scoring", "predict_vs_bare"),
            ("training", "fit_vs_bare_xgboost"), ("training", "train_without_gates_vs_bare"),
            ("training", "gates_vs_bare"), ("catalog", "manifest_load"),
            ("catalog", "suggest_features")} <= names


def test_figures_are_ratios_with_targets(result):
    by_name = {f["name"]: f for f in result["figures"]}
    profile = by_name["profile_vs_floor"]
    # the JSON rounds seconds to 0.1 ms, which on 2,000 rows is a few percent of the floor's time:
    # the ratio (from the unrounded times) must agree with them within that rounding
    low = (profile["seconds"] - 5e-5) / (profile["baseline_seconds"] + 5e-5)
    high = (profile["seconds"] + 5e-5) / (profile["baseline_seconds"] - 5e-5)
    assert profile["target"] == 1.2 and low * 0.999 <= profile["ratio"] <= high * 1.001
    assert by_name["drift_vs_floor"]["target"] == 1.5
    assert by_name["predict_vs_bare"]["target_op"] == ">=" and by_name["predict_vs_bare"]["target"] == 0.8
    assert by_name["evidently_per_row_vs_dwml"]["seconds"] is None  # no Evidently venv given: skipped, with why
    assert "skipped" in by_name["evidently_per_row_vs_dwml"]["notes"]


def test_checks_made_along_the_way(result):
    by_name = {f["name"]: f for f in result["figures"]}
    assert by_name["numpy_vs_dwml"]["extra"]["counts_equal"] is True
    assert by_name["predict_vs_bare"]["extra"]["bare_max_abs_diff"] < 1e-6
    sql = by_name.get("sql_vs_python")
    if sql is not None and sql["seconds"] is not None:
        assert sql["extra"]["max_abs_diff"] < 1e-5
    assert by_name["drift_vs_floor"]["extra"]["drifting"]  # the current table drifts by construction
    # a real `dwml train` on a dbt-built feature model: its gates ran and passed, its time minus
    # theirs is the figure, and the bare fit used the run's own training split
    run = by_name["train_without_gates_vs_bare"]
    assert run["target"] == 1.15 and run["extra"]["train_rows"] == 1_600  # 80% of 2,000
    assert run["extra"]["gates"] == {"quality": "pass", "governance": "pass", "cost": "pass"}
    durations = run["extra"]["durations"]
    assert run["seconds"] == pytest.approx(run["extra"]["total_s"] - durations["gates"], abs=2e-3)
    assert by_name["gates_vs_bare"]["seconds"] == durations["gates"]


def test_table_format():
    from benchmarks.common import Figure
    from benchmarks.run import format_table

    text = format_table([Figure("drift", "drift_vs_floor", 10, "x", 4.0, "floor", 2.0, target=1.5)])
    assert "2.00" in text and "NO" in text and "<= 1.5" in text
