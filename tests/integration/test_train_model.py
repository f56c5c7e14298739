"""`dwml train` end to end on the demo: gates, fingerprint, fit, metrics, registry, reference
profile, audit; refusals on injected defects and on PII features; reproducible metrics."""

import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from dwml_py.demo import DemoConfig, generate_demo
from dwml_py.project import copy_project
from tests.conftest import duckdb_rows as rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = ["--param", "n_estimators=60"]


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def build_demo(project, **config):
    generate_demo(project, DemoConfig(customers=1200, seed=4, **config))
    return run_dbt(project, ["build"])


def test_train_registers_a_version_with_everything_it_needs(project, duckdb_path):
    assert build_demo(project).success
    result = invoke("train", "churn", *FAST, "--json")
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    assert trained["version"] == 1 and trained["status"] == "finished"
    assert 0.6 < trained["metrics"]["roc_auc"] < 0.98
    assert trained["split"]["method"] == "time"
    assert {g: r["decision"] for g, r in trained["gates"].items()} == {
        "quality": "pass", "governance": "pass", "cost": "pass"}

    # the artifact on disk is exactly what the registry says
    artifact = Path(urlparse(trained["artifact"]["uri"]).path)
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == trained["artifact"]["sha256"]

    run = rows(duckdb_path, "select status, data_fingerprint, row_count, git_sha is not null or true, seed, "
                            "manifest_checksum from dwml.runs where run_id = '" + trained["run_id"] + "'")[0]
    assert run[0] == "finished" and run[1] == trained["data_fingerprint"]["hash"]
    assert run[2] == trained["data_fingerprint"]["row_count"] and run[4] == 0 and run[5]
    versions = rows(duckdb_path, "select version, artifact_sha256, artifact_format from dwml.model_versions")
    assert versions == [(1, trained["artifact"]["sha256"], "dwml-model-zip")]
    reference = rows(duckdb_path, "select feature, kind from dwml.reference_profiles where version = 1")
    assert len(reference) == len(trained["features"]) + 1 and ("__score__", "score") in reference
    decisions = rows(duckdb_path, "select action, decision from dwml.audit_log order by occurred_at")
    assert {("gate.quality", "pass"), ("gate.governance", "pass"), ("gate.cost", "pass")} <= set(decisions)

    # the same data and seed give the same metrics
    again = json.loads(invoke("train", "churn", *FAST, "--json").stdout)
    assert again["version"] == 2
    assert again["data_fingerprint"] == trained["data_fingerprint"]
    assert again["metrics"] == trained["metrics"]


def test_injected_defects_refuse_training_and_register_nothing(project, duckdb_path):
    assert not build_demo(project, inject_defects=True).success
    result = invoke("train", "churn", *FAST)
    assert result.exit_code == 2, result.output
    assert "quality gate refused" in result.output
    assert "Traceback" not in result.output
    assert rows(duckdb_path, "select status from dwml.runs") == [("failed",)]
    assert rows(duckdb_path, "select count(*) from dwml.model_versions") == [(0,)]
    assert ("gate.quality", "fail") in rows(duckdb_path, "select action, decision from dwml.audit_log")

    no_reason = invoke("train", "churn", "--override", "quality")
    assert no_reason.exit_code == 1 and "--reason" in no_reason.output


def test_a_pii_feature_without_an_exception_refuses_training(demo_dir, tmp_path, duckdb_path):
    copy = copy_project(demo_dir, tmp_path / "project")
    yml = copy / "models/features/customer_features.yml"
    text = yml.read_text()
    start = text.index("          governance:")
    end = text.index("          models:", start)
    yml.write_text(text[:start] + text[end:])  # withdraw the age_years exception

    from dwml_py.project import Project

    project = Project.locate(copy)
    assert build_demo(project).success
    result = invoke("train", "churn", *FAST, "--project-dir", str(copy))
    assert result.exit_code == 2, result.output
    assert "governance gate refused" in result.output and "age_years" in result.output
    assert rows(duckdb_path, "select count(*) from dwml.model_versions") == [(0,)]
