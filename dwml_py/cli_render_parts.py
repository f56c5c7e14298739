"""What the CLI's renderers share: the RENDERERS table (tool name -> rendering of its result),
which dwml_py.cli_render and its sibling modules fill, and the small formatting helpers."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dwml_py.console import stdout

# tool name -> function printing that tool's result for people (`--json` prints the result instead)
RENDERERS: dict = {}


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, digits) for v in value)
    return str(value)


def _notes(result: dict) -> None:
    for note in result.get("notes") or []:
        stdout.print(f"[dim]note: {escape(str(note))}[/dim]")


def _cut(value, width: int = 60) -> str:
    """`value` as one line of at most `width` characters (an ellipsis marks a cut)."""
    text = " ".join(_fmt(value).split())
    return text if len(text) <= width else text[:max(width - 1, 1)] + "…"


def _grid(*headers: str, keep: tuple[str, ...] = ()) -> Table:
    """A borderless table; the `keep` columns (names, ids) never give way on a narrow terminal,
    the others (free text) are cut first."""
    table = Table(*headers, box=None, padding=(0, 1))
    for column in table.columns:
        column.no_wrap = column.header in keep
    return table


def _add(table: Table, *cells: str) -> None:
    """A row of one line per cell: on a narrow terminal a long cell ends in an ellipsis instead of
    wrapping (the widest columns give way first)."""
    texts = []
    for cell in cells:
        text = Text.from_markup(cell, overflow="ellipsis")
        text.no_wrap = True
        texts.append(text)
    table.add_row(*texts)


def _short_id(value, width: int = 8) -> str:
    return str(value or "")[:width]


def _when(value) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM:SS' (no fraction, no zone); other values as they are."""
    text = _fmt(value)
    return text.replace("T", " ")[:19] if len(text) >= 19 and text[4:5] == "-" else text


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _fmt(value)


def _pairs(mapping, limit: int = 3, width: int = 60, digits: int = 4) -> str:
    """'a=1, b=2, ...' of the first `limit` items of a mapping, cut to `width`."""
    if not isinstance(mapping, dict) or not mapping:
        return ""
    items = list(mapping.items())
    text = ", ".join(f"{k}={_fmt(v, digits)}" for k, v in items[:limit])
    if len(items) > limit:
        text += f", +{len(items) - limit}"
    return _cut(text, width)


def _metric_summary(metrics, limit: int = 3, width: int = 48) -> str:
    """The headline metrics of a run or version: holdout ones first, training curves last."""
    if not isinstance(metrics, dict) or not metrics:
        return ""

    def rank(key: str) -> int:
        split = key.split(".", 1)[0] if "." in key else ""
        return {"holdout": 0, "test": 1, "valid": 2, "validation": 2, "": 3}.get(split, 4)

    ordered = dict(sorted(metrics.items(), key=lambda kv: (rank(str(kv[0])), str(kv[0]))))
    # holdout metrics are the headline ones: shown without their prefix, other splits keep theirs
    shown = {str(k)[len("holdout."):] if str(k).startswith("holdout.") else k: v for k, v in ordered.items()}
    return _pairs(shown if len(shown) == len(ordered) else ordered, limit, width)


def _status(status, stale: bool = False) -> str:
    text = escape(_fmt(status))
    if stale:
        return f"[red]{text} (stale)[/red]"
    return {"finished": f"[green]{text}[/green]", "failed": f"[red]{text}[/red]",
            "running": f"[yellow]{text}[/yellow]"}.get(status, text)


def _verdict(result: dict) -> str:
    """PASSED / FAILED / OVERRIDDEN of a gate result, styled."""
    decision = result.get("decision")
    if decision == "overridden" or result.get("overridden"):
        return "[bold yellow]OVERRIDDEN[/bold yellow]"
    if result.get("passed") is False or decision == "fail":
        return "[bold red]FAILED[/bold red]"
    return "[bold green]PASSED[/bold green]"


def _hint(hint, indent: str = "      ") -> None:
    if hint:
        stdout.print(f"{indent}[cyan]hint:[/cyan] {escape(str(hint))}")


def _audit(result: dict) -> None:
    if result.get("audit_event_id"):
        who = f" by {escape(str(result['actor']))}" if result.get("actor") else ""
        stdout.print(f"[dim]decision recorded in dwml.audit_log{who} (event {escape(str(result['audit_event_id']))})[/dim]")


def _more(shown: int, total, what: str, how: str = "--json shows all") -> None:
    if isinstance(total, int) and total > shown:
        stdout.print(f"[dim]... and {total - shown:,} more {what} ({how})[/dim]")
