"""Warehouse-side profiling: every statistic checked against numpy/pandas on the same data."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError, NotFoundError
from dwml_py.profiling import (
    DEFAULT_QUANTILES,
    ColumnSpec,
    build_duplicates_query,
    build_profile_query,
    build_top_values_query,
    classify,
    profile_relation,
    store_profile,
)
from dwml_py.warehouse.duckdb import DuckDBWarehouse

HOSTILE = ['we"ird; col', "with space", "semi;colon -- drop table t", "it's", "`tick`"]


class CountingWarehouse(DuckDBWarehouse):
    """Counts every SQL statement sent to DuckDB (metadata lookups included)."""

    def __init__(self, *args, **kwargs):
        self.statements: list[str] = []
        super().__init__(*args, **kwargs)

    def _run(self, sql, *, what="statement"):
        self.statements.append(sql)
        return super()._run(sql, what=what)


@pytest.fixture
def wh():
    warehouse = CountingWarehouse(":memory:")
    yield warehouse
    warehouse.close()


def _data(n: int = 500, seed: int = 7) -> dict[str, pa.Array]:
    rng = np.random.default_rng(seed)
    floats = rng.normal(10.0, 3.0, n)
    float_null = rng.random(n) < 0.1
    floats[rng.random(n) < 0.05] = np.nan  # NaN is not NULL in SQL; dwml counts it as missing
    with_inf = rng.normal(0.0, 1.0, n)
    with_inf[[3, 30]] = np.inf
    with_inf[[5]] = -np.inf
    with_inf[[7, 8]] = np.nan
    ints = rng.integers(-50, 50, n)
    int_null = rng.random(n) < 0.2
    weights = np.array([0.5, 0.25, 0.15, 0.07, 0.03])
    cats = rng.choice(["alpha", "be", "c", "delta-delta", "e"], n, p=weights)
    cat_null = rng.random(n) < 0.15
    bools = rng.random(n) < 0.3
    base = dt.datetime(2024, 1, 1)
    stamps = [base + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 300, n)]
    keys = np.arange(n) // 1  # unique ...
    keys[[10, 11, 12]] = 9  # ... but key 9 four times
    keys[[20]] = 19  # and key 19 twice
    return {
        "id": pa.array(keys, pa.int64()),
        HOSTILE[0]: pa.array(floats, pa.float64(), mask=float_null),
        HOSTILE[1]: pa.array(ints, pa.int64(), mask=int_null),
        HOSTILE[2]: pa.array(cats, pa.string(), mask=cat_null),
        HOSTILE[3]: pa.array(bools, pa.bool_()),
        HOSTILE[4]: pa.array(stamps, pa.timestamp("us")),
        "with_inf": pa.array(with_inf, pa.float64()),
        "day": pa.array([s.date() for s in stamps], pa.date32()),
    }


@pytest.fixture
def loaded(wh):
    data = _data()
    wh.write_arrow(pa.table(data), "main", "features")
    return wh, data


def _clean_numeric(arr: pa.Array) -> np.ndarray:
    values = arr.to_numpy(zero_copy_only=False).astype(float)
    valid = ~np.asarray(arr.is_null()) & ~np.isnan(values)
    return values[valid]


def test_numeric_statistics_match_numpy(loaded):
    wh, data = loaded
    profile = profile_relation(wh, "main", "features", exact=True)
    n = len(data["id"])
    for name in (HOSTILE[0], HOSTILE[1]):
        col = profile.column(name)
        values = _clean_numeric(data[name])
        assert col.kind == "numeric"
        assert col.row_count == n
        assert col.null_count == n - len(values)
        assert col.null_rate == pytest.approx((n - len(values)) / n, abs=1e-12)
        assert col.distinct_count == len(np.unique(values))
        assert float(col.min_value) == values.min() and float(col.max_value) == values.max()
        assert col.mean == pytest.approx(values.mean(), rel=1e-9)
        assert col.std == pytest.approx(values.std(ddof=1), rel=1e-9)
        expected = np.quantile(values, DEFAULT_QUANTILES)
        assert list(col.quantiles) == ["0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"]
        assert np.allclose(list(col.quantiles.values()), expected, rtol=1e-9, atol=1e-9)
    float_col = profile.column(HOSTILE[0])
    assert float_col.nan_count == int(np.isnan(data[HOSTILE[0]].to_numpy(zero_copy_only=False)).sum()
                                      - data[HOSTILE[0]].null_count)
    assert profile.column(HOSTILE[1]).nan_count is None


def test_infinities_are_values_and_nan_is_missing(loaded):
    wh, data = loaded
    col = profile_relation(wh, "main", "features", exact=True).column("with_inf")
    raw = data["with_inf"].to_numpy()
    values = raw[~np.isnan(raw)]
    assert col.nan_count == 2 and col.null_count == 2
    assert col.min_value == -math.inf and col.max_value == math.inf
    with np.errstate(invalid="ignore"):
        assert math.isnan(col.mean) and math.isnan(np.mean(values))  # inf + -inf: undefined, in both
    assert np.allclose(list(col.quantiles.values()), np.quantile(values, DEFAULT_QUANTILES), rtol=1e-9, atol=1e-9)
    assert profile_relation(wh, "main", "features", quantiles=(0.0, 1.0)).column("with_inf").quantiles == {
        "0": -math.inf, "1": math.inf}
    assert col.distinct_count == len(np.unique(values))
    json.dumps(col.to_dict(), allow_nan=False)  # strict JSON despite nan/inf
    assert col.to_dict()["max_value"] == "inf" and col.to_dict()["mean"] == "nan"


def test_categorical_statistics_match_pandas(loaded):
    wh, data = loaded
    profile = profile_relation(wh, "main", "features", top_k=3, exact=True)
    series = pd.Series(data[HOSTILE[2]].to_pylist(), dtype=object)
    col = profile.column(HOSTILE[2])
    assert col.kind == "string"
    assert col.null_count == series.isna().sum()
    assert col.distinct_count == series.nunique()
    assert (col.min_value, col.max_value) == (series.dropna().min(), series.dropna().max())
    counts = series.value_counts()
    assert col.top_values == [{"value": v, "count": int(c)} for v, c in counts.head(3).items()]
    lengths = series.dropna().str.len()
    assert col.string_lengths["min"] == lengths.min() and col.string_lengths["max"] == lengths.max()
    assert col.string_lengths["mean"] == pytest.approx(lengths.mean(), rel=1e-12)

    flags = pd.Series(data[HOSTILE[3]].to_pylist())
    bool_col = profile.column(HOSTILE[3])
    assert bool_col.kind == "categorical"
    assert bool_col.mean == pytest.approx(flags.mean(), rel=1e-12)
    assert bool_col.top_values == [{"value": bool(v), "count": int(c)} for v, c in flags.value_counts().items()]
    assert bool_col.distinct_count == 2


def test_top_values_skip_null_and_break_ties_by_value(wh):
    wh.execute("CREATE TABLE t AS SELECT * FROM (VALUES (NULL), (NULL), (NULL), ('b'), ('a'), ('c'), ('c')) v(x)")
    col = profile_relation(wh, "main", "t", top_k=2).column("x")
    assert col.top_values == [{"value": "c", "count": 2}, {"value": "a", "count": 1}]
    assert col.null_count == 3


def test_temporal_freshness(loaded):
    wh, data = loaded
    profile = profile_relation(wh, "main", "features")
    col = profile.column(HOSTILE[4])
    latest = max(data[HOSTILE[4]].to_pylist())
    assert col.max_value == latest and col.min_value == min(data[HOSTILE[4]].to_pylist())
    expected = (profile.profiled_at - latest.replace(tzinfo=dt.timezone.utc)).total_seconds() / 3600
    assert col.freshness_hours == pytest.approx(expected, rel=1e-12)
    day = profile.column("day")
    assert day.kind == "temporal"
    latest_day = max(data["day"].to_pylist())
    midnight = dt.datetime(latest_day.year, latest_day.month, latest_day.day, tzinfo=dt.timezone.utc)
    assert day.freshness_hours == pytest.approx((profile.profiled_at - midnight).total_seconds() / 3600, rel=1e-12)


def test_duplicate_entity_keys(loaded):
    wh, data = loaded
    profile = profile_relation(wh, "main", "features", entity_key=["id"])
    counts = pd.Series(data["id"].to_pylist()).value_counts()
    assert profile.duplicate_keys == int((counts > 1).sum()) == 2
    assert profile.duplicate_rows == int((counts[counts > 1] - 1).sum()) == 4
    composite = profile_relation(wh, "main", "features", entity_key=["id", HOSTILE[3]])
    frame = pd.DataFrame({"id": data["id"].to_pylist(), "b": data[HOSTILE[3]].to_pylist()})
    expected = frame.groupby(["id", "b"]).size()
    assert composite.duplicate_keys == int((expected > 1).sum())
    assert profile_relation(wh, "main", "features").duplicate_keys is None


def test_approximate_distinct_is_close(loaded):
    wh, data = loaded
    profile = profile_relation(wh, "main", "features")
    assert profile.approximate_distinct is True
    exact = len(np.unique(_clean_numeric(data[HOSTILE[0]])))
    assert abs(profile.column(HOSTILE[0]).distinct_count - exact) <= 0.05 * exact


def test_one_pass_per_table(wh):
    """Aggregates of all columns come from one SELECT: the number of statements does not grow with
    the number of columns (1 type lookup + 1 aggregate + 1 quantiles + 1 top values + 1 duplicate keys)."""
    counts = {}
    for width in (3, 60):
        cols = {f"n{i}": pa.array(np.arange(100.0) * i) for i in range(width)}
        cols.update({f"s{i}": pa.array([str(v % 7) for v in range(100)]) for i in range(width // 3)})
        wh.write_arrow(pa.table({"id": pa.array(np.arange(100)), **cols}), "main", f"wide{width}")
        wh.statements.clear()
        profile_relation(wh, "main", f"wide{width}", entity_key=["id"])
        counts[width] = len(wh.statements)
        scans = [s for s in wh.statements if f'"wide{width}"' in s]
        assert len(scans) == 4, scans
    assert counts[3] == counts[60] == 5


def test_quantiles_from_a_sample_beyond_the_sample_size(wh, monkeypatch):
    """Beyond QUANTILE_SAMPLE_ROWS rows the quantiles come from a Bernoulli sample: close to numpy's
    (within the sampling error of the quantile's rank), NaN still left out; exact=True and smaller
    tables give numpy's exactly."""
    from dwml_py import profiling

    n = 40_000
    rng = np.random.default_rng(3)
    values = rng.lognormal(0.0, 1.0, n)  # skewed, so a rank error shows as a value error
    values[rng.random(n) < 0.05] = np.nan
    wh.write_arrow(pa.table({"x": pa.array(values), "k": pa.array(rng.integers(0, 5, n))}), "main", "big")
    clean = values[~np.isnan(values)]
    monkeypatch.setattr(profiling, "QUANTILE_SAMPLE_ROWS", 4_000)
    sampled = profile_relation(wh, "main", "big")
    assert sampled.approximate_quantiles is True and sampled.to_dict()["approximate_quantiles"] is True
    got = np.array(list(sampled.column("x").quantiles.values()))
    # the rank of each sampled quantile in the full data: within 4 standard errors of its fraction
    ranks = np.searchsorted(np.sort(clean), got) / clean.size
    se = np.sqrt(np.array(DEFAULT_QUANTILES) * (1 - np.array(DEFAULT_QUANTILES)) / 4_000)
    assert np.all(np.abs(ranks - np.array(DEFAULT_QUANTILES)) <= 4 * se + 1e-4), (ranks, se)
    assert not np.allclose(got, np.quantile(clean, DEFAULT_QUANTILES), rtol=1e-9)  # it did sample
    # the other statistics still cover every row
    assert sampled.column("x").mean == pytest.approx(clean.mean(), rel=1e-9)
    assert sampled.column("x").null_count == n - clean.size
    exact = profile_relation(wh, "main", "big", exact=True)
    assert exact.approximate_quantiles is False
    assert np.allclose(list(exact.column("x").quantiles.values()), np.quantile(clean, DEFAULT_QUANTILES), rtol=1e-9)
    ints = wh.fetch_arrow("SELECT k FROM big").column("k").to_numpy()
    assert np.allclose(list(exact.column("k").quantiles.values()), np.quantile(ints, DEFAULT_QUANTILES), rtol=1e-9)
    monkeypatch.setattr(profiling, "QUANTILE_SAMPLE_ROWS", n)
    assert profile_relation(wh, "main", "big").approximate_quantiles is False


def test_empty_table_gives_null_statistics(wh):
    wh.execute('CREATE TABLE "empty table" (id BIGINT, x DOUBLE, s VARCHAR, b BOOLEAN, ts TIMESTAMP)')
    profile = profile_relation(wh, "main", "empty table", entity_key=["id"])
    assert profile.row_count == 0 and profile.duplicate_keys == 0
    x = profile.column("x")
    assert (x.null_count, x.null_rate, x.mean, x.std, x.min_value) == (0, None, None, None, None)
    assert set(x.quantiles.values()) == {None}
    assert profile.column("s").top_values == [] and profile.column("ts").freshness_hours is None
    json.dumps(profile.to_dict(), allow_nan=False)


def test_hostile_table_and_schema_names(wh):
    wh.create_schema('sch"ema; x')
    wh.write_arrow(pa.table({HOSTILE[0]: [1.0, 2.0, None], HOSTILE[2]: ["a", "a", "b"]}), 'sch"ema; x', "t'; drop")
    profile = profile_relation(wh, 'sch"ema; x', "t'; drop", entity_key=[HOSTILE[2]])
    assert profile.column(HOSTILE[0]).mean == 1.5 and profile.duplicate_keys == 1
    assert profile.column(HOSTILE[2]).top_values[0] == {"value": "a", "count": 2}


def test_other_types_get_null_counts_only(wh):
    wh.execute("CREATE TABLE t AS SELECT [1, 2] AS l, {'a': 1} AS st, NULL::BLOB AS bl FROM range(3)")
    profile = profile_relation(wh, "main", "t")
    assert [c.kind for c in profile.columns] == ["other", "other", "other"]
    assert profile.column("bl").null_count == 3 and profile.column("l").null_count == 0
    assert profile.column("l").distinct_count is None


def test_errors_name_the_problem(wh):
    wh.execute("CREATE TABLE customers AS SELECT 1 AS customer_id")
    with pytest.raises(NotFoundError, match="main.custmers"):
        profile_relation(wh, "main", "custmers")
    with pytest.raises(NotFoundError, match="customer_ie") as info:
        profile_relation(wh, "main", "customers", entity_key=["customer_ie"])
    assert "customer_id" in info.value.hint
    with pytest.raises(InputError, match="quantiles"):
        profile_relation(wh, "main", "customers", quantiles=(0.5, 1.5))
    with pytest.raises(InputError, match="top_k"):
        profile_relation(wh, "main", "customers", top_k=-1)


def test_store_and_read_back_two_profiles(loaded):
    wh, data = loaded
    first = profile_relation(wh, "main", "features", entity_key=["id"])
    second = profile_relation(wh, "main", "features", entity_key=["id"])
    assert store_profile(wh, first) == len(first.columns)
    assert store_profile(wh, second) == len(second.columns)
    rows = wh.fetch_rows("SELECT * FROM dwml.table_profiles ORDER BY profiled_at, column_name")
    assert len(rows) == 2 * len(data)
    assert {r["profile_id"] for r in rows} == {first.profile_id, second.profile_id}
    stored = {(r["profile_id"], r["column_name"]): r for r in rows}
    row = stored[(first.profile_id, HOSTILE[0])]
    col = first.column(HOSTILE[0])
    assert row["relation"] == "main.features" and row["duplicate_keys"] == 2
    assert row["mean"] == col.mean and row["std"] == col.std and row["null_count"] == col.null_count
    assert json.loads(row["quantiles"]) == col.quantiles
    assert float(row["min_value"]) == col.min_value
    assert row["profiled_at"] == first.profiled_at.replace(tzinfo=None)
    cat = stored[(first.profile_id, HOSTILE[2])]
    assert json.loads(cat["top_values"]) == first.column(HOSTILE[2]).top_values
    assert json.loads(cat["string_lengths"]) == first.column(HOSTILE[2]).string_lengths
    assert stored[(first.profile_id, "with_inf")]["max_value"] == "inf"


def test_to_dict_is_json(loaded):
    wh, _ = loaded
    data = profile_relation(wh, "main", "features", entity_key=["id"]).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["profiled_at"].endswith("+00:00")
    assert {c["name"] for c in data["columns"]} >= set(HOSTILE)


# -- SQL per dialect ------------------------------------------------------------------------

SPECS = [
    ColumnSpec('we"ird; col', "DOUBLE", "numeric", is_float=True),
    ColumnSpec("n", "BIGINT", "numeric"),
    ColumnSpec("s`x", "VARCHAR", "string"),
    ColumnSpec("flag", "BOOLEAN", "categorical", is_bool=True),
    ColumnSpec("ts", "TIMESTAMP", "temporal"),
]

EXPECTED_FUNCTIONS = {
    "duckdb": ["QUANTILE_CONT(", "APPROX_COUNT_DISTINCT(", "ISNAN(", "STDDEV_SAMP("],
    "postgres": ["PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY", "COUNT(DISTINCT", "= CAST('NaN' AS DOUBLE PRECISION)",
                 "STDDEV_SAMP("],
    "snowflake": ["PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY", "COUNT(DISTINCT", "= CAST('NaN' AS DOUBLE)"],
    "spark": ["PERCENTILE(CAST(", "COUNT(DISTINCT", "ISNAN(", "STDDEV_SAMP("],
    "bigquery": ["APPROX_QUANTILES(", "COUNT(DISTINCT", "IS_NAN(", "STDDEV_SAMP("],
}


@pytest.mark.parametrize("dialect", sorted(EXPECTED_FUNCTIONS))
def test_profile_select_per_dialect(dialect):
    query, layout = build_profile_query(sqlmod.table("main", "t"), SPECS, dialect, approx_distinct=dialect == "duckdb")
    sql = query.sql(dialect)
    for name in EXPECTED_FUNCTIONS[dialect]:
        assert name in sql, (name, sql)
    reparsed = sqlglot.parse_one(sql, read=dialect)
    assert len(reparsed.selects) == 1 + len(layout)
    # stable after one round trip (sqlglot may normalise a synonym once, e.g. STDDEV_SAMP -> STDDEV)
    again = reparsed.sql(dialect)
    assert sqlglot.parse_one(again, read=dialect).sql(dialect) == again
    assert len(list(query.find_all(sqlglot.exp.Table))) == 1  # one relation, no subqueries: one scan
    quoted = {"spark": "`s``x`", "bigquery": "`s\\`x`"}.get(dialect, '"s`x"')
    assert quoted in sql
    if dialect in ("duckdb", "postgres", "snowflake"):
        assert '"we""ird; col"' in sql


@pytest.mark.parametrize("dialect", sorted(EXPECTED_FUNCTIONS))
def test_top_values_and_duplicates_per_dialect(dialect):
    top = build_top_values_query(sqlmod.table("main", "t"), ["s`x", "flag"], 5).sql(dialect)
    assert "GROUPING SETS" in top and "ROW_NUMBER() OVER (PARTITION BY" in top
    assert sqlglot.parse_one(top, read=dialect).sql(dialect) == top
    dups = build_duplicates_query(sqlmod.table("main", "t"), ["id", "day"]).sql(dialect)
    assert "HAVING COUNT(*) > 1" in dups
    sqlglot.parse_one(dups, read=dialect)


def test_classify_types():
    assert classify("x", "DECIMAL(18,3)", "duckdb").kind == "numeric"
    assert classify("x", "DOUBLE", "duckdb").is_float and not classify("x", "HUGEINT", "duckdb").is_float
    assert classify("x", "TIMESTAMP WITH TIME ZONE", "duckdb").kind == "temporal"
    assert classify("x", "VARCHAR", "duckdb").kind == "string"
    assert classify("x", "ENUM('a', 'b')", "duckdb").kind == "categorical"
    assert classify("x", "INTEGER[]", "duckdb").kind == "other"
    assert classify("x", "not a type at all (", "duckdb").kind == "other"


# -- the tool -------------------------------------------------------------------------------

def test_get_feature_stats_resolves_and_stores(project, duckdb_path):
    from dwml_py.tools.profile_tools import get_feature_stats

    with DuckDBWarehouse(str(duckdb_path)) as warehouse:
        warehouse.execute("CREATE TABLE customer_features AS SELECT range AS customer_id, range * 2.0 AS spend "
                          "FROM range(5)")
    result = get_feature_stats(project, "customer_features", entity_key=["customer_id"])
    assert result["row_count"] == 5 and result["duplicate_keys"] == 0 and result["stored_rows"] == 2
    json.dumps(result, allow_nan=False)
    assert get_feature_stats(project, "main.customer_features", store=False)["stored_rows"] == 0
    assert get_feature_stats(project, "Customer_Features", store=False)["relation"] == "main.customer_features"
    with pytest.raises(NotFoundError) as info:
        get_feature_stats(project, "customer_featurs")
    assert "customer_features" in info.value.hint
    with DuckDBWarehouse(str(duckdb_path), read_only=True) as warehouse:
        assert warehouse.fetch_scalar("SELECT count(DISTINCT profile_id) FROM dwml.table_profiles") == 1
