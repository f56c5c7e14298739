"""`dwml mcp` with a real MCP client session from the SDK, over stdio."""

import json
import os
import sys

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

pytestmark = [pytest.mark.integration]


def _server(demo_dir, *extra):
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "dwml_py.cli", "mcp", "--project-dir", str(demo_dir), *extra],
                                 env={**os.environ}, cwd=str(demo_dir))


async def _session_calls(params, calls):
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            results = [await session.call_tool(name, args) for name, args in calls]
            return listed.tools, results


def test_lists_registry_tools_and_returns_errors_with_hints(demo_dir):
    from dwml_py.tools.registry import load_tools

    tools, results = anyio.run(_session_calls, _server(demo_dir), [
        ("search_catalog", {"term": "x", "limit": "many"}),  # bad argument type
        ("no_such_tool", {}),
        ("catalog_lineage", {"column": "nodot"}),
    ])
    names = {t.name for t in tools}
    assert names == set(load_tools().names())
    search = next(t for t in tools if t.name == "search_catalog")
    assert search.input_schema["properties"]["term"]["type"] == "string"
    assert search.annotations.read_only_hint is True

    bad_type, unknown, bad_column = results
    assert bad_type.is_error and "'limit' must be a integer" in bad_type.content[0].text
    assert unknown.is_error and "No tool named 'no_such_tool'" in unknown.content[0].text
    assert bad_column.is_error and "Hint:" in bad_column.content[0].text


def test_read_only_mode_hides_tools_that_change_things(demo_dir):
    from dwml_py.tools.registry import load_tools

    tools, results = anyio.run(_session_calls, _server(demo_dir, "--read-only"),
                               [("get_feature_stats", {"model": "customer_features"})])
    offered = {t.name for t in tools}
    assert offered == {s.name for s in load_tools() if s.read_only}
    assert "get_feature_stats" not in offered
    assert results[0].is_error and "read-only" in results[0].content[0].text


@pytest.mark.slow
def test_calls_tools_on_the_demo(demo_dir, project):
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.demo import DemoConfig, generate_demo

    generate_demo(project, DemoConfig(customers=300, seed=5))
    assert run_dbt(project, ["build"]).success
    _, results = anyio.run(_session_calls, _server(demo_dir), [
        ("search_catalog", {"term": "email"}),
        ("catalog_lineage", {"column": "customer_features.age_years"}),
    ])
    search, lineage = results
    assert not search.is_error, search.content[0].text
    hits = json.loads(search.content[0].text)["hits"]
    assert any(h["column"] == "email" and h["pii"] for h in hits)
    assert search.structured_content["count"] == len(hits)
    assert json.loads(lineage.content[0].text)["derived_from_pii"] is True
