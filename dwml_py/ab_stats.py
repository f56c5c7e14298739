"""Statistics of a champion/challenger comparison on the same labelled rows (pure functions).

* `paired_bootstrap`: the difference of a metric (challenger minus champion) with a percentile
  confidence interval over resamples of the *rows* (both models see the same resampled rows,
  which is what makes it paired), seeded; its two-sided p-value is twice the smaller share of
  resampled differences on either side of 0 (at most 1).
* `delong_test`: DeLong, DeLong & Clarke-Pearson (1988) test of two correlated ROC AUCs, with
  the structural components computed from midranks (Sun & Xu 2014, O(n log n)).
* `mcnemar_test`: McNemar's test on the discordant pairs of two classifiers' correct/incorrect
  calls: the exact two-sided binomial test when there are fewer than `exact_below` (25)
  discordant pairs, else the chi-square statistic with continuity correction,
  (|b - c| - 1)^2 / (b + c), on 1 degree of freedom.
* `verdict`: challenger_better / champion_better / no_difference by a stated rule.

>>> y = np.array([0, 0, 1, 1]); auc(y, np.array([0.1, 0.4, 0.35, 0.8]))
0.75
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

VERDICTS = ("challenger_better", "champion_better", "no_difference")
MCNEMAR_EXACT_BELOW = 25


# -- metrics of one model on (label, score) -------------------------------------------------------

def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic on midranks (ties count one half); None with one class.

    Equal to sklearn.metrics.roc_auc_score, and fast enough to run once per bootstrap resample.
    """
    y = np.asarray(y)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = stats.rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _two_classes(y) -> bool:
    return 0 < int(np.sum(y)) < len(y)


def _pr_auc(y, score, threshold):
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score)) if _two_classes(y) else None


def _log_loss(y, score, threshold):
    from sklearn.metrics import log_loss

    return float(log_loss(y, score, labels=[0, 1]))


def _f1(y, score, threshold):
    from sklearn.metrics import f1_score

    return float(f1_score(y, (score >= threshold).astype(int), zero_division=0))


def _r2(y, pred, threshold):
    from sklearn.metrics import r2_score

    return float(r2_score(y, pred)) if len(y) > 1 else None


# name -> (function(y, score, threshold) -> value or None, higher is better, task). The same
# definitions as dwml_py.training.binary_metrics / regression_metrics (sklearn), so a
# comparison means what the holdout metrics meant.
METRICS: dict[str, tuple[Callable, bool, str]] = {
    "roc_auc": (lambda y, s, t: auc(y, s), True, "classification"),
    "pr_auc": (_pr_auc, True, "classification"),
    "log_loss": (_log_loss, False, "classification"),
    "brier": (lambda y, s, t: float(np.mean((s - y) ** 2)), False, "classification"),
    "accuracy": (lambda y, s, t: float(np.mean((s >= t).astype(int) == y)), True, "classification"),
    "f1": (_f1, True, "classification"),
    "rmse": (lambda y, p, t: float(np.sqrt(np.mean((y - p) ** 2))), False, "regression"),
    "mae": (lambda y, p, t: float(np.mean(np.abs(y - p))), False, "regression"),
    "r2": (_r2, True, "regression"),
}


def metric_value(metric: str, y: np.ndarray, score: np.ndarray, threshold: float | None = 0.5) -> float | None:
    return METRICS[metric][0](y, score, threshold)


# -- paired bootstrap -----------------------------------------------------------------------------

def paired_bootstrap(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, metric: str, *,
                     resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                     threshold_a: float | None = 0.5, threshold_b: float | None = 0.5) -> dict:
    """{difference, ci_low, ci_high, p_value, resamples, skipped} of metric(b) - metric(a).

    Resamples where the metric is undefined for either model (one class drawn) are skipped and
    counted; the percentile interval uses the others.
    """
    y, score_a, score_b = np.asarray(y), np.asarray(score_a, dtype=np.float64), np.asarray(score_b, dtype=np.float64)
    fn = METRICS[metric][0]
    value_a, value_b = fn(y, score_a, threshold_a), fn(y, score_b, threshold_b)
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = []
    for _ in range(int(resamples)):
        idx = rng.integers(0, n, n)
        a, b = fn(y[idx], score_a[idx], threshold_a), fn(y[idx], score_b[idx], threshold_b)
        if a is not None and b is not None:
            diffs.append(b - a)
    diffs = np.asarray(diffs)
    out = {"champion_value": value_a, "challenger_value": value_b,
           "difference": None if value_a is None or value_b is None else value_b - value_a,
           "ci_low": None, "ci_high": None, "p_value": None, "confidence": confidence,
           "resamples": int(resamples), "skipped": int(resamples) - len(diffs), "seed": seed}
    if len(diffs):
        tail = (1 - confidence) / 2
        out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(diffs, [tail, 1 - tail]))
        out["p_value"] = float(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))
    return out


# -- DeLong ----------------------------------------------------------------------------------------

def delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(aucs (k,), V10 (k, m) per positive, V01 (k, n) per negative) of k score rows.

    V10[r, i] is the share of negatives that positive i outranks (ties one half) under model r;
    V01[r, j] the share of positives that outrank negative j. Each model's AUC is the mean of either.
    """
    y = np.asarray(y)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong's test needs both classes among the labels")
    v10, v01 = np.empty((len(scores), m)), np.empty((len(scores), n))
    for r in range(len(scores)):
        tz = stats.rankdata(np.concatenate([pos[r], neg[r]]))
        v10[r] = (tz[:m] - stats.rankdata(pos[r])) / n
        v01[r] = 1.0 - (tz[m:] - stats.rankdata(neg[r])) / m
    return v10.mean(axis=1), v10, v01


def delong_test(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, confidence: float = 0.95) -> dict:
    """DeLong's test of AUC(b) - AUC(a) on the same rows: {auc_a, auc_b, difference, se, z, p_value,
    ci_low, ci_high} (a normal interval); z is None (p 1) when the difference has no variance."""
    aucs, v10, v01 = delong_components(y, np.vstack([score_a, score_b]))
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.cov(v10) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(v01) if n > 1 else np.zeros((2, 2))
    cov = s10 / m + s01 / n
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    difference = float(aucs[1] - aucs[0])
    se = math.sqrt(variance) if variance > 0 else 0.0
    z = difference / se if se > 0 else None
    p = float(2 * stats.norm.sf(abs(z))) if z is not None else 1.0
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * se
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": difference, "se": se, "z": z,
            "p_value": p, "ci_low": difference - half, "ci_high": difference + half}


# -- McNemar ---------------------------------------------------------------------------------------

def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray, exact_below: int = MCNEMAR_EXACT_BELOW) -> dict:
    """McNemar's test: {b (only a right), c (only b right), statistic, p_value, method}."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    discordant = b + c
    if discordant < exact_below:
        p = 1.0 if discordant == 0 else float(min(1.0, 2 * stats.binom.cdf(min(b, c), discordant, 0.5)))
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": p,
                "method": f"McNemar exact binomial ({discordant} discordant pairs < {exact_below})"}
    statistic = (abs(b - c) - 1) ** 2 / discordant
    return {"b": b, "c": c, "statistic": float(statistic), "p_value": float(stats.chi2.sf(statistic, 1)),
            "method": f"McNemar chi-square with continuity correction ({discordant} discordant pairs)"}


# -- verdict ---------------------------------------------------------------------------------------

def verdict_rule(metric: str, confidence: float, alpha: float, test: str) -> str:
    """The rule `verdict` applies, in words (stored with every comparison)."""
    side = "above" if METRICS[metric][1] else "below"
    other = "below" if side == "above" else "above"
    return (f"challenger_better when the {confidence:.0%} paired bootstrap CI of challenger - champion {metric} "
            f"lies entirely {side} 0 and the {test} p-value < {alpha}; champion_better when it lies entirely "
            f"{other} 0 and p < {alpha}; otherwise no_difference")


def verdict(metric: str, ci_low: float | None, ci_high: float | None, p_value: float | None,
            alpha: float = 0.05) -> str:
    """challenger_better / champion_better / no_difference (see `verdict_rule`).

    >>> verdict("roc_auc", 0.01, 0.03, 0.002), verdict("log_loss", 0.01, 0.03, 0.002)
    ('challenger_better', 'champion_better')
    """
    if ci_low is None or ci_high is None or p_value is None or p_value >= alpha:
        return "no_difference"
    higher_is_better = METRICS[metric][1]
    if ci_low > 0:
        return "challenger_better" if higher_is_better else "champion_better"
    if ci_high < 0:
        return "champion_better" if higher_is_better else "challenger_better"
    return "no_difference"
