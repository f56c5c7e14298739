"""The whole flow on Spark (dbt-spark's session method, one local SparkSession shared by dbt and
dwml), checked against the same flow on DuckDB.

The demo generator is seeded, so both engines hold the same raw rows; dbt builds the same
feature models on each. Everything computed from them must then agree: the training set (rows,
not the engine-specific fingerprint hash), the trained model and its holdout metrics, every
batch score, dbt's SQL scoring (equal to the batch scores), the profile's statistics (and those
match numpy on the fetched table) and the drift statistics. On Spark alone: dwml's tables
created by dbt's on-run-start hook match the Python definition; version numbers; rows written;
a second prediction batch under the same id replaces the first (DELETE rewritten for Spark).
"""

from __future__ import annotations

import json

import pytest
from sqlglot import exp
from typer.testing import CliRunner

from dwml_py import sql as sqlmod
from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from dwml_py.demo import DemoConfig, generate_demo
from dwml_py.project import Project
from dwml_py.warehouse import connect
from tests.engine_flow_checks import assert_flow_matches_duckdb

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

CONFIG = DemoConfig(customers=300, seed=7)
PARAMS = {"n_estimators": 30, "max_depth": 3}


def ok(*args) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output
    return json.loads(result.stdout)


def without_cost_budget(project: Project) -> Project:
    """The cost gate's calibration fits are CPU-bound, engine-independent and tested elsewhere."""
    copy = Project(project.project_dir, project.profiles_dir_option, project.target_option)
    config = json.loads(json.dumps(project.config))
    config.get("vars", {}).get("dwml", {}).pop("cost", None)
    copy.__dict__["config"] = config  # the cached_property's slot
    return copy


def _rows(warehouse, table: str, columns: list[str], schema: str = "dwml", where: exp.Expression | None = None):
    query = exp.select(*[sqlmod.column(c) for c in columns]).from_(sqlmod.table(schema, table))
    return warehouse.fetch_rows(query.where(where) if where is not None else query)


def run_engine(project: Project, drift_after: str) -> dict:
    """demo -> dbt build -> gates -> train twice -> deploy v1 -> predict -> drift -> SQL scoring -> profile."""
    from dwml_py.demo import build_demo
    from dwml_py.profiling import profile_relation
    from dwml_py.training_run import train

    generate_demo(project, CONFIG)
    assert build_demo(project).success
    out = {"check": ok("check", "customer_features"), "governance": ok("governance", "customer_features")}
    out["train1"] = train(without_cost_budget(project), "churn", params=PARAMS)
    out["train2"] = train(without_cost_budget(project), "churn", params=PARAMS)
    out["deploy"] = ok("deploy", "churn", "--version", "1")
    out["predict"] = ok("predict", "churn", "--batch-id", "cmp")
    out["drift"] = ok("drift", "churn", "--after", drift_after)
    assert run_dbt(project, ["run", "--select", "churn_scores"]).success  # SQL scoring, compiled at deploy
    schema = project.profile.settings.get("schema", "main")
    with connect(project) as warehouse:
        out["profile"] = profile_relation(warehouse, schema, "customer_features",
                                          entity_key=["customer_id", "snapshot_date"], exact=True)
        out["features"] = warehouse.fetch_arrow(sqlmod.select_all(sqlmod.table(schema, "customer_features")))
        out["scores"] = {(r["entity_key"], str(r["snapshot_at"])[:10]): r["score"] for r in _rows(
            warehouse, "predictions", ["entity_key", "snapshot_at", "score"],
            where=sqlmod.column("batch_id").eq(sqlmod.literal("cmp")))}
        out["sql_scores"] = {(str(r["customer_id"]), str(r["snapshot_date"])[:10]): r["score"] for r in _rows(
            warehouse, "churn_scores", ["customer_id", "snapshot_date", "score"], schema=schema)}
        out["versions"] = sorted(r["version"] for r in _rows(
            warehouse, "model_versions", ["version"], where=sqlmod.column("model_name").eq(sqlmod.literal("churn"))))
        out["drift_rows"] = len(_rows(warehouse, "drift_metrics", ["feature"], where=sqlmod.column("drift_run_id").eq(
            sqlmod.literal(out["drift"]["drift_run_id"]))))
        out["prediction_rows"] = len(_rows(warehouse, "predictions", ["batch_id"]))
        out["logged"] = {(r["entity_key"], str(r["snapshot_at"])[:10]): r["score"] for r in _rows(
            warehouse, "predictions", ["entity_key", "snapshot_at", "score"],
            where=sqlmod.column("source").eq(sqlmod.literal("sql")))}
        out["runs"] = {r["run_id"]: r["status"] for r in _rows(warehouse, "runs", ["run_id", "status"])}
    return out


def test_the_flow_on_spark_matches_duckdb(project, spark_home, monkeypatch, tmp_path):
    from dwml_py.demo.generator import shift_start
    from dwml_py.tables import DWML_SCHEMA, TABLES, ensure_tables

    drift_after = shift_start(CONFIG).isoformat()
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "duckdb_target"))
    duck = run_engine(project, drift_after)

    monkeypatch.setenv("DWML_SPARK_WAREHOUSE", str(spark_home))
    monkeypatch.setenv("DBT_TARGET", "spark")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "spark_target"))
    spark_project = Project.locate(project.project_dir)

    # -- dwml's tables from the dbt side first: the on-run-start hook (spark__dwml_ensure_table) ----
    assert run_dbt(spark_project, ["run", "-s", "tag:dwml"]).success
    with connect(spark_project) as warehouse:
        dbt_made = {name: warehouse.columns(DWML_SCHEMA, name) for name in TABLES}
        assert all(dbt_made.values()), [n for n, cols in dbt_made.items() if not cols]
        assert ensure_tables(warehouse) == {}  # nothing for Python to add
        ensure_tables(warehouse, schema="dwml_python_made")
        for name in TABLES:  # the same column names and types from both sides
            assert warehouse.columns("dwml_python_made", name) == dbt_made[name], name

    sp = run_engine(spark_project, drift_after)

    # -- gates ---------------------------------------------------------------------------------------
    for gate in ("check", "governance"):
        assert sp[gate]["passed"] is True and duck[gate]["passed"] is True, sp[gate]

    assert_flow_matches_duckdb(sp, duck, "spark-xxhash64-sum64")
    assert set(sp["runs"].values()) == {"finished"} and len(sp["runs"]) == 2  # UPDATE rewritten for Spark
    assert sp["deploy"]["sql_scoring"]["available"] is True

    # -- the same batch id again: its rows are replaced, not added (DELETE rewritten for Spark) ------
    again = ok("predict", "churn", "--batch-id", "cmp")
    assert again["replaced_rows"] == again["rows"] == sp["predict"]["rows"]
    with connect(spark_project) as warehouse:
        assert len(_rows(warehouse, "predictions", ["batch_id"])) == sp["prediction_rows"]
        assert not [t for t in warehouse.fetch_rows(f"SHOW TABLES IN {DWML_SCHEMA}")
                    if t["tableName"].startswith(("_dwml_rewrite", "_predictions_staging"))]  # nothing left behind
