"""The main job end to end on the embedded DuckDB default: real data generation, real
`dbt build`, real tests; and the planted defects that must make it fail."""

import json

import duckdb
import pytest
from typer.testing import CliRunner

from dwml_py.cli import app
from dwml_py.dbt_runner import run_dbt
from dwml_py.tables import TABLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = ["--customers", "300", "--seed", "7"]


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_demo_run_generates_builds_and_tests(duckdb_path):
    result = invoke("demo", "run", *SMALL, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    build = next(s for s in payload["steps"] if s["step"] == "dbt build")
    assert build["ok"] and build["counts"].get("pass", 0) > 20 and not build["failed"]
    assert "error" not in build["counts"] and "fail" not in build["counts"]

    con = duckdb.connect(str(duckdb_path), read_only=True)
    for name, rows in payload["rows"].items():
        assert con.sql(f'select count(*) from raw."{name}"').fetchall()[0][0] == rows
    features = con.sql("select count(*), count(distinct customer_id), count(distinct snapshot_date) "
                       "from main.customer_features").fetchall()[0]
    assert features[0] > 1000 and features[1] > 100 and features[2] >= 18
    labels = con.sql("select avg(churned_30d) from main.customer_labels").fetchall()[0][0]
    assert 0.0 < labels < 0.5, "churn must be a real but minority outcome"
    dwml_tables = {r[0] for r in con.sql("select table_name from information_schema.tables "
                                         "where table_schema = 'dwml'").fetchall()}
    assert set(TABLES) <= dwml_tables

    # the demo ends with predictions built by `dbt run` of its scoring model, equal to the batch ones
    assert [s["step"] for s in payload["steps"]][-3:] == ["deploy", "predict", "dbt scoring"]
    deployed, batch, sql = payload["steps"][-3:]
    assert deployed["sql_scoring"]["available"] and sql["ok"] and sql["relation"] == "main.churn_scores"
    assert sql["rows"] == batch["rows"] == features[0] and sql["max_abs_diff_vs_batch"] < 1e-6
    assert con.sql("select count(*), count(distinct version), min(score) >= 0, max(score) <= 1 "
                   "from main.churn_scores").fetchall()[0] == (features[0], 1, True, True)
    assert "churn_scores" not in {n["name"] for n in build["failed"]}


def test_demo_run_reports_each_step_for_people():
    result = invoke("demo", "run", *SMALL)
    assert result.exit_code == 0, result.output
    assert "[1] Generating the demo warehouse" in result.output
    assert "[2] Building and testing the demo models with dbt" in result.output
    assert "done" in result.output and "Demo complete" in result.output
    assert "Scoring in the warehouse with dbt (dbt run --select churn_scores)" in result.output


def test_injected_defects_make_dbt_build_fail(duckdb_path):
    result = invoke("demo", "run", *SMALL, "--inject-defects")
    assert result.exit_code == 2, result.output  # a gate refused: exit code 2
    assert "dbt build failed" in result.output
    assert "Traceback" not in result.output
    # the planted defects are what failed: duplicate keys and a null spike
    assert "unique" in result.output
    assert "not_null" in result.output


def test_dbt_creates_and_migrates_dwml_tables_without_losing_rows(project, duckdb_path):
    con = duckdb.connect(str(duckdb_path))
    con.sql("create schema dwml")
    con.sql("create table dwml.runs (run_id varchar, status varchar, started_at timestamp)")
    con.sql("insert into dwml.runs values ('old-run', 'finished', timestamp '2025-06-01 12:00:00')")
    con.close()

    run = run_dbt(project, ["run", "--select", "tag:dwml"])
    assert run.success, run.to_dict()

    con = duckdb.connect(str(duckdb_path), read_only=True)
    columns = [r[0] for r in con.sql("select column_name from information_schema.columns where table_schema='dwml' "
                                     "and table_name='runs' order by ordinal_position").fetchall()]
    assert set(TABLES["runs"].column_names()) <= set(columns)
    assert con.sql("select run_id, status, git_sha from main.dwml_runs").fetchall() == [("old-run", "finished", None)]
    assert con.sql("select count(*) from main.dwml_audit_log").fetchall()[0][0] == 0
