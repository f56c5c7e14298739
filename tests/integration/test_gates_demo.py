"""The quality and governance gates on the real demo after `dbt build` (300 customers): reuse of
run_results.json vs running dbt test, injected defects, overrides, the demo's PII by every
route, and every decision in dwml.audit_log."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACTOR = "it-agent"


def _build(project, inject_defects: bool):
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.demo import DemoConfig, generate_demo

    generate_demo(project, DemoConfig(customers=300, seed=11, inject_defects=inject_defects))
    return run_dbt(project, ["build"])


def _events(project, action):
    from dwml_py.audit import read_events
    from dwml_py.warehouse import connect

    with connect(project) as wh:
        return read_events(wh, action=action)


def _cli(*args):
    from dwml_py.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_clean_demo_passes_quality_and_governance_finds_pii(project, monkeypatch):
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.governance import governance_gate
    from dwml_py.quality import quality_gate

    monkeypatch.setenv("DWML_ACTOR", ACTOR)
    build = _build(project, inject_defects=False)
    assert build.success, build.to_dict()

    # Straight after `dbt build` the results are current: no dbt run.
    first = quality_gate(project, "customer_features")
    assert first["passed"] and first["decision"] == "pass", first["checks"]
    assert first["dbt_tests"]["source"] == "run_results" and first["dbt_tests"]["tests"] > 20
    assert {c["check"] for c in first["checks"]} >= {"dbt_tests", "min_rows", "max_null_rate", "no_duplicate_keys"}

    # A rebuild without tests leaves run_results.json without them: dbt test runs.
    assert run_dbt(project, ["run", "--select", "customer_features"]).success
    second = quality_gate(project, "customer_features")
    assert second["passed"] and second["dbt_tests"]["source"] == "dbt test"
    assert "does not cover" in second["dbt_tests"]["why"]
    assert second["dbt_tests"]["tests"] == first["dbt_tests"]["tests"]

    # ... and those results are current for the next check (here through the CLI, exit 0).
    ok = _cli("check", "customer_features", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["dbt_tests"]["source"] == "run_results"
    assert "last gate" in json.loads(ok.stdout)["dbt_tests"]["why"]

    # Governance: age_years derives from stg_customers.birth_date (lineage); nothing else is PII.
    features = governance_gate(project, "customer_features")
    assert features["pii_columns"] == ["age_years"]
    age = next(c for c in features["columns"] if c["column"] == "age_years")
    assert age["routes"] == ["lineage"] and "stg_customers.birth_date" in age["evidence"][0]["detail"]
    # The demo grants age_years an exception with a reason in meta.dwml.governance, so it passes
    # and says which exception it used (test_train_model withdraws it and sees the refusal).
    assert features["violations"] == []
    assert features["passed"]
    assert [e["column"] for e in features["exceptions_used"]] == ["age_years"]
    assert {"customer_id", "snapshot_date"}.isdisjoint(c["column"] for c in features["columns"])

    # The staging PII: meta on every one, names on every one, values where the values show it, and
    # lineage from the raw CRM table, whose undocumented columns' names say PII.
    staging = governance_gate(project, "stg_customers",
                              columns=["email", "phone", "full_name", "birth_date", "city", "customer_id"])
    routes = {c["column"]: c["routes"] for c in staging["columns"]}
    assert routes == {"email": ["meta", "lineage", "name", "values"], "phone": ["meta", "lineage", "name", "values"],
                      "full_name": ["meta", "lineage", "name"], "birth_date": ["meta", "lineage", "name"],
                      "city": [], "customer_id": []}
    assert {c["classification"] for c in staging["columns"]} == {"restricted"}  # the model's level

    # A failing gate exits 2 from the CLI.
    refused = _cli("governance", "stg_customers", "--column", "email", "--column", "city", "--json")
    assert refused.exit_code == 2, refused.output
    assert json.loads(refused.stdout)["pii_columns"] == ["email"]

    # Every decision is in the audit log, newest first, with who and why.
    quality_events = _events(project, "gate.quality")
    assert [e["decision"] for e in quality_events] == ["pass", "pass", "pass"]
    governance_events = _events(project, "gate.governance")
    assert [(e["object_name"], e["decision"]) for e in governance_events] == [
        ("stg_customers", "fail"), ("stg_customers", "fail"), ("customer_features", "pass")]
    assert {e["actor"] for e in quality_events + governance_events} == {ACTOR}
    assert {"rule": "pii_feature", "column": "email"}.items() <= governance_events[0]["reasons"][0].items()
    assert governance_events[-1]["event_id"] == features["audit_event_id"]

    # The gates' own dbt runs leave target/ alone: after a full compile, a gate that must run
    # `dbt test` does not replace the manifest with one compiled only for its selection (lineage
    # of every other model, e.g. the leak in customer_engagement, would be lost).
    from dwml_py.dbt_artifacts import read_json

    assert run_dbt(project, ["compile"]).success
    before = read_json(project.manifest_path)
    rerun = quality_gate(project, "customer_features")
    assert rerun["passed"] and rerun["dbt_tests"]["source"] == "dbt test", (rerun["checks"], rerun["dbt_tests"])
    assert governance_gate(project, "customer_features")["passed"]
    after = read_json(project.manifest_path)
    assert after["metadata"]["invocation_id"] == before["metadata"]["invocation_id"]
    assert after["nodes"]["model.dwml_demo.customer_engagement"]["compiled_code"]


def test_injected_defects_fail_the_quality_gate_and_an_override_is_recorded(project, monkeypatch):
    from dwml_py.errors import InputError
    from dwml_py.quality import quality_gate

    monkeypatch.setenv("DWML_ACTOR", ACTOR)
    build = _build(project, inject_defects=True)
    assert not build.success

    result = quality_gate(project, "customer_features")
    assert not result["passed"] and result["decision"] == "fail"
    # the failures in run_results.json settle it: no second dbt run
    assert result["dbt_tests"]["source"] == "run_results"
    failed = {t["name"] for t in result["dbt_tests"]["failed"]}
    assert "unique_stg_customers_customer_id" in failed
    assert "not_null_stg_payments_amount" in failed
    check = next(c for c in result["checks"] if c["check"] == "dbt_tests")
    assert "unique_stg_customers_customer_id" in check["detail"] and check["hint"]

    refused = _cli("check", "customer_features", "--json")
    assert refused.exit_code == 2
    shown = json.loads(refused.stdout)
    assert "dbt_tests" in shown["failed_checks"]
    assert "unique_stg_customers_customer_id" in shown["checks"][0]["failed"]

    with pytest.raises(InputError, match="needs a reason"):
        quality_gate(project, "customer_features", override=True)
    overridden = quality_gate(project, "customer_features", override=True,
                              reason="duplicates are a known CRM export bug; training a throwaway baseline")
    assert overridden["passed"] and overridden["overridden"] and overridden["decision"] == "overridden"

    events = _events(project, "gate.quality")
    assert [e["decision"] for e in events] == ["overridden", "fail", "fail"]
    assert {e["actor"] for e in events} == {ACTOR}
    assert {"override_reason": "duplicates are a known CRM export bug; training a throwaway baseline"} in events[0]["reasons"]
    assert any(r.get("check") == "dbt_tests" for r in events[1]["reasons"])
