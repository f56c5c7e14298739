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
        limit: Annotated[int, Param("most hits")] = 5,
        kind: Annotated[Optional[Literal["model", "source"]], Param("only this kind")] = None,
        tags: Annotated[Optional[list[str]], Param("tags to require")] = None,
        exact: Annotated[bool, Param("exact match only")] = False,
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
    assert props["term"] == {"type": "string", "description": "text to look for"}
    assert props["limit"] == {"type": "integer", "description": "most hits", "default": 5}
    assert props["kind"]["enum"] == ["model", "source"]
    assert props["tags"]["type"] == "array" and props["tags"]["items"] == {"type": "string"}
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
