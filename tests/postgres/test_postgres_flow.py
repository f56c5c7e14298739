"""The whole flow on PostgreSQL, checked against the same flow on DuckDB.

The demo generator is seeded, so both engines hold the same raw rows; dbt builds the same
feature models on each. Everything computed from them must then agree: the training set (rows,
not the engine-specific fingerprint hash), the trained model and its holdout metrics, every
batch score, dbt's SQL scoring (equal to the batch scores), the profile's statistics (and those
match numpy on the fetched table) and the drift statistics. On Postgres alone: dwml's tables
created by dbt's on-run-start hook match the Python definition; version numbers and the rows
each step writes.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from dwml_py.demo import DemoConfig, generate_demo
from dwml_py.project import Project
from dwml_py.warehouse import connect
from tests.engine_flow_checks import assert_flow_matches_duckdb

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.slow]

CONFIG = DemoConfig(customers=300, seed=7)
PARAMS = {"n_estimators": 30, "max_depth": 3}


def ok(*args) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output
    return json.loads(result.stdout)


def without_cost_budget(project: Project) -> Project:
    copy = Project(project.project_dir, project.profiles_dir_option, project.target_option)
    config = json.loads(json.dumps(project.config))
    config.get("vars", {}).get("dwml", {}).pop("cost", None)
    copy.__dict__["config"] = config  # the cached_property's slot
    return copy


def run_engine(project: Project, drift_after: str, cost_gate: bool) -> dict:
    """demo -> dbt build -> gates -> train twice -> deploy v1 -> predict -> drift -> SQL scoring -> profile."""
    from dwml_py.profiling import profile_relation
    from dwml_py.training_run import train

    generate_demo(project, CONFIG)
    assert run_dbt(project, ["build"]).success
    out = {"check": ok("check", "customer_features"), "governance": ok("governance", "customer_features")}
    # The cost gate's calibration fits are CPU-bound and tested elsewhere; on Postgres it runs once,
    # for its sample query.
    out["train1"] = train(project if cost_gate else without_cost_budget(project), "churn", params=PARAMS)
    out["train2"] = train(without_cost_budget(project), "churn", params=PARAMS)
    out["deploy"] = ok("deploy", "churn", "--version", "1")
    out["predict"] = ok("predict", "churn", "--batch-id", "cmp")
    out["drift"] = ok("drift", "churn", "--after", drift_after)
    assert run_dbt(project, ["run", "--select", "churn_scores"]).success  # SQL scoring, compiled at deploy
    with connect(project) as warehouse:
        schema = project.profile.settings.get("schema", "main")
        out["profile"] = profile_relation(warehouse, schema, "customer_features", entity_key=["customer_id", "snapshot_date"],
                                          exact=True)
        out["features"] = warehouse.fetch_arrow(f'SELECT * FROM "{schema}"."customer_features"')
        out["scores"] = {(r["entity_key"], str(r["snapshot_at"])[:10]): r["score"] for r in warehouse.fetch_rows(
            "SELECT entity_key, snapshot_at, score FROM dwml.predictions WHERE batch_id = 'cmp'")}
        out["sql_scores"] = {(str(r["customer_id"]), str(r["snapshot_date"])[:10]): r["score"] for r in
                             warehouse.fetch_rows(f'SELECT customer_id, snapshot_date, score FROM "{schema}"."churn_scores"')}
        out["versions"] = [r["version"] for r in warehouse.fetch_rows(
            "SELECT version FROM dwml.model_versions WHERE model_name = 'churn' ORDER BY version")]
        out["drift_rows"] = warehouse.fetch_scalar(
            f"SELECT count(*) FROM dwml.drift_metrics WHERE drift_run_id = '{out['drift']['drift_run_id']}'")
        out["prediction_rows"] = warehouse.fetch_scalar("SELECT count(*) FROM dwml.predictions")
        out["logged"] = {(r["entity_key"], str(r["snapshot_at"])[:10]): r["score"] for r in warehouse.fetch_rows(
            "SELECT entity_key, snapshot_at, score FROM dwml.predictions WHERE source = 'sql'")}
    return out


def test_the_flow_on_postgres_matches_duckdb(project, pg_database, monkeypatch, tmp_path):
    from dwml_py.demo.generator import shift_start
    from dwml_py.tables import DWML_SCHEMA, TABLES, ensure_tables

    drift_after = shift_start(CONFIG).isoformat()
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "duckdb_target"))
    duck = run_engine(project, drift_after, cost_gate=False)

    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBT_TARGET", "postgres")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "postgres_target"))
    pg_project = Project.locate(project.project_dir)

    # -- dwml's tables from the dbt side first: the on-run-start hook on an empty database ------
    assert run_dbt(pg_project, ["run", "-s", "tag:dwml"]).success
    with connect(pg_project) as warehouse:
        dbt_made = {name: warehouse.columns(DWML_SCHEMA, name) for name in TABLES}
        assert all(dbt_made.values()), [n for n, cols in dbt_made.items() if not cols]
        assert ensure_tables(warehouse) == {}  # nothing for Python to add
        ensure_tables(warehouse, schema="dwml_python_made")
        for name in TABLES:  # the same column names and types from both sides
            assert warehouse.columns("dwml_python_made", name) == dbt_made[name], name

    pg = run_engine(pg_project, drift_after, cost_gate=True)

    # -- gates ---------------------------------------------------------------------------------------
    for gate in ("check", "governance"):
        assert pg[gate]["passed"] is True and duck[gate]["passed"] is True, pg[gate]
    assert pg["train1"]["gates"]["cost"]["decision"] == "pass" and pg["train1"]["gates"]["cost"]["estimate"]
    assert "estimate" not in duck["train1"]["gates"]["cost"]  # no budget, nothing estimated

    assert_flow_matches_duckdb(pg, duck, "postgres-md5-sum64")
