"""The plots of the model card, drawn with matplotlib (the `report` extra) as SVG.

Each plot is a `Figure` of its own, drawn without pyplot (no global backend, no state shared
between threads) and saved as SVG with text as paths, a fixed hash salt and no date, so the
same data gives the same bytes and the page needs no fonts. `draw_plots(data)` returns
{element id: SVG bytes} for the plots the data allows; report_html embeds each as an <img>.
"""

from __future__ import annotations

import io
from datetime import datetime
import math

from dwml_py.errors import ConfigError

MAX_FEATURES_SHOWN = 20
MAX_LABEL_CHARS = 40
MAX_ANNOTATED_CELLS = 400  # heatmap cells written as numbers; beyond it the colours say it alone
PSI_COLOUR_CAP = 0.5  # the darkest colour of the heatmap: PSI at or above it
_BLUE, _ORANGE, _GREY, _RED = "#1f6fb2", "#e07b24", "#8a8f98", "#c0392b"


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError("dwml report draws its plots with matplotlib, which is not installed.",
                          hint="pip install 'dwml-dbt[report]'") from exc
    return matplotlib, Figure


def _short(text, limit: int = MAX_LABEL_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(fig) -> bytes:
    matplotlib, _ = _matplotlib()
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "dwml-report", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float = 5.2, height: float = 4.0):
    _, Figure = _matplotlib()
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


# -- classification ----------------------------------------------------------------------------------

def roc_plot(roc: dict) -> bytes:
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=1, label="chance")
    ax.plot(roc["fpr"], roc["tpr"], color=_BLUE, linewidth=2, label=f"model (AUC {roc['auc']:.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (holdout)",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _svg(fig)


def pr_plot(pr: dict) -> bytes:
    fig = _figure()
    ax = fig.add_subplot()
    ax.axhline(pr["base_rate"], linestyle="--", color=_GREY, linewidth=1, label=f"base rate {pr['base_rate']:.3f}")
    ax.step(pr["recall"], pr["precision"], where="post", color=_BLUE, linewidth=2,
            label=f"model (AP {pr['average_precision']:.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve (holdout)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return _svg(fig)


def calibration_plot(bins: list[dict]) -> bytes:
    fig = _figure(5.2, 4.8)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    filled = [b for b in bins if b.get("count")]
    top.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=1, label="perfectly calibrated")
    top.plot([b["mean_score"] for b in filled], [b["observed_rate"] for b in filled], marker="o", color=_BLUE,
             linewidth=2, label="model")
    top.set(ylabel="observed positive rate", title="Calibration (holdout, 10 equal-width bins)", ylim=(0, 1.01))
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    widths = [(b["upper"] - b["lower"]) * 0.9 for b in bins]
    bottom.bar(centres, [b.get("count") or 0 for b in bins], width=widths, color=_BLUE, alpha=0.6)
    bottom.set(xlabel="predicted probability", ylabel="rows", xlim=(0, 1))
    return _svg(fig)


# -- regression --------------------------------------------------------------------------------------

def residual_plot(actual: list[float], predicted: list[float]) -> bytes:
    fig = _figure(5.2, 4.0)
    ax = fig.add_subplot()
    residuals = [a - p for a, p in zip(actual, predicted)]
    ax.scatter(predicted, residuals, s=6, alpha=0.4, color=_BLUE, linewidths=0)
    ax.axhline(0, color=_GREY, linestyle="--", linewidth=1)
    ax.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals (holdout)")
    ax.grid(alpha=0.3)
    return _svg(fig)


def predicted_actual_plot(actual: list[float], predicted: list[float]) -> bytes:
    fig = _figure(5.2, 4.0)
    ax = fig.add_subplot()
    ax.scatter(actual, predicted, s=6, alpha=0.4, color=_BLUE, linewidths=0)
    both = _finite(actual) + _finite(predicted)
    if both:
        low, high = min(both), max(both)
        ax.plot([low, high], [low, high], color=_GREY, linestyle="--", linewidth=1, label="predicted = actual")
        ax.legend(loc="upper left")
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (holdout)")
    ax.grid(alpha=0.3)
    return _svg(fig)


# -- importance, drift, performance ------------------------------------------------------------------

def importance_plot(importance: dict) -> bytes:
    shown = importance["features"][:MAX_FEATURES_SHOWN][::-1]  # largest at the top
    fig = _figure(6.4, max(2.2, 0.32 * len(shown) + 1.0))
    ax = fig.add_subplot()
    ax.barh([_short(f["feature"]) for f in shown], [f["share"] for f in shown], color=_BLUE)
    more = len(importance["features"]) - len(shown)
    ax.set(xlabel=f"share of {importance['kind'].replace('_', ' ')}",
           title="Feature importance" + (f" (top {len(shown)} of {len(importance['features'])})" if more else ""))
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def drift_heatmap(drift: dict) -> bytes:
    import numpy as np

    runs, features = drift["runs"], drift["features"]
    matrix = np.full((len(features), len(runs)), np.nan)
    for i, feature in enumerate(features):
        for j, run in enumerate(runs):
            value = drift["psi"][feature].get(run["drift_run_id"])
            if value is not None and math.isfinite(value):
                matrix[i, j] = value
    finite = matrix[np.isfinite(matrix)]
    # Capped so that the moderate (0.1) and major (0.25) bands stay readable next to an extreme value.
    top = PSI_COLOUR_CAP
    fig = _figure(max(5.0, 0.55 * len(runs) + 3.2), max(2.4, 0.3 * len(features) + 1.6))
    ax = fig.add_subplot()
    masked = np.ma.masked_invalid(matrix)
    matplotlib, _ = _matplotlib()
    cmap = matplotlib.colormaps["YlOrRd"].with_extremes(bad="#eeeeee")
    image = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest")
    ax.set_yticks(range(len(features)), [_short(f) for f in features])
    ax.set_xticks(range(len(runs)), [f"{str(r['computed_at'])[:10]}\n{r['drift_run_id'][:6]}" for r in runs],
                  rotation=90 if len(runs) > 6 else 0, fontsize=8)
    if matrix.size <= MAX_ANNOTATED_CELLS:
        for (i, j), value in np.ndenumerate(matrix):
            if math.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value > top * 0.6 else "black")
    fig.colorbar(image, ax=ax, extend="max" if finite.size and finite.max() > top else "neither",
                 label="PSI (0.1 moderate, 0.25 major)")
    ax.set(title="Drift over time: PSI per feature and check", xlabel="drift check (day, id)")
    return _svg(fig)


def performance_plot(rows: list[dict]) -> bytes:
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    metrics = sorted({r["metric"] for r in rows})
    colours = [_BLUE, _ORANGE, "#2e8b57", "#8e44ad", "#7f8c8d", "#d35400"]
    for k, metric in enumerate(metrics):
        mine = [r for r in rows if r["metric"] == metric and r.get("value") is not None]
        when = [iso_day(r.get("window_end") or r.get("computed_at")) for r in mine]
        colour = colours[k % len(colours)]
        ax.plot(when, [r["value"] for r in mine], marker="o", color=colour, label=_short(metric, 24))
        baselines = _finite(r.get("baseline") for r in mine)
        if baselines:
            ax.axhline(baselines[-1], color=colour, linestyle="--", linewidth=1, alpha=0.7)
        degraded = [(w, r["value"]) for w, r in zip(when, mine) if r.get("is_degraded")]
        if degraded:
            ax.scatter(*zip(*degraded), s=60, facecolors="none", edgecolors=_RED, linewidths=1.5, zorder=3)
    ax.set(title="Performance over time (dashed: training holdout; red ring: degraded)", xlabel="window end",
           ylabel="value")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _svg(fig)


# -- all of them -------------------------------------------------------------------------------------

def draw_plots(data: dict) -> dict[str, bytes]:
    """{element id: SVG} of every plot the report data allows."""
    plots: dict[str, bytes] = {}
    curves = (data.get("holdout") or {}).get("curves") or {}
    if curves.get("roc"):
        plots["plot-roc"] = roc_plot(curves["roc"])
    if curves.get("pr"):
        plots["plot-pr"] = pr_plot(curves["pr"])
    if curves.get("roc") and curves.get("calibration"):
        plots["plot-calibration"] = calibration_plot(curves["calibration"])
    if curves.get("task") == "regression" and curves.get("actual"):
        plots["plot-residuals"] = residual_plot(curves["actual"], curves["predicted"])
        plots["plot-predicted-actual"] = predicted_actual_plot(curves["actual"], curves["predicted"])
    if data.get("importance") and data["importance"]["features"]:
        plots["plot-importance"] = importance_plot(data["importance"])
    if data["drift"]["runs"] and data["drift"]["features"]:
        plots["plot-drift"] = drift_heatmap(data["drift"])
    if any(r.get("value") is not None for r in data["performance"]):
        plots["plot-performance"] = performance_plot(data["performance"])
    return plots


def iso_day(value) -> str:
    """A timestamp's day for axis labels ('' when absent)."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value)).date().isoformat()
    except ValueError:
        return str(value)[:10]
