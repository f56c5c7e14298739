"""Who is calling a tool, and what the call may do: read-only or not, a person or an agent.

The tool registry enters a context for every call (`ToolSpec.call`); the layers that can change
something ask it, so a promise such as "read-only" does not rest on each tool remembering it:

- `connect()` opens the warehouse read-only (DuckDB's read-only mode, PostgreSQL's
  default_transaction_read_only), so even a forgotten write is refused by the engine;
- dbt runs (they write target/ and logs) and file writes (dwml_py.file_output) are refused;
- dwml_py.tables.ensure_tables creates and migrates nothing.

`agent` marks a caller that is not the user's own hand (the MCP server): it gets no parameter
declared for people only and no path outside the project (dwml_py.file_output).

>>> current().read_only
False
>>> with calling(CallContext(read_only=True)):
...     current().read_only
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from dwml_py.errors import ReadOnlyError


@dataclass(frozen=True)
class CallContext:
    read_only: bool = False
    agent: bool = False

    @property
    def caller(self) -> str:
        return "an agent" if self.agent else "this call"


_CURRENT: ContextVar[CallContext] = ContextVar("dwml_call_context", default=CallContext())


def current() -> CallContext:
    """The context of the tool call running in this thread (a permissive one outside any call)."""
    return _CURRENT.get()


@contextlib.contextmanager
def calling(context: CallContext) -> Iterator[CallContext]:
    """Run the block in `context`; an enclosing read-only context stays read-only."""
    outer = _CURRENT.get()
    merged = CallContext(read_only=context.read_only or outer.read_only, agent=context.agent or outer.agent)
    token = _CURRENT.set(merged)
    try:
        yield merged
    finally:
        _CURRENT.reset(token)


def refuse_write(what: str) -> None:
    """Raise ReadOnlyError naming `what` when the current call is read-only."""
    if _CURRENT.get().read_only:
        raise ReadOnlyError(f"Refused in read-only mode: {what}.",
                            hint="this session is read-only (`dwml mcp --read-only`); run it without --read-only "
                            "to change things.")
