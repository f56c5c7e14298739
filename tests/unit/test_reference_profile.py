"""Reference profiles against numpy: cut points, counts per bin, ties, categories, the score."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pyarrow as pa
import pytest

import dwml_py.reference_profile as rp
from dwml_py.errors import InputError
from dwml_py.reference_profile import (OTHER_CATEGORY, SCORE_FEATURE, bin_counts, categorical_profile,
                                       numeric_profile, quantile_cuts, reference_profile)
from dwml_py.tables import TABLES


class FakeModel:
    """Only what reference_profile reads: the feature schema."""

    def __init__(self, schema):
        self.schema = schema

    def feature_schema(self):
        return self.schema


def test_doctests():
    assert doctest.testmod(rp).failed == 0


def test_numeric_cuts_and_counts_match_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000)
    with_missing = np.concatenate([values, [np.nan] * 250])
    row = numeric_profile("x", with_missing)
    cuts = json.loads(row["bin_edges"])
    expected = np.quantile(values, np.arange(1, 10) / 10, method="inverted_cdf")
    assert cuts == pytest.approx(expected.tolist()) and len(cuts) == 9
    counts = json.loads(row["bin_counts"])
    assert counts == np.bincount(np.searchsorted(expected, values, side="left"), minlength=10).tolist()
    assert sum(counts) == 1000 and all(c == 100 for c in counts)  # continuous: equal-frequency bins
    assert row["missing_rate"] == pytest.approx(0.2) and row["row_count"] == 1250
    assert row["mean"] == pytest.approx(values.mean()) and row["std"] == pytest.approx(values.std(ddof=1))
    assert row["kind"] == "numeric" and row["categories"] is None


def test_right_closed_bins_put_a_value_equal_to_a_cut_below_it():
    assert bin_counts(np.array([1.0, 2.0, 2.0, 3.0]), [2.0]) == [3, 1]
    assert bin_counts(np.array([-100.0, 100.0]), [0.0, 1.0]) == [1, 0, 1]  # open-ended ends


def test_ties_and_discrete_columns():
    binary = np.array([0.0] * 70 + [1.0] * 30)
    assert quantile_cuts(binary) == [0.0]
    assert json.loads(numeric_profile("b", binary)["bin_counts"]) == [70, 30]
    # A heavy value in the middle collapses its quantiles into one cut.
    heavy = np.array([1.0] * 10 + [5.0] * 80 + [9.0] * 10)
    assert quantile_cuts(heavy) == [1.0, 5.0]
    assert bin_counts(heavy, [1.0, 5.0]) == [10, 80, 10]
    constant = numeric_profile("c", np.array([3.0] * 5))
    assert json.loads(constant["bin_edges"]) == [] and json.loads(constant["bin_counts"]) == [5]
    empty = numeric_profile("e", np.array([np.nan, np.nan]))
    assert empty["missing_rate"] == 1.0 and empty["mean"] is None and json.loads(empty["bin_counts"]) == []
    assert quantile_cuts(np.arange(10.0), bins=1) == []
    with pytest.raises(InputError, match="bins must be at least 1"):
        quantile_cuts(np.arange(10.0), bins=0)


def test_categorical_top_categories_and_other():
    values = [f"v{i:02d}" for i in range(60) for _ in range(60 - i)] + [None] * 30
    row = categorical_profile("cat", pa.chunked_array([pa.array(values)]))
    categories, counts = json.loads(row["categories"]), json.loads(row["bin_counts"])
    assert categories[:3] == ["v00", "v01", "v02"] and len(categories) == 51 and categories[-1] == OTHER_CATEGORY
    assert counts[:3] == [60, 59, 58] and counts[-1] == sum(60 - i for i in range(50, 60))
    assert sum(counts) == len(values) - 30 and row["missing_rate"] == pytest.approx(30 / len(values))
    assert row["kind"] == "categorical" and row["bin_edges"] is None and row["mean"] is None
    # Ties by value; no __other__ when everything fits; dictionaries read as strings.
    small = categorical_profile("s", pa.array(["b", "a", "b", "a", "c"]).dictionary_encode())
    assert json.loads(small["categories"]) == ["a", "b", "c"] and json.loads(small["bin_counts"]) == [2, 2, 1]


def test_reference_profile_rows_fit_the_table():
    train = pa.table({"x": [1.0, 2.0, None, 4.0], "flag": [True, False, True, None], "plan": ["a", "b", "a", None],
                      "unused": [1, 2, 3, 4]})
    model = FakeModel([{"name": "x", "kind": "numeric"}, {"name": "flag", "kind": "boolean"},
                       {"name": "plan", "kind": "categorical"}])
    rows = reference_profile(train, model, scores=np.array([0.1, 0.2, 0.3, 0.9]), bins=2)
    assert [(r["feature"], r["kind"]) for r in rows] == [("x", "numeric"), ("flag", "numeric"),
                                                         ("plan", "categorical"), (SCORE_FEATURE, "score")]
    assert rows[1]["mean"] == pytest.approx(2 / 3)  # booleans as 0/1
    assert json.loads(rows[3]["bin_edges"]) == [0.2] and json.loads(rows[3]["bin_counts"]) == [2, 2]
    # Every column of dwml.reference_profiles except those the caller fills.
    columns = set(TABLES["reference_profiles"].column_names())
    assert all(set(r) == columns - {"model_name", "version", "computed_at"} for r in rows)
    assert all(isinstance(r[k], (str, type(None))) for r in rows for k in ("bin_edges", "bin_counts", "categories"))
    assert len(reference_profile(train, model)) == 3  # no scores, no score row


def test_reference_profile_errors():
    model = FakeModel([{"name": "x", "kind": "numeric"}])
    with pytest.raises(InputError, match="empty"):
        reference_profile(pa.table({"x": pa.array([], type=pa.float64())}), model)
    with pytest.raises(InputError, match="lacks feature 'x'"):
        reference_profile(pa.table({"y": [1.0]}), model)
    with pytest.raises(InputError, match="one number per training row"):
        reference_profile(pa.table({"x": [1.0, 2.0]}), model, scores=np.array([0.5]))


def test_profile_sample_takes_every_kth_row_above_the_limit():
    from dwml_py.reference_profile import profile_sample

    table = pa.table({"x": np.arange(1_001)})
    assert profile_sample(table, rows=2_000) is table
    assert profile_sample(table, rows=1_001) is table
    sample = profile_sample(table, rows=100)  # k = ceil(1001 / 100) = 11
    assert sample.column("x").to_pylist() == list(range(0, 1_001, 11)) and sample.num_rows <= 100
