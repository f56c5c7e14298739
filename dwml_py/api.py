"""The Python API: every registered tool as a function, derived from the registry.

    >>> from dwml_py import api
    >>> result = api.search_catalog("churn", project_dir=".")      # doctest: +SKIP
    >>> result["hits"][0]["name"]                                    # doctest: +SKIP

Each function takes the tool's parameters plus the connection options every CLI command has
(`project_dir`, `profiles_dir`, `target`) and returns the same dict `--json` prints.
"""

from __future__ import annotations

import inspect

from dwml_py.tools.registry import load_tools

_CONNECTION = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None")
    for name in ("project_dir", "profiles_dir", "target")
]


def call(tool: str, *, project_dir=None, profiles_dir=None, target=None, **arguments) -> dict:
    """Call a tool by name with keyword arguments (validated against its schema)."""
    from dwml_py.project import Project

    spec = load_tools()[tool]
    return spec.call(Project.locate(project_dir, profiles_dir, target), **arguments)


def _function(spec):
    def tool_function(*args, project_dir=None, profiles_dir=None, target=None, **kwargs):
        names = [p.name for p in spec.params]
        if len(args) > len(names):
            raise TypeError(f"{spec.name}() takes at most {len(names)} positional arguments")
        kwargs.update(zip(names, args))
        return call(spec.name, project_dir=project_dir, profiles_dir=profiles_dir, target=target, **kwargs)

    params = [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD if p.required
                                else inspect.Parameter.KEYWORD_ONLY,
                                default=inspect.Parameter.empty if p.required else p.default,
                                annotation=p.annotation)
              for p in spec.params]
    required = [p for p in params if p.default is inspect.Parameter.empty]
    optional = [p for p in params if p.default is not inspect.Parameter.empty]
    tool_function.__signature__ = inspect.Signature(required + optional + _CONNECTION)
    tool_function.__name__ = tool_function.__qualname__ = spec.name
    tool_function.__doc__ = spec.func.__doc__
    return tool_function


def __getattr__(name: str):
    tools = load_tools()
    if name in tools.names():
        return _function(tools[name])
    raise AttributeError(f"module 'dwml_py.api' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + load_tools().names())
