"""The quality gate without dbt: thresholds from defaults/vars/meta, profile checks, reuse of
run_results.json, override rules and the audit trail, on a hand-made project and DuckDB file."""

from __future__ import annotations

import datetime as dt
import doctest
import json
import os
import time

import pytest
import yaml

from dwml_py import quality
from dwml_py.audit import read_events
from dwml_py.errors import ConfigError, InputError, NotFoundError
from dwml_py.project import Project
from dwml_py.quality import (ancestors, expected_tests, profile_checks, quality_gate, resolve_thresholds,
                             reuse_run_results)
from dwml_py.warehouse.duckdb import DuckDBWarehouse

MANIFEST_VERSION = "https://schemas.getdbt.com/dbt/manifest/v12.json"
INVOCATION = "inv-1"
FEATURES = "model.shop.order_features"


def _node(uid, deps=(), **extra):
    kind, package, name = uid.split(".")[:3]
    node = {"unique_id": uid, "name": uid.split(".")[-1], "resource_type": kind, "package_name": package,
            "database": "wh", "schema": "main", "alias": uid.split(".")[-1], "depends_on": {"nodes": list(deps)},
            "config": {"enabled": True}, "columns": {}, "description": ""}
    node.update(extra)
    return node


def _test(name, attached, deps, column=None, generic="not_null"):
    return _node(f"test.shop.{name}", deps, attached_node=attached, column_name=column,
                 test_metadata={"name": generic, "kwargs": {"column_name": column}})


def make_manifest(features_meta=None):
    meta = {"owner": "ana", "dwml": {"entity": "customer_id", "timestamp": "snapshot_date", **(features_meta or {})}}
    nodes = {
        "model.shop.stg_orders": _node("model.shop.stg_orders", ["source.shop.crm.orders"]),
        FEATURES: _node(FEATURES, ["model.shop.stg_orders"], config={"enabled": True, "meta": meta}),
        "model.shop.other": _node("model.shop.other", ["model.shop.stg_orders"]),
        "test.shop.unique_stg_orders_id": _test("unique_stg_orders_id", "model.shop.stg_orders",
                                                 ["model.shop.stg_orders"], "id", "unique"),
        "test.shop.not_null_order_features_customer_id": _test(
            "not_null_order_features_customer_id", FEATURES, [FEATURES], "customer_id"),
        "test.shop.relationships_other_id": _test("relationships_other_id", "model.shop.other",
                                                   ["model.shop.other", "model.shop.stg_orders"], "id",
                                                   "relationships"),
    }
    sources = {"source.shop.crm.orders": {**_node("source.shop.crm.orders"), "resource_type": "source",
                                          "source_name": "crm", "name": "orders", "identifier": "orders"}}
    return {"metadata": {"dbt_schema_version": MANIFEST_VERSION, "invocation_id": INVOCATION,
                         "adapter_type": "duckdb", "project_name": "shop"},
            "nodes": nodes, "sources": sources}


def make_run_results(statuses=None, *, invocation=INVOCATION, target="dev", order=None):
    statuses = {"model.shop.stg_orders": "success", FEATURES: "success",
                "test.shop.unique_stg_orders_id": "pass",
                "test.shop.not_null_order_features_customer_id": "pass", **(statuses or {})}
    start = dt.datetime(2025, 1, 1, 12, 0, 0)
    results = []
    for i, uid in enumerate(order or statuses):
        done = (start + dt.timedelta(seconds=i)).isoformat() + "Z"
        results.append({"unique_id": uid, "status": statuses[uid], "message": None, "failures": 0,
                        "timing": [{"name": "execute", "started_at": done, "completed_at": done}]})
    return {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                         "invocation_id": invocation, "generated_at": "2025-01-01T12:00:10Z"},
            "results": results, "args": {"target": target, "which": "build"}}


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """A dbt project folder with a profile on the test's DuckDB file and a built order_features."""
    root = tmp_path / "shop"
    (root / "models").mkdir(parents=True)
    (root / "profiles.yml").write_text(yaml.safe_dump({"shop": {"target": "dev", "outputs": {"dev": {
        "type": "duckdb", "path": "{{ env_var('DWML_DUCKDB_PATH') }}"}}}}))
    monkeypatch.setenv("DWML_ACTOR", "tester")
    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        wh.execute("""create table main.order_features as
            select range % 50 as customer_id, date '2025-01-01' + (range // 50)::int as snapshot_date,
                   case when range % 4 = 0 then null else range * 1.5 end as amount,
                   'x' as segment
            from range(200)""")
    return root


def write_project(root, *, vars_=None, features_meta=None, run_results="default"):
    config = {"name": "shop", "profile": "shop", "config-version": 2}
    if vars_ is not None:
        config["vars"] = vars_
    (root / "dbt_project.yml").write_text(yaml.safe_dump(config))
    project = Project.locate(root, profiles_dir=root)
    target = project.target_dir
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(make_manifest(features_meta)))
    if run_results == "default":
        run_results = make_run_results()
    if run_results is not None:
        (target / "run_results.json").write_text(json.dumps(run_results))
    future = time.time() + 5  # written after the project files, as dbt would
    for name in ("manifest.json", "run_results.json"):
        if (target / name).exists():
            os.utime(target / name, (future, future))
    return project


# -- thresholds ------------------------------------------------------------------------------

def test_doctests():
    assert doctest.testmod(quality).failed == 0


def test_default_thresholds_are_documented_values():
    t = resolve_thresholds({}, {})
    assert (t.max_null_rate, t.min_rows, t.max_staleness_hours, t.no_duplicate_keys) == (0.5, 1, None, True)
    assert set(t.sources.values()) == {"default"}


def test_meta_wins_over_vars_and_null_rates_merge_per_column():
    config = {"vars": {"dwml": {"quality": {"max_null_rate": {"default": 0.1, "a": 0.3, "b": 0.4},
                                            "min_rows": 5, "max_staleness_hours": 24}}}}
    meta = {"dwml": {"quality": {"max_null_rate": {"b": 0.9}, "min_rows": 50, "no_duplicate_keys": False}}}
    t = resolve_thresholds(config, meta)
    assert t.null_rate_limit("a") == (0.3, "vars")
    assert t.null_rate_limit("B") == (0.9, "meta")
    assert t.null_rate_limit("zzz") == (0.1, "vars")
    assert (t.min_rows, t.sources["min_rows"]) == (50, "meta")
    assert (t.max_staleness_hours, t.sources["max_staleness_hours"]) == (24, "vars")
    assert t.no_duplicate_keys is False


@pytest.mark.parametrize("bad, message", [
    ({"max_null_rate": 1.5}, "between 0 and 1"),
    ({"min_rows": "ten"}, "whole number"),
    ({"no_duplicate_keys": "yes"}, "true or false"),
    ({"max_nul_rate": 0.2}, "did you mean 'max_null_rate'"),
])
def test_bad_settings_name_the_key_and_the_value(bad, message):
    with pytest.raises(ConfigError) as info:
        resolve_thresholds({"vars": {"dwml": {"quality": bad}}}, {})
    assert message in str(info.value)
    assert "dbt_project.yml" in str(info.value)


# -- profile checks --------------------------------------------------------------------------

def _profile(wh, **kw):
    from dwml_py.profiling import profile_relation

    return profile_relation(wh, "main", "t", top_k=0, **kw)


def test_profile_checks_name_each_failure_with_a_hint():
    with DuckDBWarehouse(":memory:") as wh:
        wh.execute("""create table t as select range % 3 as id, timestamp '2020-01-01' as ts,
                      case when range < 8 then null else 1 end as sparse, 1 as full_col from range(10)""")
        profile = _profile(wh, entity_key=["id", "ts"])
        t = resolve_thresholds({}, {"dwml": {"quality": {"min_rows": 20, "max_staleness_hours": 24}}})
        checks = profile_checks(profile, t, ["id"], "ts", "m")
    failed = {c["check"]: c for c in checks if not c["passed"]}
    assert set(failed) == {"min_rows", "max_null_rate", "max_staleness_hours", "no_duplicate_keys"}
    assert failed["max_null_rate"]["column"] == "sparse" and "80.0% null" in failed["max_null_rate"]["detail"]
    assert failed["no_duplicate_keys"]["key"] == ["id", "ts"] and failed["no_duplicate_keys"]["value"] == 3
    assert "meta.dwml.quality" in failed["min_rows"]["detail"]
    assert all(c["hint"] for c in failed.values())


def test_profile_checks_pass_and_skip_without_entity():
    with DuckDBWarehouse(":memory:") as wh:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        wh.execute(f"create table t as select range as id, timestamp '{now:%Y-%m-%d %H:%M:%S}' as ts from range(5)")
        profile = _profile(wh)
        t = resolve_thresholds({}, {"dwml": {"quality": {"max_staleness_hours": 2}}})
        checks = profile_checks(profile, t, [], "ts", "m")
    assert all(c["passed"] for c in checks)
    dup = next(c for c in checks if c["check"] == "no_duplicate_keys")
    assert dup.get("skipped") and "entity" in dup["detail"]


def test_staleness_on_a_column_that_is_not_a_timestamp_fails_with_a_fix():
    with DuckDBWarehouse(":memory:") as wh:
        wh.execute("create table t as select 'x' as ts from range(3)")
        t = resolve_thresholds({}, {"dwml": {"quality": {"max_staleness_hours": 2}}})
        check = next(c for c in profile_checks(_profile(wh), t, [], "ts", "m") if c["check"] == "max_staleness_hours")
    assert not check["passed"] and "not a date or timestamp" in check["detail"]


# -- which dbt tests, and is run_results.json current ------------------------------------------

def test_expected_tests_are_the_model_and_its_ancestors_only():
    manifest = make_manifest()
    closure = ancestors(manifest, FEATURES)
    assert closure == {FEATURES, "model.shop.stg_orders", "source.shop.crm.orders"}
    # the relationships test also depends on a sibling model: not ours (cautious selection)
    assert set(expected_tests(manifest, closure)) == {"test.shop.unique_stg_orders_id",
                                                      "test.shop.not_null_order_features_customer_id"}


def _reuse(project):
    manifest = make_manifest()
    return reuse_run_results(project, manifest, expected_tests(manifest, ancestors(manifest, FEATURES)))


def test_current_run_results_are_reused(shop):
    outcome, why = _reuse(write_project(shop))
    assert outcome is not None and outcome.source == "run_results" and outcome.passed and outcome.tests == 2
    assert "current" in why


@pytest.mark.parametrize("run_results, reason", [
    (None, "no run_results.json"),
    (make_run_results(invocation="inv-2"), "later dbt command"),
    (make_run_results(target="prod"), "target 'prod'"),
    ({**make_run_results(), "results": make_run_results()["results"][:3]}, "does not cover 1 of the 2 tests"),
    (make_run_results(order=["test.shop.unique_stg_orders_id", "model.shop.stg_orders", FEATURES,
                             "test.shop.not_null_order_features_customer_id"]), "ran before model.shop.stg_orders"),
    (make_run_results({"test.shop.unique_stg_orders_id": "skipped"}), "skipped"),
])
def test_run_results_not_current_say_why(shop, run_results, reason):
    outcome, why = _reuse(write_project(shop, run_results=run_results))
    assert outcome is None and reason in why


def test_a_failure_settles_the_verdict_even_with_skipped_tests(shop):
    results = make_run_results({"test.shop.unique_stg_orders_id": "fail",
                                "test.shop.not_null_order_features_customer_id": "skipped"})
    outcome, _ = _reuse(write_project(shop, run_results=results))
    assert outcome is not None and not outcome.passed
    assert [t["name"] for t in outcome.failed] == ["unique_stg_orders_id"]
    assert outcome.failed[0]["model"] == "stg_orders" and outcome.failed[0]["column"] == "id"


def _plan(project, manifest=None):
    from dwml_py.quality import plan_dbt_tests

    manifest = manifest or make_manifest()
    return plan_dbt_tests(project, manifest, expected_tests(manifest, ancestors(manifest, FEATURES)))


def test_only_the_tests_without_a_current_result_are_left_to_run(shop):
    covers_one = {**make_run_results(), "results": make_run_results()["results"][:3]}
    plan = _plan(write_project(shop, run_results=covers_one))
    assert set(plan.current) == {"test.shop.unique_stg_orders_id"}
    assert plan.missing == ["test.shop.not_null_order_features_customer_id"]
    assert "does not cover 1 of the 2 tests" in plan.why


def test_a_test_that_ran_before_its_model_was_rebuilt_is_run_again_alone(shop):
    results = make_run_results(order=["model.shop.stg_orders", "test.shop.unique_stg_orders_id",
                                      "test.shop.not_null_order_features_customer_id", FEATURES])
    plan = _plan(write_project(shop, run_results=results))
    assert set(plan.current) == {"test.shop.unique_stg_orders_id"}
    assert plan.missing == ["test.shop.not_null_order_features_customer_id"]


def test_results_of_another_invocation_leave_every_test_to_run(shop):
    plan = _plan(write_project(shop, run_results=make_run_results(invocation="inv-2")))
    assert plan.current == {} and len(plan.missing) == 2 and "later dbt command" in plan.why


def test_project_files_changed_after_the_tests(shop):
    project = write_project(shop)
    model = shop / "models" / "order_features.sql"
    model.write_text("select 1")
    later = time.time() + 60
    os.utime(model, (later, later))
    outcome, why = _reuse(project)
    assert outcome is None and "order_features.sql changed" in why


# -- the gate --------------------------------------------------------------------------------

def test_gate_passes_on_reused_results_and_records_the_decision(shop):
    project = write_project(shop, features_meta={"quality": {"max_null_rate": {"amount": 0.3}}})
    result = quality_gate(project, "order_features")
    assert result["passed"] and result["decision"] == "pass" and not result["overridden"]
    assert result["dbt_tests"]["source"] == "run_results"
    assert result["row_count"] == 200 and result["entity"] == ["customer_id"]
    assert {c["check"] for c in result["checks"]} == {"dbt_tests", "min_rows", "max_null_rate", "no_duplicate_keys"}
    json.dumps(result)
    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        events = read_events(wh, action="gate.quality")
    assert [(e["decision"], e["actor"], e["object_name"]) for e in events] == [("pass", "tester", "order_features")]
    assert events[0]["event_id"] == result["audit_event_id"]


def test_thresholds_from_meta_and_vars_fail_the_gate(shop):
    # amount is 25% null: vars allow 10% everywhere, meta lets segment be anything
    project = write_project(shop, vars_={"dwml": {"quality": {"max_null_rate": 0.1, "min_rows": 1000}}},
                            features_meta={"quality": {"max_null_rate": {"segment": 1.0}}})
    result = quality_gate(project, "order_features")
    assert not result["passed"] and result["decision"] == "fail"
    failed = [c for c in result["checks"] if not c["passed"]]
    assert sorted((c["check"], c.get("column")) for c in failed) == [("max_null_rate", "amount"), ("min_rows", None)]
    assert "vars dwml.quality" in failed[0]["detail"] and all(c["hint"] for c in failed)
    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        event = read_events(wh, action="gate.quality")[0]
    assert event["decision"] == "fail" and {r["check"] for r in event["reasons"]} == {"max_null_rate", "min_rows"}


def test_failing_dbt_tests_fail_the_gate_by_name(shop):
    project = write_project(shop, run_results=make_run_results({"test.shop.unique_stg_orders_id": "fail"}))
    result = quality_gate(project, "order_features")
    check = next(c for c in result["checks"] if c["check"] == "dbt_tests")
    assert not result["passed"] and not check["passed"] and check["failed"] == ["unique_stg_orders_id"]
    assert "unique_stg_orders_id (fail)" in check["detail"] and "dbt build" in check["hint"]


def test_override_needs_a_reason_and_is_recorded(shop):
    project = write_project(shop, vars_={"dwml": {"quality": {"min_rows": 1000}}})
    for reason in (None, "   "):
        with pytest.raises(InputError, match="needs a reason"):
            quality_gate(project, "order_features", override=True, reason=reason)
    with pytest.raises(InputError, match="without an override"):
        quality_gate(project, "order_features", reason="because")
    result = quality_gate(project, "order_features", override=True, reason="backfill still loading")
    assert result["passed"] and result["overridden"] and result["decision"] == "overridden"
    assert result["override"] == {"requested": True, "applied": True, "reason": "backfill still loading"}
    assert result["failed_checks"] == ["min_rows"]
    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        events = read_events(wh, action="gate.quality")
    assert len(events) == 1  # refused overrides never reached the gate
    assert events[0]["decision"] == "overridden" and events[0]["actor"] == "tester"
    assert {"override_reason": "backfill still loading"} in events[0]["reasons"]


def test_override_of_a_passing_gate_is_not_applied(shop):
    result = quality_gate(write_project(shop), "order_features", override=True, reason="just in case")
    assert result["passed"] and not result["overridden"] and result["decision"] == "pass"
    assert result["override"]["applied"] is False


def test_missing_relation_and_unknown_model(shop):
    project = write_project(shop)
    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        wh.execute("drop table main.order_features")
    result = quality_gate(project, "order_features")
    assert not result["passed"] and result["failed_checks"] == ["relation_exists"]
    with pytest.raises(NotFoundError, match="order_featres|No model"):
        quality_gate(project, "order_featres")
