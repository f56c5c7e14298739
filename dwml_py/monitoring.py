"""`dwml monitor`: drift and performance of every deployed model in one command, for a scheduler.

For every model with the alias (`production` unless told otherwise), the version the alias
points at gets `detect_drift` (dwml_py.drift) and `evaluate_performance` (dwml_py.performance)
over the same window, on one warehouse connection; their rows land in dwml.drift_metrics and
dwml.performance_metrics as usual.

What raises an alert (the result's `alert`, exit code 2):

* drift: detect_drift's own alert (dataset drift: at least `drift_share` (0.3) of the features
  drift; or the score's PSI crosses), **or any feature whose drift is major** (PSI >= `psi_major`,
  0.25 by default, configurable like every drift threshold). The dataset share alone misses a
  shift concentrated on a few features that matter: the demo's shifted period moves 5 of 21
  features (share 0.24) but PSI of monthly_price is about 3;
* performance: a degraded window (see dwml_py.performance: the judged metric fell more than the
  tolerance below the holdout baseline, or beyond an absolute limit);
* a check that could not run (no reference profile, no predictions to evaluate, a missing
  table): reported with its error and hint, and counted as an alert, so a scheduler never
  mistakes a broken check for a healthy model.

A model whose predictions have no matured label yet is not an error: its performance entry
says so and judges nothing.
"""

from __future__ import annotations

import time

from dwml_py.errors import DwmlError
from dwml_py.progress import SILENT, Progress

ALERT_RULE = ("drift: dataset drift, score drift, or any feature with major drift (psi >= psi_major); "
              "performance: any degraded window; a check that could not run also alerts")


def _drift_summary(result: dict) -> tuple[dict, list[str]]:
    major = [f["feature"] for f in result["features"] if f["severity"] == "major"]
    drifting = [f["feature"] for f in result["features"] if f["drifted"]]
    score = result.get("score")
    summary = {"drift_run_id": result["drift_run_id"], "rows": result["window"]["rows"],
               "dataset": result["dataset"], "drifting_features": drifting, "major_features": major,
               "score": None if score is None else {"drifted": score["drifted"], "severity": score["severity"],
                                                   **score["statistics"]},
               "notes": result["notes"]}
    reasons = []
    if result["dataset"]["is_drift"]:
        reasons.append(f"dataset drift: {result['dataset']['drifting']}/{result['dataset']['features']} features "
                       f"drift (share >= {result['dataset']['threshold']})")
    if score is not None and score["drifted"]:
        reasons.append(f"score drift ({score['severity']})")
    if major:
        reasons.append("major drift of " + ", ".join(major))
    summary["alert"] = bool(reasons)
    return summary, reasons


def _performance_summary(result: dict) -> tuple[dict, list[str]]:
    windows = result["windows"]
    summary = {"evaluation_id": result["evaluation_id"], "rows": result["rows"], "windows": len(windows),
               "judged_metrics": result["rule"]["metrics"], "baseline": result["baseline"],
               "latest": windows[-1] if windows else None, "overall": result["overall"],
               "degraded_windows": [{"window_start": w["window_start"], "degraded": w["degraded"],
                                     "metrics": {m: w["metrics"][m] for m in w["degraded"]}}
                                    for w in windows if w["degraded"]],
               "notes": result["notes"], "alert": result["alert"]}
    reasons = [f"{', '.join(w['degraded'])} degraded in the window from {w['window_start']}"
               for w in summary["degraded_windows"]]
    return summary, reasons


def monitor(project, alias: str = "production", after=None, before=None, window: str = "month",
            label_delay_days: int | None = None, as_of=None, progress: Progress = SILENT) -> dict:
    """Drift + evaluation of every model with `alias`; see the module doc."""
    from dwml_py import model_registry as registry
    from dwml_py.drift import detect_drift
    from dwml_py.performance import evaluate_performance, iso
    from dwml_py.rows import ensure_once
    from dwml_py.warehouse import connect

    started = time.perf_counter()
    registry.check_name(alias, "Alias")
    entries = []
    with connect(project) as warehouse:
        ensure_once(warehouse)
        deployed = [(m["model_name"], m["aliases"][alias]) for m in registry.list_models(warehouse)
                    if alias in (m.get("aliases") or {})]
        for name, version in deployed:
            entry = {"model_name": name, "version": version, "drift": None, "performance": None, "alerts": []}
            with progress.step(f"Drift of {name} v{version}") as step:
                try:
                    drift = detect_drift(project, name, alias=alias, where_after=after, where_before=before,
                                         warehouse=warehouse)
                    entry["drift"], reasons = _drift_summary(drift)
                    entry["alerts"] += reasons
                except DwmlError as exc:
                    entry["drift"] = {"error": exc.message, "hint": exc.hint, "alert": True}
                    entry["alerts"].append(f"drift check failed: {exc.message}")
                step.summary = "alert" if entry["drift"].get("alert") else "ok"
            with progress.step(f"Performance of {name} v{version} on matured labels") as step:
                try:
                    evaluated = evaluate_performance(project, name, alias=alias, window=window,
                                                     label_delay_days=label_delay_days, after=after, before=before,
                                                     as_of=as_of, warehouse=warehouse)
                    entry["performance"], reasons = _performance_summary(evaluated)
                    entry["alerts"] += reasons
                except DwmlError as exc:
                    entry["performance"] = {"error": exc.message, "hint": exc.hint, "alert": True}
                    entry["alerts"].append(f"performance check failed: {exc.message}")
                step.summary = "alert" if entry["performance"].get("alert") else "ok"
            entry["alert"] = bool(entry["alerts"])
            entries.append(entry)
    notes = [] if entries else [f"no model has the alias {alias!r}: nothing to monitor (deploy one with "
                                "`dwml deploy NAME --version N`)."]
    return {"alias": alias, "after": iso(after), "before": iso(before), "window": window, "models": entries,
            "alerting": [e["model_name"] for e in entries if e["alert"]], "rule": ALERT_RULE, "notes": notes,
            "seconds": round(time.perf_counter() - started, 3), "alert": any(e["alert"] for e in entries)}
