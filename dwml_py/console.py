"""How the CLI shows things: progress on stderr, results on stdout, errors as one line + hint.

Everything the CLI writes passes through a stream that scrubs secrets from profiles.yml out of
it (dwml_py.redaction): results, progress, errors and --debug tracebacks alike.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from dwml_py.progress import Progress, Step
from dwml_py.redaction import registered, scrub, scrub_data


class ScrubbedStream(io.TextIOBase):
    """sys.stdout or sys.stderr (looked up at each write, so a test runner's capture still works)
    with secrets scrubbed from whatever is written."""

    def __init__(self, name: str):
        self._name = name

    @property
    def target(self):
        return getattr(sys, self._name)

    def write(self, text: str) -> int:
        self.target.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.target, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.target, "encoding", None) or "utf-8"


stdout = Console(file=ScrubbedStream("stdout"), highlight=False, soft_wrap=True)
stderr = Console(file=ScrubbedStream("stderr"), highlight=False, soft_wrap=True)


def _default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(payload) -> None:
    # Plain print, not rich: machine output must not be wrapped or styled. Scrubbed as data, so a
    # masked value keeps the JSON valid.
    if registered():
        payload = scrub_data(json.loads(json.dumps(payload, default=_default)))
    sys.stdout.write(json.dumps(payload, default=_default, indent=2) + "\n")
    sys.stdout.flush()


class _LiveStep(Step):
    def __init__(self, title: str, status):
        super().__init__(title)
        self._status = status

    def update(self, detail: str) -> None:
        if self._status is not None:
            self._status.update(f"{escape(self.title)} [dim]{escape(detail)}[/dim]")


class ConsoleProgress(Progress):
    """Numbered steps with a spinner while each runs, then a line saying what it did."""

    def __init__(self, console: Console = stderr):
        self.console = console
        self.count = 0

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        self.count += 1
        prefix = f"[bold cyan][{self.count}][/bold cyan] "
        started = time.perf_counter()
        interactive = self.console.is_terminal
        status_cm = self.console.status(escape(title)) if interactive else contextlib.nullcontext()
        if not interactive:
            self.console.print(prefix + escape(title) + " ...")
        try:
            with status_cm as status:
                step = _LiveStep(title, status)
                yield step
        except BaseException:
            self.console.print(prefix + escape(title) + f" [red]failed[/red] ({time.perf_counter() - started:.1f} s)")
            raise
        summary = f": {escape(step.summary)}" if step.summary else ""
        self.console.print(prefix + escape(title) + f" [green]done[/green]{summary} ({time.perf_counter() - started:.1f} s)")

    def info(self, message: str) -> None:
        self.console.print(escape(message))


def print_traceback() -> None:
    """The current exception's traceback (--debug), scrubbed like every other output."""
    import traceback

    stderr.file.write(traceback.format_exc())


def print_error(kind: str, message: str, hint: str | None) -> None:
    stderr.print(f"[bold red]Error:[/bold red] {escape(message)}")
    if hint:
        stderr.print(f"[yellow]Hint:[/yellow] {escape(hint)}")


def render_result(result) -> None:
    """A readable default rendering of a tool result: scalars as `key: value`, lists of
    records as tables, nested mappings indented."""
    from rich.table import Table

    def scalar(value) -> str:
        if isinstance(value, float):
            return f"{value:.6g}"
        if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list)) for v in value):
            return ", ".join(scalar(v) for v in value)
        return str(value)

    def show(value, indent: int = 0) -> None:
        pad = " " * indent
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, dict):
                    stdout.print(f"{pad}[bold]{escape(str(key))}[/bold]:")
                    show(item, indent + 2)
                elif isinstance(item, list) and item and all(isinstance(r, dict) for r in item):
                    stdout.print(f"{pad}[bold]{escape(str(key))}[/bold]:")
                    columns = list(dict.fromkeys(k for r in item for k in r))
                    table = Table(*columns, box=None, padding=(0, 1))
                    for r in item:
                        table.add_row(*(escape(scalar(r.get(c, ""))) for c in columns))
                    stdout.print(table)
                else:
                    stdout.print(f"{pad}[bold]{escape(str(key))}[/bold]: {escape(scalar(item))}")
        else:
            stdout.print(pad + escape(scalar(value)))

    show(result)
