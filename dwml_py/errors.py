"""One exception hierarchy for dwml.

Every error carries a message that says what failed and the value it got, and a `hint`
that says how to fix it. The CLI prints both on one line each and exits with `exit_code`:
1 for errors (bad input, set-up), 2 when a gate refused (GateRefused). A check whose answer is an
alarm (drift, evaluation, monitor) returns it, and the CLI exits 2 after showing it: each tool
declares the field it answers by (dwml_py.tools.registry.VERDICTS).

No error carries a secret from profiles.yml: message and hint are scrubbed of them when the error
is made (dwml_py.redaction), whatever text went into them (failing SQL, a driver's message).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DwmlError(Exception):
    """Root of every error dwml raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        from dwml_py.redaction import scrub

        message, hint = scrub(message), scrub(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class ConfigError(DwmlError):
    """The dbt project, profile or dwml configuration is missing or invalid."""


class ProfileError(ConfigError):
    """The dbt profile or target cannot be resolved."""


class WarehouseError(DwmlError):
    """The warehouse refused a connection or a statement."""


class DbtCommandError(DwmlError):
    """A dbt command could not run (not: dbt tests failed — that is a GateRefused)."""


class InputError(DwmlError):
    """An argument from the user is invalid."""


class NotFoundError(InputError):
    """A named object (model, column, run, version) does not exist."""


class ReadOnlyError(InputError):
    """A call would change something, and the session is read-only (`dwml mcp --read-only`)."""


class GateRefused(DwmlError):
    """A gate (quality, governance, cost, dbt tests) refused to let the work go on."""

    exit_code = 2


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """A hint naming the closest known names, or listing a few when nothing is close.

    >>> did_you_mean("custmer_features", ["customer_features", "plans"])
    "did you mean 'customer_features'?"
    """
    choices = sorted(set(choices))
    close = difflib.get_close_matches(value, choices, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not choices:
        return "there are none"
    shown = ", ".join(choices[:8]) + (", ..." if len(choices) > 8 else "")
    return f"known names: {shown}"
