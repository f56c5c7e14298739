"""The governance gate without dbt: PII by meta, lineage, names and sampled values; Luhn and the
other value checks; classification, policies, exceptions and the audit trail."""

from __future__ import annotations

import doctest
import json
import os
import time

import pytest
import yaml

from dwml_py import governance
from dwml_py.audit import read_events
from dwml_py.errors import ConfigError, NotFoundError
from dwml_py.governance import (governance_gate, luhn_valid, name_pii, resolve_policy, value_kind,
                                value_shares)
from dwml_py.project import Project
from dwml_py.warehouse.duckdb import DuckDBWarehouse

VALID_CARDS = ["4111111111111111", "5500 0055 5555 5559", "378282246310005", "6011-1111-1111-1117",
               "4012888888881881", "2223003122003222"]


def test_doctests():
    assert doctest.testmod(governance).failed == 0


# -- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kind", [
    ("email", "email"), ("e_mail", "email"), ("customerEmail", "email"), ("EMAIL_ADDRESS", "email"),
    ("emails", "email"), ("phone", "phone"), ("phone_number", "phone"), ("mobile", "phone"),
    ("ssn", "national_id"), ("social_security_number", "national_id"), ("national_id", "national_id"),
    ("tax_id", "national_id"), ("passport_no", "passport"), ("dob", "birth_date"), ("birth_date", "birth_date"),
    ("dateOfBirth", "birth_date"), ("first_name", "name"), ("lastName", "name"), ("full_name", "name"),
    ("surname", "name"), ("address", "address"), ("billing_address", "address"), ("zip", "address"),
    ("postcode", "address"), ("postal_code", "address"), ("ip_address", "ip_address"), ("client_ip", "ip_address"),
    ("IPAddress", "ip_address"), ("credit_card_number", "payment_card"), ("card_number", "payment_card"),
    ("iban", "bank_account"),
])
def test_pii_names(name, kind):
    assert name_pii(name)[0] == kind


@pytest.mark.parametrize("name", [
    "phone_count", "has_email", "email_domain", "is_phone_verified", "email_opt_in", "emailed", "plan_name",
    "zipper", "pipeline", "tip_amount", "city", "address_count", "customer_id", "snapshot_date", "age_years",
    "marketing_opt_in", "description",
])
def test_innocent_and_derived_names(name):
    assert name_pii(name) is None


# -- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("number", VALID_CARDS)
def test_luhn_accepts_real_test_card_numbers(number):
    assert luhn_valid(number) and value_kind(number) == "payment_card"


@pytest.mark.parametrize("number", ["4111111111111112", "5500 0055 5555 5558", "378282246310006",
                                    "1234567812345678", "0000000000000000", "41111111111111x1"])
def test_luhn_or_prefix_rejects(number):
    assert value_kind(number) != "payment_card"
    if number[0] != "0" and "x" not in number and number != "1234567812345678":
        assert not luhn_valid(number)


def test_card_column_vs_random_16_digit_ids():
    import random

    rng = random.Random(7)
    ids = [str(rng.randrange(4 * 10**15, 5 * 10**15)) for _ in range(1000)]
    _, shares = value_shares(ids)
    assert shares.get("payment_card", 0) < 0.2  # about one in ten passes Luhn by chance
    _, shares = value_shares(VALID_CARDS * 10 + [None] * 5)
    assert shares == {"payment_card": 1.0}


@pytest.mark.parametrize("value, kind", [
    ("ana.lima@example.co.uk", "email"), ("+1 415 555 0132", "phone"), ("+33 499704125", "phone"),
    ("(415) 555-0132", "phone"), ("020 7946 0958", "phone"), ("078-05-1120", "national_id"),
    ("AB 12 34 56 C", "national_id"), ("GB82 WEST 1234 5698 7654 32", "bank_account"),
    ("192.168.1.20", "ip_address"), ("2001:db8::8a2e:370:7334", "ip_address"),
    ("2024-01-31", None), ("20240131", None), ("12345", None), ("not an@email", None),
    ("GB82 WEST 1234 5698 7654 33", None), ("999.1.1.1", None), ("hello world", None), ("1.5", None),
])
def test_value_kinds(value, kind):
    assert value_kind(value) == kind


def test_invalid_ssn_areas_are_not_national_ids():
    for value in ("000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"):
        assert value_kind(value) != "national_id"


# -- a project with a hand-made manifest ------------------------------------------------------

SQL = ('select p.id as customer_id, p.snapshot_date, p.contact_ref, p.email as primary_mail, '
       "date_diff('year', p.birth_date, p.snapshot_date) as age, p.plan, p.phone_count, p.card, p.ip, p.notes "
       'from "main"."people" as p')
FEATURE_COLUMNS = ["contact_ref", "primary_mail", "age", "plan", "phone_count", "card", "ip", "notes"]


def _manifest(meta_dwml=None, owner="ana", description="Contact features."):
    source = {"unique_id": "source.shop.crm.people", "name": "people", "resource_type": "source",
              "package_name": "shop", "source_name": "crm", "database": "test_warehouse", "schema": "main",
              "identifier": "people", "depends_on": {"nodes": []}, "config": {},
              "columns": {"email": {"name": "email", "meta": {"pii": True}},
                          "birth_date": {"name": "birth_date", "tags": ["pii"]}}}
    meta = {"classification": "internal", "dwml": {"entity": "customer_id", "timestamp": "snapshot_date",
                                                   **(meta_dwml or {})}}
    if owner:
        meta["owner"] = owner
    model = {"unique_id": "model.shop.contact_features", "name": "contact_features", "resource_type": "model",
             "package_name": "shop", "database": "test_warehouse", "schema": "main", "alias": "contact_features",
             "depends_on": {"nodes": ["source.shop.crm.people"]}, "description": description,
             "config": {"materialized": "table", "meta": meta}, "compiled_code": SQL, "raw_code": SQL,
             "columns": {"plan": {"name": "plan", "config": {"meta": {"classification": "restricted"}}}}}
    return {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                         "adapter_type": "duckdb", "project_name": "shop", "invocation_id": "i"},
            "nodes": {model["unique_id"]: model}, "sources": {source["unique_id"]: source}}


@pytest.fixture
def people(tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_ACTOR", "gov-tester")
    cards = ", ".join(f"'{c}'" for c in VALID_CARDS)
    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        wh.execute(f"""create table main.people as select range as id, date '2025-01-01' as snapshot_date,
                'user' || range || '@example.com' as contact_ref, 'p' || range || '@mail.example.org' as email,
                date '1980-01-01' + range::int as birth_date, 'basic' as plan, range % 3 as phone_count,
                [{cards}][1 + range % {len(VALID_CARDS)}] as card, '10.0.' || (range % 200) || '.7' as ip,
                'customer said hello ' || range as notes
            from range(300)""")
        wh.execute(f"create table main.contact_features as {SQL}")
        wh.execute("create table main.loose as select range as id, 'x' || range || '@corp.example' as contact_ref "
                   "from range(50)")
    root = tmp_path / "shop"
    root.mkdir()
    (root / "profiles.yml").write_text(yaml.safe_dump({"shop": {"target": "dev", "outputs": {"dev": {
        "type": "duckdb", "path": "{{ env_var('DWML_DUCKDB_PATH') }}"}}}}))
    return root


def write_project(root, *, vars_=None, **manifest_kw):
    config = {"name": "shop", "profile": "shop", "config-version": 2, **({"vars": vars_} if vars_ else {})}
    (root / "dbt_project.yml").write_text(yaml.safe_dump(config))
    project = Project.locate(root, profiles_dir=root)
    project.target_dir.mkdir(parents=True, exist_ok=True)
    path = project.manifest_path
    path.write_text(json.dumps(_manifest(**manifest_kw)))
    future = time.time() + 5
    os.utime(path, (future, future))
    return project


def _by_column(result):
    return {c["column"]: c for c in result["columns"]}


def test_four_routes_and_violations(people):
    result = governance_gate(write_project(people), "contact_features")
    cols = _by_column(result)
    assert list(cols) == FEATURE_COLUMNS  # entity and timestamp are not features
    assert cols["contact_ref"]["routes"] == ["values"]  # an innocent name, caught by its values
    assert cols["contact_ref"]["pii_types"] == ["email"]
    assert cols["primary_mail"]["routes"] == ["lineage", "values"]
    assert "crm.people.email" in cols["primary_mail"]["evidence"][0]["detail"]
    assert cols["age"]["routes"] == ["lineage"] and "birth_date" in cols["age"]["evidence"][0]["detail"]
    assert cols["plan"]["routes"] == ["meta"] and cols["plan"]["classification"] == "restricted"
    assert cols["card"]["routes"] == ["values"] and cols["card"]["pii_types"] == ["payment_card"]
    # crm.people's columns come from the warehouse, and its `ip` says PII by its name: the lineage
    # route finds what derives from it, as from declared PII
    assert cols["ip"]["routes"] == ["lineage", "name", "values"]
    assert "crm.people.ip" in cols["ip"]["evidence"][0]["detail"]
    assert not cols["phone_count"]["pii"] and not cols["notes"]["pii"]
    assert cols["notes"]["classification"] == "internal"  # the model's level
    assert cols["age"]["classification"] == "confidential"  # PII raises internal to confidential

    assert not result["passed"] and result["decision"] == "fail"
    broken = sorted((v["rule"], v["column"]) for v in result["violations"])
    assert broken == [("classification", "plan"), *[("pii_feature", c) for c in
                                                     ("age", "card", "contact_ref", "ip", "plan", "primary_mail")]]
    assert all(v["hint"] and v["detail"] for v in result["violations"])
    json.dumps(result)

    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        event = read_events(wh, action="gate.governance")[0]
    assert (event["decision"], event["actor"], event["object_name"]) == ("fail", "gov-tester", "contact_features")
    assert {(r["rule"], r["column"]) for r in event["reasons"]} == set(broken)
    assert event["details"]["pii_columns"]["contact_ref"] == ["values"]


def test_exceptions_need_a_reason(people):
    exceptions = {"age": {"reason": "age bands are reviewed by legal"}, "ip": {}, "plan": "pricing tiers are needed",
                  "card": {"reason": "x", "rules": ["classification"]}}
    project = write_project(people, meta_dwml={"governance": {"exceptions": exceptions}})
    result = governance_gate(project, "contact_features")
    used = {u["column"]: u for u in result["exceptions_used"]}
    assert set(used) == {"age", "plan"}
    assert used["plan"]["rules_waived"] == ["pii_feature", "classification"]
    broken = {(v["rule"], v["column"]) for v in result["violations"]}
    assert ("exception_reason_required", "ip") in broken and ("pii_feature", "ip") in broken
    assert ("pii_feature", "card") in broken  # its exception only waives classification
    assert not {("pii_feature", "age"), ("pii_feature", "plan"), ("classification", "plan")} & broken


def test_chosen_columns_policy_vars_owner_and_description(people):
    project = write_project(people, owner=None, description="",
                            vars_={"dwml": {"governance": {"allow_pii_features": True,
                                                           "max_feature_classification": "restricted"}}})
    result = governance_gate(project, "contact_features", columns=["Contact_Ref", "notes"])
    assert [c["column"] for c in result["columns"]] == ["contact_ref", "notes"]
    assert sorted(v["rule"] for v in result["violations"]) == ["description_required", "owner_required"]
    with pytest.raises(NotFoundError, match="no column 'nope'"):
        governance_gate(project, "contact_features", columns=["nope"])


def test_clean_columns_pass(people):
    result = governance_gate(write_project(people), "contact_features", columns=["phone_count", "notes"])
    assert result["passed"] and result["violations"] == [] and result["pii_columns"] == []
    with DuckDBWarehouse(os.environ["DWML_DUCKDB_PATH"]) as wh:
        assert read_events(wh, action="gate.governance")[0]["decision"] == "pass"


def test_value_sampling_can_be_turned_off(people):
    project = write_project(people, vars_={"dwml": {"governance": {"sample_rows": 0}}})
    cols = _by_column(governance_gate(project, "contact_features"))
    assert not cols["contact_ref"]["pii"] and cols["ip"]["routes"] == ["lineage", "name"]
    cols = _by_column(governance_gate(write_project(people), "contact_features", sample=False))
    assert not cols["contact_ref"]["pii"]


def test_a_table_dbt_does_not_know(people):
    result = governance_gate(write_project(people), "main.loose")
    cols = _by_column(result)
    assert cols["contact_ref"]["routes"] == ["values"] and not cols["id"]["pii"]
    assert {"owner_required", "description_required", "pii_feature"} <= {v["rule"] for v in result["violations"]}
    assert any("not a node of the dbt manifest" in n for n in result["notes"])


@pytest.mark.parametrize("bad, message", [
    ({"allow_pii_features": "no"}, "true or false"),
    ({"max_feature_classification": "secret"}, "must be one of public, internal"),
    ({"sample_rows": -1}, "whole number"),
    ({"min_match_share": 0}, "share in (0, 1]"),
    ({"allow_pii_feature": True}, "did you mean 'allow_pii_features'"),
])
def test_bad_policy_settings(bad, message):
    with pytest.raises(ConfigError) as info:
        resolve_policy({"vars": {"dwml": {"governance": bad}}})
    assert message in str(info.value)


def test_default_policy():
    assert resolve_policy({}) == governance.DEFAULT_POLICY
