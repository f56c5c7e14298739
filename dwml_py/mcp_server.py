"""`dwml mcp`: the tool registry served to agents over the Model Context Protocol (stdio).

The tools, their descriptions and JSON Schemas come from the registry, so the agent sees
what the CLI and the Python API offer, less the parameters meant for people only (such as
writing outside the project). A failing tool comes back as a tool error that carries the fix
hint; the server itself never goes down with it. Every call runs in an agent's CallContext
(dwml_py.call_context), so the registry refuses what an agent may not do, and each writing call
is recorded in dwml.audit_log as `tool.<name>`; calls run as actor `agent:mcp` (or DWML_ACTOR).

`--read-only` offers only the tools that change nothing, without their writing parameters
(e.g. `mark_stale`), and its calls are read-only all the way down: the warehouse is opened
read-only and dbt and file writes are refused. Results and errors are scrubbed of secrets from
profiles.yml (dwml_py.redaction).

Needs the optional extra: pip install 'dwml-dbt[mcp]'.
"""

from __future__ import annotations

import json
import os

from dwml_py.versions import __version__
from dwml_py.call_context import CallContext
from dwml_py.errors import ConfigError, DwmlError
from dwml_py.redaction import scrub, scrub_data


def _import_sdk():
    try:
        import mcp_types as types
        from mcp.server.lowlevel import Server
        from mcp.server.stdio import stdio_server
    except ImportError as exc:
        raise ConfigError("The MCP server needs the `mcp` package.",
                          hint="pip install 'dwml-dbt[mcp]'") from exc
    return types, Server, stdio_server


def tool_payload(spec) -> dict:
    """What an agent sees of a tool (also used by the tests and the docs)."""
    return {"name": spec.name, "description": spec.description, "input_schema": spec.json_schema(),
            "read_only": spec.read_only}


def build_server(project_options: dict, read_only: bool = False):
    """An MCP server for the registry; `project_options` are Project.locate's arguments."""
    import anyio

    from dwml_py.project import Project
    from dwml_py.tools.registry import load_tools

    types, Server, _ = _import_sdk()
    registry = load_tools()
    context = CallContext(read_only=read_only, agent=True)
    offered = [spec for spec in registry if spec.read_only or not read_only]

    def error(message: str):
        return types.CallToolResult(content=[types.TextContent(type="text", text=scrub(message))], is_error=True)

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[
            types.Tool(name=spec.name, description=spec.description, input_schema=spec.json_schema(context),
                       annotations=types.ToolAnnotations(read_only_hint=spec.read_only))
            for spec in offered
        ])

    def run_tool(spec, arguments: dict) -> dict:
        project = Project.locate(**project_options)
        return spec.invoke(project, arguments, context=context)

    async def call_tool(ctx, params):
        name, arguments = params.name, dict(params.arguments or {})
        spec = next((s for s in offered if s.name == name), None)
        if spec is None:
            if read_only and any(s.name == name for s in registry):
                return error(f"Tool {name!r} changes things and this server is read-only.\n"
                             "Hint: start the server without --read-only to use it.")
            return error(f"No tool named {name!r}.\nHint: list the tools first; known: "
                         + ", ".join(s.name for s in offered))
        try:
            result = await anyio.to_thread.run_sync(run_tool, spec, arguments)
        except DwmlError as exc:
            return error(exc.message + (f"\nHint: {exc.hint}" if exc.hint else ""))
        except Exception as exc:  # an agent gets a tool error, never a crashed server
            return error(f"unexpected {type(exc).__name__}: {exc}\n"
                         "Hint: this is a dwml bug; run the same call with the CLI and --debug for the traceback.")
        text = json.dumps(scrub_data(result), default=str)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=json.loads(text))

    return Server("dwml", version=__version__, instructions="dwml: warehouse-native ML tools for a dbt project.",
                  on_list_tools=list_tools, on_call_tool=call_tool)


def serve_stdio(project_options: dict, read_only: bool = False) -> None:
    """Run the server on stdin/stdout until the client disconnects."""
    import anyio

    _, _, stdio_server = _import_sdk()
    os.environ.setdefault("DWML_ACTOR", "agent:mcp")
    server = build_server(project_options, read_only=read_only)

    async def main():
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)
