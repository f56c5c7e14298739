"""Terminal renderers of the experiment tools; registered into cli_render.RENDERERS."""

from __future__ import annotations

from rich.markup import escape

from dwml_py.cli_render_parts import RENDERERS, _cut, _fmt, _metric_summary, _pairs, _status
from dwml_py.console import stdout


def _run_line(result: dict) -> str:
    model = f", model [bold]{escape(str(result['model_name']))}[/bold]" if result.get("model_name") else ""
    return (f"run [bold]{escape(_fmt(result.get('run_id')))}[/bold] of experiment "
            f"[bold]{escape(_fmt(result.get('experiment')))}[/bold]{model}: {_status(result.get('status'))}")


def _contents(result: dict) -> None:
    if result.get("params"):
        stdout.print(f"  params: {escape(_pairs(result['params'], 8, 110))}")
    if result.get("metrics"):
        stdout.print(f"  metrics: {escape(_metric_summary(result['metrics'], 8, 110))} "
                     f"[dim]({_fmt(result.get('metric_rows'))} value(s) logged)[/dim]")
    if result.get("artifacts"):
        stdout.print("  artifacts: " + escape(", ".join(f"{a.get('name')} ({str(a.get('sha256') or '')[:12]})"
                                                         for a in result["artifacts"])))
    if result.get("error"):
        stdout.print(f"  [red]error:[/red] {escape(_cut(result['error'], 110))}")


def render_created(result: dict) -> None:
    stdout.print("Started " + _run_line(result))
    _contents(result)
    if result.get("tags"):
        stdout.print(f"  tags: {escape(_pairs(result['tags'], 8, 110))}")
    stdout.print(f"[dim]log to it with `dwml runs log {escape(_fmt(result.get('run_id')))} --metric NAME=NUMBER` "
                 "(--finish ends it)[/dim]")


def render_logged(result: dict) -> None:
    logged = result.get("logged") or {}
    what = [f"{len(logged.get(k) or [])} {k}" for k in ("metrics", "params", "artifacts") if logged.get(k)]
    where = " ".join(x for x in (f"split {logged['split']}" if logged.get("split") else "",
                                 f"step {logged['step']}" if logged.get("step") is not None else "") if x)
    stdout.print(("Logged " + ", ".join(what) + (f" ({escape(where)})" if where else "") + " to "
                  if what else "") + _run_line(result))
    _contents(result)


RENDERERS["create_experiment"] = render_created
RENDERERS["log_metrics"] = render_logged
