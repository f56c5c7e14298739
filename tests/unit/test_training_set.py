"""The training set: spec from meta.dwml, the point-in-time query per dialect, the in-warehouse
fingerprint, the Arrow fetch and the time/random split."""

from __future__ import annotations

import datetime as dt
import doctest

import numpy as np
import pyarrow as pa
import pytest

import dwml_py.training_set as ts
from dwml_py.catalog import Catalog
from dwml_py.errors import ConfigError, InputError, NotFoundError
from dwml_py.sql import render
from dwml_py.training_set import (TrainingSpec, build_training_query, fetch_training_table, fingerprint,
                                  resolve_spec, split)
from dwml_py.warehouse.duckdb import DuckDBWarehouse

MANIFEST_URL = "https://schemas.getdbt.com/dbt/manifest/v12.json"
DWML_META = {"entity": "customer_id", "timestamp": "snapshot_date", "exclude": ["debug_col"], "models": {
    "churn": {"task": "classification", "label": {"model": "labels", "column": "churned", "horizon_days": 30}},
    "spend": {"task": "regression", "exclude": ["plan"],
              "label": {"model": "events", "column": "amount", "timestamp": "event_date", "horizon_days": 90}},
}}


def _model(name, columns, meta=None):
    return {"unique_id": f"model.shop.{name}", "name": name, "resource_type": "model", "package_name": "shop",
            "database": "db", "schema": "main", "alias": name, "description": "", "tags": [],
            "config": {"materialized": "table", "meta": dict(meta or {}), "tags": []},
            "checksum": {"name": "sha256", "checksum": f"sum-{name}"}, "depends_on": {"nodes": []},
            "columns": {c: {"name": c, "description": "", "meta": {}, "tags": []} for c in columns}}


@pytest.fixture
def catalog():
    nodes = [
        _model("features", ["customer_id", "snapshot_date", "tenure", "plan", "debug_col"], {"dwml": DWML_META}),
        _model("labels", ["customer_id", "snapshot_date", "churned"]),
        _model("events", ["customer_id", "event_date", "amount"]),
    ]
    return Catalog.from_dicts({"metadata": {"dbt_schema_version": MANIFEST_URL, "adapter_type": "duckdb",
                                            "project_name": "shop"},
                               "nodes": {n["unique_id"]: n for n in nodes}, "sources": {}})


def spec(**changes) -> TrainingSpec:
    base = dict(model_name="churn", task="classification", feature_model="model.shop.features",
                feature_schema="main", feature_table="features", entity=["customer_id"], timestamp="snapshot_date",
                label_model="model.shop.labels", label_schema="main", label_table="labels", label_column="churned",
                horizon_days=30, features=["tenure", "plan"])
    base.update(changes)
    return TrainingSpec(**base)


def test_doctests():
    assert doctest.testmod(ts).failed == 0


# -- resolve_spec ---------------------------------------------------------------------------

def test_resolve_spec_from_meta(catalog):
    s = resolve_spec(catalog, "churn")
    assert (s.task, s.entity, s.timestamp, s.label_column, s.horizon_days) == (
        "classification", ["customer_id"], "snapshot_date", "churned", 30)
    assert (s.feature_schema, s.feature_table, s.label_table, s.join) == ("main", "features", "labels", "snapshot")
    # Keys, timestamp and label are never features; `exclude` at the dwml level applies to every model.
    assert s.features == ["tenure", "plan"] and s.exclude == ["debug_col"]
    assert s.feature_checksum == "sum-features"
    assert TrainingSpec.from_dict(s.to_dict()) == s


def test_resolve_spec_asof_label_and_model_level_exclude(catalog):
    s = resolve_spec(catalog, "spend")
    assert s.join == "asof" and s.label_timestamp == "event_date" and s.label_table == "events"
    assert s.features == ["tenure"] and set(s.exclude) == {"debug_col", "plan"}


def test_resolve_spec_overrides(catalog):
    s = resolve_spec(catalog, "churn", features=["plan"], horizon_days=7)
    assert s.features == ["plan"] and s.horizon_days == 7
    # A model declared nowhere, entirely from arguments (as from the command line).
    s = resolve_spec(catalog, "adhoc", feature_model="features", task="regression", label_model="labels",
                     label_column="churned", entity="customer_id", timestamp="snapshot_date")
    assert s.model_name == "adhoc" and s.task == "regression" and s.label_model == "model.shop.labels"


def test_resolve_spec_unknown_model_suggests_declared_names(catalog):
    with pytest.raises(NotFoundError) as info:
        resolve_spec(catalog, "chrun")
    assert "'chrun'" in info.value.message and "churn" in info.value.hint


def test_resolve_spec_errors(catalog):
    with pytest.raises(ConfigError, match="task"):
        resolve_spec(catalog, "churn", task="clustering")
    with pytest.raises(NotFoundError, match="no column 'tenur'"):
        resolve_spec(catalog, "churn", features=["tenur"])
    # The label model has no snapshot column and no label.timestamp: nothing to join on.
    with pytest.raises(ConfigError, match="no snapshot column") as info:
        resolve_spec(catalog, "churn", label_model="events", label_column="amount")
    assert "label.timestamp" in info.value.hint
    with pytest.raises(InputError, match="no features left"):
        resolve_spec(catalog, "churn", exclude=["tenure", "plan"])


# -- the query ------------------------------------------------------------------------------

EXPECTED_SNAPSHOT = {
    "duckdb": 'SELECT "f"."customer_id", "f"."snapshot_date", "f"."tenure", "f"."plan", "l"."churned" AS "churned" '
              'FROM "main"."features" AS "f" INNER JOIN "main"."labels" AS "l" ON "f"."customer_id" = '
              '"l"."customer_id" AND "f"."snapshot_date" = "l"."snapshot_date" WHERE NOT "l"."churned" IS NULL '
              'ORDER BY "f"."snapshot_date", "f"."customer_id"',
    "spark": "SELECT `f`.`customer_id`, `f`.`snapshot_date`, `f`.`tenure`, `f`.`plan`, `l`.`churned` AS `churned` "
             "FROM `main`.`features` AS `f` INNER JOIN `main`.`labels` AS `l` ON `f`.`customer_id` = "
             "`l`.`customer_id` AND `f`.`snapshot_date` = `l`.`snapshot_date` WHERE NOT `l`.`churned` IS NULL "
             "ORDER BY `f`.`snapshot_date`, `f`.`customer_id`",
}
EXPECTED_SNAPSHOT["postgres"] = EXPECTED_SNAPSHOT["snowflake"] = EXPECTED_SNAPSHOT["duckdb"]
EXPECTED_SNAPSHOT["bigquery"] = EXPECTED_SNAPSHOT["spark"]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "snowflake", "bigquery"])
def test_snapshot_join_per_dialect(dialect):
    assert render(build_training_query(spec(), dialect), dialect) == EXPECTED_SNAPSHOT[dialect]


@pytest.mark.parametrize("dialect,horizon", [
    ("postgres", "(\"f\".\"snapshot_date\" + INTERVAL '30 DAY')"),
    ("spark", "DATE_ADD(`f`.`snapshot_date`, 30)"),
    ("snowflake", 'DATEADD(DAY, 30, "f"."snapshot_date")'),
    ("bigquery", "DATE_ADD(`f`.`snapshot_date`, INTERVAL 30 DAY)"),
])
def test_asof_becomes_a_window_join_without_asof(dialect, horizon):
    sql = render(build_training_query(spec(label_timestamp="event_date"), dialect), dialect)
    assert "ROW_NUMBER() OVER (PARTITION BY" in sql and "ASOF" not in sql
    assert horizon in sql


def test_asof_join_on_duckdb():
    sql = render(build_training_query(spec(label_timestamp="event_date"), "duckdb"), "duckdb")
    assert 'ASOF INNER JOIN "main"."labels" AS "l" ON "f"."customer_id" = "l"."customer_id" AND ' \
           '"f"."snapshot_date" <= "l"."event_date"' in sql
    assert '"l"."event_date" < ("f"."snapshot_date" + INTERVAL 30 DAY)' in sql


def test_entity_and_same_table_joins():
    sql = render(build_training_query(spec(timestamp=None), "duckdb", order=False), "duckdb")
    assert sql.endswith('ON "f"."customer_id" = "l"."customer_id" WHERE NOT "l"."churned" IS NULL')
    same = spec(label_model="model.shop.features", label_table="features")
    assert render(build_training_query(same, "duckdb", order=False), "duckdb") == (
        'SELECT "f"."customer_id", "f"."snapshot_date", "f"."tenure", "f"."plan", "f"."churned" AS "churned" '
        'FROM "main"."features" AS "f" WHERE NOT "f"."churned" IS NULL')


def test_identifiers_are_quoted_never_interpolated():
    evil = spec(features=['x"; DROP TABLE t; --'])
    sql = render(build_training_query(evil, "duckdb"), "duckdb")
    assert '"x""; DROP TABLE t; --"' in sql


@pytest.fixture
def wh():
    warehouse = DuckDBWarehouse(":memory:")
    d = dt.date(2024, 1, 1)
    warehouse.execute("CREATE TABLE main.features AS SELECT i % 5 AS customer_id, "
                      f"DATE '{d}' + CAST(i // 5 AS INTEGER) * 30 AS snapshot_date, CAST(i * 1.5 AS DOUBLE) AS tenure, "
                      "CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS plan FROM range(20) t(i)")
    # The last snapshot's labels are not mature yet (NULL).
    warehouse.execute("CREATE TABLE main.labels AS SELECT customer_id, snapshot_date, "
                      "CASE WHEN snapshot_date < DATE '2024-03-31' THEN CAST(tenure > 10 AS INTEGER) END AS churned "
                      "FROM main.features")
    # Events: one 10 days after each snapshot, plus a later one that the as-of join must not take.
    warehouse.execute("CREATE TABLE main.events AS SELECT customer_id, CAST(snapshot_date + 10 AS DATE) AS event_date, "
                      "tenure * 2 AS amount FROM main.features UNION ALL SELECT customer_id, "
                      "CAST(snapshot_date + 20 AS DATE), -1.0 FROM main.features")
    yield warehouse
    warehouse.close()


def test_query_drops_immature_labels(wh):
    table = wh.fetch_arrow(build_training_query(spec(), "duckdb"))
    assert table.num_rows == 15 and table.column("churned").null_count == 0
    assert table.column_names == ["customer_id", "snapshot_date", "tenure", "plan", "churned"]
    assert max(table.column("snapshot_date").to_pylist()) < dt.date(2024, 3, 31)


def test_asof_and_window_join_agree(wh):
    s = spec(label_table="events", label_column="amount", label_timestamp="event_date", task="regression")
    asof = wh.fetch_arrow(build_training_query(s, "duckdb", asof_join=True))
    window = wh.fetch_arrow(build_training_query(s, "duckdb", asof_join=False))
    assert asof.num_rows == 20 and asof.equals(window)
    # The first label at or after the snapshot: the event 10 days later, not the one 20 days later.
    assert np.allclose(asof.column("amount").to_numpy(), asof.column("tenure").to_numpy() * 2)
    # A horizon shorter than the first event leaves no label at all.
    short = s.__class__(**{**s.__dict__, "horizon_days": 5})
    assert wh.fetch_arrow(build_training_query(short, "duckdb")).num_rows == 0
    assert wh.fetch_arrow(build_training_query(short, "duckdb", asof_join=False)).num_rows == 0


# -- fingerprint and fetch ------------------------------------------------------------------

def test_fingerprint_is_order_independent_and_sees_every_value(wh):
    query = build_training_query(spec(), "duckdb")
    first = fingerprint(wh, query)
    assert first["row_count"] == 15 and len(first["hash"]) == 16 and first["method"] == "duckdb-hash-sum64"
    assert fingerprint(wh, query) == first
    assert fingerprint(wh, build_training_query(spec(), "duckdb", order=False)) == first
    # The same rows inserted in reverse order.
    wh.execute("CREATE TABLE main.features2 AS SELECT * FROM main.features ORDER BY tenure DESC")
    assert fingerprint(wh, build_training_query(spec(feature_table="features2"), "duckdb")) == first
    # One changed value changes the hash, not the count.
    wh.execute("UPDATE main.features SET plan = 'c' WHERE customer_id = 3 AND snapshot_date = DATE '2024-01-31'")
    changed = fingerprint(wh, query)
    assert changed["row_count"] == 15 and changed["hash"] != first["hash"]


def test_fingerprint_duplicates_do_not_cancel(wh):
    wh.execute("CREATE TABLE main.dup AS SELECT * FROM main.features WHERE customer_id = 0 AND tenure = 0")
    wh.execute("CREATE TABLE main.dup2 AS SELECT * FROM main.dup UNION ALL SELECT * FROM main.dup")
    one = fingerprint(wh, build_training_query(spec(feature_table="dup"), "duckdb"))
    two = fingerprint(wh, build_training_query(spec(feature_table="dup2"), "duckdb"))
    assert two["row_count"] == 2 and two["hash"] not in (one["hash"], "0" * 16)


def test_fingerprint_other_dialects_say_so():
    with pytest.raises(InputError, match="not implemented for the 'trino'"):
        ts.fingerprint_query(build_training_query(spec(), "trino"), "trino")


def test_fetch_assembles_batches_and_refuses_empty(wh):
    query = build_training_query(spec(), "duckdb")
    table = fetch_training_table(wh, query, batch_size=4)
    assert table.equals(wh.fetch_arrow(query))
    with pytest.raises(InputError, match="training set is empty"):
        fetch_training_table(wh, build_training_query(spec(horizon_days=1, label_table="events", label_column="amount",
                                                           label_timestamp="event_date"), "duckdb"))


# -- split ----------------------------------------------------------------------------------

def _table(n_snapshots=10, per=50, seed=0):
    rng = np.random.default_rng(seed)
    n = n_snapshots * per
    snaps = [dt.date(2024, 1, 1) + dt.timedelta(days=30 * (i // per)) for i in range(n)]
    return pa.table({"customer_id": np.arange(n) % per, "snapshot_date": snaps, "tenure": rng.normal(size=n),
                     "plan": rng.choice(["a", "b"], size=n).tolist(), "churned": (rng.random(n) < 0.2).astype(int)})


def test_time_split_has_no_shared_snapshot():
    table = _table()
    train, holdout, info = split(table, spec())
    train_dates = set(train.column("snapshot_date").to_pylist())
    hold_dates = set(holdout.column("snapshot_date").to_pylist())
    assert not train_dates & hold_dates and max(train_dates) < min(hold_dates)
    assert (info["method"], info["cut"], info["train_rows"], info["holdout_rows"]) == ("time", "2024-08-28", 400, 100)
    assert info["holdout_snapshots"] == ["2024-08-28", "2024-09-27"]
    assert info["class_balance"]["train"] == {"0": int((train.column("churned").to_numpy() == 0).sum()),
                                              "1": int(train.column("churned").to_numpy().sum())}


def test_time_split_gap_purges_train_rows_near_the_cut():
    train, _, info = split(_table(), spec(), gap_days=31)
    assert max(train.column("snapshot_date").to_pylist()) == dt.date(2024, 6, 29) and info["gap_days"] == 31


def test_time_split_errors():
    one = _table(n_snapshots=1)
    with pytest.raises(InputError, match="share one") as info:
        split(one, spec())
    assert "random" in info.value.hint
    with pytest.raises(InputError, match="cannot be split by time"):
        split(_table(), spec(timestamp=None), method="time")
    with pytest.raises(InputError, match="Unknown split method"):
        split(_table(), spec(), method="kfold")
    with pytest.raises(InputError, match="holdout_fraction"):
        split(_table(), spec(), holdout_fraction=1.5)


def test_random_split_is_stratified_and_seeded():
    table = _table()
    train, holdout, info = split(table, spec(timestamp=None))
    assert info["method"] == "random" and info["stratified"] and holdout.num_rows == 100
    rate = table.column("churned").to_numpy().mean()
    assert abs(holdout.column("churned").to_numpy().mean() - rate) < 0.011
    again, _, _ = split(table, spec(timestamp=None))
    other, _, _ = split(table, spec(timestamp=None), seed=1)
    assert again.equals(train) and not other.equals(train)


@pytest.mark.parametrize("labels", [
    pa.array([1, 0, None, 2, 10, 1]), pa.array(["b", "a", None, "B", "a"]), pa.array([True, False, None, True]),
    pa.array([9.5, 10.0, 1e20, 9.5]), pa.chunked_array([[1, 2], [2, None]]),
])
def test_class_codes_order_classes_as_their_text(labels):
    """The stratified split draws from class codes: they must number the classes as stratifying
    by str() of each value did (so every split stays the one earlier versions drew)."""
    from dwml_py.training_set import _class_codes

    _, by_text = np.unique(np.asarray(labels.to_pylist(), dtype=object).astype(str), return_inverse=True)
    assert _class_codes(labels).tolist() == by_text.tolist()


@pytest.mark.parametrize("labels", [
    pa.array([1, 0, None, 2, 10, 1]), pa.array(["b", "a", None, "B", "a"]), pa.array([True, False, None, True]),
    pa.chunked_array([[1, 2], [2, None]]), pa.array([], pa.int64()),
])
def test_class_balance_of_an_arrow_column_equals_the_python_count(labels):
    from dwml_py.training_set import class_balance

    counted = class_balance(labels)
    assert counted == class_balance(labels.to_pylist())
    assert list(counted) == sorted(counted)  # in the sorted order of the text
