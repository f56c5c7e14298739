"""The tool registry: schemas from type hints, argument validation, and CLI commands derived
from the same entries."""

import doctest
import json
from typing import Annotated, Literal, Optional

import pytest
import typer
from typer.testing import CliRunner

from dwml_py.errors import InputError, NotFoundError
from dwml_py.tools import registry as registry_module
from dwml_py.tools.registry import Param, Registry


def make_registry():
    reg = Registry()

    @reg.tool("search_things", cli=("things", "search"))
    def search_things(
        project,
        term: Annotated[str, Param("text to look for", positional=True)],
        limit: Annotated[int, Param("most hits", minimum=1, maximum=100)] = 5,
        kind: Annotated[Optional[Literal["model", "source"]], Param("only this kind")] = None,
        tags: Annotated[Optional[list[str]], Param("tags to require")] = None,
        exact: Annotated[bool, Param("exact match only")] = False,
        refresh: Annotated[bool, Param("rebuild the index first", writes=True)] = False,
        note: Annotated[str | None, Param("free text", text=True)] = None,
        outside: Annotated[bool, Param("look outside the project", people_only=True)] = False,
    ) -> dict:
        """Search things by term.

        Longer text that is not part of the description."""
        return {"term": term, "limit": limit, "kind": kind, "tags": tags, "exact": exact,
                "project": str(project.project_dir)}

    @reg.tool("change_thing", cli=("change",), read_only=False)
    def change_thing(project, name: Annotated[str, Param("thing to change", positional=True)]) -> dict:
        """Change a thing."""
        if name == "bad":
            raise InputError("Thing 'bad' cannot change.", hint="pick another thing")
        return {"changed": name}

    return reg


def test_doctests():
    assert doctest.testmod(registry_module).failed == 0


def test_schema_from_type_hints():
    schema = make_registry()["search_things"].json_schema()
    assert schema["required"] == ["term"]
    props = schema["properties"]
    assert props["term"] == {"type": "string", "minLength": 1, "maxLength": 256,
                             "pattern": "^[^\\u0000-\\u001f\\u007f]*$", "description": "text to look for"}
    assert props["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "description": "most hits",
                              "default": 5}
    assert props["kind"]["enum"] == ["model", "source"]
    assert props["tags"]["type"] == "array" and props["tags"]["maxItems"] == 1000
    assert props["tags"]["items"]["type"] == "string" and props["tags"]["items"]["maxLength"] == 256
    assert props["note"]["maxLength"] == 4000 and "pattern" not in props["note"]
    assert props["exact"]["type"] == "boolean"


def test_description_is_the_docstrings_first_paragraph():
    assert make_registry()["search_things"].description == "Search things by term."


def test_validation_names_the_problem(project):
    tool = make_registry()["search_things"]
    assert tool.call(project, term="x")["limit"] == 5
    with pytest.raises(InputError, match="'limit' must be a integer"):
        tool.call(project, term="x", limit="many")
    with pytest.raises(InputError, match="needs the parameter 'term'"):
        tool.call(project)
    with pytest.raises(InputError) as err:
        tool.call(project, term="x", limt=3)
    assert "did you mean 'limit'" in err.value.hint
    with pytest.raises(InputError, match="must be one of"):
        tool.call(project, term="x", kind="seed")


def test_unknown_tool_suggests_a_name():
    with pytest.raises(NotFoundError) as err:
        make_registry()["search_thing"]
    assert "search_things" in err.value.hint


def test_duplicate_registration_is_refused():
    reg = make_registry()
    with pytest.raises(ValueError, match="registered twice"):
        reg.tool("change_thing", cli=("x",))(lambda project: {})


def test_cli_commands_are_derived_from_the_registry():
    from dwml_py.cli import register_tool_commands

    root = typer.Typer()

    @root.callback()
    def _root():
        pass

    register_tool_commands(make_registry(), root)
    runner = CliRunner()
    result = runner.invoke(root, ["things", "search", "churn", "--limit", "2", "--kind", "model",
                                  "--tags", "a", "--tags", "b", "--exact", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["term"] == "churn" and payload["limit"] == 2 and payload["kind"] == "model"
    assert payload["tags"] == ["a", "b"] and payload["exact"] is True

    # the registry's validation applies to the CLI too
    bad = runner.invoke(root, ["things", "search", "churn", "--kind", "seed"])
    assert bad.exit_code == 1
    assert "must be one of" in bad.output

    failed = runner.invoke(root, ["change", "bad"])
    assert failed.exit_code == 1
    assert "Thing 'bad' cannot change." in failed.output and "pick another thing" in failed.output


def test_limits_declared_once_are_enforced_for_every_caller(project):
    tool = make_registry()["search_things"]
    with pytest.raises(InputError, match="'limit' must be from 1 to 100, got 100000000000000000000"):
        tool.call(project, term="x", limit=10**20)
    with pytest.raises(InputError, match="'term' must not be empty"):
        tool.call(project, term="")
    with pytest.raises(InputError, match="'term' is 5,000 characters long; the limit is 256"):
        tool.call(project, term="x" * 5000)
    with pytest.raises(InputError, match="control character"):
        tool.call(project, term="a\x00b")
    with pytest.raises(InputError, match="'tags' takes at most 1,000 items"):
        tool.call(project, term="x", tags=["a"] * 1001)
    assert tool.call(project, term="x", note="two\nlines\tand a tab")["term"] == "x"  # free text may


def test_numbers_without_a_declared_range_do_not_register():
    reg = Registry()
    with pytest.raises(TypeError, match="needs Param\\(minimum=..., maximum=...\\)"):
        @reg.tool("unbounded", cli=("unbounded",))
        def unbounded(project, n: Annotated[int, Param("a number")] = 1) -> dict:
            return {}


def test_read_only_calls_refuse_writing_tools_and_arguments(project):
    from dwml_py.call_context import CallContext
    from dwml_py.errors import ReadOnlyError

    reg = make_registry()
    read_only = CallContext(read_only=True, agent=True)
    assert reg["search_things"].call(project, context=read_only, term="x")["term"] == "x"
    with pytest.raises(ReadOnlyError, match="refresh=True would change things"):
        reg["search_things"].call(project, context=read_only, term="x", refresh=True)
    with pytest.raises(ReadOnlyError, match="changes things"):
        reg["change_thing"].call(project, context=read_only, name="x")
    schema = reg["search_things"].json_schema(read_only)
    assert "refresh" not in schema["properties"] and "outside" not in schema["properties"]
    assert {"refresh", "outside"} <= set(reg["search_things"].json_schema()["properties"])


def test_people_only_arguments_are_refused_to_agents(project):
    from dwml_py.call_context import CallContext

    tool = make_registry()["search_things"]
    assert tool.call(project, term="x", outside=True)["term"] == "x"
    with pytest.raises(InputError, match="'outside' is not offered to agents"):
        tool.call(project, context=CallContext(agent=True), term="x", outside=True)


def test_registered_tools_declare_their_limits_and_writes():
    """The sweep: every parameter of every real tool is bounded, and the read-only tools name the
    arguments that make them write."""
    from dwml_py.tools.registry import load_tools

    tools = load_tools()
    for spec in tools:
        for p in spec.params:
            schema = p.json_schema()
            if schema["type"] in ("integer", "number"):
                assert schema["minimum"] is not None and schema["maximum"] is not None, (spec.name, p.name)
            if schema["type"] == "string" and "enum" not in schema:
                assert schema["minLength"] >= 1 and schema["maxLength"] <= 4000, (spec.name, p.name)
            if schema["type"] == "array":
                assert schema["maxItems"] <= 1000, (spec.name, p.name)
    writing = {(s.name, p.name) for s in tools if s.read_only for p in s.params if p.writes}
    assert writing == {("list_runs", "mark_stale"), ("search_catalog", "refresh"), ("show_catalog_node", "refresh"),
                       ("catalog_lineage", "refresh"), ("suggest_features", "refresh")}
    people_only = {(s.name, p.name) for s in tools for p in s.params if p.people_only}
    assert people_only == {("create_report", "allow_outside_project"), ("write_exposures", "allow_outside_project")}


def test_exit_status_2_comes_from_the_verdict_a_tool_declares():
    """A gate's refusal or a check's alarm ends the command with 2, by the field the tool declares;
    the same field in another tool's answer is just data."""
    from dwml_py.cli import register_tool_commands

    reg = Registry()

    @reg.tool("judge", cli=("judge",), verdict="passed")
    def judge(project, ok: Annotated[bool, Param("the verdict")] = True) -> dict:
        """Judge."""
        return {"passed": ok, "alert": True}

    @reg.tool("report", cli=("report",))
    def report(project) -> dict:
        """Report."""
        return {"passed": False, "alert": True}

    with pytest.raises(ValueError, match="verdict must be one of"):
        reg.tool("odd", cli=("odd",), verdict="failed")(report)
    root = typer.Typer()

    @root.callback()
    def _root():
        pass

    register_tool_commands(reg, root)
    runner = CliRunner()
    assert runner.invoke(root, ["judge", "--no-ok", "--json"]).exit_code == 2
    assert runner.invoke(root, ["judge", "--ok", "--json"]).exit_code == 0  # alert: true is not judge's verdict
    assert runner.invoke(root, ["report", "--json"]).exit_code == 0


def test_the_tools_that_answer_with_a_verdict_declare_it():
    """Every tool whose reference page shows a `passed` or `alert` field declares it as its verdict."""
    import re
    from pathlib import Path

    from dwml_py.tools.registry import load_tools

    pages = Path(__file__).resolve().parents[2] / "docs" / "tools"
    for spec in load_tools():
        page = (pages / f"{spec.name}.md").read_text()
        shown = {key for block in re.findall(r"```json\n(.*?)```", page, re.S)
                 for key in ("passed", "alert") if isinstance(parsed := _json_or_none(block), dict) and key in parsed}
        assert shown == ({spec.verdict} if spec.verdict and shown else set()), (spec.name, shown, spec.verdict)
    declared = sorted(spec.name for spec in load_tools() if spec.verdict)
    assert declared == ["check_data_quality", "check_governance", "create_feature_pipeline", "deploy_model",
                        "detect_model_drift", "evaluate_model", "monitor_models"]


def _json_or_none(text):
    try:
        return json.loads(text)
    except ValueError:
        return None
