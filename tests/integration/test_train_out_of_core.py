"""`dwml train churn --out-of-core` on the demo: the streamed run registers a normal version whose
metrics, features and reference profile match an in-memory run on the same data."""

import json

import pytest
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from dwml_py.demo import DemoConfig, generate_demo
from tests.conftest import duckdb_rows as rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = ["--param", "n_estimators=60"]


def train_json(*args) -> dict:
    result = CliRunner().invoke(app, ["train", "churn", *FAST, *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_out_of_core_run_matches_the_in_memory_run(project, duckdb_path):
    from dwml_py.training_run import train

    generate_demo(project, DemoConfig(customers=800, seed=4))
    assert run_dbt(project, ["build"]).success

    in_memory = train_json()
    streamed = train_json("--out-of-core")
    assert in_memory["training_mode"]["out_of_core"] is False
    assert streamed["training_mode"]["out_of_core"] is True
    assert streamed["training_mode"]["reason"] == "forced (--out-of-core)"
    assert streamed["data_fingerprint"] == in_memory["data_fingerprint"]
    assert streamed["split"] == in_memory["split"]
    assert streamed["features"] == in_memory["features"]
    for name, value in in_memory["metrics"].items():
        assert streamed["metrics"][name] == pytest.approx(value, abs=1e-6), name

    # many small batches give the same model too (Python API: batch_rows)
    batched = train(project, "churn", params={"n_estimators": 60}, out_of_core=True, batch_rows=700)
    assert batched["training_mode"]["batch_rows"] == 700
    assert batched["training_mode"]["passes"] >= 3  # statistics, then XGBoost's passes over the iterator
    for name, value in in_memory["metrics"].items():
        assert batched["metrics"][name] == pytest.approx(value, abs=1e-6), name

    # a normal version: recorded mode, the same stored feature schema, a reference profile like the in-memory one's
    params = json.loads(rows(duckdb_path, "select params from dwml.runs where run_id = '"
                                          f"{streamed['run_id']}'")[0][0])
    assert params["training_mode"]["out_of_core"] is True
    profiles = rows(duckdb_path, "select version, feature, row_count, bin_edges, bin_counts from "
                                 "dwml.reference_profiles order by version, feature")
    by_version = {}
    for version, feature, count, edges, counts in profiles:
        by_version.setdefault(version, {})[feature] = (count, edges, counts)
    assert by_version[1].keys() == by_version[2].keys() == by_version[3].keys()
    # the demo's training rows are fewer than the profile sample, so the profiles are equal
    assert by_version[2] == by_version[1] and by_version[3] == by_version[1]

    result = CliRunner().invoke(app, ["predict", "churn", "--version", "2", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
