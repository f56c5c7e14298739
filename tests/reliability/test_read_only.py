"""Read-only is a property the tool registry enforces, and every change an agent makes is audited
(issue 18, point 2).

`dwml mcp --read-only` used to let `list_runs {"mark_stale": true, "stale_hours": 0}` mark a live
run failed, with no audit row. Now each tool declares whether it writes and each read-only tool
the arguments that make it write; a read-only call refuses both, and runs with the warehouse
opened read-only and dbt and file writes refused. The test below calls every registered tool and
every writing argument in a read-only session and checks, byte for byte, that the warehouse file,
the project, dbt's target and log folders and the artifacts are as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from tests.reliability.helpers import ok, sql_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def fingerprint(*folders: Path) -> dict[str, str]:
    """sha256 of every file under the folders (a DuckDB file is one of them)."""
    found = {}
    for folder in folders:
        files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        for file in files:
            found[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def example_arguments(run_id: str) -> dict[str, dict]:
    """A realistic call of every tool: the reference pages' examples (dwml_py.tools.examples), with
    the run ids and dates they learnt during their run replaced by this demo's."""
    from dwml_py.tools.examples import PLAN, Ref

    def value(v):
        if isinstance(v, Ref):
            return {"holdout_start": "2024-01-01", "shift_start": "2024-01-01"}.get(v.key, run_id if "run" in v.key
                                                                                   else "rollback drill")
        return [value(x) for x in v] if isinstance(v, list) else v

    return {step.tool: {k: value(v) for k, v in step.args.items()} for step in PLAN}


def test_a_read_only_session_changes_nothing(demo, project_copy):
    from dwml_py.call_context import CallContext
    from dwml_py.errors import DwmlError, ReadOnlyError
    from dwml_py.tools.registry import load_tools

    path = demo["DWML_DUCKDB_PATH"]
    live = ok("runs", "create", "live-experiment")["run_id"]  # a run whose process is still working
    run_id = sql_rows(path, "select run_id from dwml.runs where status = 'finished' limit 1")[0][0]
    watched = [path, project_copy.project_dir, demo["DBT_TARGET_PATH"], demo["DBT_LOG_PATH"], demo["DWML_ARTIFACT_DIR"]]
    before = fingerprint(*watched)
    tools, arguments = load_tools(), example_arguments(run_id)
    assert set(arguments) == set(tools.names()), "every tool needs an example call"
    read_only = CallContext(read_only=True, agent=True)

    refused, answered = [], []
    for spec in tools:
        args = arguments[spec.name]
        if not spec.read_only:
            with pytest.raises(ReadOnlyError, match="changes things"):
                spec.invoke(project_copy, args, context=read_only)
            refused.append(spec.name)
            continue
        for param in (p for p in spec.params if p.writes):
            with pytest.raises(ReadOnlyError, match=f"{param.name}=True would change things"):
                spec.invoke(project_copy, {**args, param.name: True, **({"stale_hours": 0} if param.name ==
                                                                       "mark_stale" else {})}, context=read_only)
            refused.append(f"{spec.name}.{param.name}")
        try:
            spec.invoke(project_copy, args, context=read_only)
        except ReadOnlyError as exc:
            pytest.fail(f"{spec.name} is declared read-only but tried to write: {exc.message}")
        except DwmlError:
            pass  # e.g. no manifest: it still only read
        answered.append(spec.name)

    assert {"train_model", "deploy_model", "predict", "log_metrics", "create_report", "write_exposures",
            "list_runs.mark_stale", "search_catalog.refresh"} <= set(refused)
    assert {"list_runs", "get_ml_status", "search_catalog", "explain_model"} <= set(answered)

    # The same over MCP: a read-only server offers no writing tool or argument and refuses both.
    mcp = _mcp_session(project_copy.project_dir, [("list_runs", {"mark_stale": True, "stale_hours": 0}),
                                                  ("get_feature_stats", {"model": "customer_features"}),
                                                  ("list_runs", {"limit": 5})])
    offered, (mark, stats, listed) = mcp
    assert "mark_stale" not in offered["list_runs"] and "get_feature_stats" not in offered
    assert mark.is_error and "read-only" in mark.content[0].text
    assert stats.is_error and "read-only" in stats.content[0].text
    assert not listed.is_error and any(r["run_id"] == live for r in json.loads(listed.content[0].text)["runs"])

    assert fingerprint(*watched) == before
    assert sql_rows(path, f"select status from dwml.runs where run_id = '{live}'", read_only=True) == [("running",)]


def _mcp_session(project_dir: Path, calls: list[tuple[str, dict]]):
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "dwml_py.cli", "mcp", "--read-only",
                                                                 "--project-dir", str(project_dir)],
                                   env={**os.environ}, cwd=str(project_dir))

    async def session():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                listed = await client.list_tools()
                results = [await client.call_tool(name, args) for name, args in calls]
                return {t.name: t.input_schema["properties"] for t in listed.tools}, results

    return anyio.run(session)


def test_every_change_an_agent_makes_is_audited(demo, project_copy, monkeypatch):
    """An agent's writing call leaves a `tool.<name>` row with its arguments and outcome; a call
    refused for bad input changed nothing and leaves none."""
    from dwml_py.call_context import CallContext
    from dwml_py.errors import InputError
    from dwml_py.tools.registry import load_tools

    path = demo["DWML_DUCKDB_PATH"]
    monkeypatch.setenv("DWML_ACTOR", "agent:test")
    live = ok("runs", "create", "live-experiment")["run_id"]
    tools, agent = load_tools(), CallContext(agent=True)
    marked = tools["list_runs"].invoke(project_copy, {"mark_stale": True, "stale_hours": 0}, context=agent)
    assert live in marked["marked_stale"]
    with pytest.raises(InputError):
        tools["predict"].invoke(project_copy, {"name": "churn", "batch_id": ""}, context=agent)
    tools["list_runs"].invoke(project_copy, {"limit": 3}, context=agent)  # reads: no row

    rows = sql_rows(path, "select actor, action, decision, details from dwml.audit_log "
                          "where action like 'tool.%' order by occurred_at")
    assert [(a, act, d) for a, act, d, _ in rows] == [("agent:test", "tool.list_runs", "done")]
    assert json.loads(rows[0][3])["arguments"]["mark_stale"] is True
