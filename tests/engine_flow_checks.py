"""The comparison of one demo flow on another engine (`other`) with the same flow on DuckDB:
training set, split, metrics, batch and dbt SQL scores, profile and drift must agree. Shared by
tests/postgres/test_postgres_flow.py and tests/spark/test_spark_flow.py, which run the same flow
(`run_flow`: a dict of step results) on DuckDB and on their engine and add their engine's own checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sqlglot import exp
from typer.testing import CliRunner

from dwml_py import sql as sqlmod
from dwml_py.demo import DemoConfig
from dwml_py.project import Project

CONFIG = DemoConfig(customers=300, seed=7)
PARAMS = {"n_estimators": 30, "max_depth": 3}

PROFILED = ["tenure_days", "monthly_price", "minutes_30d", "avg_session_minutes_30d", "age_years", "plan_code"]


def ok(*args) -> dict:
    from dwml_py.cli import app

    result = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output
    return json.loads(result.stdout)


def without_cost_budget(project: Project) -> Project:
    """The project without `vars: dwml: cost:`: the cost gate's calibration fits are CPU-bound,
    engine-independent and tested elsewhere."""
    copy = Project(project.project_dir, project.profiles_dir_option, project.target_option)
    config = json.loads(json.dumps(project.config))
    config.get("vars", {}).get("dwml", {}).pop("cost", None)
    copy.__dict__["config"] = config  # the cached_property's slot
    return copy


def table_rows(warehouse, table: str, columns: list[str], schema: str = "dwml",
               where: exp.Expression | None = None) -> list[dict]:
    query = exp.select(*[sqlmod.column(c) for c in columns]).from_(sqlmod.table(schema, table))
    return warehouse.fetch_rows(query.where(where) if where is not None else query)


def run_flow(project: Project, drift_after: str, cost_gate: bool = False) -> dict:
    """demo -> dbt build -> gates -> train twice -> deploy v1 -> predict -> drift -> SQL scoring -> profile,
    on whatever target `project` points at. `cost_gate` keeps the budget for the first training."""
    from dwml_py.demo import build_demo, generate_demo
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.profiling import profile_relation
    from dwml_py.training_run import train
    from dwml_py.warehouse import connect

    generate_demo(project, CONFIG)
    assert build_demo(project).success
    out = {"check": ok("check", "customer_features"), "governance": ok("governance", "customer_features")}
    out["train1"] = train(project if cost_gate else without_cost_budget(project), "churn", params=PARAMS)
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
        out["scores"] = {(r["entity_key"], str(r["snapshot_at"])[:10]): r["score"] for r in table_rows(
            warehouse, "predictions", ["entity_key", "snapshot_at", "score"],
            where=sqlmod.column("batch_id").eq(sqlmod.literal("cmp")))}
        out["sql_scores"] = {(str(r["customer_id"]), str(r["snapshot_date"])[:10]): r["score"] for r in table_rows(
            warehouse, "churn_scores", ["customer_id", "snapshot_date", "score"], schema=schema)}
        out["versions"] = sorted(r["version"] for r in table_rows(
            warehouse, "model_versions", ["version"], where=sqlmod.column("model_name").eq(sqlmod.literal("churn"))))
        out["drift_rows"] = len(table_rows(warehouse, "drift_metrics", ["feature"], where=sqlmod.column(
            "drift_run_id").eq(sqlmod.literal(out["drift"]["drift_run_id"]))))
        out["prediction_rows"] = len(table_rows(warehouse, "predictions", ["batch_id"]))
        out["logged"] = {(r["entity_key"], str(r["snapshot_at"])[:10]): r["score"] for r in table_rows(
            warehouse, "predictions", ["entity_key", "snapshot_at", "score"],
            where=sqlmod.column("source").eq(sqlmod.literal("sql")))}
        out["runs"] = {r["run_id"]: r["status"] for r in table_rows(warehouse, "runs", ["run_id", "status"])}
    return out


def assert_dwml_tables_from_dbt(project: Project) -> None:
    """dwml's tables made by dbt's on-run-start hook on an empty warehouse have the columns and
    types of the Python definition (ensure_tables then has nothing to add)."""
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.tables import DWML_SCHEMA, TABLES, ensure_tables
    from dwml_py.warehouse import connect

    assert run_dbt(project, ["run", "-s", "tag:dwml"]).success
    with connect(project) as warehouse:
        dbt_made = {name: warehouse.columns(DWML_SCHEMA, name) for name in TABLES}
        assert all(dbt_made.values()), [n for n, cols in dbt_made.items() if not cols]
        assert ensure_tables(warehouse) == {}  # nothing for Python to add
        ensure_tables(warehouse, schema="dwml_python_made")
        for name in TABLES:  # the same column names and types from both sides
            assert warehouse.columns("dwml_python_made", name) == dbt_made[name], name


def assert_flow_matches_duckdb(other: dict, duck: dict, fingerprint_method: str) -> None:
    # -- training: same training set, model and metrics; versions 1 and 2 ---------------------------
    fp_other, fp_duck = other["train1"]["data_fingerprint"], duck["train1"]["data_fingerprint"]
    assert fp_other["method"] == fingerprint_method and fp_duck["method"] == "duckdb-hash-sum64"
    assert fp_other["row_count"] == fp_duck["row_count"] > 500
    assert other["train2"]["data_fingerprint"] == fp_other  # same data, same fingerprint
    assert (other["train1"]["version"], other["train2"]["version"]) == (1, 2) and other["versions"] == [1, 2]
    assert other["train1"]["split"] == duck["train1"]["split"]
    for metric, value in duck["train1"]["metrics"].items():
        assert other["train1"]["metrics"][metric] == pytest.approx(value, abs=1e-9), metric

    # -- deploy and batch scoring: the same score for every row -------------------------------------
    assert other["deploy"]["version"] == 1 and other["deploy"]["passed"] is True
    assert other["predict"]["rows"] == duck["predict"]["rows"] == len(other["scores"])
    assert other["prediction_rows"] == 2 * len(other["scores"])  # the batch, and the dbt run's copy (below)
    assert other["scores"].keys() == duck["scores"].keys()
    assert max(abs(other["scores"][k] - duck["scores"][k]) for k in duck["scores"]) < 1e-9

    # -- scoring in SQL with dbt: the batch scores, on both engines ----------------------------------
    assert other["sql_scores"].keys() == other["scores"].keys() == duck["sql_scores"].keys()
    assert max(abs(other["sql_scores"][k] - other["scores"][k]) for k in other["scores"]) < 1e-6  # float32 splits
    assert max(abs(other["sql_scores"][k] - duck["sql_scores"][k]) for k in other["scores"]) < 1e-6
    # ... copied into dwml.predictions (source 'sql') by its post_hook, keyed as batch scoring keys them
    assert other["logged"] == other["sql_scores"] and duck["logged"] == duck["sql_scores"]

    # -- profile: equal on both engines, and equal to numpy on the rows ------------------------------
    p_other, p_duck = other["profile"], duck["profile"]
    assert p_other.row_count == p_duck.row_count == other["features"].num_rows
    assert p_other.duplicate_keys == p_duck.duplicate_keys == 0
    for name in PROFILED:
        a, b = p_other.column(name), p_duck.column(name)
        assert (a.kind, a.null_count, a.distinct_count) == (b.kind, b.null_count, b.distinct_count), name
        if a.kind != "numeric":
            assert a.top_values == b.top_values, name
            continue
        values = np.asarray(other["features"].column(name).to_pylist(), dtype=float)
        values = values[~np.isnan(values)]
        assert a.mean == pytest.approx(values.mean(), rel=1e-9) and b.mean == pytest.approx(a.mean, rel=1e-9)
        assert a.std == pytest.approx(values.std(ddof=1), rel=1e-9) and b.std == pytest.approx(a.std, rel=1e-9)
        for key, q in a.quantiles.items():
            expected = np.quantile(values, float(key))  # numpy's default: linear interpolation
            assert q == pytest.approx(expected, rel=1e-9, abs=1e-9), (name, key)
            assert b.quantiles[key] == pytest.approx(q, rel=1e-9, abs=1e-9), (name, key)

    # -- drift: the same statistics, and the rows written -------------------------------------------
    d_other, d_duck = other["drift"], duck["drift"]
    assert d_other["dataset"] == {**d_duck["dataset"]} and d_other["alert"] == d_duck["alert"]
    by_duck = {f["feature"]: f for f in d_duck["features"]}
    for feature in d_other["features"]:
        theirs = by_duck[feature["feature"]]
        assert feature["drifted"] == theirs["drifted"], feature["feature"]
        for stat, value in feature["statistics"].items():
            expected = theirs["statistics"][stat]
            assert (value is None and expected is None) or math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12), \
                (feature["feature"], stat)
    assert d_other["score"]["statistics"] == pytest.approx(d_duck["score"]["statistics"], rel=1e-9)
    assert other["drift_rows"] == duck["drift_rows"] > len(d_other["features"])
