"""Drift counts computed in SQL equal numpy's on the same right-closed bins, and every statistic
equals drift_stats on the numpy counts (to 1e-9); hostile names, NULLs, unseen categories."""

import json

import numpy as np
import pyarrow as pa
import pytest

from dwml_py import drift_stats as stats
from dwml_py import sql as sqlmod
from dwml_py.drift import (DEFAULT_THRESHOLDS, categorical_statistics, count_categorical, count_numeric, judge,
                           numeric_statistics, resolve_thresholds, support_points, window_filter)
from dwml_py.errors import ConfigError
from dwml_py.reference_profile import categorical_profile, numeric_profile
from dwml_py.warehouse.duckdb import DuckDBWarehouse

HOSTILE = 'x"; drop table t; --'
CATS = ["red", "green", "blue", "it's"]


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    n = 2000
    ref_x = rng.normal(10, 3, n)
    cur_x = rng.normal(11, 3.5, n)
    cur_x[rng.random(n) < 0.1] = np.nan  # missing in the current data
    cur_x[:5] = [-100.0, 1e6, 0.0, 0.0, 0.0]  # beyond the reference range, and ties
    ref_c = rng.choice(CATS, n, p=[0.4, 0.3, 0.2, 0.1])
    cur_c = rng.choice(CATS + ["purple"], n, p=[0.3, 0.3, 0.2, 0.1, 0.1]).astype(object)
    cur_c[rng.random(n) < 0.05] = None
    flag = (rng.random(n) < 0.3).astype(float)
    cur_flag = (rng.random(n) < 0.5).astype(float)
    ts = np.array(["2024-01-01", "2024-06-01"] * (n // 2), dtype="datetime64[D]")
    wh = DuckDBWarehouse(":memory:")
    wh.execute('create schema "s"')
    table = pa.table({HOSTILE: pa.array(cur_x, from_pandas=True), "colour": pa.array(list(cur_c), type=pa.string()),
                      "flag": pa.array(cur_flag == 1), "ts": pa.array(ts)})
    wh.write_arrow(table, "s", "cur")
    ref = {
        "x": numeric_profile(HOSTILE, ref_x),
        "flag": numeric_profile("flag", flag),
        "colour": categorical_profile("colour", pa.array(list(ref_c), type=pa.string())),
    }
    yield wh, ref, cur_x, cur_c, cur_flag, ts
    wh.close()


def np_bins(values, cuts):
    present = values[~np.isnan(values)]
    which = np.searchsorted(np.asarray(cuts, dtype=float), present, side="left")
    return np.bincount(which, minlength=len(cuts) + 1).tolist()


def test_numeric_counts_equal_numpy_and_statistics_equal_drift_stats(data):
    wh, ref, cur_x, _, cur_flag, ts = data
    cuts = json.loads(ref["x"]["bin_edges"])
    flag_cuts = json.loads(ref["flag"]["bin_edges"])
    assert flag_cuts == [0.0] and len(cuts) == 9
    total, counts = count_numeric(wh, sqlmod.table("s", "cur"), [(HOSTILE, cuts), ("flag", flag_cuts)])
    assert total == len(cur_x)
    assert counts[HOSTILE]["counts"] == np_bins(cur_x, cuts)
    assert counts[HOSTILE]["missing"] == int(np.isnan(cur_x).sum()) > 0  # NULLs are missing, not in a bin
    assert counts["flag"]["counts"] == np_bins(cur_flag, flag_cuts)  # booleans as 0/1

    ref_counts = json.loads(ref["x"]["bin_counts"])
    cur_counts = np_bins(cur_x, cuts)
    got = numeric_statistics({**ref["x"], "bin_edges": cuts, "bin_counts": ref_counts}, counts[HOSTILE], total)
    support = support_points(cuts, ref["x"]["std"])
    expected = {
        "psi": stats.psi(ref_counts, cur_counts),
        "ks": stats.ks_statistic(ref_counts, cur_counts),
        "wasserstein_norm": stats.normalised_wasserstein(support, ref_counts, cur_counts, ref["x"]["std"]),
        "missing_rate_change": abs(np.isnan(cur_x).mean() - ref["x"]["missing_rate"]),
    }
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # the support points: midpoints, the outer bins half the neighbouring width beyond the outer cuts
    assert support[1] == pytest.approx((cuts[0] + cuts[1]) / 2)
    assert support[0] == pytest.approx(cuts[0] - (cuts[1] - cuts[0]) / 2)
    assert support[-1] == pytest.approx(cuts[-1] + (cuts[-1] - cuts[-2]) / 2)
    assert got["psi"] > 0.1 and got["wasserstein_norm"] > 0.1  # the mean moved by 1/3 std

    # the same window in SQL and numpy
    where = window_filter("ts", after="2024-03-01")
    n_win, win = count_numeric(wh, sqlmod.table("s", "cur"), [(HOSTILE, cuts)], where)
    keep = ts >= np.datetime64("2024-03-01")
    assert n_win == int(keep.sum()) and win[HOSTILE]["counts"] == np_bins(cur_x[keep], cuts)


def test_categorical_counts_unseen_and_statistics(data):
    wh, ref, _, cur_c, _, _ = data
    categories = json.loads(ref["colour"]["categories"])
    ref_counts = json.loads(ref["colour"]["bin_counts"])
    got = count_categorical(wh, sqlmod.table("s", "cur"), [("colour", categories)])["colour"]
    present = [v for v in cur_c if v is not None]
    assert got["counts"] == [sum(v == c for v in present) for c in categories]
    assert got["missing"] == sum(v is None for v in cur_c) > 0
    assert got["unseen"] == sum(v == "purple" for v in present) > 0

    result = categorical_statistics({**ref["colour"], "categories": categories, "bin_counts": ref_counts},
                                    got, len(cur_c))
    cur_counts = got["counts"] + [got["unseen"]]
    assert result["psi"] == pytest.approx(stats.psi(ref_counts + [0], cur_counts), abs=1e-9)
    assert result["js_distance"] == pytest.approx(stats.js_distance(ref_counts + [0], cur_counts), abs=1e-9)
    assert result["unseen_share"] == pytest.approx(
        stats.unseen_share(categories, dict(zip(categories + ["purple"], cur_counts))), abs=1e-9)
    assert result["missing_rate_change"] == pytest.approx(got["missing"] / len(cur_c), abs=1e-9)
    rows, drifted, severity = judge(result, DEFAULT_THRESHOLDS)
    unseen = next(r for r in rows if r["statistic"] == "unseen_share")
    assert unseen["is_drift"] and drifted and severity in ("moderate", "major")


def test_other_category_takes_values_beyond_the_top(data):
    wh, *_ = data
    got = count_categorical(wh, sqlmod.table("s", "cur"), [("colour", ["red", "__other__"])])["colour"]
    assert got["unseen"] == 0 and got["counts"][1] > got["counts"][0] > 0
    result = categorical_statistics({"categories": ["red", "__other__"], "bin_counts": [1, 1], "missing_rate": 0},
                                    got, 2000)
    assert result["unseen_share"] is None  # cannot be told apart from __other__


def test_several_categorical_features_in_one_query(data):
    wh, *_ = data
    got = count_categorical(wh, sqlmod.table("s", "cur"),
                            [("colour", ["red"]), (HOSTILE, ["0.0"]), ("flag", ["true", "false"])])
    assert got[HOSTILE]["counts"] == [3]
    assert sum(got["flag"]["counts"]) == 2000 and got["flag"]["unseen"] == 0


def test_no_drift_on_the_same_distribution_and_judging():
    same = numeric_statistics({"bin_edges": [1.0, 2.0], "bin_counts": [10, 20, 30], "std": 1.0, "missing_rate": 0.0},
                              {"counts": [10, 20, 30], "missing": 0}, 60)
    assert same == {"psi": 0.0, "ks": 0.0, "wasserstein_norm": 0.0, "missing_rate_change": 0.0}
    rows, drifted, severity = judge({"psi": 0.3, "ks": 0.05}, DEFAULT_THRESHOLDS)
    assert drifted and severity == "major" and [r["is_drift"] for r in rows] == [True, False]
    rows, drifted, severity = judge({"psi": 0.05, "ks": 0.5, "missing_rate_change": 0.2}, DEFAULT_THRESHOLDS)
    assert not drifted and severity == "none"  # only psi, js_distance and wasserstein_norm decide
    empty = numeric_statistics({"bin_edges": [1.0], "bin_counts": [5, 5], "std": 1.0, "missing_rate": 0.0},
                               {"counts": [0, 0], "missing": 4}, 4)
    assert empty["psi"] is None and empty["missing_rate_change"] == 1.0


def test_thresholds_from_vars_and_meta():
    base, per_feature = resolve_thresholds(
        {"vars": {"dwml": {"drift": {"psi": 0.2, "drift_share": 0.5, "features": {"a": {"ks": 0.3}}}}}},
        {"dwml": {"drift": {"js_distance": 0.15, "features": {"a": {"psi": 0.4}}}}})
    assert base["psi"] == 0.2 and base["js_distance"] == 0.15 and base["drift_share"] == 0.5
    assert per_feature["a"]["psi"] == 0.4 and per_feature["a"]["ks"] == 0.3 and per_feature["a"]["js_distance"] == 0.15
    with pytest.raises(ConfigError, match="psii"):
        resolve_thresholds({"vars": {"dwml": {"drift": {"psii": 0.2}}}}, None)
    with pytest.raises(ConfigError, match="number"):
        resolve_thresholds(None, {"dwml": {"drift": {"psi": "high"}}})


def test_support_points_and_bad_window():
    assert support_points([], 1.0) == [0.0]
    assert support_points([0.0], None) == [-0.5, 0.5]
    from dwml_py.errors import InputError
    with pytest.raises(InputError, match="ISO"):
        window_filter("ts", after="last tuesday")
    with pytest.raises(InputError, match="timestamp column"):
        window_filter(None, before="2024-01-01")


def test_nan_counts_as_missing_like_null_and_never_in_a_bin():
    """Training and the reference profile treat NaN as missing; the SQL counts must too (DuckDB
    would otherwise sort NaN above every cut, into the top bin)."""
    values = pa.array([1.0, float("nan"), None, 5.0, float("nan"), 9.0], type=pa.float64())  # NaN is not NULL here
    assert values.null_count == 1
    wh = DuckDBWarehouse(":memory:")
    try:
        wh.write_arrow(pa.table({"x": values, "i": pa.array([1, 2, None, 4, 5, 6])}), "main", "t")
        total, counts = count_numeric(wh, sqlmod.table("main", "t"), [("x", [2.0, 6.0]), ("i", [2.0, 6.0])])
    finally:
        wh.close()
    assert total == 6
    assert counts["x"]["counts"] == [1, 1, 1] and counts["x"]["missing"] == 3  # bins are right-closed
    assert counts["i"]["counts"] == [2, 3, 0] and counts["i"]["missing"] == 1


def test_duckdb_fast_path_counts_equal_the_portable_queries(monkeypatch):
    """DuckDB's one-scan query (cumulative COUNT_IF, HISTOGRAM of LIST_POSITION codes) gives the
    portable queries' counts exactly: NULL, NaN, +-inf, ties on the cuts, values beyond the range,
    integers, booleans, NULL/unseen/folded/duplicate categories, hostile names, windows, no rows."""
    from dwml_py import drift

    rng = np.random.default_rng(3)
    n = 5000
    cuts = [-1.0, -0.25, 0.0, 0.5, 1.5]
    x = rng.choice(np.array(cuts + [-3.0, 7.0, np.inf, -np.inf, np.nan]), n) + \
        np.where(rng.random(n) < 0.4, rng.normal(0, 1, n), 0.0)  # ties and a spread
    null = rng.random(n) < 0.05
    x_arr = pa.array(x, mask=null)  # NULL and NaN
    ints = pa.array(rng.integers(-2, 4, n), mask=rng.random(n) < 0.1)
    words = np.array(["a", "b", "it's", "", "ünï", HOSTILE, "zzz"], dtype=object)
    cat = pa.array(list(rng.choice(words, n)), mask=rng.random(n) < 0.07, type=pa.string())
    flags = pa.array(rng.random(n) < 0.3)
    table = pa.table({HOSTILE: x_arr, "i": ints, "i0": ints, "flag": flags, "c": cat, "c2": cat, "b": flags,
                      "d": x_arr, "e": ints, "ts": pa.array(np.arange(n) % 10)})
    numeric = [(HOSTILE, cuts), ("i", [0.0, 1.0, 2.0]), ("flag", [0.0]), ("i0", [])]
    categorical = [("c", ["a", "it's", "", HOSTILE]), ("c2", ["b", "ünï", "b", "__other__"]),
                   ("b", ["true"]), ("d", ["0.0", "inf", "nan"]), ("e", [])]
    wh = DuckDBWarehouse(":memory:")
    try:
        wh.write_arrow(table, "main", "t")
        source = sqlmod.table("main", "t")
        booleans = frozenset({"flag"})
        windows = [None, exp_lt("ts", 3), exp_lt("ts", -1)]  # all rows, some, none
        fast = [drift.count_features(wh, source, numeric, categorical, w, booleans) for w in windows]
        fast_alone = [(drift.count_numeric(wh, source, numeric, w, booleans),
                       drift.count_categorical(wh, source, categorical, w)) for w in windows]
        assert "COUNT_IF" in wh.render(drift.duckdb_counts_query(source, numeric, categorical))
        monkeypatch.setattr(drift, "_fast", lambda *_: False)
        portable = [drift.count_features(wh, source, numeric, categorical, w, booleans) for w in windows]
    finally:
        wh.close()
    assert fast == portable
    assert [(t, {**c, **cat}) for (t, c), cat in fast_alone] == portable
    total, counts = portable[0]
    assert total == n and counts[HOSTILE]["missing"] == int((np.isnan(x) | null).sum()) > x_arr.null_count
    assert counts["c"]["unseen"] > 0 and counts["c"]["missing"] > 0 and portable[2][0] == 0
    assert counts[HOSTILE]["counts"][0] > 0 and counts[HOSTILE]["counts"][-1] > 0


def test_unsorted_cuts_keep_the_portable_meaning():
    """Cuts that do not increase strictly cannot be differenced: the portable query runs."""
    from dwml_py import drift

    wh = DuckDBWarehouse(":memory:")
    try:
        wh.write_arrow(pa.table({"x": pa.array([0.0, 1.0, 2.0, 3.0])}), "main", "t")
        total, counts = drift.count_numeric(wh, sqlmod.table("main", "t"), [("x", [2.0, 1.0])])
    finally:
        wh.close()
    assert total == 4 and counts["x"]["counts"] == [3, 0, 2]  # x <= 2, 2 < x <= 1, x > 1


def exp_lt(name, value):
    from sqlglot import exp

    return exp.LT(this=sqlmod.column(name), expression=exp.Literal.number(value))
