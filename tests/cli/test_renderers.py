"""The human renderings of tool results (dwml_py/cli_render.py): every tool has one, and each
shows the facts a person needs first. The result dicts are trimmed copies of real results on the
demo project."""

from __future__ import annotations

import copy
import re

import pytest

from dwml_py import cli_render
from dwml_py.cli_render import RENDERERS
from dwml_py.console import stdout

# The tools that existed when these renderers were written; tools added later may have none yet.
EXPECTED_TOOLS = {
    "search_catalog", "show_catalog_node", "catalog_lineage", "get_feature_stats",
    "check_data_quality", "check_governance", "suggest_features", "create_feature_pipeline",
    "list_runs", "show_run", "compare_experiments", "list_models", "get_model_versions", "register_model",
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(params=[120, 80], ids=["wide", "narrow"])
def width(request, monkeypatch):
    monkeypatch.setattr(stdout, "_width", request.param)
    return request.param


def render(tool: str, result: dict) -> str:
    with stdout.capture() as capture:
        RENDERERS[tool](copy.deepcopy(result))
    return _ANSI.sub("", capture.get())


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# -- results (trimmed from real runs) ------------------------------------------------------------

QUALITY_FAILED = {
    "model": "customer_engagement", "unique_id": "model.dwml.customer_engagement",
    "relation": "main.customer_engagement", "passed": False, "overridden": False, "decision": "fail",
    "checks": [
        {"check": "dbt_tests", "passed": False,
         "detail": "1 of 45 dbt test(s) on customer_engagement and upstream failed: "
                   "not_null_customer_engagement_plan_code (fail).",
         "hint": "fix the data or the model, then rebuild (`dbt build --select +customer_engagement`).",
         "failed": ["not_null_customer_engagement_plan_code"]},
        {"check": "min_rows", "passed": False,
         "detail": "10,815 rows; at least 50,000 required (vars dwml.quality in dbt_project.yml).",
         "hint": "load or rebuild the data (`dbt build --select +customer_engagement`), or, if the data is right, "
                 "raise the threshold in meta.dwml.quality of customer_engagement.",
         "value": 10815, "threshold": 50000},
        {"check": "max_null_rate", "passed": False,
         "detail": "days_since_last_ticket is 71.8% null (7,762 of 10,815 rows); at most 5.0% allowed "
                   "(vars dwml.quality in dbt_project.yml).",
         "hint": "find where days_since_last_ticket loses values upstream (a join or a load)",
         "column": "days_since_last_ticket", "value": 0.717706888580675, "threshold": 0.05},
        {"check": "no_duplicate_keys", "passed": True,
         "detail": "0 value(s) of (customer_id, snapshot_date) occur more than once.", "hint": None,
         "key": ["customer_id", "snapshot_date"], "value": 0, "threshold": 0},
    ],
    "failed_checks": ["dbt_tests", "min_rows", "max_null_rate"],
    "dbt_tests": {"source": "dbt test", "passed": False, "tests": 45,
                  "failed": [{"unique_id": "test.dwml.not_null_customer_engagement_plan_code.1a2b",
                              "name": "not_null_customer_engagement_plan_code", "test": "not_null",
                              "model": "customer_engagement", "column": "plan_code", "status": "fail",
                              "message": "Got 12 results, configured to fail if != 0", "failures": 12}],
                  "warned": [], "skipped": [], "why": "target/manifest.json is older than the project's files",
                  "invocation_id": "a5180be8-950b-4d11-b755-5db58ab4d400",
                  "tested_at": "2026-11-27T18:40:53.201927+00:00"},
    "thresholds": {"max_null_rate": 0.05, "column_max_null_rate": {}, "min_rows": 50000,
                   "max_staleness_hours": None, "no_duplicate_keys": True},
    "entity": ["customer_id"], "timestamp": "snapshot_date", "row_count": 10815,
    "profile_id": "d21b32996cce4147ae2a537469012a43", "override": None, "actor": "root",
    "audit_event_id": "425dacc2ce5f496a81cd0741cea45f18",
}

GOVERNANCE_FAILED = {
    "model": "customer_features", "unique_id": "model.dwml.customer_features", "relation": "main.customer_features",
    "passed": False, "decision": "fail",
    "columns": [
        {"column": "tenure_days", "pii": False, "routes": [], "pii_types": [], "classification": "internal",
         "declared_classification": None, "data_type": "BIGINT", "evidence": []},
        {"column": "age_years", "pii": True, "routes": ["lineage"], "pii_types": [], "classification": "confidential",
         "declared_classification": None, "data_type": "INTEGER",
         "evidence": [{"route": "lineage", "detail": "derived from PII stg_customers.birth_date "
                                                     "(customer_features.age_years <- stg_customers.birth_date)"}]},
        {"column": "plan_code", "pii": False, "routes": [], "pii_types": [], "classification": "internal",
         "declared_classification": None, "data_type": "VARCHAR", "evidence": []},
    ],
    "pii_columns": ["age_years"],
    "violations": [
        {"rule": "pii_feature", "column": "age_years",
         "detail": "age_years holds PII (found by lineage) and PII may not be a feature.",
         "hint": "drop age_years from the features, or grant an exception with a reason in "
                 "meta.dwml.governance.exceptions of customer_features."},
        {"rule": "description_required", "column": None, "detail": "customer_features has no description.",
         "hint": "add a description to customer_features in its yml."},
    ],
    "exceptions_used": [], "policy": {"allow_pii_features": False, "max_feature_classification": "confidential"},
    "owner": "dwml-demo", "notes": ["no target/catalog.json: column types come from the warehouse."],
    "actor": "root", "audit_event_id": "48b752c1162141689218b7b33c06fe37",
}

SUGGESTION = {
    "target": {"model": "customer_labels", "node": "model.dwml.customer_labels", "column": "churned_30d",
               "task": "classification", "positive_rate": 0.0622},
    "entity": "customer_id", "timestamp": "snapshot_date", "spec_from": "meta.dwml of customer_features",
    "sample": {"rows": 10327, "requested": 20000, "population": 10327, "seed": 0, "method": "..."},
    "joined": [
        {"node": "model.dwml.customer_engagement", "name": "customer_engagement", "join": "snapshot",
         "entity_column": "customer_id", "time_column": "snapshot_date", "found_by": "same key name",
         "rows": 10815, "entities": 1144, "latest": "2026-01-01", "skipped": None},
        {"node": "model.dwml.stg_tickets_archive", "name": "stg_tickets_archive", "join": None,
         "entity_column": None, "time_column": None, "found_by": None, "rows": None, "entities": None,
         "latest": None, "skipped": "no column named customer_id"},
    ],
    "candidates": [
        {"ref": "customer_engagement.active_days_14d", "model": "customer_engagement", "column": "active_days_14d",
         "type": "INTEGER", "kind": "numeric", "score": 0.5, "auc": 0.75, "correlation": None, "mutual_info": 0.028,
         "null_rate": 0.0, "distinct": 15, "has_tests": True, "tests": ["not_null_customer_engagement_active_days_14d"],
         "flags": [], "warnings": [], "rank": 1},
        {"ref": "customer_engagement.days_since_last_ticket", "model": "customer_engagement",
         "column": "days_since_last_ticket", "type": "INTEGER", "kind": "numeric", "score": 0.108, "auc": 0.554,
         "correlation": None, "mutual_info": 0.0042, "null_rate": 0.72, "distinct": 90, "has_tests": False,
         "tests": [], "flags": [], "warnings": ["72% null in the sample", "no dbt tests on this column"], "rank": 2},
    ],
    "candidates_total": 30,
    "excluded": [
        {"ref": "customer_engagement.retention_risk_flag", "model": "customer_engagement",
         "column": "retention_risk_flag", "score": 0.8704, "auc": 0.9352,
         "flags": [{"flag": "LEAKAGE", "reason": "derived from the label customer_labels.churned_30d through column "
                                                 "lineage"}], "warnings": []},
        {"ref": "stg_customers.email", "model": "stg_customers", "column": "email",
         "flags": [{"flag": "PII", "reason": "meta.pii is true"}, {"flag": "ID_LIKE", "reason": "99% distinct"}],
         "warnings": []},
    ],
    "flag_counts": {"LEAKAGE": 28, "PII": 9, "ID_LIKE": 9},
    "notes": ["no target/catalog.json: column types come from the warehouse."], "seconds": 1.956,
}

PIPELINE = {
    "name": "churn_feats2", "sql_path": "/repo/models/features/churn_feats2.sql",
    "yml_path": "/repo/models/features/churn_feats2.yml",
    "written": ["/repo/models/features/churn_feats2.sql", "/repo/models/features/churn_feats2.yml"],
    "overwritten": [], "target": {"model": "customer_labels", "column": "churned_30d", "task": "classification"},
    "entity": "customer_id", "timestamp": "snapshot_date",
    "columns": [
        {"name": "retention_risk_flag", "source": "customer_engagement.retention_risk_flag", "join": "snapshot",
         "time_column": None},
        {"name": "amount", "source": "stg_payments.amount", "join": "as_of", "time_column": "paid_at"},
    ],
    "sources": [],
    "warnings": ["LEAKAGE: customer_engagement.retention_risk_flag: derived from the label "
                 "customer_labels.churned_30d through column lineage"],
    "suggestion": None, "next": "dbt build --select churn_feats2",
}

RUN_A, RUN_B, RUN_C = ("931748e193ad4bf3ba5cf595a3c5a480", "a76ae8a8527542d99b5ff4e6517866e8",
                       "a03c989cd8eb46989bdb28dcda96cddb")
ERROR = "ValueError: training diverged: loss is NaN after 12 rounds"

RUNS = {
    "filters": {"experiment": None, "model": None, "status": None, "limit": 50}, "count": 3,
    "runs": [
        {"run_id": RUN_C, "experiment": "churn", "model_name": "churn_model", "status": "failed", "stale": False,
         "started_at": "2026-11-27T18:41:06.042167", "finished_at": "2026-11-27T18:41:06.089269",
         "algorithm": None, "task": None, "feature_model": None, "row_count": None, "data_fingerprint": None,
         "metrics": {}, "error": ERROR, "created_by": "root"},
        {"run_id": RUN_B, "experiment": "churn", "model_name": "churn_model", "status": "finished", "stale": False,
         "started_at": "2026-11-27T18:41:05.940023", "finished_at": "2026-11-27T18:41:05.995355",
         "algorithm": "xgboost", "task": "classification", "feature_model": "customer_features", "row_count": 10327,
         "data_fingerprint": "fp-456", "metrics": {"holdout.log_loss": 0.34, "holdout.roc_auc": 0.835},
         "error": None, "created_by": "root"},
        {"run_id": RUN_A, "experiment": "retention", "model_name": "churn_model", "status": "running", "stale": True,
         "started_at": "2026-11-20T18:41:05.619173", "finished_at": None, "algorithm": "xgboost",
         "task": "classification", "feature_model": "customer_features", "row_count": 10327,
         "data_fingerprint": "fp-123", "metrics": {}, "error": None, "created_by": "root"},
    ],
    "marked_stale": [],
}

SHOW_RUN = {
    "run_id": RUN_B, "experiment": "churn", "model_name": "churn_model", "status": "finished",
    "started_at": "2026-11-27T18:41:05.940023", "finished_at": "2026-11-27T18:41:07.995355",
    "feature_model": "customer_features", "label": "customer_labels.churned_30d", "task": "classification",
    "algorithm": "xgboost", "params": {"eta": 0.1, "max_depth": 6}, "data_fingerprint": "fp-456",
    "row_count": 10327, "manifest_checksum": None, "dbt_invocation_id": None, "git_sha": None,
    "package_versions": {"dwml": "0.1.0", "xgboost": "3.2.0"}, "seed": 42, "durations": {"fit": 1.234},
    "gates": {"quality": "pass"}, "features": None,
    "artifacts": [{"format": "xgboost-ubj", "name": "model.ubj",
                   "sha256": "48532fc7d242d83bf771170973708e7185969140b5d85926fdda153907951daf", "size": 20,
                   "uri": "file:///tmp/art/48/48532fc7/model.ubj"}],
    "tags": None, "error": None, "created_by": "root",
    "metrics": [{"metric": "roc_auc", "value": 0.835, "split": "holdout", "step": None,
                 "logged_at": "2026-11-27T18:41:05.994287"}],
    "latest_metrics": {"holdout.log_loss": 0.34, "holdout.roc_auc": 0.835},
    "model_versions": [{"model_name": "churn_model", "version": 2}],
}

COMPARE = {
    "run_ids": [RUN_A, RUN_B],
    "runs": [
        {"run_id": RUN_A, "experiment": "churn", "model_name": "churn_model", "status": "finished",
         "started_at": "2026-11-27T18:41:05.619173", "finished_at": "2026-11-27T18:41:05.888223",
         "created_by": "root", "error": None},
        {"run_id": RUN_B, "experiment": "churn", "model_name": "churn_model", "status": "finished",
         "started_at": "2026-11-27T18:41:05.940023", "finished_at": "2026-11-27T18:41:05.995355",
         "created_by": "root", "error": None},
    ],
    "fields": {"experiment": ["churn", "churn"], "model_name": ["churn_model", "churn_model"],
               "status": ["finished", "finished"], "algorithm": ["xgboost", "xgboost"],
               "data_fingerprint": ["fp-123", "fp-456"], "row_count": [10327, 10327], "git_sha": [None, None]},
    "params": {"eta": [0.1, 0.1], "max_depth": [4, 6]},
    "metrics": {"holdout.roc_auc": [0.81, 0.835]},
    "fingerprints": {"data_fingerprint": ["fp-123", "fp-456"], "row_count": [10327, 10327]},
    "same_data": False,
    "differs": ["data_fingerprint", "params.max_depth", "metrics.holdout.roc_auc"],
}

MODELS = {"count": 1, "models": [
    {"model_name": "churn_model", "versions": 2, "latest_version": 2, "task": "classification",
     "algorithm": "xgboost", "feature_model": "customer_features", "latest_created_at": "2026-11-27T18:41:07.303975",
     "latest_metrics": {"log_loss": 0.34, "roc_auc": 0.835}, "aliases": {"production": 2}},
]}

VERSION_1 = {
    "model_name": "churn_model", "version": 1, "run_id": RUN_A, "status": "registered", "task": "classification",
    "algorithm": "xgboost", "feature_model": "customer_features", "features": None,
    "artifact_uri": "file:///tmp/art/c7/c7f1231b/model.ubj",
    "artifact_sha256": "c7f1231b34aef4559d3e1220d998c95da86594efbacb751305ecf7e1b2d96b18",
    "artifact_format": "xgboost-ubj", "metrics": {"log_loss": 0.36, "roc_auc": 0.81},
    "description": "first xgboost baseline", "created_at": "2026-11-27T18:41:06.618728", "created_by": "root",
    "aliases": [],
}

VERSIONS = {
    "model_name": "churn_model", "count": 2, "aliases": {"production": 2},
    "versions": [VERSION_1, {**VERSION_1, "version": 2, "run_id": RUN_B, "metrics": {"roc_auc": 0.835},
                             "description": None, "aliases": ["production"]}],
    "alias_history": [
        {"model_name": "churn_model", "alias": "production", "version": 1, "previous_version": None,
         "reason": "first deploy", "set_at": "2026-11-27T18:41:13.488244", "set_by": "root"},
        {"model_name": "churn_model", "alias": "production", "version": 2, "previous_version": 1,
         "reason": "better auc", "set_at": "2026-11-27T18:41:13.631655", "set_by": "ana"},
    ],
}

REGISTERED = {"registered": True, **VERSION_1}

RESULTS = {
    "check_data_quality": QUALITY_FAILED, "check_governance": GOVERNANCE_FAILED, "suggest_features": SUGGESTION,
    "create_feature_pipeline": PIPELINE, "list_runs": RUNS, "show_run": SHOW_RUN, "compare_experiments": COMPARE,
    "list_models": MODELS, "get_model_versions": VERSIONS, "register_model": REGISTERED,
}


# -- coverage ------------------------------------------------------------------------------------

def test_every_tool_has_a_renderer():
    from dwml_py.tools.registry import load_tools

    registered = set(load_tools().names())
    assert EXPECTED_TOOLS <= registered, f"tools gone or renamed: {sorted(EXPECTED_TOOLS - registered)}"
    assert EXPECTED_TOOLS <= set(RENDERERS), f"no renderer for {sorted(EXPECTED_TOOLS - set(RENDERERS))}"
    assert all(callable(r) for r in RENDERERS.values())


@pytest.mark.parametrize("tool", sorted(RESULTS))
def test_renderers_survive_missing_keys(tool, width):
    """A result with only some keys (an older or newer tool version) still renders."""
    render(tool, {})
    full = RESULTS[tool]
    render(tool, {k: v for i, (k, v) in enumerate(full.items()) if i % 2})


# -- gates ---------------------------------------------------------------------------------------

def test_quality_gate_failed_shows_each_failing_check_with_its_hint(width):
    out = render("check_data_quality", QUALITY_FAILED)
    first = out.splitlines()[0]
    assert "FAILED" in first and "customer_engagement" in first and "3 of 4" in first
    for check in QUALITY_FAILED["checks"]:
        assert lines_with(out, check["check"]), check["check"]
    assert "days_since_last_ticket is 71.8% null" in out
    assert out.count("hint:") == 3
    assert "find where days_since_last_ticket loses values upstream" in out
    # the failing dbt test, by name, with its failure count
    row = lines_with(out, "not_null_customer_engagement")[-1]
    assert "12" in row and "fail" in row
    assert "425dacc2ce5f496a81cd0741cea45f18" in out  # the audit event


def test_quality_gate_failing_checks_come_before_passing_ones(width):
    out = render("check_data_quality", QUALITY_FAILED)
    assert out.index("FAIL min_rows") < out.index("no_duplicate_keys")


def test_quality_gate_passed_and_overridden(width):
    passed = {**QUALITY_FAILED, "passed": True, "decision": "pass", "failed_checks": [],
              "checks": [{**c, "passed": True, "hint": None} for c in QUALITY_FAILED["checks"]],
              "dbt_tests": {**QUALITY_FAILED["dbt_tests"], "failed": [], "passed": True}}
    out = render("check_data_quality", passed)
    assert "PASSED" in out.splitlines()[0] and "FAILED" not in out
    assert "hint:" not in out and "4 check(s) passed" in out

    overridden = {**QUALITY_FAILED, "passed": True, "overridden": True, "decision": "overridden",
                  "override": {"requested": True, "applied": True, "reason": "known backfill gap"}}
    out = render("check_data_quality", overridden)
    assert "OVERRIDDEN" in out.splitlines()[0]
    assert "known backfill gap" in out
    assert "hint:" in out  # what failed is still shown


def test_governance_gate_failed_shows_violations_hints_and_pii_columns(width):
    out = render("check_governance", GOVERNANCE_FAILED)
    first = out.splitlines()[0]
    assert "FAILED" in first and "customer_features" in first and "2 violation(s)" in first
    assert lines_with(out, "pii_feature") and lines_with(out, "description_required")
    assert "drop age_years from the features" in out
    assert out.count("hint:") == 2
    pii_row = [line for line in lines_with(out, "age_years") if "confidential" in line]
    assert pii_row and "lineage" in pii_row[0]
    assert "2 other column(s)" in out  # the clean columns are counted, not listed
    assert not lines_with(out, "tenure_days")
    assert "column types come from the warehouse" in out  # notes


def test_governance_gate_passed_with_an_exception(width):
    passed = {**GOVERNANCE_FAILED, "passed": True, "decision": "pass", "violations": [],
              "exceptions_used": [{"column": "age_years", "reason": "age bands approved by legal",
                                   "rules_waived": ["pii_feature"]}]}
    out = render("check_governance", passed)
    assert "PASSED" in out.splitlines()[0] and "no violations" in out.splitlines()[0]
    assert "hint:" not in out
    assert "age bands approved by legal" in out and "pii_feature" in out


# -- features ------------------------------------------------------------------------------------

def test_suggestions_rank_candidates_and_list_exclusions(width):
    out = render("suggest_features", SUGGESTION)
    first = out.splitlines()[0]
    assert "customer_labels.churned_30d" in first and "classification" in first and "6.2%" in first
    assert "10,327" in out
    top = lines_with(out, "active_days_14d")[0]
    assert "0.75" in top and "yes" in top
    assert "72%" in lines_with(out, "days_since_last")[0]
    assert "28 more candidate(s)" in out and "--limit" in out
    assert "LEAKAGE 28" in out
    assert "LEAKAGE" in lines_with(out, "retention_risk_flag")[0]
    email = lines_with(out, "stg_customers.email")[0]
    assert "PII" in email and "ID_LIKE" in email
    assert "stg_tickets_archive" in out and "no column named customer_id" in out  # a relation not joined


def test_suggestions_for_a_regression_target_show_correlation(width):
    regression = copy.deepcopy(SUGGESTION)
    regression["target"].update(task="regression", positive_rate=None)
    for c in regression["candidates"]:
        c.update(auc=None, correlation=0.42)
    out = render("suggest_features", regression)
    assert "corr" in out and "0.42" in out and "AUC" not in out


def test_pipeline_shows_files_columns_warnings_and_next_step(width):
    out = render("create_feature_pipeline", PIPELINE)
    assert "churn_feats2" in out.splitlines()[0] and "2 column(s)" in out.splitlines()[0]
    assert "/repo/models/features/churn_feats2.sql" in out and "/repo/models/features/churn_feats2.yml" in out
    assert lines_with(out, "warning:") and "LEAKAGE" in lines_with(out, "warning:")[0]
    row = lines_with(out, "stg_payments.amount")[0]
    assert "as_of" in row and "paid_at" in row
    assert "Next: dbt build --select churn_feats2" in out


def test_pipeline_with_a_failed_build(width):
    failed = {**PIPELINE, "passed": False,
              "build": {"command": ["dbt", "build", "--select", "churn_feats2"], "success": False, "seconds": 1.2,
                        "counts": {"success": 1, "fail": 1},
                        "failed": [{"unique_id": "test.dwml.not_null_churn_feats2_amount", "name":
                                    "not_null_churn_feats2_amount", "resource_type": "test", "status": "fail",
                                    "message": "Got 3 results", "failures": 3, "seconds": 0.1}]}}
    out = render("create_feature_pipeline", failed)
    assert lines_with(out, "Build FAILED") and "fail 1" in out
    assert "not_null_churn_feats2_amount" in out
    assert "hint:" in out
    assert "Next:" not in out


# -- runs ----------------------------------------------------------------------------------------

def test_runs_list_is_one_row_per_run(width):
    out = render("list_runs", RUNS)
    failed, finished, stale = (lines_with(out, r[:8])[0] for r in (RUN_C, RUN_B, RUN_A))
    assert "failed" in failed and "ValueError" in failed
    assert "finished" in finished and "fp-456" in finished
    if width > 80:
        assert "roc_auc=0.835" in finished
    assert "stale" in stale
    assert "--mark-stale" in out  # what to do about the stale run
    assert "3 run(s)" in out


def test_runs_list_says_a_shared_experiment_once(width):
    runs = copy.deepcopy(RUNS)
    runs["runs"][2]["experiment"] = "churn"
    out = render("list_runs", runs)
    assert "experiment churn" in out.splitlines()[0] and "model churn_model" in out.splitlines()[0]
    assert "experiment " not in out.splitlines()[1]  # no column for it


def test_runs_list_empty():
    out = render("list_runs", {"filters": {"experiment": "nope"}, "count": 0, "runs": [], "marked_stale": []})
    assert "No runs" in out and "experiment=nope" in out


def test_show_run(width):
    out = render("show_run", SHOW_RUN)
    assert RUN_B in out.splitlines()[0] and "finished" in out.splitlines()[0]
    for fact in ("customer_labels.churned_30d", "fp-456", "10,327", "seed 42", "churn_model v2", "quality=pass",
                 "2.1 s", "model.ubj", "48532fc7d242"):
        assert fact in out, fact
    assert "0.835" in lines_with(out, "holdout.roc_auc")[0]
    assert "6" in lines_with(out, "max_depth")[0]


def test_show_failed_run_puts_the_error_up_front():
    failed = {**SHOW_RUN, "status": "failed", "error": ERROR + " " + "x" * 1000, "latest_metrics": {},
              "artifacts": None, "model_versions": []}
    out = render("show_run", failed)
    assert "failed" in out.splitlines()[0]
    assert ERROR in out.splitlines()[1]
    assert "x" * 1000 not in out  # cut


def test_compare_runs_side_by_side(width):
    out = render("compare_experiments", COMPARE)
    assert "different" in out.splitlines()[0] and "3 difference(s)" in out.splitlines()[0]
    header = lines_with(out, RUN_A[:8])[0]
    assert RUN_B[:8] in header
    depth = lines_with(out, "max_depth")[0]
    assert "4" in depth and "6" in depth
    auc = lines_with(out, "roc_auc")[0]
    assert "0.81" in auc and "0.835" in auc
    assert "fp-123" in lines_with(out, "data_fingerprint")[0]
    assert "same in all" in out and "experiment=churn" in out
    assert not lines_with(out, "git_sha")  # nothing recorded: not shown


def test_compare_many_runs_splits_the_table(width):
    many = copy.deepcopy(COMPARE)
    ids = [f"{i:04x}" + "0" * 28 for i in range(9)]
    many["runs"] = [{**many["runs"][0], "run_id": i} for i in ids]
    for group in ("fields", "params", "metrics"):
        many[group] = {k: [v[0]] * 9 for k, v in many[group].items()}
    out = render("compare_experiments", many)
    assert all(lines_with(out, i[:8]) for i in ids)  # no id is cut
    assert len(lines_with(out, "max_depth")) >= 2  # tables of at most six runs
    assert all(len(line) <= stdout.width for line in out.splitlines() if "0.81" in line)


# -- models --------------------------------------------------------------------------------------

def test_models_list(width):
    out = render("list_models", MODELS)
    row = lines_with(out, "churn_m")[0]
    assert "v2 of 2" in row and "xgboost" in row
    assert "1 model(s)" in out


def test_models_list_empty():
    assert "No registered models" in render("list_models", {"count": 0, "models": []})


def test_model_versions(width):
    out = render("get_model_versions", VERSIONS)
    assert "churn_model" in out.splitlines()[0] and "production→v2" in out.splitlines()[0]
    v1 = lines_with(out, RUN_A[:8])[0]
    assert v1.lstrip().startswith("v1") and "first" in v1
    assert "production" in lines_with(out, RUN_B[:8])[0]
    move = lines_with(out, "v1 → v2")[0]
    assert "production" in move and "better auc" in move and "ana" in move
    assert out.index("v1 → v2") < out.index("new → v1")  # newest move first


def test_register_model(width):
    out = render("register_model", REGISTERED)
    assert "churn_model" in out.splitlines()[0] and "v1" in out.splitlines()[0] and RUN_A in out.splitlines()[0]
    for fact in ("xgboost (classification)", "customer_features", "roc_auc=0.81", "c7f1231b34ae",
                 "first xgboost baseline", "dwml models versions churn_model"):
        assert fact in out, fact


def test_markup_in_values_is_escaped():
    """Values are data, never rich markup: '[bold]' in a name is printed as it is."""
    tricky = copy.deepcopy(MODELS)
    tricky["models"][0]["model_name"] = "m[bold]x"
    assert "m[bold]x" in render("list_models", tricky)
    gate = copy.deepcopy(QUALITY_FAILED)
    gate["checks"][2]["column"] = "col[red]"
    assert "(col[red])" in render("check_data_quality", gate)


def test_cut_keeps_short_text_and_marks_a_cut():
    assert cli_render._cut("short", 10) == "short"
    assert cli_render._cut("a" * 20, 10) == "a" * 9 + "…"
    assert cli_render._cut(None) == ""


# -- catalog: what was cut, what is unknown --------------------------------------------------------

def _lineage_result(**extra):
    return {"model": "customers", "node": "model.shop.customers", "column": "orders", "relation": "main.customers",
            "pii": False, "derived_from_pii": False, "direct": [], "upstream": [
                {"node": "model.shop.stg_orders", "name": "stg_orders", "resource_type": "model",
                 "column": "order_id", "pii": False, "depth": 1,
                 "path": ["model.shop.customers.orders", "model.shop.stg_orders.order_id"]}],
            "pii_sources": [], "downstream": [], "downstream_unknown": [], "unavailable": {}, "unresolved": {},
            "notes": [], **extra}


def test_lineage_says_downstream_is_unknown_when_children_were_not_compiled(width):
    reason = "lineage unavailable: the manifest has no compiled SQL for this node (run `dbt compile`)."
    text = render("catalog_lineage", _lineage_result(
        downstream_unknown=["model.shop.churn_scores", "model.shop.customer_features"],
        unavailable={"model.shop.churn_scores": reason, "model.shop.customer_features": reason}))
    assert "downstream: unknown (2 children not compiled)" in text
    assert "downstream: none" not in text
    one = render("catalog_lineage", _lineage_result(downstream_unknown=["model.shop.churn_scores"],
                                                    unavailable={"model.shop.churn_scores": reason}))
    assert "downstream: unknown (1 child not compiled)" in one


def test_lineage_says_none_only_when_it_is_the_truth(width):
    assert "downstream: none" in render("catalog_lineage", _lineage_result())


def test_search_says_when_it_cut_the_hits(width):
    hit = {"name": "patients", "unique_id": "model.shop.patients", "resource_type": "model", "column": "email",
           "relation": "main.patients", "owner": None, "classification": None, "parents": [], "matched": ["name"],
           "score": 80, "type": "VARCHAR", "description": "", "tests": [], "tags": [], "pii": True}
    text = render("search_catalog", {"term": "e", "resource_type": None, "count": 20, "total": 280, "truncated": True,
                                     "limit": 20, "hits": [hit] * 20, "notes": []})
    assert "20 of 280 hits for 'e'; --limit" in " ".join(text.split())
    whole = render("search_catalog", {"term": "e", "resource_type": None, "count": 1, "total": 1, "truncated": False,
                                      "limit": 20, "hits": [hit], "notes": []})
    assert "--limit" not in whole and "1 hit for 'e'" in whole
