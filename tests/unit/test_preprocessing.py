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
