"""The model card of one model version: `dwml report NAME [--version N] [--output PATH]`.

One self-contained HTML file (styles inline, plots as inline SVG images, no external URL, so
it opens offline and can be mailed or attached to a ticket) with:

- **summary**: model, version, aliases, task, algorithm, when and by whom it was trained;
- **data**: the feature model and label, the training set's fingerprint and split, and the
  training-time profile of every feature (from dwml.reference_profiles);
- **gates**: the decisions the training run's gates took;
- **metrics**: the holdout metrics recorded at registration, with ROC, precision-recall and
  calibration plots (binary classification) or residual plots (regression);
- **importance**: the model's own global importance per original feature;
- **drift**: PSI per feature and drift check over time, as a heatmap (dwml.drift_metrics);
- **performance**: metrics on matured labels over time (dwml.performance_metrics);
- **versions**: every version of the model and the history of its aliases.

Holdout predictions are not stored by training, so the curves come from the version's
artifact scored on its holdout split **rebuilt from the warehouse**: the training query of the
version's spec, split as the run recorded (the time split's cut, or the random split's
fraction and seed). The rebuilt set's fingerprint is compared with the run's, and the
recomputed metrics with the registered ones; the report says whether they match (they differ
when the feature or label tables changed since training). `rebuild_holdout=False` skips it.

This module gathers the data (`gather`) and writes the file (`create_report`); plots are drawn
by dwml_py.report_plots and the page by dwml_py.report_html.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from sqlglot import exp

from dwml_py import model_registry as registry
from dwml_py import sql as sqlmod
from dwml_py.errors import DwmlError, InputError
from dwml_py.progress import SILENT, Progress
from dwml_py.report_html import SECTIONS  # the card's sections, in order
from dwml_py.rows import ensure_once, select_rows, utcnow
from dwml_py.run_records import get_run

DEFAULT_ALIAS = "production"
MAX_DRIFT_RUNS = 30  # heatmap columns: the latest checks
MAX_SCATTER_POINTS = 5_000  # residual plots: a seeded sample beyond this
_METRIC_TOLERANCE = 1e-9


# -- which version ---------------------------------------------------------------------------------

def resolve_version(warehouse, name: str, version: int | None = None, alias: str | None = None) -> dict:
    """The version to report on: `version`, else `alias`, else production when set, else the latest."""
    if version is None and alias is None and DEFAULT_ALIAS in registry.current_aliases(warehouse, name):
        alias = DEFAULT_ALIAS
    return registry.get_version(warehouse, name, version=version, alias=alias)


# -- the pieces ------------------------------------------------------------------------------------

def _eq(column: str, value) -> exp.Expression:
    return sqlmod.column(column).eq(sqlmod.literal(value))


def _run_or_none(warehouse, run_id: str | None) -> dict | None:
    if not run_id:
        return None
    try:
        return get_run(warehouse, run_id)
    except DwmlError:
        return None  # the version outlived its run record: the card shows what the version holds


def profile_summary(warehouse, name: str, version: int) -> list[dict]:
    """The version's training-time profile, one entry per feature (and the score)."""
    rows = select_rows(warehouse, "reference_profiles", exp.and_(_eq("model_name", name), _eq("version", version)),
                       order_by=[sqlmod.column("kind"), sqlmod.column("feature")])
    out = []
    for r in rows:
        categories = r.get("categories") or []
        out.append({"feature": r["feature"], "kind": r["kind"], "rows": r.get("row_count"),
                    "missing_rate": r.get("missing_rate"), "mean": r.get("mean"), "std": r.get("std"),
                    "bins": len(r.get("bin_counts") or []), "categories": len(categories) or None,
                    "top_categories": [str(c) for c in categories[:5]]})
    return out


def gates_summary(run: dict | None) -> list[dict]:
    """The run's gate decisions, in the order the gates run."""
    from dwml_py.training_run import GATES

    gates = (run or {}).get("gates") or {}
    if not isinstance(gates, dict):
        return []
    out = []
    for gate, decision in sorted(gates.items(), key=lambda kv: (GATES.index(kv[0]) if kv[0] in GATES else len(GATES),
                                                                kv[0])):
        decision = decision if isinstance(decision, dict) else {"decision": decision}
        out.append({"gate": gate, "passed": decision.get("passed"), "decision": decision.get("decision"),
                    "audit_event_id": decision.get("audit_event_id"), "estimate": decision.get("estimate")})
    return out


def importance(model) -> dict:
    """The model's own importance per original feature, largest first."""
    from dwml_py.explain import model_importance

    kind, shares = model_importance(model)
    ordered = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"kind": kind, "features": [{"feature": f, "share": float(s)} for f, s in ordered]}


def drift_history(warehouse, name: str, limit: int = MAX_DRIFT_RUNS) -> dict:
    """PSI per feature and drift check (the latest `limit` checks, oldest first), with each check's verdict."""
    from dwml_py.drift import DATASET_FEATURE

    rows = select_rows(warehouse, "drift_metrics",
                       exp.and_(_eq("model_name", name),
                                exp.In(this=sqlmod.column("statistic"),
                                       expressions=[sqlmod.literal("psi"), sqlmod.literal("drift_share")])),
                       order_by=[sqlmod.column("computed_at"), sqlmod.column("drift_run_id")])
    runs: dict[str, dict] = {}
    psi: dict[str, dict[str, float | None]] = {}
    for r in rows:
        run = runs.setdefault(r["drift_run_id"], {
            "drift_run_id": r["drift_run_id"], "computed_at": r["computed_at"], "version": r["version"],
            "current_window": r.get("current_window"), "share": None, "is_drift": None, "drifting": []})
        if r["feature"] == DATASET_FEATURE:
            run.update(share=r["value"], is_drift=r["is_drift"])
        else:
            psi.setdefault(r["feature"], {})[r["drift_run_id"]] = r["value"]
            if r["is_drift"]:
                run["drifting"].append(r["feature"])
    ordered = list(runs.values())
    shown = ordered[-limit:] if limit else ordered
    kept = {r["drift_run_id"] for r in shown}
    features = sorted(f for f, by_run in psi.items() if kept & set(by_run))
    return {"runs": shown, "total_runs": len(ordered), "features": features,
            "psi": {f: {k: v for k, v in psi[f].items() if k in kept} for f in features}}


def performance_history(warehouse, name: str) -> list[dict]:
    rows = select_rows(warehouse, "performance_metrics", _eq("model_name", name),
                       order_by=[sqlmod.column("window_end"), sqlmod.column("computed_at"), sqlmod.column("metric")])
    return [{k: r.get(k) for k in ("evaluation_id", "version", "window_start", "window_end", "metric", "value",
                                   "baseline", "is_degraded", "row_count", "computed_at")} for r in rows]


# -- the rebuilt holdout ---------------------------------------------------------------------------

def rebuild_holdout(warehouse, model, run: dict | None):
    """(holdout Arrow table, info) of a version, rebuilt from the warehouse as its run split it."""
    from dwml_py.training_set import TrainingSpec, build_training_query, fetch_training_table, fingerprint, split

    if not model.spec:
        raise InputError("The version's artifact records no training spec, so its holdout cannot be rebuilt.",
                         hint="retrain the model with `dwml train` (its artifacts carry the spec).")
    spec = TrainingSpec.from_dict(model.spec)
    query = build_training_query(spec, warehouse.dialect, asof_join=warehouse.capabilities.asof_join)
    info: dict = {"fingerprint_then": (run or {}).get("data_fingerprint"), "fingerprint_now": None}
    try:
        info["fingerprint_now"] = fingerprint(warehouse, query)["hash"]
    except DwmlError as exc:  # an engine without a fingerprint: the comparison is left open
        info["fingerprint_note"] = exc.message
    info["same_data"] = (info["fingerprint_now"] == info["fingerprint_then"]
                         if info["fingerprint_now"] and info["fingerprint_then"] else None)
    params = (run or {}).get("params") or {}
    recorded = params.get("split") or {}
    method = recorded.get("method") or params.get("split_method") or ("time" if spec.timestamp else "random")
    if method == "time" and recorded.get("cut") and spec.timestamp:
        # The holdout of a time split is every row at or after the cut: fetch only those.
        cut = exp.cast(sqlmod.literal(str(recorded["cut"]).replace("T", " ")), exp.DataType.Type.TIMESTAMP)
        held = (exp.select(*[sqlmod.column(c, "t") for c in spec.output_columns])
                .from_(query.subquery("t"))
                .where(exp.GTE(this=sqlmod.column(spec.timestamp, "t"), expression=cut)))
        holdout = fetch_training_table(warehouse, held)
        info.update(method="time", cut=recorded["cut"])
    else:
        table = fetch_training_table(warehouse, query)
        fraction = float(params.get("holdout_fraction") or 0.2)
        seed = int(params.get("seed") or 0)
        _, holdout, _ = split(table, spec, method=method, holdout_fraction=fraction, seed=seed)
        info.update(method=method, holdout_fraction=fraction, seed=seed)
    info["rows"] = holdout.num_rows
    return holdout, info


def holdout_curves(model, holdout) -> dict:
    """Recomputed holdout metrics and the points of the plots: ROC, PR and calibration (binary
    classification) or actual vs predicted (regression)."""
    from sklearn import metrics as skm

    from dwml_py.training import evaluate

    evaluation = evaluate(model, holdout)
    out = {"metrics": evaluation["metrics"], "calibration": evaluation["calibration"], "task": model.task}
    if model.task == "regression":
        actual = np.asarray(holdout.column(model.label).to_pylist(), dtype=np.float64)
        predicted = model.predict(holdout)
        if len(actual) > MAX_SCATTER_POINTS:
            keep = np.sort(np.random.default_rng(0).choice(len(actual), MAX_SCATTER_POINTS, replace=False))
            actual, predicted = actual[keep], predicted[keep]
            out["sampled"] = MAX_SCATTER_POINTS
        out.update(actual=actual.tolist(), predicted=predicted.tolist())
        return out
    if not model.classes or len(model.classes) != 2:
        out["note"] = "ROC, PR and calibration plots are drawn for binary classification only."
        return out
    y = np.asarray([v == model.positive_class for v in holdout.column(model.label).to_pylist()], dtype=np.int64)
    if len(np.unique(y)) < 2:
        out["note"] = "the rebuilt holdout holds one class only: no ROC or PR curve."
        return out
    score = model.predict_score(holdout)
    fpr, tpr, _ = skm.roc_curve(y, score)
    precision, recall, _ = skm.precision_recall_curve(y, score)
    out["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(skm.roc_auc_score(y, score))}
    out["pr"] = {"recall": recall.tolist(), "precision": precision.tolist(),
                 "average_precision": float(skm.average_precision_score(y, score)), "base_rate": float(y.mean())}
    return out


def compare_metrics(registered: dict | None, recomputed: dict) -> dict:
    """{metric: {"registered", "recomputed"}} for the metrics both have, and whether all agree."""
    pairs = {}
    for key, value in sorted((registered or {}).items()):
        again = recomputed.get(key)
        if isinstance(value, (int, float)) and isinstance(again, (int, float)):
            pairs[key] = {"registered": float(value), "recomputed": float(again)}
    agree = all(math.isclose(p["registered"], p["recomputed"], rel_tol=_METRIC_TOLERANCE, abs_tol=_METRIC_TOLERANCE)
                for p in pairs.values())
    return {"metrics": pairs, "match": agree if pairs else None}


# -- everything ------------------------------------------------------------------------------------

def gather(warehouse, store, name: str, version: int | None = None, alias: str | None = None,
           rebuild: bool = True, progress: Progress = SILENT) -> dict:
    """Everything the model card shows, JSON-ready. `store`: the ArtifactStore holding the artifact."""
    from dwml_py.versions import package_versions

    ensure_once(warehouse)
    row = resolve_version(warehouse, name, version=version, alias=alias)
    number = int(row["version"])
    run = _run_or_none(warehouse, row.get("run_id"))
    notes: list[str] = []
    if row.get("run_id") and run is None:
        notes.append(f"run {row['run_id']} of this version is not in dwml.runs any more.")
    data = {
        "model_name": name, "version": number, "version_row": row, "run": run,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "dwml_version": package_versions().get("dwml"),
        "profile": profile_summary(warehouse, name, number),
        "gates": gates_summary(run),
        "metrics": row.get("metrics") or {},
        "versions": registry.get_model_versions(warehouse, name),
        "alias_history": registry.alias_history(warehouse, name),
        "notes": notes,
    }
    model = None
    with progress.step(f"Loading {name} version {number}") as step:
        try:
            model = registry.load_version_model(store, row)
            step.summary = f"{model.algorithm}, {len(model.features)} features"
        except DwmlError as exc:
            step.summary = "not loadable"
            notes.append(f"the artifact could not be loaded ({exc.message}): no importance and no curves.")
    data["spec"] = (model.spec if model else None) or {}
    data["model"] = ({"label": model.label, "classes": model.classes, "threshold": model.threshold,
                      "params": model.params, "dropped": model.dropped} if model else None)
    data["importance"] = importance(model) if model else None
    data["holdout"] = {"status": "skipped", "reason": "not asked for (--no-rebuild-holdout)."}
    if model is None:
        data["holdout"] = {"status": "unavailable", "reason": "the artifact could not be loaded."}
    elif rebuild:
        with progress.step("Rebuilding the holdout from the warehouse") as step:
            try:
                table, info = rebuild_holdout(warehouse, model, run)
                curves = holdout_curves(model, table)
                data["holdout"] = {"status": "rebuilt", **info, "curves": curves,
                                   "check": compare_metrics(row.get("metrics"), curves["metrics"])}
                step.summary = f"{info['rows']:,} rows"
            except DwmlError as exc:
                data["holdout"] = {"status": "unavailable", "reason": exc.message}
                step.summary = "unavailable"
    with progress.step("Reading drift and performance history"):
        data["drift"] = drift_history(warehouse, name)
        data["performance"] = performance_history(warehouse, name)
    return data


def default_output(project, name: str, version: int) -> Path:
    """target/dwml_reports/NAME-vN.html: next to dbt's own generated docs, out of git."""
    return project.target_dir / "dwml_reports" / f"{name}-v{version}.html"


def report_path(project, output: str | Path | None, name: str, version: int, force: bool = False,
                allow_outside: bool = False) -> Path:
    """Where the card goes: `output` (a file, or a folder for NAME-vN.html) or the default, confined
    to the project, its target and artifact folders; an existing file dwml did not write is kept
    unless `force` (dwml_py.file_output)."""
    from dwml_py.file_output import check_replaceable, confined

    path = confined(project, output if output else default_output(project, name, version), "the report",
                    allow_outside=allow_outside)
    if path.is_dir():
        path = path / f"{name}-v{version}.html"
    check_replaceable(path, force, "pass --force to replace it, or --output another file.")
    return path


def write_report(data: dict, output: Path, force: bool = False) -> dict:
    """Draw the plots, render the page and write it to `output` (see `report_path`); the tool's result."""
    from dwml_py.file_output import stamp, write_files
    from dwml_py.report_html import render_html
    from dwml_py.report_plots import draw_plots

    plots = draw_plots(data)
    page = render_html(data, plots)
    doctype, _, body = page.partition("\n")
    # the checksum header lets a later run tell its own card (replaced) from a file it must keep
    page = stamp(body, "html", f"the model card of {data['model_name']} version {data['version']} "
                 "(`dwml report`)", first_line=doctype)
    output = Path(output)
    if output.is_dir():
        output = output / f"{data['model_name']}-v{data['version']}.html"
    write_files({output: page}, force, hint="pass --force to replace it, or --output another file.")
    return {"path": str(output.resolve()), "bytes": len(page.encode("utf-8")), "sections": list(SECTIONS),
            "plots": sorted(plots), "empty_sections": empty_sections(data), "model_name": data["model_name"],
            "version": data["version"], "holdout": {k: data["holdout"].get(k) for k in
                                                    ("status", "reason", "rows", "same_data")
                                                    if k in data["holdout"]},
            "metrics_match": (data["holdout"].get("check") or {}).get("match"), "notes": data["notes"]}


def empty_sections(data: dict) -> list[str]:
    """Sections shown with an empty-state message instead of content."""
    empty = []
    if not data["gates"]:
        empty.append("gates")
    if not data["importance"]:
        empty.append("importance")
    if not data["drift"]["runs"]:
        empty.append("drift")
    if not data["performance"]:
        empty.append("performance")
    return empty


def create_report(project, name: str, version: int | None = None, alias: str | None = None,
                  output: str | Path | None = None, rebuild: bool = True, progress: Progress = SILENT,
                  force: bool = False, allow_outside: bool = False) -> dict:
    """Gather, draw and write the model card of a version; see the module doc."""
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.warehouse import connect

    registry.check_name(name, "Model name")
    if output:  # refused before the minutes of gathering: nothing is written then
        report_path(project, output, name, version or 0, force=force, allow_outside=allow_outside)
    with connect(project) as warehouse:
        data = gather(warehouse, ArtifactStore.for_project(project), name, version=version, alias=alias,
                      rebuild=rebuild, progress=progress)
    path = report_path(project, output, name, data["version"], force=force, allow_outside=allow_outside)
    with progress.step("Drawing the plots and writing the page") as step:
        result = write_report(data, path, force=force)
        step.summary = f"{result['bytes'] / 1024:,.0f} KB"
    return result
