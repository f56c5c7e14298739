"""dwml's generated SQL executed on Spark and on DuckDB over the same rows: the profile (Spark's
exact `percentile`), the training-set join (DuckDB's ASOF join against the window join Spark
gets), the fingerprint (xxhash64) and the drift counts agree between the engines and with numpy.
Column names are hostile (quotes, backticks, semicolons); Spark's metastore only takes plain
table names."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from dwml_py import sql as sqlmod
from dwml_py.drift import count_categorical, count_numeric, window_filter
from dwml_py.profiling import profile_relation
from dwml_py.training_set import TrainingSpec, build_training_query, fingerprint
from dwml_py.warehouse.duckdb import DuckDBWarehouse

pytestmark = [pytest.mark.spark]

HOSTILE = 'x"; drop `table` t; --'
N = 400


def _features() -> pa.Table:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 3, N)
    x[rng.random(N) < 0.05] = np.nan
    x_mask = rng.random(N) < 0.05  # NULL, as opposed to NaN
    colour = rng.choice(["red", "green", "blue", "it's", ""], N).astype(object)
    colour[rng.random(N) < 0.05] = None
    return pa.table({
        "id": pa.array(np.arange(N) % 100, pa.int64()),
        "ts": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=30 * (i // 100)) for i in range(N)], pa.date32()),
        HOSTILE: pa.array(x, mask=x_mask),
        "n": pa.array(rng.integers(-5, 50, N), pa.int32()),
        "colour": pa.array(list(colour), pa.string()),
        "flag": pa.array(rng.random(N) < 0.3),
    })


def _labels() -> pa.Table:
    """Events per entity at scattered times: the first one at/after each snapshot is its label."""
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 100, 600)
    days = rng.integers(0, 200, 600)
    # distinct event times per entity, so "the first event" is unique on both engines
    stamps = [dt.datetime(2024, 1, 1) + dt.timedelta(days=int(d), minutes=i) for i, d in enumerate(days)]
    y = rng.random(600) < 0.3
    y_values = [None if rng.random() < 0.05 else int(v) for v in y]
    return pa.table({"id": pa.array(ids, pa.int64()), "event_ts": pa.array(stamps, pa.timestamp("us")),
                     "y": pa.array(y_values, pa.int32())})


S = "sql_s"  # this module's schema in the session's one metastore


@pytest.fixture(scope="module")
def engines(spark_session):
    from dwml_py.warehouse.spark import SparkWarehouse

    spark = SparkWarehouse(spark_session)
    duck = DuckDBWarehouse(":memory:")
    features, labels = _features(), _labels()
    for wh in (duck, spark):
        wh.write_arrow(features, S, "features", mode="replace")
        wh.write_arrow(labels, S, "events", mode="replace")
    yield {"duckdb": duck, "spark": spark, "features": features}
    duck.close()


def test_profile_is_the_same_on_both_engines_and_equals_numpy(engines):
    sp = profile_relation(engines["spark"], S, "features", entity_key=["id", "ts"], exact=True)
    duck = profile_relation(engines["duckdb"], S, "features", entity_key=["id", "ts"], exact=True)
    assert sp.row_count == duck.row_count == N and sp.duplicate_keys == duck.duplicate_keys == 0
    for name in ("id", "ts", HOSTILE, "n", "colour", "flag"):
        a, b = sp.column(name).to_dict(), duck.column(name).to_dict()
        for field in ("kind", "null_count", "nan_count", "distinct_count", "top_values", "string_lengths"):
            assert a[field] == b[field], (name, field)
        for field in ("null_rate", "mean", "std"):
            assert (a[field] is None and b[field] is None) or a[field] == pytest.approx(b[field], rel=1e-12), \
                (name, field)
        assert a["min_value"] == b["min_value"] and a["max_value"] == b["max_value"], name
        if a["quantiles"]:
            assert a["quantiles"] == pytest.approx(b["quantiles"], rel=1e-12), name
    x = engines["features"].column(HOSTILE).to_numpy(zero_copy_only=False).astype(float)
    present = x[~np.isnan(x)]
    col = sp.column(HOSTILE)
    assert col.null_count == int(np.isnan(x).sum()) and col.nan_count == int(np.isnan(
        engines["features"].column(HOSTILE).fill_null(0).to_numpy()).sum())
    assert col.mean == pytest.approx(present.mean(), rel=1e-12) and col.std == pytest.approx(present.std(ddof=1), rel=1e-12)
    for key, value in col.quantiles.items():
        assert value == pytest.approx(np.quantile(present, float(key)), rel=1e-12), key
    colours = engines["features"].column("colour").to_pylist()
    assert sp.column("colour").string_lengths["min"] == 0  # '' is a value, not a NULL
    assert sp.column("colour").null_count == colours.count(None)


def _spec(**kw) -> TrainingSpec:
    base = dict(model_name="m", task="classification", feature_model="model.p.features", feature_schema=S,
                feature_table="features", entity=["id"], timestamp="ts", label_model="model.p.events",
                label_schema=S, label_table="events", label_column="y", horizon_days=45,
                features=[HOSTILE, "n", "colour", "flag"], label_timestamp="event_ts")
    return TrainingSpec(**{**base, **kw})


def test_window_join_on_spark_equals_duckdbs_asof_join(engines):
    spec = _spec()
    asof = engines["duckdb"].fetch_arrow(build_training_query(spec, "duckdb", asof_join=True))
    window = engines["spark"].fetch_arrow(build_training_query(spec, "spark"))
    assert window.num_rows == asof.num_rows > 100
    assert _rows(window) == _rows(asof)
    # and DuckDB's own window join (the fallback) agrees with its ASOF join
    assert _rows(engines["duckdb"].fetch_arrow(build_training_query(spec, "duckdb", asof_join=False))) == _rows(asof)


def _rows(table: pa.Table) -> list[tuple]:
    """Rows sorted by key, NaN spelled out (NaN != NaN would fail any comparison)."""
    rows = [tuple("NaN" if isinstance(v, float) and np.isnan(v) else v for v in r.values()) for r in table.to_pylist()]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _same(table: str) -> TrainingSpec:
    """Features and label (flag) from one table: every row of it is a training row."""
    model = f"model.p.{table}"
    return _spec(feature_model=model, feature_table=table, label_model=model, label_table=table, label_column="flag",
                 features=[HOSTILE, "n", "colour"], label_timestamp=None, horizon_days=None)


def test_spark_fingerprint_sees_every_value_but_not_the_order(engines):
    sp = engines["spark"]
    features = engines["features"]
    spec = _same(table="features")
    query = build_training_query(spec, "spark")
    first = fingerprint(sp, query)
    assert first["method"] == "spark-xxhash64-sum64" and first["row_count"] == N and len(first["hash"]) == 16
    assert fingerprint(sp, query) == first
    assert fingerprint(engines["duckdb"], build_training_query(spec, "duckdb"))["row_count"] == N

    def fp_of(table: pa.Table) -> dict:
        sp.write_arrow(table, S, "other", mode="replace")
        return fingerprint(sp, build_training_query(_same(table="other"), "spark"))

    shuffled = features.take(np.random.default_rng(1).permutation(N))
    assert fp_of(shuffled) == first  # order does not matter
    changed = features.set_column(3, "n", pa.array([v + (i == 7) for i, v in enumerate(features["n"].to_pylist())],
                                                   pa.int32()))
    assert fp_of(changed)["hash"] != first["hash"]
    colours = features["colour"].to_pylist()
    blank = next(i for i, c in enumerate(colours) if c == "")
    swapped = features.set_column(4, "colour", pa.array([None if i == blank else c for i, c in enumerate(colours)],
                                                        pa.string()))
    assert fp_of(swapped)["hash"] != first["hash"]  # '' and NULL hash differently
    doubled = pa.concat_tables([features.slice(0, 1), features.slice(0, 1)])
    once = fp_of(features.slice(0, 1))
    twice = fp_of(doubled)
    assert twice["row_count"] == 2 and twice["hash"] not in (once["hash"], "0" * 16)  # duplicates do not cancel


def test_drift_counts_are_the_same_on_both_engines_and_equal_numpy(engines):
    cuts = [5.0, 8.5, 10.0, 12.0, 15.0]
    where = window_filter("ts", "2024-02-01", None)
    numeric = [(HOSTILE, cuts), ("n", [0.0, 10.0, 20.0]), ("flag", [0.0])]
    categories = [("colour", ["red", "green", "it's", "__other__"])]
    results = {}
    for name in ("duckdb", "spark"):
        wh = engines[name]
        source = sqlmod.table(S, "features")
        results[name] = (count_numeric(wh, source, numeric, where, frozenset({"flag"})),
                         count_categorical(wh, source, categories, where))
    assert results["spark"] == results["duckdb"]
    (total, counts), cat = results["spark"]
    table = engines["features"]
    in_window = np.array([d >= dt.date(2024, 2, 1) for d in table.column("ts").to_pylist()])
    assert total == int(in_window.sum())
    x = table.column(HOSTILE).to_numpy(zero_copy_only=False).astype(float)[in_window]
    present = x[~np.isnan(x)]
    expected = np.bincount(np.searchsorted(cuts, present, side="left"), minlength=len(cuts) + 1).tolist()
    assert counts[HOSTILE] == {"counts": expected, "missing": int(np.isnan(x).sum())}
    flags = np.array(table.column("flag").to_pylist())[in_window]
    assert counts["flag"] == {"counts": [int((~flags).sum()), int(flags.sum())], "missing": 0}
    colours = [c for c, w in zip(table.column("colour").to_pylist(), in_window) if w]
    assert cat["colour"]["counts"][:3] == [colours.count("red"), colours.count("green"), colours.count("it's")]
    assert cat["colour"]["missing"] == colours.count(None)
    assert cat["colour"]["counts"][3] == colours.count("blue") + colours.count("")  # folded into __other__


def test_spark_fingerprint_tells_where_the_nulls_are(engines):
    """xxhash64 skips NULL arguments; the fingerprint hashes an IS NULL flag after each value."""
    sp = engines["spark"]
    assert sp.fetch_scalar("SELECT xxhash64(CAST(NULL AS STRING), 'x') = xxhash64('x', CAST(NULL AS STRING))") is True

    def fp(a, b) -> str:
        sp.write_arrow(pa.table({"id": [1], "a": pa.array([a], pa.string()), "b": pa.array([b], pa.string()),
                                 "ts": [dt.date(2024, 1, 1)]}), S, "nulls", mode="replace")
        spec = _spec(feature_model="model.p.nulls", feature_table="nulls", label_model="model.p.nulls",
                     label_table="nulls", label_column="b", features=["a"], label_timestamp=None, horizon_days=None)
        return fingerprint(sp, build_training_query(spec, "spark"))["hash"]

    assert fp(None, "x") != fp("x", None)
    assert fp("", "x") != fp(None, "x")
