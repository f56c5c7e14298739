"""The comparison of one demo flow on another engine (`other`) with the same flow on DuckDB:
training set, split, metrics, batch and dbt SQL scores, profile and drift must agree. Shared by
tests/postgres/test_postgres_flow.py and tests/spark/test_spark_flow.py, which run the flows
(each a dict of step results, see their run_engine) and add their engine's own checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

PROFILED = ["tenure_days", "monthly_price", "minutes_30d", "avg_session_minutes_30d", "age_years", "plan_code"]


def assert_flow_matches_duckdb(other: dict, duck: dict, fingerprint_method: str) -> None:
    # -- training: same training set, model and metrics; versions 1 and 2 ---------------------------
    fp_other, fp_duck = other["train1"]["data_fingerprint"], duck["train1"]["data_fingerprint"]
    assert fp_other["method"] == fingerprint_method and fp_duck["method"] == "duckdb-hash-sum64"
    assert fp_other["row_count"] == fp_duck["row_count"] > 500
    assert other["train2"]["data_fingerprint"] == fp_other  # same data, same fingerprint
    assert (other["train1"]["version"], other["train2"]["version"]) == (1, 2) and other["versions"] == [1, 2]
    assert other["train1"]["split"] == duck["train1"]["split"]
    for metric, value in duck["train1"]["metrics"].items():
        assert other["train1"]["metrics"][metric] == pytest.approx(value, abs=1e-9), metric

    # -- deploy and batch scoring: the same score for every row -------------------------------------
    assert other["deploy"]["version"] == 1 and other["deploy"]["passed"] is True
    assert other["predict"]["rows"] == duck["predict"]["rows"] == len(other["scores"])
    assert other["prediction_rows"] == 2 * len(other["scores"])  # the batch, and the dbt run's copy (below)
    assert other["scores"].keys() == duck["scores"].keys()
    assert max(abs(other["scores"][k] - duck["scores"][k]) for k in duck["scores"]) < 1e-9

    # -- scoring in SQL with dbt: the batch scores, on both engines ----------------------------------
    assert other["sql_scores"].keys() == other["scores"].keys() == duck["sql_scores"].keys()
    assert max(abs(other["sql_scores"][k] - other["scores"][k]) for k in other["scores"]) < 1e-6  # float32 splits
    assert max(abs(other["sql_scores"][k] - duck["sql_scores"][k]) for k in other["scores"]) < 1e-6
    # ... copied into dwml.predictions (source 'sql') by its post_hook, keyed as batch scoring keys them
    assert other["logged"] == other["sql_scores"] and duck["logged"] == duck["sql_scores"]

    # -- profile: equal on both engines, and equal to numpy on the rows ------------------------------
    p_other, p_duck = other["profile"], duck["profile"]
    assert p_other.row_count == p_duck.row_count == other["features"].num_rows
    assert p_other.duplicate_keys == p_duck.duplicate_keys == 0
    for name in PROFILED:
        a, b = p_other.column(name), p_duck.column(name)
        assert (a.kind, a.null_count, a.distinct_count) == (b.kind, b.null_count, b.distinct_count), name
        if a.kind != "numeric":
            assert a.top_values == b.top_values, name
            continue
        values = np.asarray(other["features"].column(name).to_pylist(), dtype=float)
        values = values[~np.isnan(values)]
        assert a.mean == pytest.approx(values.mean(), rel=1e-9) and b.mean == pytest.approx(a.mean, rel=1e-9)
        assert a.std == pytest.approx(values.std(ddof=1), rel=1e-9) and b.std == pytest.approx(a.std, rel=1e-9)
        for key, q in a.quantiles.items():
            expected = np.quantile(values, float(key))  # numpy's default: linear interpolation
            assert q == pytest.approx(expected, rel=1e-9, abs=1e-9), (name, key)
            assert b.quantiles[key] == pytest.approx(q, rel=1e-9, abs=1e-9), (name, key)

    # -- drift: the same statistics, and the rows written -------------------------------------------
    d_other, d_duck = other["drift"], duck["drift"]
    assert d_other["dataset"] == {**d_duck["dataset"]} and d_other["alert"] == d_duck["alert"]
    by_duck = {f["feature"]: f for f in d_duck["features"]}
    for feature in d_other["features"]:
        theirs = by_duck[feature["feature"]]
        assert feature["drifted"] == theirs["drifted"], feature["feature"]
        for stat, value in feature["statistics"].items():
            expected = theirs["statistics"][stat]
            assert (value is None and expected is None) or math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12), \
                (feature["feature"], stat)
    assert d_other["score"]["statistics"] == pytest.approx(d_duck["score"]["statistics"], rel=1e-9)
    assert other["drift_rows"] == duck["drift_rows"] > len(d_other["features"])
