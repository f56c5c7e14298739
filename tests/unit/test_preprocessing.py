"""Feature kinds from Arrow types, the pandas frame, and the ColumnTransformer per algorithm family."""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pyarrow as pa
import pytest

from dwml_py.errors import InputError
from dwml_py.preprocessing import (MISSING_CODE, UNKNOWN_CODE, build_preprocessor, column_kind,
                                   infer_feature_schema, output_names, strip_fit_only_state, to_frame)


def table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "num": pa.array([None if i % 10 == 0 else float(v) for i, v in enumerate(rng.normal(size=n))]),
        "count": pa.array(rng.integers(0, 5, size=n), type=pa.int32()),
        "price": pa.array([decimal.Decimal("1.50")] * n, type=pa.decimal128(6, 2)),
        "flag": pa.array([None if i % 7 == 0 else bool(i % 2) for i in range(n)]),
        "plan": pa.array([None if i % 9 == 0 else "abc"[i % 3] for i in range(n)]),
        "city": pa.array([None if i % 11 == 0 else f"city{i % 60}" for i in range(n)]),
        "dict": pa.array(["xy"[i % 2] for i in range(n)]).dictionary_encode(),
        "signup": pa.array([dt.date(2024, 1, 1)] * n),
        "tags": pa.array([[1]] * n),
        "y": pa.array((rng.random(n) < 0.4).astype(int)),
    })


FEATURES = ["num", "count", "price", "flag", "plan", "city", "dict", "signup", "tags"]


def test_column_kinds():
    assert column_kind(pa.int8()) == column_kind(pa.float32()) == column_kind(pa.decimal128(5, 1)) == "numeric"
    assert column_kind(pa.bool_()) == "boolean"
    assert column_kind(pa.string()) == column_kind(pa.large_string()) == "categorical"
    assert column_kind(pa.dictionary(pa.int32(), pa.string())) == "categorical"
    assert column_kind(pa.date32()) is None and column_kind(pa.list_(pa.int64())) is None


def test_infer_feature_schema():
    used, dropped = infer_feature_schema(table(), FEATURES)
    by = {f["name"]: f for f in used}
    assert [f["name"] for f in used] == ["num", "count", "price", "flag", "plan", "city", "dict"]
    assert by["num"]["missing"] and not by["count"]["missing"] and by["flag"]["kind"] == "boolean"
    assert by["plan"] == {"name": "plan", "type": "string", "kind": "categorical", "missing": True,
                          "encoding": "onehot", "categories": ["a", "b", "c"]}
    assert by["city"]["encoding"] == "high_cardinality" and len(by["city"]["categories"]) == 60
    assert by["dict"]["categories"] == ["x", "y"]
    assert [(d["name"], d["reason"].split(":")[0]) for d in dropped] == [("signup", "date/time"),
                                                                         ("tags", "unsupported type list<item")]
    used, _ = infer_feature_schema(table(), ["city"], high_cardinality=100)
    assert used[0]["encoding"] == "onehot"


def test_infer_feature_schema_errors():
    t = table().append_column("empty", pa.array([None] * 120, type=pa.float64()))
    with pytest.raises(InputError, match="'empty' is NULL in every one of the 120") as info:
        infer_feature_schema(t, ["num", "empty"])
    assert "exclude" in info.value.hint
    with pytest.raises(InputError, match="lacks feature column"):
        infer_feature_schema(t, ["nope"])
    with pytest.raises(InputError, match="No usable feature"):
        infer_feature_schema(t, ["signup"])


def test_to_frame_types():
    used, _ = infer_feature_schema(table(), FEATURES)
    frame = to_frame(table(), used)
    assert list(frame.columns) == [f["name"] for f in used]
    assert frame["num"].dtype == np.float64 and np.isnan(frame["num"][0])
    assert frame["flag"].tolist()[:3] == [pytest.approx(np.nan, nan_ok=True), 1.0, 0.0]
    assert frame["price"][0] == 1.5 and frame["plan"].dtype == object and frame["plan"].isna()[0]
    assert frame["dict"].tolist()[:2] == ["x", "y"]
    with pytest.raises(InputError, match="lacks feature column"):
        to_frame(table().drop_columns(["plan"]), used)


def _fit(algorithm, task="classification", schema_table=None):
    t = schema_table or table()
    used, _ = infer_feature_schema(t, FEATURES)
    pre = build_preprocessor(used, algorithm, task, seed=0)
    x = pre.fit_transform(to_frame(t, used), t.column("y").to_numpy())
    strip_fit_only_state(pre)
    return pre, used, np.asarray(x)


def test_xgboost_keeps_missing_numbers_and_codes_high_cardinality():
    pre, used, x = _fit("xgboost")
    names = output_names(pre)
    assert names[:4] == ["num", "count", "price", "flag"] and "missingindicator_num" not in names
    assert np.isnan(x[0, 0])  # passthrough: XGBoost routes missing values itself
    assert {"plan___missing__", "plan_a", "dict_x"} <= set(names) and "city" in names
    new = table(n=3, seed=1).set_column(5, "city", pa.array(["city1", "never-seen", None]))
    new = new.set_column(4, "plan", pa.array(["zzz", "a", None]))
    out = pre.transform(to_frame(new, used))
    city = out[:, names.index("city")]
    assert city[1] == UNKNOWN_CODE and city[2] == MISSING_CODE and city[0] >= 0
    # A missing value never seen in training counts as unknown.
    pre, used, _ = _fit("xgboost", schema_table=table().set_column(5, "city", pa.array([f"city{i % 60}" for i in range(120)])))
    assert pre.transform(to_frame(new, used))[:, output_names(pre).index("city")].tolist()[1:] == [-1, -1]
    plan = out[:, [names.index(n) for n in ("plan___missing__", "plan_a", "plan_b", "plan_c")]]
    assert plan.tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]]  # unknown -> all zeros


def test_forest_imputes_with_indicator_without_scaling():
    pre, _, x = _fit("random_forest")
    names = output_names(pre)
    assert "missingindicator_num" in names and "missingindicator_flag" in names
    assert not np.isnan(x).any()
    col = x[:, names.index("count")]
    assert col.min() >= 0 and col.max() <= 4  # not scaled


def test_linear_scales_and_target_encodes_high_cardinality():
    pre, _, x = _fit("logistic")
    names = output_names(pre)
    assert not np.isnan(x).any()
    count = x[:, names.index("count")]
    assert abs(count.mean()) < 1e-9 and abs(count.std() - 1) < 1e-9
    assert "city" in names  # one target-encoded column
    from sklearn.preprocessing import TargetEncoder

    encoder = pre.named_transformers_["high"].named_steps["target"]
    assert isinstance(encoder, TargetEncoder) and encoder.cv == 5  # the seeded splitter is not stored
    # Reproducible cross-fitting: same seed, same encoding.
    _, _, again = _fit("logistic")
    assert np.array_equal(x, again)


def _scoring_table(n, seed, cities=80):
    """Values to score: NULLs, unseen and literal "nan"/"__missing__" strings, booleans, integers."""
    rng = np.random.default_rng(seed)
    words = np.array(["a", "b", "c", "zzz", "__missing__", "nan", ""], dtype=object)
    city = [None if v < 0.1 else ("nan" if v < 0.15 else f"city{int(v * 1000) % cities}") for v in rng.random(n)]
    return pa.table({
        "num": pa.array(rng.normal(size=n), mask=rng.random(n) < 0.1),
        "count": pa.array(rng.integers(-2, 7, size=n), type=pa.int64()),
        "price": pa.array([decimal.Decimal("1.25")] * n, type=pa.decimal128(6, 2)),
        "flag": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.1),
        "plan": pa.array(list(rng.choice(words, n)), mask=rng.random(n) < 0.1, type=pa.string()),
        "city": pa.array(city, type=pa.large_string()),
        "dict": pa.array(list(rng.choice(["x", "y", "w"], n))).dictionary_encode(),
        "signup": pa.array([dt.date(2024, 1, 1)] * n),
    })


@pytest.mark.parametrize("training_nulls", [True, False])
def test_direct_transform_equals_the_column_transformer_bit_for_bit(training_nulls):
    """XGBoost's inputs built with pyarrow/numpy are the ColumnTransformer's, to the bit:
    NULLs, unseen categories, booleans, high-cardinality codes, dictionary and large strings."""
    from dwml_py.preprocessing import DirectTransform

    fit_on = table(n=400, seed=3)
    if not training_nulls:  # no "__missing__" category, no NaN among the ordinal categories
        fit_on = fit_on.set_column(4, "plan", pa.array(["abc"[i % 3] for i in range(400)]))
        fit_on = fit_on.set_column(5, "city", pa.array([f"city{i % 60}" for i in range(400)]))
    pre, used, _ = _fit("xgboost", schema_table=fit_on)
    direct = DirectTransform.of(pre)
    assert direct is not None and sum(k.startswith("ordinal") for k, *_ in direct.blocks) == 1
    for n, seed in ((1, 0), (500, 1), (3000, 2)):
        new = _scoring_table(n, seed)
        expected = np.asarray(pre.transform(to_frame(new, used)), dtype=np.float64)
        got = direct(new, used)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()  # NaN included
    assert DirectTransform.of(_fit("random_forest")[0]) is None  # other layouts keep scikit-learn
    with pytest.raises(InputError, match="lacks feature"):
        direct(new.drop_columns(["plan"]), used)
    with pytest.raises(InputError, match="infinite"):
        direct(new.set_column(0, "num", pa.array([np.inf] * new.num_rows)), used)
