"""The registry-derived commands on a real demo build: catalog search/show/lineage and profile,
as a user types them, with their JSON and their errors."""

import json

import duckdb
import pytest
from typer.testing import CliRunner

from dwml_py.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_catalog_and_profile_commands_on_the_demo(duckdb_path):
    assert invoke("demo", "run", "--customers", "300", "--seed", "3").exit_code == 0

    listed = json.loads(invoke("tools", "list", "--json").stdout)
    names = {t["name"] for t in listed["tools"]}
    assert {"search_catalog", "get_feature_stats"} <= names

    search = invoke("catalog", "search", "email", "--json")
    assert search.exit_code == 0, search.output
    hits = json.loads(search.stdout)["hits"]
    email = next(h for h in hits if h["name"] == "stg_customers" and h["column"] == "email")
    assert email["pii"] is True and "exact name" in email["matched"]

    # The demo's last dbt command (`dbt run --select churn_scores`) left a manifest with compiled SQL
    # for that model only: lineage compiles what it needs (into target/dwml_gates) and still
    # traces the PII and the planted leak.
    lineage = json.loads(invoke("catalog", "lineage", "customer_features.age_years", "--json").stdout)
    assert lineage["derived_from_pii"] is True
    assert any(r["name"] == "stg_customers" and r["column"] == "birth_date" for r in lineage["pii_sources"])

    suggested = invoke("features", "suggest", "--target-column", "customer_labels.churned_30d", "--json")
    assert suggested.exit_code == 0, suggested.output
    suggested = json.loads(suggested.stdout)
    flags = {(e["model"], e["column"]): {f["flag"] for f in e["flags"]} for e in suggested["excluded"]}
    assert "LEAKAGE" in flags[("customer_engagement", "retention_risk_flag")]  # through column lineage
    assert "LEAKAGE" in flags[("raw.subscriptions", "cancel_reason")]  # its row is dated after the snapshot
    assert "LEAKAGE" in flags[("churn_scores", "score")]  # a deployed model's output
    assert not {(c["model"], c["column"]) for c in suggested["candidates"]} & set(flags)

    shown = invoke("catalog", "show", "custmer_features")
    assert shown.exit_code == 1
    assert "did you mean 'customer_features'" in shown.output

    profile = invoke("profile", "customer_features", "--entity", "customer_id", "--entity", "snapshot_date", "--json")
    assert profile.exit_code == 0, profile.output
    result = json.loads(profile.stdout)
    con = duckdb.connect(str(duckdb_path))
    assert result["row_count"] == con.sql("select count(*) from main.customer_features").fetchall()[0][0]
    assert result["duplicate_keys"] == 0
    stored = con.sql("select count(distinct profile_id), count(*) from dwml.table_profiles").fetchall()[0]
    assert stored == (1, len(result["columns"]))
    con.close()

    people = invoke("profile", "customer_features", "--no-store")
    assert people.exit_code == 0 and "rows, profiled" in people.output

    missing = invoke("profile", "no_such_table")
    assert missing.exit_code == 1 and "No table or view 'no_such_table'" in missing.output
