"""The model card as one self-contained HTML page (see dwml_py.report for what it shows).

Every value that comes from the warehouse, the dbt project or the user goes through `_e`
(html.escape): model, feature, column and alias names, reasons and descriptions can hold
anything. Plots are SVG images inlined as data: URIs in <img> elements, which browsers render
without running scripts or loading anything; a Content-Security-Policy forbids scripts and
every other URL besides, so the page stays inert even if a value ever slipped through.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re

SECTIONS = ("summary", "data", "gates", "metrics", "importance", "drift", "performance", "versions")

TITLES = {"summary": "Summary", "data": "Data", "gates": "Gates", "metrics": "Metrics",
          "importance": "Feature importance", "drift": "Drift over time", "performance": "Performance over time",
          "versions": "Versions and aliases"}
HEADLINE = {"classification": ("roc_auc", "pr_auc", "log_loss", "f1", "accuracy"), "regression": ("rmse", "mae", "r2")}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d232b;
background:#f6f7f9;line-height:1.45}
header{background:#1d3557;color:#fff;padding:1.2rem 2rem}header h1{margin:0;font-size:1.6rem}
header p{margin:.3rem 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #dde1e6;padding:.5rem 2rem;position:sticky;top:0}
nav a{margin-right:1rem;color:#1d3557;text-decoration:none;font-size:.92rem}
main{padding:0 2rem 2rem;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:1.2rem 0;padding:1rem 1.4rem}
h2{margin:.2rem 0 .8rem;font-size:1.25rem;color:#1d3557}h3{font-size:1rem;margin:1rem 0 .4rem}
table{border-collapse:collapse;font-size:.88rem;margin:.4rem 0 .8rem}
th,td{border-bottom:1px solid #e4e7eb;padding:.25rem .7rem .25rem 0;text-align:left;vertical-align:top}
th{color:#4a5563;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{width:14rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:.6rem 0}
.card{border:1px solid #dde1e6;border-radius:6px;padding:.5rem .9rem;min-width:7rem}
.card .v{font-size:1.3rem;font-weight:600}.card .k{font-size:.8rem;color:#4a5563}
.plots{display:flex;flex-wrap:wrap;gap:1rem}
img.plot{max-width:100%;height:auto;border:1px solid #eef0f3;border-radius:4px;background:#fff}
.empty{color:#4a5563;background:#f3f5f7;border-left:4px solid #a0aab8;padding:.6rem .9rem}
.ok{color:#1e7e34;font-weight:600}.bad{color:#b02a37;font-weight:600}.warn{color:#8a6100}
code{background:#f0f2f5;padding:0 .25rem;border-radius:3px}
ul.notes li{color:#8a6100}
footer{color:#6b7480;font-size:.8rem;padding:0 2rem 2rem}
"""


# -- escaping and formatting -------------------------------------------------------------------------

def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")


def _fmt(value) -> str:
    """A cell's text, escaped: numbers rounded, booleans as yes/no, lists and dicts as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, (dict, list)):
        return _e(json.dumps(value, sort_keys=True, default=str))
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return _e(value[:19].replace("T", " "))  # seconds are enough for a reader; the tables keep the rest
    return _e(value)


def _cell(value) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{_fmt(value)}</td>' if numeric else f"<td>{_fmt(value)}</td>"


def _table(headers: list[str], rows: list[list], table_id: str | None = None) -> str:
    ident = f' id="{_e(table_id)}"' if table_id else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(pairs: list[tuple[str, object]], table_id: str | None = None) -> str:
    ident = f' id="{_e(table_id)}"' if table_id else ""
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv"{ident}><tbody>{rows}</tbody></table>'


def _empty(element_id: str, message: str) -> str:
    return f'<p class="empty" id="{_e(element_id)}">{message}</p>'


_SIZE = re.compile(rb'<svg[^>]*?width="([\d.]+)pt"[^>]*?height="([\d.]+)pt"')


def _img(element_id: str, svg: bytes, alt: str) -> str:
    size = _SIZE.search(svg[:2000])
    dims = (f' width="{round(float(size.group(1)) * 4 / 3)}" height="{round(float(size.group(2)) * 4 / 3)}"'
            if size else "")
    data = base64.b64encode(svg).decode("ascii")
    return f'<img id="{_e(element_id)}" class="plot" alt="{_e(alt)}"{dims} src="data:image/svg+xml;base64,{data}">'


def _status(passed) -> str:
    if passed is None:
        return "—"
    return '<span class="ok">passed</span>' if passed else '<span class="bad">refused</span>'


def _section(section_id: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{_e(TITLES[section_id])}</h2>{body}</section>'


# -- the sections ------------------------------------------------------------------------------------

def _summary(data: dict) -> str:
    row, run, spec = data["version_row"], data["run"] or {}, data["spec"]
    task = row.get("task") or spec.get("task")
    metrics = data["metrics"]
    cards = "".join(f'<div class="card"><div class="v">{_fmt(metrics[k])}</div><div class="k">{_e(k)}</div></div>'
                    for k in HEADLINE.get(task, ()) if k in metrics)
    current = [f"{a['alias']} → v{a['version']}" for a in _current_aliases(data["alias_history"])]
    pairs = [("model", data["model_name"]), ("version", data["version"]),
             ("aliases of this version", ", ".join(row.get("aliases") or []) or None),
             ("current aliases", ", ".join(current) or None), ("task", task), ("algorithm", row.get("algorithm")),
             ("feature model", row.get("feature_model")), ("label", run.get("label")),
             ("registered", row.get("created_at")), ("registered by", row.get("created_by")),
             ("description", row.get("description")), ("run", row.get("run_id")), ("run status", run.get("status"))]
    notes = "".join(f"<li>{_e(n)}</li>" for n in data["notes"])
    return ((f'<div class="cards" id="headline-metrics">{cards}</div>' if cards else "") + _kv(pairs, "summary-table")
            + (f'<ul class="notes">{notes}</ul>' if notes else ""))


def _current_aliases(history: list[dict]) -> list[dict]:
    current: dict[str, dict] = {}
    for move in history:  # oldest first: later moves win
        current[move["alias"]] = move
    return [current[a] for a in sorted(current)]


def _data(data: dict) -> str:
    row, run, spec = data["version_row"], data["run"] or {}, data["spec"]
    split = (run.get("params") or {}).get("split") or {}
    pairs = [("feature model", row.get("feature_model") or spec.get("feature_model")),
             ("feature table", ".".join(p for p in (spec.get("feature_schema"), spec.get("feature_table")) if p)
              or None),
             ("label", run.get("label") or (f"{spec.get('label_table')}.{spec.get('label_column')}" if spec else None)),
             ("entity", ", ".join(spec.get("entity") or []) or None), ("timestamp", spec.get("timestamp")),
             ("label join", spec.get("join")), ("label horizon (days)", spec.get("horizon_days")),
             ("training rows", run.get("row_count")), ("data fingerprint", run.get("data_fingerprint")),
             ("manifest checksum", run.get("manifest_checksum")), ("dbt invocation", run.get("dbt_invocation_id")),
             ("git commit", run.get("git_sha")), ("seed", run.get("seed")), ("split", split.get("method")),
             ("split cut", split.get("cut")), ("train / holdout rows",
                                               f"{split['train_rows']:,} / {split['holdout_rows']:,}"
                                               if "train_rows" in split and "holdout_rows" in split else None)]
    out = _kv([(k, v) for k, v in pairs if v is not None], "data-table")
    features = row.get("features") or []
    if features:
        out += "<h3>Features</h3>" + _table(
            ["feature", "kind", "type", "encoding", "missing values"],
            [[f.get("name"), f.get("kind"), f.get("type"), f.get("encoding"), f.get("missing")]
             if isinstance(f, dict) else [f, None, None, None, None] for f in features], "features-table")
    dropped = (data["model"] or {}).get("dropped") or []
    if dropped:
        out += "<h3>Dropped before fitting</h3>" + _table(
            ["column", "why"], [[d.get("name"), d.get("reason")] for d in dropped], "dropped-table")
    if data["profile"]:
        out += "<h3>Training-time profile</h3>" + _table(
            ["feature", "kind", "rows", "missing rate", "mean", "std", "bins / categories", "top categories"],
            [[p["feature"], p["kind"], p["rows"], p["missing_rate"], p["mean"], p["std"],
              p["categories"] or p["bins"] or None, ", ".join(p["top_categories"]) or None] for p in data["profile"]],
            "profile-table")
    else:
        out += _empty("profile-empty", "No training-time profile is stored for this version "
                      "(dwml.reference_profiles); versions trained with <code>dwml train</code> have one.")
    return out


def _gates(data: dict) -> str:
    gates = data["gates"]
    if not gates:
        return _empty("gates-empty", "No gate decisions are recorded for this version's run: it was registered "
                      "from a tracked run that did not go through <code>dwml train</code>'s gates.")
    passed = all(g["passed"] for g in gates)
    verdict = ('<p class="ok">Every gate passed.</p>' if passed
               else '<p class="bad">Not every gate passed (see the overrides in the audit log).</p>')
    rows = []
    for g in gates:
        estimate = g.get("estimate") or {}
        detail = (f"about {estimate['predicted_seconds']:.0f} s, {estimate['predicted_peak_mb']:.0f} MB"
                  if isinstance(estimate.get("predicted_seconds"), (int, float))
                  and isinstance(estimate.get("predicted_peak_mb"), (int, float)) else None)
        rows.append([g["gate"], g["decision"], g["passed"], detail, g["audit_event_id"]])
    return verdict + _table(["gate", "decision", "passed", "estimate", "audit event"], rows, "gates-table")


def _holdout_text(holdout: dict) -> str:
    status = holdout.get("status")
    if status != "rebuilt":
        return (f'<p class="warn" id="holdout-status">No plots: the holdout was not rebuilt '
                f'({_e(holdout.get("reason"))})</p>')
    how = (f"time split at {_e(holdout.get('cut'))}" if holdout.get("method") == "time"
           else f"{_e(holdout.get('method'))} split, fraction {_fmt(holdout.get('holdout_fraction'))}, "
                f"seed {_fmt(holdout.get('seed'))}")
    same = holdout.get("same_data")
    if same is True:
        data_text = (f'<span class="ok">the training data is unchanged</span> (fingerprint '
                     f'{_e(holdout.get("fingerprint_now"))})')
    elif same is False:
        data_text = (f'<span class="bad">the training data changed since training</span> (fingerprint '
                     f'{_e(holdout.get("fingerprint_then"))} then, {_e(holdout.get("fingerprint_now"))} now): '
                     "the plots describe today's rows")
    else:
        data_text = "whether the data changed is unknown (no fingerprint to compare)"
    check = holdout.get("check") or {}
    if check.get("match") is True:
        check_text = '<span class="ok">the recomputed metrics equal the registered ones</span>'
    elif check.get("match") is False:
        check_text = '<span class="bad">the recomputed metrics differ from the registered ones</span>'
    else:
        check_text = "no registered metric to compare with"
    return (f'<p id="holdout-status">Plots from the version\'s holdout, rebuilt from the warehouse: '
            f"{_fmt(holdout.get('rows'))} rows ({how}); {data_text}; {check_text}.</p>")


def _metrics(data: dict, plots: dict[str, bytes]) -> str:
    metrics = data["metrics"]
    holdout = data["holdout"]
    recomputed = ((holdout.get("check") or {}).get("metrics")) or {}
    if metrics:
        rows = [[k, v, (recomputed.get(k) or {}).get("recomputed")] for k, v in sorted(metrics.items())]
        out = _table(["metric", "registered (holdout)", "recomputed now"], rows, "metrics-table")
    else:
        out = _empty("metrics-empty", "This version was registered without metrics.")
    out += _holdout_text(holdout)
    note = ((holdout.get("curves") or {}).get("note"))
    if note:
        out += f'<p class="warn">{_e(note)}</p>'
    shown = [(pid, alt) for pid, alt in (("plot-roc", "ROC curve"), ("plot-pr", "Precision-recall curve"),
                                          ("plot-calibration", "Calibration plot"), ("plot-residuals", "Residuals"),
                                          ("plot-predicted-actual", "Predicted vs actual")) if pid in plots]
    if shown:
        out += '<div class="plots">' + "".join(_img(pid, plots[pid], alt) for pid, alt in shown) + "</div>"
    bins = (holdout.get("curves") or {}).get("calibration") or []
    if bins:
        out += "<h3>Calibration bins</h3>" + _table(
            ["scores from", "to", "rows", "mean score", "observed rate"],
            [[b["lower"], b["upper"], b["count"], b["mean_score"], b["observed_rate"]] for b in bins],
            "calibration-table")
    return out


def _importance(data: dict, plots: dict[str, bytes]) -> str:
    imp = data["importance"]
    if not imp or not imp["features"]:
        return _empty("importance-empty", "No importance: the version's artifact could not be loaded.")
    out = f"<p>The model's own importance ({_e(imp['kind'].replace('_', ' '))}), as shares summing to 1, per " \
          "original feature (one-hot columns summed back). <code>dwml explain</code> adds permutation importance.</p>"
    if "plot-importance" in plots:
        out += _img("plot-importance", plots["plot-importance"], "Feature importance")
    return out + _table(["rank", "feature", "share"], [[i, f["feature"], f["share"]]
                                                        for i, f in enumerate(imp["features"], 1)], "importance-table")


def _drift(data: dict, plots: dict[str, bytes]) -> str:
    drift, name = data["drift"], data["model_name"]
    if not drift["runs"]:
        return _empty("drift-empty", f"No drift checks are recorded for {_e(name)} yet. Run "
                      f"<code>dwml drift {_e(name)}</code>: its statistics land in dwml.drift_metrics and show here.")
    out = ""
    if drift["total_runs"] > len(drift["runs"]):
        out += f"<p>The latest {len(drift['runs'])} of {drift['total_runs']} drift checks.</p>"
    if "plot-drift" in plots:
        out += _img("plot-drift", plots["plot-drift"], "Drift heatmap: PSI per feature and drift check")
    rows = [[r["computed_at"], r["drift_run_id"], r["version"], r["current_window"], r["share"], r["is_drift"],
             ", ".join(r["drifting"]) or None] for r in drift["runs"]]
    return out + _table(["checked at", "drift check", "version", "compared", "drifting share", "dataset drift",
                         "drifting features"], rows, "drift-table")


def _performance(data: dict, plots: dict[str, bytes]) -> str:
    rows, name = data["performance"], data["model_name"]
    if not rows:
        return _empty("performance-empty", f"No performance on matured labels is recorded for {_e(name)} yet. Run "
                      f"<code>dwml evaluate {_e(name)}</code> once labels have matured: the metrics land in "
                      "dwml.performance_metrics and show here.")
    out = _img("plot-performance", plots["plot-performance"], "Performance over time") if "plot-performance" in plots \
        else ""
    return out + _table(["window start", "window end", "version", "metric", "value", "baseline", "degraded", "rows"],
                        [[r["window_start"], r["window_end"], r["version"], r["metric"], r["value"], r["baseline"],
                          r["is_degraded"], r["row_count"]] for r in rows], "performance-table")


def _versions(data: dict) -> str:
    task = data["version_row"].get("task")
    key = (HEADLINE.get(task) or ("roc_auc",))[0]
    rows = [[v["version"], v.get("created_at"), v.get("created_by"), v.get("status"), v.get("algorithm"),
             (v.get("metrics") or {}).get(key), ", ".join(v.get("aliases") or []) or None, v.get("run_id"),
             v.get("description")] for v in data["versions"]]
    out = _table(["version", "registered", "by", "status", "algorithm", key, "aliases", "run", "description"], rows,
                 "versions-table")
    history = data["alias_history"]
    if history:
        out += "<h3>Alias history</h3>" + _table(
            ["moved at", "alias", "to version", "from version", "reason", "by"],
            [[a.get("set_at"), a.get("alias"), a.get("version"), a.get("previous_version"), a.get("reason"),
              a.get("set_by")] for a in history], "alias-history-table")
    else:
        out += _empty("aliases-empty", f"No alias was ever set: <code>dwml deploy {_e(data['model_name'])} "
                      "--version N</code> sets production.")
    return out


# -- the page ----------------------------------------------------------------------------------------

def render_html(data: dict, plots: dict[str, bytes]) -> str:
    """The whole page, from `report.gather`'s data and `report_plots.draw_plots`'s SVGs."""
    name, version = data["model_name"], data["version"]
    bodies = {"summary": _summary(data), "data": _data(data), "gates": _gates(data),
              "metrics": _metrics(data, plots), "importance": _importance(data, plots),
              "drift": _drift(data, plots), "performance": _performance(data, plots), "versions": _versions(data)}
    nav = "".join(f'<a href="#{s}">{_e(TITLES[s])}</a>' for s in SECTIONS)
    sections = "".join(_section(s, bodies[s]) for s in SECTIONS)
    title = f"Model card: {name} version {version}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(data['version_row'].get('algorithm'))} · "
        f"{_e(data['version_row'].get('task'))} · generated {_e(data['generated_at'])} UTC by dwml "
        f"{_e(data.get('dwml_version'))}</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main>"
        f"<footer>Generated by <code>dwml report {_e(name)} --version {_e(version)}</code> from the tables in schema "
        "dwml. Self-contained: no scripts, no external resources.</footer>"
        "</body></html>\n"
    )
