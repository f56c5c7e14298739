"""The tool registry: each of dwml's tools defined once, with typed parameters.

The CLI commands, the Python API and the agent server are all derived from these entries, so
they cannot drift apart. A tool is a plain function `func(project, **params) -> dict` whose
parameters are annotated with `Annotated[type, Param("help")]`; its result is JSON-serialisable.

>>> reg = Registry()
>>> @reg.tool("echo_term", cli=("echo",))
... def echo_term(project, term: Annotated[str, Param("what to echo", positional=True)]) -> dict:
...     '''Echo a term back.'''
...     return {"term": term}
>>> reg["echo_term"].json_schema()["properties"]["term"]
{'type': 'string', 'description': 'what to echo'}
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from dwml_py.errors import InputError, NotFoundError, did_you_mean

# Modules that define tools; importing them registers their tools in TOOLS.
TOOL_MODULES: tuple[str, ...] = (
    "dwml_py.tools.catalog_tools",
    "dwml_py.tools.train_tools",
    "dwml_py.tools.profile_tools",
    "dwml_py.tools.registry_tools",
    "dwml_py.tools.feature_tools",
    "dwml_py.tools.gate_tools",
    "dwml_py.tools.training_tools",
    "dwml_py.tools.deploy_tools",
    "dwml_py.tools.drift_tools",
    "dwml_py.tools.monitor_tools",
    "dwml_py.tools.status_tools",
    "dwml_py.tools.experiment_tools",
    "dwml_py.tools.report_tools",
)


@dataclass(frozen=True)
class Param:
    """Metadata of a tool parameter: its help text, and whether the CLI takes it positionally."""

    help: str
    positional: bool = False
    flag: str | None = None  # CLI flag when it differs from --param-name


@dataclass(frozen=True)
class ParamSpec:
    name: str
    annotation: Any
    help: str
    default: Any
    required: bool
    positional: bool
    flag: str | None

    def json_schema(self) -> dict:
        schema = _type_schema(self.annotation)
        schema["description"] = self.help
        if not self.required and self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass
class ToolSpec:
    name: str
    func: Callable[..., dict]
    description: str
    cli: tuple[str, ...]
    read_only: bool
    params: list[ParamSpec] = field(default_factory=list)

    def json_schema(self) -> dict:
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.params},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "command": "dwml " + " ".join(self.cli),
                "read_only": self.read_only, "parameters": self.json_schema()}

    def validate(self, arguments: dict) -> dict:
        """Check names and types of arguments (from JSON) and fill defaults; InputError names the problem."""
        known = {p.name: p for p in self.params}
        unknown = [k for k in arguments if k not in known]
        if unknown:
            raise InputError(f"Tool {self.name!r} has no parameter {unknown[0]!r}.",
                             hint=did_you_mean(unknown[0], known))
        values = {}
        for p in self.params:
            if p.name in arguments:
                values[p.name] = _check_type(self.name, p, arguments[p.name])
            elif p.required:
                raise InputError(f"Tool {self.name!r} needs the parameter {p.name!r} ({p.help}).",
                                 hint=f"pass {p.name}=...")
            else:
                values[p.name] = p.default
        return values

    def call(self, project, progress=None, **arguments) -> dict:
        """Validate the arguments and run the tool; `progress` reaches tools that report it."""
        values = self.validate(arguments)
        if progress is not None and self.reports_progress:
            values["progress"] = progress
        return self.func(project, **values)

    @property
    def reports_progress(self) -> bool:
        return "progress" in inspect.signature(self.func).parameters


class Registry:
    def __init__(self):
        self._tools: dict[str, ToolSpec] = {}

    def tool(self, name: str, cli: tuple[str, ...], read_only: bool = True):
        """Register a tool function under `name`, reachable as `dwml <cli...>`."""

        def decorator(func):
            if name in self._tools:
                raise ValueError(f"tool {name!r} is registered twice")
            self._tools[name] = ToolSpec(name=name, func=func, description=_description(func), cli=tuple(cli),
                                         read_only=read_only, params=_params(func))
            return func

        return decorator

    def __getitem__(self, name: str) -> ToolSpec:
        if name not in self._tools:
            raise NotFoundError(f"No tool named {name!r}.", hint=did_you_mean(name, self._tools))
        return self._tools[name]

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)


TOOLS = Registry()


def load_tools() -> Registry:
    """Import every tool module so that TOOLS is complete."""
    for module in TOOL_MODULES:
        importlib.import_module(module)
    return TOOLS


# -- helpers ------------------------------------------------------------------------------

def _description(func) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def _params(func) -> list[ParamSpec]:
    hints = typing.get_type_hints(func, include_extras=True)
    specs = []
    for i, p in enumerate(inspect.signature(func).parameters.values()):
        if i == 0 or p.name == "progress":  # the project; progress is the caller's display, not a parameter
            continue
        annotation = hints.get(p.name, str)
        meta = next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Param)), None)
        if meta is None:
            raise TypeError(f"{func.__name__}: parameter {p.name!r} needs Annotated[type, Param('help')]")
        base = typing.get_args(annotation)[0]
        required = p.default is inspect.Parameter.empty
        specs.append(ParamSpec(name=p.name, annotation=base, help=meta.help,
                               default=None if required else p.default, required=required,
                               positional=meta.positional, flag=meta.flag))
    return specs


def _unwrap_optional(annotation):
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _type_schema(annotation) -> dict:
    inner, _ = _unwrap_optional(annotation)
    origin = typing.get_origin(inner)
    if inner is bool:
        return {"type": "boolean"}
    if inner is int:
        return {"type": "integer"}
    if inner is float:
        return {"type": "number"}
    if inner is str:
        return {"type": "string"}
    if origin is Literal:
        return {"type": "string", "enum": list(typing.get_args(inner))}
    if origin in (list, tuple):
        args = typing.get_args(inner)
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if inner is dict or origin is dict:
        return {"type": "object"}
    raise TypeError(f"unsupported tool parameter type {inner!r}")


def _check_type(tool: str, param: ParamSpec, value):
    inner, optional = _unwrap_optional(param.annotation)
    if value is None:
        if optional or not param.required:
            return None
        raise InputError(f"Tool {tool!r}: {param.name!r} must not be null.", hint=param.help)
    schema = _type_schema(inner)
    expected = schema["type"]
    ok = {
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, (list, tuple)),
        "object": isinstance(value, dict),
    }[expected]
    if not ok:
        raise InputError(f"Tool {tool!r}: {param.name!r} must be a {expected}, got {type(value).__name__} {value!r}.",
                         hint=param.help)
    if "enum" in schema and value not in schema["enum"]:
        raise InputError(f"Tool {tool!r}: {param.name!r} must be one of {schema['enum']}, got {value!r}.",
                         hint=did_you_mean(str(value), schema["enum"]))
    if expected == "array":
        item_type = schema["items"].get("type")
        if item_type == "string" and not all(isinstance(v, str) for v in value):
            raise InputError(f"Tool {tool!r}: {param.name!r} must be a list of strings, got {value!r}.",
                             hint=param.help)
        return list(value)
    return value
