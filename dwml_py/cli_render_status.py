"""Terminal renderers of the status tools; registered into cli_render.RENDERERS."""

from __future__ import annotations

from rich.markup import escape

from dwml_py.cli_render_parts import RENDERERS, _add, _count, _cut, _fmt, _grid, _short_id, _status, _when
from dwml_py.console import stdout
from dwml_py.defaults import HEADLINE_METRIC


def _versions(entry: dict) -> str:
    versions = entry.get("versions")
    if not versions:
        return "[dim]none[/dim]"
    return f"v{_fmt(versions.get('latest'))} of {_count(versions.get('count'))}"


def _aliases(entry: dict) -> str:
    aliases = entry.get("aliases") or {}
    if not aliases:
        return "[dim]none[/dim]"
    return escape(", ".join(f"{name}→v{a.get('version')}" for name, a in aliases.items()))


def _gates(entry: dict) -> str:
    """The last training run's gate decisions; those that did not simply pass first."""
    gates = (entry.get("last_training") or {}).get("gates") or {}
    if not gates:
        return "[dim]none recorded[/dim]"
    bad = {g: d for g, d in gates.items() if d != "pass"}
    passed = [g for g in gates if g not in bad]
    text = ", ".join(f"[yellow]{escape(str(g))} {escape(str(d))}[/yellow]" for g, d in bad.items())
    if passed:
        text += (", " if text else "") + f"{len(passed)} pass"
    return text


def _training(entry: dict) -> str:
    run = entry.get("last_training")
    if not run:
        return "[dim]none[/dim]"
    parts = [_status(run.get("status"), bool(run.get("stale"))), escape(_when(run.get("started_at"))[:16])]
    metric = run.get("holdout_metric")
    if metric:
        parts.append(f"{escape(str(metric['name']))} {_fmt(metric['value'], 3)}")
    return " ".join(parts)


def _drift(entry: dict) -> str:
    drift = entry.get("last_drift")
    if not drift:
        return "[dim]never checked[/dim]"
    drifted = drift.get("drifted_features") or []
    when = escape(_when(drift.get("computed_at"))[:16])
    if drift.get("dataset_drift"):
        text = f"[red]DRIFT[/red] {len(drifted)} feature(s)"
    elif drifted:
        text = f"[yellow]{len(drifted)} feature(s)[/yellow]"
    else:
        text = "[green]none[/green]"
    if drift.get("score_drift"):
        text += ", [red]score[/red]"
    return f"v{_fmt(drift.get('version'))} {when} {text}"


def _predictions(entry: dict) -> str:
    batch = entry.get("last_predictions")
    if not batch:
        return "[dim]none[/dim]"
    return (f"v{_fmt(batch.get('version'))} {escape(_when(batch.get('scored_at'))[:16])} "
            f"{_count(batch.get('row_count'))} rows ({escape(_fmt(batch.get('source')))})")


def _performance(entry: dict) -> str:
    perf = entry.get("last_performance")
    if not perf:
        return "[dim]not evaluated[/dim]"
    metrics = perf.get("metrics") or {}
    # the degraded metrics and the headline ones (AUC, RMSE) first
    order = sorted(metrics, key=lambda k: (not metrics[k].get("is_degraded"), k not in HEADLINE_METRIC.values(), k))
    shown = ", ".join(f"{escape(str(k))} {_fmt(metrics[k].get('value'), 3)}" for k in order[:2])
    verdict = "[red]DEGRADED[/red]" if perf.get("degraded") else "[green]ok[/green]"
    return f"v{_fmt(perf.get('version'))} {verdict} {shown}"


def _details(entry: dict) -> None:
    """Everything about one model, for `dwml status NAME`."""
    for alias, a in (entry.get("aliases") or {}).items():
        moved = f"from v{a['previous_version']} " if a.get("previous_version") is not None else ""
        why = f" ({escape(_cut(a['reason'], 40))})" if a.get("reason") else ""
        stdout.print(f"  alias [cyan]{escape(alias)}[/cyan] → v{_fmt(a.get('version'))}, moved {moved}"
                     f"{escape(_when(a.get('set_at')))} by {escape(_fmt(a.get('set_by')))}{why}")
    run = entry.get("last_training")
    if run:
        registered = f", registered v{run['registered_version']}" if run.get("registered_version") else ""
        stdout.print(f"  last training: run {escape(_short_id(run.get('run_id')))} {_status(run.get('status'))} "
                     f"{escape(_when(run.get('started_at')))}{registered}")
        gates = ", ".join(f"{g} {d}" for g, d in (run.get("gates") or {}).items())
        if gates:
            stdout.print(f"    gates: {escape(gates)}")
        metrics = ", ".join(f"{k} {_fmt(v, 4)}" for k, v in (run.get("holdout_metrics") or {}).items())
        if metrics:
            stdout.print(f"    holdout: {escape(_cut(metrics, 110))}")
        if run.get("error"):
            stdout.print(f"    [red]error:[/red] {escape(_cut(run['error'], 110))}")
    drift = entry.get("last_drift")
    if drift:
        stdout.print(f"  last drift check: {escape(_when(drift.get('computed_at')))}, "
                     f"{_fmt(drift.get('drift_share'), 3)} of features drifting "
                     f"(threshold {_fmt(drift.get('drift_share_threshold'), 3)}) on {escape(_cut(drift.get('current_window'), 60))}")
        drifted = set(drift.get("drifted_features") or [])
        for feature, stats in (drift.get("crossed_thresholds") or {}).items():
            style = "red" if feature in drifted else "dim"
            stdout.print(f"    [{style}]{escape(feature)}[/{style}]: {escape(', '.join(stats))} over the threshold")
    perf = entry.get("last_performance")
    if perf:
        stdout.print(f"  latest evaluated window: {escape(_when(perf.get('window_start')))} to "
                     f"{escape(_when(perf.get('window_end')))}, {_count(perf.get('row_count'))} labelled rows")
        for metric, m in (perf.get("metrics") or {}).items():
            flag = " [red]degraded[/red]" if m.get("is_degraded") else ""
            stdout.print(f"    {escape(metric)} {_fmt(m.get('value'), 4)} (training {_fmt(m.get('baseline'), 4)}){flag}")


def render_status(result: dict) -> None:
    models = result.get("models") or []
    if not models:
        stdout.print(escape(result.get("message") or "No models yet."))
        return
    # one row per aspect under each model: it reads at any terminal width, unlike seven columns
    table = _grid("model", "", "latest", keep=("model", ""))
    for i, m in enumerate(models):
        if i:
            _add(table, "", "", "")
        rows = [("versions", _versions(m)), ("aliases", _aliases(m)), ("training", _training(m)), ("gates", _gates(m)),
                ("drift", _drift(m)), ("predictions", _predictions(m)), ("performance", _performance(m))]
        for j, (aspect, cell) in enumerate(rows):
            name = f"[bold]{escape(_cut(m.get('model_name'), 24))}[/bold]" if j == 0 else ""
            _add(table, name, f"[dim]{aspect}[/dim]", cell)
    stdout.print(table)
    if len(models) == 1:
        _details(models[0])
    for m in models:  # under the table, where a long note can wrap
        for note in m.get("attention") or []:
            stdout.print(f"[bold yellow]attention[/bold yellow] [bold]{escape(str(m.get('model_name')))}[/bold]: "
                         f"{escape(note)}")
    needs = sum(1 for m in models if m.get("attention"))
    stdout.print(f"{len(models)} model(s)" + (f", {needs} need attention" if needs else ", nothing needs attention")
                 + f". [dim]checked {escape(_when(result.get('checked_at')))} UTC in {_fmt(result.get('queries'))} "
                 "queries[/dim]")


RENDERERS["get_ml_status"] = render_status
