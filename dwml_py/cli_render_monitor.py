"""Terminal renderers of the monitor tools; registered into cli_render.RENDERERS."""

from __future__ import annotations

from rich.markup import escape

from dwml_py.cli_render_parts import RENDERERS, _add, _fmt, _grid, _notes
from dwml_py.console import stdout


def _day(value) -> str:
    return _fmt(value)[:10]


def render_evaluate(result: dict) -> None:
    name = escape(_fmt(result.get("model_name")))
    stdout.print(f"[bold]{name}[/bold] v{result.get('version')} ({escape(_fmt(result.get('task')))}): "
                 f"{result.get('rows', 0):,} labelled rows from {escape(_fmt(result.get('source')))}, labels "
                 f"matured until {escape(_day(result.get('matured_until')) or 'now')} "
                 f"(delay {result.get('label_delay_days')} days)")
    windows = result.get("windows") or []
    baseline = result.get("baseline") or {}
    judged = set((result.get("rule") or {}).get("metrics") or [])
    if windows:
        metrics = list(windows[0]["metrics"])
        table = _grid("window", "rows", *metrics, keep=("window",))
        _add(table, "[dim]holdout baseline[/dim]", "", *[f"[dim]{_fmt(baseline.get(m))}[/dim]" for m in metrics])
        for w in windows:
            cells = []
            for m in metrics:
                text = _fmt(w["metrics"].get(m))
                cells.append(f"[red]{text} ▼[/red]" if m in w["degraded"] else (f"[bold]{text}[/bold]" if m in judged
                                                                                else text))
            _add(table, escape(_day(w.get("window_start")) or "all"), f"{w['rows']:,}", *cells)
        stdout.print(table)
    rule = result.get("rule") or {}
    stdout.print(f"[dim]judged: {', '.join(sorted(judged))} (worse than the baseline by more than "
                 f"{rule.get('tolerance', 0):.0%}" + (f", or beyond {rule['limits']}" if rule.get("limits") else "")
                 + f"; windows of at least {rule.get('min_rows')} rows)[/dim]")
    if result.get("alert"):
        stdout.print(f"[red]ALERT[/red]: degraded in {len(result.get('degraded_windows') or [])} window(s).")
    else:
        stdout.print("[green]No degradation.[/green]")
    _notes(result)


_VERDICT_STYLE = {"challenger_better": "green", "champion_better": "yellow", "no_difference": "dim"}


def render_abtest(result: dict) -> None:
    stdout.print(f"[bold]{escape(_fmt(result.get('model_name')))}[/bold]: champion v{result.get('champion')} vs "
                 f"challenger v{result.get('challenger')} on {result.get('rows', 0):,} labelled rows "
                 f"({escape(_fmt(result.get('source')))})")
    table = _grid("metric", "champion", "challenger", "difference", "CI", "p-value", "verdict", keep=("metric",))
    for c in result.get("comparisons") or []:
        style = _VERDICT_STYLE.get(c["verdict"], "")
        ci = f"[{_fmt(c.get('ci_low'))}, {_fmt(c.get('ci_high'))}]" if c.get("ci_low") is not None else ""
        _add(table, escape(c["metric"]), _fmt(c.get("champion_value")), _fmt(c.get("challenger_value")),
             _fmt(c.get("difference")), escape(ci), _fmt(c.get("p_value"), 3),
             f"[{style}]{escape(c['verdict'])}[/{style}]")
    stdout.print(table)
    verdict = result.get("verdict")
    stdout.print(f"Verdict on {escape(_fmt(result.get('metric')))}: [{_VERDICT_STYLE.get(verdict, '')}]"
                 f"{escape(_fmt(verdict))}[/]")
    stdout.print(f"[dim]rule: {escape(_fmt(result.get('rule')))}[/dim]")
    for c in result.get("comparisons") or []:
        stdout.print(f"[dim]{escape(c['metric'])}: {escape(c['method'])}[/dim]")
    _notes(result)


def render_monitor(result: dict) -> None:
    models = result.get("models") or []
    window = " ".join(x for x in (f"from {result['after']}" if result.get("after") else "",
                                  f"before {result['before']}" if result.get("before") else "") if x)
    stdout.print(f"Monitored {len(models)} model(s) with alias [cyan]{escape(_fmt(result.get('alias')))}[/cyan]"
                 + (f" ({escape(window)})" if window else ""))
    if models:
        table = _grid("model", "version", "drift", "performance", "status", keep=("model",))
        for m in models:
            drift, performance = m.get("drift") or {}, m.get("performance") or {}
            if "error" in drift:
                drift_text = "[red]error[/red]"
            else:
                dataset = drift.get("dataset") or {}
                drift_text = (f"{dataset.get('drifting')}/{dataset.get('features')} features"
                              + (f", major: {', '.join(drift['major_features'])}" if drift.get("major_features")
                                 else ""))
            if "error" in performance:
                perf_text = "[red]error[/red]"
            else:
                latest = performance.get("latest") or {}
                shown = ", ".join(f"{k} {_fmt(latest.get('metrics', {}).get(k))}"
                                  for k in performance.get("judged_metrics") or [])
                perf_text = (f"{performance.get('windows', 0)} window(s)" + (f"; latest {shown}" if latest else "")
                             + (f"; {len(performance['degraded_windows'])} degraded"
                                if performance.get("degraded_windows") else ""))
            _add(table, escape(m["model_name"]), f"v{m['version']}", escape(drift_text) if "error" not in drift
                 else drift_text, escape(perf_text) if "error" not in performance else perf_text,
                 "[red]ALERT[/red]" if m.get("alert") else "[green]ok[/green]")
        stdout.print(table)
        for m in models:
            for reason in m.get("alerts") or []:
                stdout.print(f"  [red]{escape(m['model_name'])}[/red]: {escape(reason)}")
            for part in ("drift", "performance"):
                if (m.get(part) or {}).get("hint"):
                    stdout.print(f"      [yellow]hint:[/yellow] {escape(m[part]['hint'])}")
    stdout.print(f"[dim]alert rule: {escape(_fmt(result.get('rule')))}[/dim]")
    _notes(result)


RENDERERS["evaluate_model"] = render_evaluate
RENDERERS["ab_test_models"] = render_abtest
RENDERERS["monitor_models"] = render_monitor
