"""The tool registry: each of dwml's tools defined once, with typed parameters.

The CLI commands, the Python API and the agent server are all derived from these entries, so
they cannot drift apart. A tool is a plain function `func(project, **params) -> dict` whose
parameters are annotated with `Annotated[type, Param("help")]`; its result is JSON-serialisable.

What a call may pass and do is declared here once and enforced for every interface:

- **Limits.** Every number declares its range (`minimum`, `maximum`; a tool without them does
  not register), every text its length (`min_length` 1: no empty strings; `max_length`
  NAME_MAX unless declared) and names hold no control characters; lists hold at most
  `max_items`. The JSON Schema publishes them, and `validate` refuses what breaks them.
- **Writes.** A tool is read-only or not (`read_only=`), and an argument of a read-only tool
  that makes it write declares `writes=True` (e.g. `mark_stale`, `refresh`). In a read-only
  call (`CallContext(read_only=True)`, `dwml mcp --read-only`) the registry refuses a writing
  tool or argument, and the call runs in that context, so the warehouse connection, dbt and
  file writes refuse too (dwml_py.call_context).
- **Callers.** An argument for people only (`people_only=True`, e.g. writing outside the project)
  is not offered to agents; a writing call by an agent is recorded in dwml.audit_log as
  `tool.<name>` with its arguments and outcome.

>>> reg = Registry()
>>> @reg.tool("echo_term", cli=("echo",))
... def echo_term(project, term: Annotated[str, Param("what to echo", positional=True)]) -> dict:
...     '''Echo a term back.'''
...     return {"term": term}
>>> schema = reg["echo_term"].json_schema()["properties"]["term"]
>>> schema["type"], schema["minLength"], schema["maxLength"], schema["description"]
('string', 1, 256, 'what to echo')
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union  # noqa: F401 - Annotated: the docstring example's

from dwml_py.call_context import CallContext, calling
from dwml_py.errors import DwmlError, InputError, NotFoundError, ReadOnlyError, did_you_mean

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


# Default and declared lengths of text parameters.
NAME_MAX = 256  # names and identifiers: models, relations, aliases, batch and run ids
# A tool's answer that the CLI ends with exit status 2: a gate that refused (`passed` is False) or
# a check that raised an alarm (`alert` is True). Each tool declares which field it answers by.
VERDICTS = {"passed": False, "alert": True}
TEXT_MAX = 4_000  # free text: reasons, descriptions, errors, search terms
PATH_MAX = 1_024
ITEMS_MAX = 1_000  # items of a list parameter
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # free text may hold tabs and newlines
_RESERVED = ("progress", "context")  # names the registry passes itself

# Ranges shared by many tools' parameters (Param(..., **VERSION)).
VERSION = {"minimum": 1, "maximum": 2**31 - 1}  # model versions: an INTEGER column in dwml's tables
SEED = {"minimum": 0, "maximum": 2**32 - 1}  # numpy's and XGBoost's seeds
DAYS = {"minimum": 0, "maximum": 36_500}  # label delays: up to a century
FRACTION = {"minimum": 0.01, "maximum": 0.99}  # shares of rows held out


@dataclass(frozen=True)
class Param:
    """Metadata of a tool parameter: its help text, how the CLI takes it, its limits, and what
    setting it means (see the module doc)."""

    help: str
    positional: bool = False
    flag: str | None = None  # CLI flag when it differs from --param-name
    minimum: int | float | None = None  # numbers (required for int and float parameters)
    maximum: int | float | None = None
    min_length: int = 1  # text, and each text item of a list
    max_length: int | None = None  # default NAME_MAX, or TEXT_MAX for free text
    max_items: int = ITEMS_MAX  # lists
    text: bool = False  # free text: may hold tabs and newlines, TEXT_MAX by default
    writes: bool = False  # a true value makes a read-only tool write: refused in read-only calls
    people_only: bool = False  # CLI and Python API only; never offered to agents


@dataclass(frozen=True)
class ParamSpec:
    name: str
    annotation: Any
    help: str
    default: Any
    required: bool
    positional: bool
    flag: str | None
    meta: Param = field(default_factory=lambda: Param(""))

    @property
    def max_length(self) -> int:
        return self.meta.max_length or (TEXT_MAX if self.meta.text else NAME_MAX)

    @property
    def writes(self) -> bool:
        return self.meta.writes

    @property
    def people_only(self) -> bool:
        return self.meta.people_only

    def json_schema(self) -> dict:
        schema = _type_schema(self.annotation)
        _add_limits(schema, self)
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
    # the result field that says the answer is a refusal or an alarm (VERDICTS), or None
    verdict: str | None = None

    def exit_status(self, result) -> int:
        """2 when the tool's declared verdict field says its answer refused (a gate's `passed:
        false`) or alarmed (`alert: true`), else 0: the CLI's exit status after the result."""
        if self.verdict is None or not isinstance(result, dict):
            return 0
        return 2 if result.get(self.verdict) is VERDICTS[self.verdict] else 0

    def offered(self, context: CallContext | None = None) -> list[ParamSpec]:
        """The parameters a caller in `context` may pass: agents get no people-only parameter,
        read-only calls no parameter that writes."""
        context = context or CallContext()
        return [p for p in self.params
                if not (context.agent and p.people_only) and not (context.read_only and p.writes)]

    def json_schema(self, context: CallContext | None = None) -> dict:
        params = self.offered(context)
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in params},
            "required": [p.name for p in params if p.required],
            "additionalProperties": False,
        }

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "command": "dwml " + " ".join(self.cli),
                "read_only": self.read_only, "parameters": self.json_schema(),
                "writing_parameters": [p.name for p in self.params if p.writes],
                "people_only_parameters": [p.name for p in self.params if p.people_only]}

    def writes_with(self, values: dict) -> list[str]:
        """The reasons a call with `values` can change something ([] for a read-only call)."""
        if not self.read_only:
            return [f"the tool {self.name!r} changes things"]
        return [f"{p.name}={values[p.name]!r}" for p in self.params if p.writes and values.get(p.name)]

    def validate(self, arguments: dict, context: CallContext | None = None) -> dict:
        """Check names, types and limits of arguments (from JSON) and fill defaults; InputError
        names the problem. In a read-only context, a call that would write is refused."""
        context = context or CallContext()
        known = {p.name: p for p in self.params}
        unknown = [k for k in arguments if k not in known]
        if unknown:
            raise InputError(f"Tool {self.name!r} has no parameter {str(unknown[0])[:80]!r}.",
                             hint=did_you_mean(str(unknown[0])[:80], known))
        values = {}
        for p in self.params:
            if p.name in arguments:
                if context.agent and p.people_only:
                    raise InputError(f"Tool {self.name!r}: {p.name!r} is not offered to agents ({p.help}).",
                                     hint="leave it out; a person can pass it on the command line.")
                values[p.name] = _check_value(self.name, p, arguments[p.name])
            elif p.required:
                raise InputError(f"Tool {self.name!r} needs the parameter {p.name!r} ({p.help}).",
                                 hint=f"pass {p.name}=...")
            else:
                values[p.name] = p.default
        if context.read_only:
            reasons = self.writes_with(values)
            if reasons:
                raise ReadOnlyError(f"Tool {self.name!r} refused in read-only mode: {reasons[0]} would change "
                                    "things.", hint="start the server without --read-only to change things"
                                    + ("." if not self.read_only else f", or leave out {reasons[0].split('=')[0]}."))
        return values

    def call(self, project, progress=None, context: CallContext | None = None, **arguments) -> dict:
        """Validate the arguments and run the tool; see `invoke`."""
        return self.invoke(project, arguments, progress=progress, context=context)

    def invoke(self, project, arguments: dict, progress=None, context: CallContext | None = None) -> dict:
        """Validate `arguments` (a dict, as JSON gives it) and run the tool in `context` (default: a
        person, not read-only); `progress` reaches tools that report it. A writing call by an agent
        is audited."""
        context = context or CallContext()
        values = self.validate(dict(arguments), context)
        if progress is not None and self.reports_progress:
            values["progress"] = progress
        audited = context.agent and bool(self.writes_with(values))
        with calling(context):
            try:
                result = self.func(project, **values)
            except InputError:
                raise  # refused before anything changed (tests/reliability/test_tool_properties.py checks)
            except BaseException as exc:
                if audited:
                    _audit_agent_call(project, self, values, "fail", exc)
                raise
        if audited:
            _audit_agent_call(project, self, values, "done", None)
        return result

    @property
    def reports_progress(self) -> bool:
        return "progress" in inspect.signature(self.func).parameters


class Registry:
    def __init__(self):
        self._tools: dict[str, ToolSpec] = {}

    def tool(self, name: str, cli: tuple[str, ...], read_only: bool = True, verdict: str | None = None):
        """Register a tool function under `name`, reachable as `dwml <cli...>`; `verdict` names the
        result field that makes its answer a refusal or an alarm (see VERDICTS)."""

        def decorator(func):
            if name in self._tools:
                raise ValueError(f"tool {name!r} is registered twice")
            if verdict is not None and verdict not in VERDICTS:
                raise ValueError(f"tool {name!r}: verdict must be one of {sorted(VERDICTS)}, got {verdict!r}")
            self._tools[name] = ToolSpec(name=name, func=func, description=_description(func), cli=tuple(cli),
                                         read_only=read_only, params=_params(func), verdict=verdict)
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
        if p.name in _RESERVED:
            raise TypeError(f"{func.__name__}: a parameter cannot be named {p.name!r}")
        annotation = hints.get(p.name, str)
        meta = next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Param)), None)
        if meta is None:
            raise TypeError(f"{func.__name__}: parameter {p.name!r} needs Annotated[type, Param('help')]")
        base = typing.get_args(annotation)[0]
        inner, _ = _unwrap_optional(base)
        if inner in (int, float) and (meta.minimum is None or meta.maximum is None):
            raise TypeError(f"{func.__name__}: number parameter {p.name!r} needs Param(minimum=..., maximum=...)")
        required = p.default is inspect.Parameter.empty
        specs.append(ParamSpec(name=p.name, annotation=base, help=meta.help,
                               default=None if required else p.default, required=required,
                               positional=meta.positional, flag=meta.flag, meta=meta))
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


def _add_limits(schema: dict, param: ParamSpec) -> None:
    """Publish the parameter's limits in its JSON Schema (the same ones _check_value enforces)."""
    meta = param.meta
    if schema["type"] in ("integer", "number"):
        schema["minimum"], schema["maximum"] = meta.minimum, meta.maximum
    elif schema["type"] == "string" and "enum" not in schema:
        schema.update(_text_limits(param))
    elif schema["type"] == "array":
        schema["maxItems"] = meta.max_items
        if schema["items"].get("type") == "string":
            schema["items"].update(_text_limits(param))


def _text_limits(param: ParamSpec) -> dict:
    limits = {"minLength": param.meta.min_length, "maxLength": param.max_length}
    if not param.meta.text:
        limits["pattern"] = "^[^\\u0000-\\u001f\\u007f]*$"
    return limits


def _check_value(tool: str, param: ParamSpec, value):
    value = _check_type(tool, param, value)
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) > param.meta.max_items:
            raise InputError(f"Tool {tool!r}: {param.name!r} takes at most {param.meta.max_items:,} items, "
                             f"got {len(value):,}.", hint=param.help)
        for item in value:
            if isinstance(item, str):
                _check_text(tool, param, item)
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"Tool {tool!r}: {param.name!r} must be a finite number, got {value!r}.", hint=param.help)
        low, high = param.meta.minimum, param.meta.maximum
        if not low <= value <= high:
            raise InputError(f"Tool {tool!r}: {param.name!r} must be from {low:,} to {high:,}, got {_shown(value)}.",
                             hint=param.help)
        return value
    if isinstance(value, str):
        _check_text(tool, param, value)
    return value


def _check_text(tool: str, param: ParamSpec, value: str) -> None:
    if len(value) < param.meta.min_length:
        raise InputError(f"Tool {tool!r}: {param.name!r} must not be empty." if not value else
                         f"Tool {tool!r}: {param.name!r} needs at least {param.meta.min_length} characters, "
                         f"got {_shown(value)}.", hint=param.help)
    if len(value) > param.max_length:
        raise InputError(f"Tool {tool!r}: {param.name!r} is {len(value):,} characters long; the limit is "
                         f"{param.max_length:,}: {_shown(value)}.", hint=param.help)
    bad = (_TEXT_CONTROL if param.meta.text else _CONTROL).search(value)
    if bad:
        raise InputError(f"Tool {tool!r}: {param.name!r} holds the control character {bad.group(0)!r} at "
                         f"position {bad.start()}: {_shown(value)}.", hint=param.help)


def _shown(value) -> str:
    """A value as an error message shows it: repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
        raise InputError(f"Tool {tool!r}: {param.name!r} must be a {expected}, got {type(value).__name__} "
                         f"{_shown(value)}.", hint=param.help)
    if "enum" in schema and value not in schema["enum"]:
        raise InputError(f"Tool {tool!r}: {param.name!r} must be one of {schema['enum']}, got {_shown(value)}.",
                         hint=did_you_mean(str(value)[:80], schema["enum"]))
    if expected == "array":
        item_type = schema["items"].get("type")
        if item_type == "string" and not all(isinstance(v, str) for v in value):
            raise InputError(f"Tool {tool!r}: {param.name!r} must be a list of strings, got {_shown(value)}.",
                             hint=param.help)
        if item_type == "integer" and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise InputError(f"Tool {tool!r}: {param.name!r} must be a list of integers, got {_shown(value)}.",
                             hint=param.help)
        return list(value)
    return value


def _audit_agent_call(project, spec: ToolSpec, values: dict, decision: str, error: BaseException | None) -> None:
    """Record an agent's writing call in dwml.audit_log: what it called, with which arguments, and
    how it ended. An audit row that cannot be written is an error of the call: a change an agent
    made must not go unrecorded without the agent hearing of it."""
    from dwml_py.audit import record_event
    from dwml_py.warehouse import connect

    details = {"arguments": {k: v for k, v in values.items() if k != "progress"}}
    if error is not None:
        details["error"] = f"{type(error).__name__}: {error}"[:TEXT_MAX]
    try:
        with connect(project) as warehouse:
            record_event(warehouse, f"tool.{spec.name}", decision, object_type="tool", object_name=spec.name,
                         details=details)
    except DwmlError as exc:
        if error is None:
            raise type(exc)(f"{spec.name} ran, but its audit row could not be written: {exc.message}",
                            hint=exc.hint) from None
