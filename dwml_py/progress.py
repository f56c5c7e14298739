"""Progress reporting for long work, independent of how it is shown.

Library functions take a `Progress`; the CLI passes one that prints, tests and the Python API
pass the silent default.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class Step:
    """A running step: `update` says what it is doing now, `summary` what it achieved."""

    def __init__(self, title: str):
        self.title = title
        self.summary: str | None = None
        self.started = time.perf_counter()

    def update(self, detail: str) -> None:  # overridden by displays that show it
        pass

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class Progress:
    """Silent progress: the default for library calls."""

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        yield Step(title)

    def info(self, message: str) -> None:
        pass


SILENT = Progress()
