"""The agent server on the demo: a real MCP client session from the SDK, over stdio, calls the
tools an agent would (search, suggest, train, deploy, drift, status, experiment tracking) and
the results and the rows they write are checked; changes are audited as the agent.

The demo warehouse (300 customers) is built once for the module; the tests run in file order
(the flow test trains and deploys; the later one does not rely on it)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import duckdb
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
pytestmark = [pytest.mark.integration, pytest.mark.slow]

TARGET = "customer_labels.churned_30d"


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    """Environment of a demo warehouse built once: the conftest isolation, at module scope."""
    from dwml_py.catalog import Catalog
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.demo import DemoConfig, generate_demo
    from dwml_py.project import Project

    base = tmp_path_factory.mktemp("mcp_demo")
    env = {"DWML_DUCKDB_PATH": str(base / "demo.duckdb"), "DBT_TARGET_PATH": str(base / "dbt_target"),
           "DBT_LOG_PATH": str(base / "dbt_logs"), "DWML_ARTIFACT_DIR": str(base / "artifacts"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        for key in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "DBT_TARGET", "DWML_ACTOR"):
            mp.delenv(key, raising=False)
        mp.chdir(DEMO_DIR)
        project = Project.locate(DEMO_DIR)
        generate_demo(project, DemoConfig(customers=300, seed=5))
        build = run_dbt(project, ["build"])
        assert build.success, build.to_dict()
        Catalog.load(project, refresh=True)  # catalog.json: column types and lineage for suggest_features
    return env


@pytest.fixture
def demo(demo_env, monkeypatch):
    for key, value in demo_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DWML_ACTOR", raising=False)  # the server acts as agent:mcp
    return demo_env


def _server(*extra) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "dwml_py.cli", "mcp", "--project-dir", str(DEMO_DIR), *extra],
                                 env={**os.environ}, cwd=str(DEMO_DIR))


def _session(steps):
    """Run `steps(session)` (an async function) in one server session; returns what it returns."""

    async def main():
        async with stdio_client(_server()) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await steps(session)

    return anyio.run(main)


def _ok(result) -> dict:
    assert not result.is_error, result.content[0].text
    data = json.loads(result.content[0].text)
    assert result.structured_content == data
    return data


def _rows(env, sql: str) -> list[tuple]:
    con = duckdb.connect(env["DWML_DUCKDB_PATH"], read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_agent_flow_search_suggest_train_deploy_drift_status(demo):
    from dwml_py.demo.generator import SHIFTED_FEATURES, shift_start
    from dwml_py.demo import DemoConfig
    from dwml_py.tools.registry import load_tools

    after = shift_start(DemoConfig(customers=300, seed=5)).isoformat()

    async def steps(session):
        listed = await session.list_tools()
        calls = [
            ("search_catalog", {"term": "churn", "limit": 5}),
            ("suggest_features", {"target_column": TARGET, "limit": 5, "sample_size": 2000}),
            ("train_model", {"name": "churn", "param": ["n_estimators=20", "max_depth=3"]}),
            ("deploy_model", {"name": "churn", "version": 1, "reason": "first model"}),
            ("detect_model_drift", {"name": "churn", "after": after}),
            ("get_ml_status", {}),
        ]
        return listed.tools, [await session.call_tool(name, args) for name, args in calls]

    tools, results = _session(steps)
    assert {t.name for t in tools} == set(load_tools().names())
    described = {t.name: t for t in tools}
    assert described["get_ml_status"].annotations.read_only_hint is True
    assert described["log_metrics"].annotations.read_only_hint is False
    assert described["log_metrics"].input_schema["required"] == ["run_id"]
    search, suggest, train, deploy, drift, status = (_ok(r) for r in results)

    assert search["count"] == len(search["hits"]) > 0
    assert any("churn" in (h["name"] + (h["column"] or "")).lower() for h in search["hits"])

    assert suggest["entity"] == "customer_id" and 0 < len(suggest["candidates"]) <= 5
    scores = [c["score"] for c in suggest["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert TARGET not in {c["ref"] for c in suggest["candidates"]}
    excluded = {e["ref"]: {f["flag"] for f in e["flags"]} for e in suggest["excluded"]}
    assert "LEAKAGE" in excluded["customer_labels.revenue_next_90d"]

    assert train["model_name"] == "churn" and train["version"] == 1 and train["status"] == "finished"
    assert {g: r["decision"] for g, r in train["gates"].items()} == {
        "quality": "pass", "governance": "pass", "cost": "pass"}
    assert 0.5 <= train["metrics"]["roc_auc"] <= 1.0

    assert deploy["passed"] is True and deploy["changed"] is True and deploy["alias"] == "production"
    assert deploy["version"] == 1 and deploy["previous_version"] is None and deploy["reference_rows"] > 0

    assert drift["version"] == 1 and drift["window"]["after"] == after
    by_feature = {f["feature"]: f for f in drift["features"]}
    shifted = [f for f in SHIFTED_FEATURES if f in by_feature]
    assert shifted and any(by_feature[f]["drifted"] for f in shifted), {f: by_feature[f] for f in shifted}

    # what the calls wrote, read back after the server closed the warehouse
    aliases = _rows(demo, "select alias, version, set_by, reason from dwml.model_aliases where model_name = 'churn'")
    assert aliases == [("production", 1, "agent:mcp", "first model")]
    drift_rows = _rows(demo, "select count(*), count(distinct feature) from dwml.drift_metrics "
                             f"where drift_run_id = '{drift['drift_run_id']}'")
    expected = sum(len(f["statistics"]) for f in drift["features"]) + 1 + (
        len(drift["score"]["statistics"]) if drift["score"] else 0)
    assert drift_rows == [(expected, len(drift["features"]) + 1 + (1 if drift["score"] else 0))]
    deploy_events = _rows(demo, "select actor, decision, object_name from dwml.audit_log "
                                f"where event_id = '{deploy['audit_event_id']}'")
    assert deploy_events == [("agent:mcp", "done", "churn")]
    gate_actors = _rows(demo, "select distinct actor from dwml.audit_log where action like 'gate.%'")
    assert gate_actors == [("agent:mcp",)]
    [(created_by,)] = _rows(demo, f"select created_by from dwml.runs where run_id = '{train['run_id']}'")
    assert created_by == "agent:mcp"

    # the overview sees all of it
    [churn] = [m for m in status["models"] if m["model_name"] == "churn"]
    assert churn["versions"]["count"] == 1 and churn["versions"]["latest"] == 1
    assert churn["aliases"]["production"]["version"] == 1 and churn["aliases"]["production"]["set_by"] == "agent:mcp"
    assert churn["last_training"]["run_id"] == train["run_id"] and churn["last_training"]["registered_version"] == 1
    assert churn["last_training"]["holdout_metric"] == {"name": "roc_auc", "value": train["metrics"]["roc_auc"]}
    assert churn["last_training"]["gates"] == {"quality": "pass", "governance": "pass", "cost": "pass"}
    assert churn["last_drift"]["drift_run_id"] == drift["drift_run_id"]
    assert churn["last_drift"]["dataset_drift"] == drift["dataset"]["is_drift"]
    assert churn["last_drift"]["drifted_features"] == sorted(f["feature"] for f in drift["features"] if f["drifted"])
    assert churn["last_predictions"] is None and churn["last_performance"] is None


def test_experiment_round_trip_errors_with_hints_and_audit(demo):
    async def steps(session):
        created = _ok(await session.call_tool("create_experiment", {
            "experiment": "agent-exp", "model_name": "churn", "params": ["max_depth=3"]}))
        run_id = created["run_id"]
        return created, [await session.call_tool(name, args) for name, args in [
            ("log_metrics", {"run_id": run_id, "metrics": ["roc_auc=0.71"], "split": "holdout", "step": 1}),
            ("log_metrics", {"run_id": run_id, "metrics": ["roc_auc=0.74"], "split": "holdout", "step": 2,
                             "finish": True}),
            ("log_metrics", {"run_id": run_id[:-2] + "zz", "metrics": ["x=1"]}),  # an unknown run
            ("log_metrics", {"run_id": run_id, "metrics": "roc_auc=0.7"}),  # not a list
            ("get_ml_status", {"name": "chrun"}),
            ("deploy_model", {"name": "churn", "version": 7}),
        ]]

    created, results = _session(steps)
    run_id = created["run_id"]
    assert created["status"] == "running" and created["created_by"] == "agent:mcp"
    first, finished = _ok(results[0]), _ok(results[1])
    assert first["status"] == "running" and first["metrics"] == {"holdout.roc_auc": 0.71}
    assert finished["status"] == "finished" and finished["metrics"] == {"holdout.roc_auc": 0.74}
    assert finished["params"] == {"max_depth": 3} and finished["metric_rows"] == 2

    unknown, not_a_list, no_model, no_version = results[2:]
    assert unknown.is_error and "No run with id" in unknown.content[0].text
    assert f"Hint: did you mean '{run_id}'" in unknown.content[0].text
    assert not_a_list.is_error and "'metrics' must be a array" in not_a_list.content[0].text
    assert "Hint: metric NAME=NUMBER" in not_a_list.content[0].text
    assert no_model.is_error and "Hint: did you mean 'churn'" in no_model.content[0].text
    assert no_version.is_error and "Hint:" in no_version.content[0].text  # no version 7 (or no churn yet)

    metrics = _rows(demo, f"select metric, value, split, step from dwml.run_metrics where run_id = '{run_id}' "
                          "order by step")
    assert metrics == [("roc_auc", 0.71, "holdout", 1), ("roc_auc", 0.74, "holdout", 2)]
    audit = _rows(demo, "select action, actor, decision from dwml.audit_log "
                        f"where object_name = '{run_id}' order by occurred_at")
    assert audit == [("run.create", "agent:mcp", "done"), ("run.finish", "agent:mcp", "done")]
