"""suggest_features and create_feature_pipeline on the real demo after `dbt build`.

The project is copied into tmp_path first, so a generated pipeline never lands in the checkout
(where other tests and the package consumer would see it)."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from dwml_py.project import copy_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TARGET = "customer_labels.churned_30d"
REAL_SIGNALS = {"customer_features.days_since_last_activity", "customer_features.usage_trend_30d",
                "customer_features.payment_failures_90d", "customer_features.active_days_30d",
                "customer_features.minutes_30d", "customer_engagement.active_days_14d", "customer_engagement.sessions_7d"}


@pytest.fixture
def demo_copy(demo_dir, tmp_path):
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.demo import DemoConfig, generate_demo
    from dwml_py.project import Project

    project = Project.locate(copy_project(demo_dir, tmp_path / "project"))
    generate_demo(project, DemoConfig(customers=300, seed=11))
    build = run_dbt(project, ["build"])
    assert build.success, build.to_dict()
    return project


def test_suggest_features_on_the_demo(demo_copy):
    from dwml_py.tools.feature_tools import suggest_features

    # `dbt build` compiled every model lineage reads; columns and types come from the warehouse
    started = time.perf_counter()
    result = suggest_features(demo_copy, TARGET)
    seconds = time.perf_counter() - started
    json.dumps(result)
    assert seconds < 10, f"suggest_features took {seconds:.1f} s on the demo"
    assert result["entity"] == "customer_id" and result["timestamp"] == "snapshot_date"
    assert result["sample"]["rows"] == result["sample"]["population"] > 500

    cols = {c["ref"]: c for c in result["candidates"] + result["excluded"]}
    flags = {ref: {f["flag"]: f["reason"] for f in c["flags"]} for ref, c in cols.items()}

    # the planted leak: found through lineage, though its AUC alone stays under the threshold
    leak = flags["customer_engagement.retention_risk_flag"]["LEAKAGE"]
    assert "lineage" in leak and "customer_labels.churned_30d" in leak
    assert "customer_engagement.retention_risk_flag" not in {c["ref"] for c in result["candidates"]}
    assert "LEAKAGE" in flags["demo_customer_snapshots.cancel_date"]
    assert "LEAKAGE" in flags["customer_labels.revenue_next_90d"]

    top8 = {c["ref"] for c in result["candidates"][:8]}
    assert len(top8 & REAL_SIGNALS) >= 3, top8
    assert len(top8 & {"customer_features.days_since_last_activity", "customer_features.usage_trend_30d",
                       "customer_features.payment_failures_90d", "customer_features.active_days_30d"}) >= 1, top8

    for ref in ("stg_customers.email", "stg_customers.phone", "stg_customers.birth_date"):
        assert "PII" in flags[ref], ref
    assert "stg_customers.birth_date" in flags["customer_features.age_years"]["PII"]  # via lineage
    assert "PII" in flags["raw.customers.email"]  # by name: the source has no meta
    assert "ID_LIKE" in flags["stg_payments.payment_id"] and "ID_LIKE" in flags["stg_subscriptions.subscription_id"]
    assert all(c["has_tests"] in (True, False) and "null_rate" in c for c in result["candidates"])

    from dwml_py.cli import app

    cli = CliRunner().invoke(app, ["features", "suggest", "--target-column", TARGET, "--limit", "5", "--json",
                                   "--project-dir", str(demo_copy.project_dir)])
    assert cli.exit_code == 0, cli.output
    assert len(json.loads(cli.stdout)["candidates"]) == 5


def test_generated_pipeline_builds_and_is_protected(demo_copy):
    from dwml_py.errors import InputError
    from dwml_py.tools.feature_tools import create_feature_pipeline

    result = create_feature_pipeline(
        demo_copy, "churn_pipeline", TARGET, from_suggestion=True, top=6,
        columns=["stg_customers.country_code", "stg_payments.status", "raw.support_tickets.category"],
        refresh=True, build=True)
    assert result["build"]["success"], result["build"]
    assert result["build"]["counts"].get("pass", 0) >= 3 and not result["build"]["failed"]
    assert {"as_of", "snapshot"} <= {c["join"] for c in result["columns"]}
    assert "retention_risk_flag" not in {c["name"] for c in result["columns"]}

    sql_path = demo_copy.project_dir / "models/features/churn_pipeline.sql"
    sql_path.write_text(sql_path.read_text().replace("SELECT", "SELECT  -- tuned by hand\n", 1))
    with pytest.raises(InputError) as caught:
        create_feature_pipeline(demo_copy, "churn_pipeline", TARGET, columns=["stg_payments.status"])
    assert "churn_pipeline.sql" in caught.value.message and "--force" in caught.value.hint
    # the hand edit made the manifest stale as well: --refresh re-reads the project
    forced = create_feature_pipeline(demo_copy, "churn_pipeline", TARGET, columns=["stg_payments.status"],
                                     force=True, build=True, refresh=True)
    assert forced["build"]["success"] and str(sql_path) in forced["overwritten"]
    assert "tuned by hand" not in sql_path.read_text()
