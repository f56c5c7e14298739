"""How the CLI shows things: progress on stderr, results on stdout, errors as one line + hint."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from dwml_py.progress import Progress, Step

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(payload) -> None:
    # Plain print, not rich: machine output must not be wrapped or styled.
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


def print_error(kind: str, message: str, hint: str | None) -> None:
    stderr.print(f"[bold red]Error:[/bold red] {escape(message)}")
    if hint:
        stderr.print(f"[yellow]Hint:[/yellow] {escape(hint)}")
