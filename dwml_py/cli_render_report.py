"""Terminal renderers of the report tools (`dwml report`, `dwml docs exposures`); registered into
cli_render.RENDERERS."""

from __future__ import annotations

from rich.markup import escape

from dwml_py.cli_render_parts import RENDERERS, _notes
from dwml_py.console import stdout


def render_report(result: dict) -> None:
    size = f"{result.get('bytes', 0) / 1024:,.0f} KB"
    stdout.print(f"[green]Wrote[/green] the model card of {escape(str(result.get('model_name')))} version "
                 f"{result.get('version')}: {escape(str(result.get('path')))} ({size})")
    empty = set(result.get("empty_sections") or [])
    shown = [s if s not in empty else f"{s} (empty)" for s in result.get("sections") or []]
    stdout.print(f"  sections: {escape(', '.join(shown))}")
    stdout.print(f"  plots: {escape(', '.join(result.get('plots') or []) or 'none')}")
    holdout = result.get("holdout") or {}
    if holdout.get("status") == "rebuilt":
        same = {True: "training data unchanged", False: "[yellow]training data changed since training[/yellow]"}.get(
            holdout.get("same_data"), "data change unknown")
        match = {True: "metrics reproduced", False: "[yellow]recomputed metrics differ[/yellow]"}.get(
            result.get("metrics_match"), "no metrics to compare")
        stdout.print(f"  holdout rebuilt: {holdout.get('rows', 0):,} rows; {same}; {match}")
    else:
        stdout.print(f"  holdout not rebuilt: {escape(str(holdout.get('reason')))}")
    _notes(result)


def render_exposures(result: dict) -> None:
    names = result.get("exposures") or []
    verb = "Wrote" if result.get("written") else "Unchanged:"
    stdout.print(f"{verb} {len(names)} exposure(s) to {escape(str(result.get('path')))}")
    for name in names:
        stdout.print(f"  {escape(name)} <- {escape(', '.join((result.get('depends_on') or {}).get(name) or []))}")
    _notes(result)
    stdout.print(f"[dim]{escape(str(result.get('next')))}[/dim]")


RENDERERS["create_report"] = render_report
RENDERERS["write_exposures"] = render_exposures
