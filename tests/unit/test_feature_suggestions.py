"""suggest_features on a small hand-made catalog and DuckDB warehouse (no dbt run): fast."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dwml_py.catalog import Catalog
from dwml_py.errors import InputError
from dwml_py.feature_relevance import bin_codes, out_of_fold, relevance
from dwml_py.feature_suggestions import (pii_name_match, resolve_target, sample_base, sample_query, find_joinable,
                                         measure_grain, suggest)
from dwml_py.warehouse.duckdb import DuckDBWarehouse

DB = "memory"  # DuckDB's name for an in-memory database
N_CUSTOMERS, SNAPSHOTS = 120, 4


def _rel(name: str) -> str:
    return f'"{DB}"."main"."{name}"'


def _model(name, columns, sql, deps=(), meta=None, tests=None):
    return {"unique_id": f"model.p.{name}", "name": name, "resource_type": "model", "package_name": "p",
            "database": DB, "schema": "main", "alias": name, "compiled_code": sql, "original_file_path": f"models/{name}.sql",
            "depends_on": {"nodes": [f"model.p.{d}" for d in deps]}, "config": {"meta": meta or {}},
            "columns": {c: {"name": c, **extra} for c, extra in columns.items()}}


def _test(model, column, name):
    return {"unique_id": f"test.p.{name}_{model}_{column}", "name": f"{name}_{model}_{column}", "resource_type": "test",
            "package_name": "p", "attached_node": f"model.p.{model}", "column_name": column,
            "test_metadata": {"name": name, "kwargs": {"column_name": column}}, "depends_on": {"nodes": [f"model.p.{model}"]}}


def manifest() -> dict:
    spec = {"dwml": {"entity": "customer_id", "timestamp": "snapshot_date",
                     "models": {"churn": {"task": "classification", "label": {"model": "labels", "column": "churned"}}}}}
    nodes = {
        "model.p.customers": _model("customers", {"customer_id": {}, "email": {"meta": {"pii": True}}, "segment": {},
                                                  "signup_date": {}},
                                    "select 1 as customer_id, 'a' as email, 'x' as segment, date '2020-01-01' as signup_date"),
        "model.p.labels": _model("labels", {"customer_id": {}, "snapshot_date": {}, "churned": {}},
                                 "select 1 as customer_id, date '2024-01-01' as snapshot_date, 1 as churned"),
        "model.p.feats": _model(
            "feats", {"customer_id": {}, "snapshot_date": {}, "signal": {"description": "A real signal."},
                      "signal_copy": {}, "noise": {}, "constant": {}, "row_key": {}, "risk_flag": {},
                      "contact_email": {}, "cancel_at": {}},
            f"select f.customer_id, f.snapshot_date, f.signal, f.signal_copy, f.noise, f.constant, f.row_key, "
            f"case when l.churned = 1 or f.noise > 0.8 then 1 else 0 end as risk_flag, c.email as contact_email, "
            f"f.cancel_at from {_rel('raw_feats')} as f "
            f"left join {_rel('labels')} as l on l.customer_id = f.customer_id and l.snapshot_date = f.snapshot_date "
            f"left join {_rel('customers')} as c on c.customer_id = f.customer_id",
            deps=["labels", "customers"], meta=spec),
        "model.p.events": _model("events", {"customer_id": {}, "event_at": {}, "amount": {}},
                                 "select 1 as customer_id, timestamp '2024-01-01' as event_at, 1.0 as amount"),
    }
    for t in (_test("customers", "customer_id", "unique"), _test("feats", "row_key", "unique"),
              _test("events", "event_at", "not_null")):
        nodes[t["unique_id"]] = t
    return {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                         "adapter_type": "duckdb", "project_name": "p"},
            "nodes": nodes, "sources": {}}


def build_warehouse() -> DuckDBWarehouse:
    rng = np.random.default_rng(3)
    wh = DuckDBWarehouse(":memory:")
    con = wh.con
    con.sql("create table main.customers as select range + 1 as customer_id, 'c' || range || '@x.io' as email, "
            "case when range % 3 = 0 then 'a' else 'b' end as segment, date '2020-01-01' + cast(range as int) as signup_date "
            f"from range({N_CUSTOMERS})")
    rows = []
    for cid in range(1, N_CUSTOMERS + 1):
        for s in range(SNAPSHOTS):
            signal = rng.normal()
            churned = int(rng.random() < 1 / (1 + np.exp(-(2.5 * signal - 2))))
            rows.append((cid, s, churned, signal, rng.random()))
    con.execute("create table main.base (customer_id bigint, s int, churned int, signal double, noise double)")
    con.executemany("insert into main.base values (?, ?, ?, ?, ?)", rows)
    con.sql("create table main.labels as select customer_id, cast(date '2024-01-01' + to_months(s) as date) as snapshot_date, "
            "churned from main.base")
    con.sql("create table main.raw_feats as select b.customer_id, cast(date '2024-01-01' + to_months(s) as date) as snapshot_date, "
            "signal, signal * 2 + 1 as signal_copy, noise, 7 as constant, "
            "row_number() over () as row_key, case when churned = 1 then cast(date '2024-01-01' + to_months(s) + to_days(10) as date) end "
            "as cancel_at from main.base b")
    con.sql("""create table main.feats as select f.customer_id, f.snapshot_date, f.signal, f.signal_copy, f.noise,
                f.constant, f.row_key, case when l.churned = 1 or f.noise > 0.8 then 1 else 0 end as risk_flag,
                c.email as contact_email, f.cancel_at
                from main.raw_feats f left join main.labels l using (customer_id, snapshot_date)
                left join main.customers c using (customer_id)""")
    # events: one per customer and month, the amount of the latest one before the snapshot tracks the label
    con.sql("create table main.events as select customer_id, "
            "date '2024-01-01' + to_months(s) - to_days(5) as event_at, signal * -1 as amount from main.base")
    return wh


@pytest.fixture
def world():
    wh = build_warehouse()
    cat = Catalog.from_dicts(manifest(), warehouse=wh)
    yield cat, wh
    wh.close()


def by_ref(result: dict) -> dict:
    return {c["ref"]: c for c in result["candidates"] + result["excluded"]}


def test_pii_name_patterns():
    assert all(pii_name_match(n) for n in ("email", "contact_email", "phone_number", "birth_date", "dob", "last_name"))
    assert not any(pii_name_match(n) for n in ("emails_sent_30d", "zipper", "billing_tickets_90d", "ship_date"))


def test_bins_keep_nulls_apart_and_out_of_fold_is_honest():
    values = np.array([1.0, 2.0, np.nan, 3.0, np.nan])
    codes = bin_codes(values)
    assert codes[2] == codes[4] and len({codes[0], codes[1], codes[3], codes[2]}) == 4
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(float)
    noise = bin_codes(rng.normal(size=2000))
    assert abs(relevance(noise, y, "classification", 0)["auc"] - 0.5) < 0.06
    perfect = relevance(bin_codes(y.copy()), y, "classification", 0)
    assert perfect["auc"] > 0.99 and perfect["mutual_info"] > 0.5
    assert out_of_fold(noise, y, 0).shape == y.shape


def test_target_spec_comes_from_meta_dwml(world):
    cat, _ = world
    spec = resolve_target(cat, "labels.churned")
    assert (spec.entity, spec.timestamp, spec.task) == ("customer_id", "snapshot_date", "classification")
    assert "feats" in spec.spec_from
    with pytest.raises(InputError, match="not MODEL.COLUMN"):
        resolve_target(cat, "churned")
    with pytest.raises(InputError, match="No entity key"):
        resolve_target(cat, "events.amount")


def test_sample_and_join_sql_is_built_per_dialect(world):
    cat, wh = world
    spec = resolve_target(cat, "labels.churned")
    base = sample_base(cat, spec, 500, seed=1)
    assert "MD5(" in base.sql("duckdb") and "LIMIT 500" in base.sql("postgres")
    plan = next(p for p in find_joinable(cat, spec) if p.name == "events")
    measure_grain(wh, cat, plan, spec)
    assert plan.kind == "as_of" and plan.time_column == "event_at"
    query = sample_query(cat, spec, plan, ["amount"], ["event_at"], base)
    for dialect in ("duckdb", "postgres", "spark"):
        text = query.sql(dialect)
        assert "ROW_NUMBER()" in text.upper() and "MD5" in text.upper()


def test_suggest_ranks_signals_and_flags_with_reasons(world):
    cat, wh = world
    result = suggest(cat, wh, "labels.churned", sample_size=300, seed=0)
    json.dumps(result)
    assert result["sample"]["rows"] == 300 and result["sample"]["population"] == N_CUSTOMERS * SNAPSHOTS
    assert result["target"]["task"] == "classification"
    cols = by_ref(result)
    top = result["candidates"][0]
    assert top["ref"] in ("feats.signal", "events.amount") and top["auc"] > 0.7 and top["rank"] == 1

    flags = {ref: {f["flag"]: f["reason"] for f in c["flags"]} for ref, c in cols.items()}
    assert "labels.churned" in flags["feats.risk_flag"]["LEAKAGE"] and "lineage" in flags["feats.risk_flag"]["LEAKAGE"]
    assert "REDUNDANT" in flags["feats.signal_copy"] or "REDUNDANT" in flags["feats.signal"]
    assert "CONSTANT" in flags["feats.constant"]
    assert "unique test" in flags["feats.row_key"]["ID_LIKE"]
    assert "catalog" in flags["customers.email"]["PII"]
    assert "customers.email" in flags["feats.contact_email"]["PII"]  # through lineage
    assert "after" in flags["feats.cancel_at"]["LEAKAGE"]
    assert "DATETIME" in flags["customers.signup_date"]
    assert cols["customers.segment"]["join"] == "as_of" and not cols["customers.segment"]["flags"]
    assert cols["events.amount"]["join"] == "as_of" and cols["events.amount"]["freshness"]["time_column"] == "event_at"
    assert all(c["reasons"] for c in result["candidates"])


def test_suggest_is_deterministic_and_checks_its_inputs(world):
    cat, wh = world
    first = suggest(cat, wh, "labels.churned", sample_size=200, seed=4)
    again = suggest(cat, wh, "labels.churned", sample_size=200, seed=4)
    assert [c["ref"] for c in first["candidates"]] == [c["ref"] for c in again["candidates"]]
    assert first["candidates"][0]["auc"] == again["candidates"][0]["auc"]
    with pytest.raises(InputError, match="sample_size"):
        suggest(cat, wh, "labels.churned", sample_size=5)


def test_docstring_examples():
    import doctest

    from dwml_py import feature_suggestions

    assert doctest.testmod(feature_suggestions).failed == 0


def test_a_label_written_as_a_column_of_the_feature_model_is_a_declared_label():
    """`label: next_year_spend` (a column of the feature model itself, as in a user's shop project)
    declares a label as much as `label: {model, column}`: another model's outcome, never a feature."""
    from dwml_py.feature_suggestions import declared_labels

    doc = manifest()
    doc["nodes"]["model.p.feats"]["config"]["meta"]["dwml"]["models"]["spend"] = {"task": "regression",
                                                                                  "label": "signal_copy"}
    labels = {(uid, column) for uid, column, _, _ in declared_labels(Catalog.from_dicts(doc))}
    assert labels == {("model.p.labels", "churned"), ("model.p.feats", "signal_copy")}
