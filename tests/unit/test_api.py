"""The Python API is derived from the registry: same names, same parameters, same results."""

import inspect

import pytest

from dwml_py import api
from dwml_py.errors import InputError, NotFoundError
from dwml_py.tools.registry import load_tools


def test_every_tool_is_a_function_with_its_parameters():
    for spec in load_tools():
        function = getattr(api, spec.name)
        params = inspect.signature(function).parameters
        for p in spec.params:
            assert p.name in params
        assert {"project_dir", "profiles_dir", "target"} <= set(params)
        assert spec.name in dir(api)


def test_unknown_function():
    with pytest.raises(AttributeError):
        api.no_such_tool


def test_call_validates_like_the_cli(demo_dir):
    with pytest.raises(InputError, match="must be a integer"):
        api.search_catalog("x", limit="many", project_dir=str(demo_dir))
    with pytest.raises(NotFoundError):
        api.call("no_such_tool")
