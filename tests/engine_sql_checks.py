"""dwml's generated SQL executed on another engine and on DuckDB over the same rows: the profile,
the training-set join (DuckDB's ASOF join against the other engine's window join), the
fingerprint and the drift counts agree between the engines and with numpy. Shared by
tests/postgres/test_postgres_sql.py and tests/spark/test_spark_sql.py, which supply the engine;
`round_trip_sample` is the table every warehouse's Arrow round trip is tested with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest

from dwml_py import sql as sqlmod
from dwml_py.drift import count_categorical, count_numeric, window_filter
from dwml_py.profiling import profile_relation
from dwml_py.training_set import TrainingSpec, build_training_query, fingerprint
from dwml_py.warehouse.duckdb import DuckDBWarehouse

N = 400


@dataclass
class Engines:
    """DuckDB and the engine under test, both holding `features` and `events` in `schema`."""

    other: object
    dialect: str
    schema: str
    hostile: str  # the hostile column name of the features
    duckdb: object = None
    features: pa.Table = None


def load(other, dialect: str, schema: str, hostile: str) -> Engines:
    """Write the same features and label events to an in-memory DuckDB and to `other`."""
    duck = DuckDBWarehouse(":memory:")
    features, labels = features_table(hostile), labels_table()
    for wh in (duck, other):
        wh.write_arrow(features, schema, "features", mode="replace")
        wh.write_arrow(labels, schema, "events", mode="replace")
    return Engines(other, dialect, schema, hostile, duck, features)


def features_table(hostile: str) -> pa.Table:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 3, N)
    x[rng.random(N) < 0.05] = np.nan
    x_mask = rng.random(N) < 0.05  # NULL, as opposed to NaN
    colour = rng.choice(["red", "green", "blue", "it's", ""], N).astype(object)
    colour[rng.random(N) < 0.05] = None
    return pa.table({
        "id": pa.array(np.arange(N) % 100, pa.int64()),
        "ts": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=30 * (i // 100)) for i in range(N)], pa.date32()),
        hostile: pa.array(x, mask=x_mask),
        "n": pa.array(rng.integers(-5, 50, N), pa.int32()),
        "colour": pa.array(list(colour), pa.string()),
        "flag": pa.array(rng.random(N) < 0.3),
    })


def labels_table() -> pa.Table:
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


def check_profile(e: Engines) -> None:
    """The profile is the same on both engines and equals numpy."""
    hostile = e.hostile
    other = profile_relation(e.other, e.schema, "features", entity_key=["id", "ts"], exact=True)
    duck = profile_relation(e.duckdb, e.schema, "features", entity_key=["id", "ts"], exact=True)
    assert other.row_count == duck.row_count == N and other.duplicate_keys == duck.duplicate_keys == 0
    for name in ("id", "ts", hostile, "n", "colour", "flag"):
        a, b = other.column(name).to_dict(), duck.column(name).to_dict()
        for field in ("kind", "null_count", "nan_count", "distinct_count", "top_values", "string_lengths"):
            assert a[field] == b[field], (name, field)
        for field in ("null_rate", "mean", "std"):
            assert (a[field] is None and b[field] is None) or a[field] == pytest.approx(b[field], rel=1e-12), \
                (name, field)
        assert a["min_value"] == b["min_value"] and a["max_value"] == b["max_value"], name
        if a["quantiles"]:
            assert a["quantiles"] == pytest.approx(b["quantiles"], rel=1e-12), name
    x = e.features.column(hostile).to_numpy(zero_copy_only=False).astype(float)
    present = x[~np.isnan(x)]
    col = other.column(hostile)
    assert col.null_count == int(np.isnan(x).sum()) and col.nan_count == int(np.isnan(
        e.features.column(hostile).fill_null(0).to_numpy()).sum())
    assert col.mean == pytest.approx(present.mean(), rel=1e-12) and col.std == pytest.approx(present.std(ddof=1), rel=1e-12)
    for key, value in col.quantiles.items():
        assert value == pytest.approx(np.quantile(present, float(key)), rel=1e-12), key
    colours = e.features.column("colour").to_pylist()
    assert other.column("colour").string_lengths["min"] == 0  # '' is a value, not a NULL
    assert other.column("colour").null_count == colours.count(None)


def spec(e: Engines, **kw) -> TrainingSpec:
    base = dict(model_name="m", task="classification", feature_model="model.p.features", feature_schema=e.schema,
                feature_table="features", entity=["id"], timestamp="ts", label_model="model.p.events",
                label_schema=e.schema, label_table="events", label_column="y", horizon_days=45,
                features=[e.hostile, "n", "colour", "flag"], label_timestamp="event_ts")
    return TrainingSpec(**{**base, **kw})


def check_window_join(e: Engines) -> None:
    """The other engine's window join equals DuckDB's ASOF join."""
    training = spec(e)
    asof = e.duckdb.fetch_arrow(build_training_query(training, "duckdb", asof_join=True))
    window = e.other.fetch_arrow(build_training_query(training, e.dialect))
    assert window.num_rows == asof.num_rows > 100
    assert _rows(window) == _rows(asof)
    # and DuckDB's own window join (the fallback) agrees with its ASOF join
    assert _rows(e.duckdb.fetch_arrow(build_training_query(training, "duckdb", asof_join=False))) == _rows(asof)


def _rows(table: pa.Table) -> list[tuple]:
    """Rows sorted by key, NaN spelled out (NaN != NaN would fail any comparison)."""
    rows = [tuple("NaN" if isinstance(v, float) and np.isnan(v) else v for v in r.values()) for r in table.to_pylist()]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _same(e: Engines, table: str) -> TrainingSpec:
    """Features and label (flag) from one table: every row of it is a training row."""
    model = f"model.p.{table}"
    return spec(e, feature_model=model, feature_table=table, label_model=model, label_table=table, label_column="flag",
                features=[e.hostile, "n", "colour"], label_timestamp=None, horizon_days=None)


def check_fingerprint(e: Engines, method: str) -> None:
    """The other engine's fingerprint (`method`) sees every value but not the order."""
    other = e.other
    features = e.features
    training = _same(e, table="features")
    query = build_training_query(training, e.dialect)
    first = fingerprint(other, query)
    assert first["method"] == method and first["row_count"] == N and len(first["hash"]) == 16
    assert fingerprint(other, query) == first
    assert fingerprint(e.duckdb, build_training_query(training, "duckdb"))["row_count"] == N

    def fp_of(table: pa.Table) -> dict:
        other.write_arrow(table, e.schema, "other", mode="replace")
        return fingerprint(other, build_training_query(_same(e, table="other"), e.dialect))

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


def check_drift_counts(e: Engines) -> None:
    """Drift counts are the same on both engines and equal numpy."""
    hostile = e.hostile
    cuts = [5.0, 8.5, 10.0, 12.0, 15.0]
    where = window_filter("ts", "2024-02-01", None)
    numeric = [(hostile, cuts), ("n", [0.0, 10.0, 20.0]), ("flag", [0.0])]
    categories = [("colour", ["red", "green", "it's", "__other__"])]
    results = {}
    for name, wh in (("duckdb", e.duckdb), (e.dialect, e.other)):
        source = sqlmod.table(e.schema, "features")
        results[name] = (count_numeric(wh, source, numeric, where, frozenset({"flag"})),
                         count_categorical(wh, source, categories, where))
    assert results[e.dialect] == results["duckdb"]
    (total, counts), cat = results[e.dialect]
    table = e.features
    in_window = np.array([d >= dt.date(2024, 2, 1) for d in table.column("ts").to_pylist()])
    assert total == int(in_window.sum())
    x = table.column(hostile).to_numpy(zero_copy_only=False).astype(float)[in_window]
    present = x[~np.isnan(x)]
    expected = np.bincount(np.searchsorted(cuts, present, side="left"), minlength=len(cuts) + 1).tolist()
    assert counts[hostile] == {"counts": expected, "missing": int(np.isnan(x).sum())}
    flags = np.array(table.column("flag").to_pylist())[in_window]
    assert counts["flag"] == {"counts": [int((~flags).sum()), int(flags.sum())], "missing": 0}
    colours = [c for c, w in zip(table.column("colour").to_pylist(), in_window) if w]
    assert cat["colour"]["counts"][:3] == [colours.count("red"), colours.count("green"), colours.count("it's")]
    assert cat["colour"]["missing"] == colours.count(None)
    assert cat["colour"]["counts"][3] == colours.count("blue") + colours.count("")  # folded into __other__


def round_trip_sample(hostile: str, **extra) -> pa.Table:
    """Values a warehouse must write and read back exactly: NULLs, NaN, empty and tricky text,
    float32, a leap day, microseconds, `extra` columns, and a column named `hostile`."""
    return pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "small": pa.array([1, None, -7], pa.int32()),
        "text": ["plain", "", None],
        "tricky": ['quote " comma, newline\nend', "é ü 東京", "\\N"],
        "x": [0.1 + 0.2, float("nan"), 1 / 3],
        "f32": pa.array([1.5, None, -0.25], pa.float32()),
        "flag": [True, False, None],
        "day": [dt.date(2024, 2, 29), None, dt.date(1999, 12, 31)],
        "at": [dt.datetime(2024, 1, 2, 3, 4, 5, 678901), None, dt.datetime(2000, 1, 1)],
        **extra,
        hostile: ["a", "b", "c"],
    })
