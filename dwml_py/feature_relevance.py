"""How much one column tells about a target, measured on a sample: the univariate scores behind
`features suggest` (dwml_py.feature_suggestions).

Columns are binned (quantiles for numbers, the most frequent values for categories, nulls apart);
each row is scored by the mean target of its bin in the other half of the sample (out of fold, so a
many-valued column cannot look good by fitting noise), and AUC or correlation and mutual information
are read from that.

>>> import numpy as np
>>> bin_codes(np.array([1.0, 2.0, np.nan, 2.0])).tolist()  # most frequent first, nulls apart
[1, 0, 2, 0]
"""

from __future__ import annotations

import numpy as np

MAX_BINS = 10
MAX_CATEGORIES = 20


def arrow_to_values(array, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(float values with NaN for nulls, integer bin codes with nulls in their own bin)."""
    if kind in ("numeric", "boolean"):
        values = np.array([np.nan if v is None else float(v) for v in array.to_pylist()], dtype=float)
        return values, bin_codes(values)
    items = [None if v is None else str(v) for v in array.to_pylist()]
    order = {v: i for i, v in enumerate(sorted({v for v in items if v is not None}))}
    values = np.array([np.nan if v is None else order[v] for v in items], dtype=float)
    return values, bin_codes(values, categorical=True)


def bin_codes(values: np.ndarray, categorical: bool = False) -> np.ndarray:
    """Quantile bins of a numeric column (few distinct values: one bin each); the most frequent
    categories of a categorical one, the rest together; nulls always in a bin of their own."""
    codes = np.zeros(len(values), dtype=np.int64)
    present = ~np.isnan(values)
    if present.any():
        uniq, counts = np.unique(values[present], return_counts=True)
        if categorical or len(uniq) <= MAX_CATEGORIES:
            keep = uniq[np.argsort(-counts, kind="stable")][:MAX_CATEGORIES]
            lookup = {v: i for i, v in enumerate(keep)}
            codes[present] = [lookup.get(v, len(keep)) for v in values[present]]
        else:
            edges = np.unique(np.quantile(values[present], np.linspace(0, 1, MAX_BINS + 1)[1:-1]))
            codes[present] = np.searchsorted(edges, values[present], side="right")
    codes[~present] = codes.max(initial=0) + 1
    return codes


def out_of_fold(codes: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Each row scored by the (smoothed) mean target of its bin in the other half of the sample:
    an honest univariate score, so a 20-category column cannot look good by fitting noise."""
    n = len(y)
    fold = np.random.default_rng(seed).permutation(n) % 2
    prior, smoothing = float(y.mean()), 10.0
    width = int(codes.max(initial=0)) + 1
    pred = np.empty(n)
    for f in (0, 1):
        train, test = fold != f, fold == f
        sums = np.bincount(codes[train], weights=y[train], minlength=width)
        counts = np.bincount(codes[train], minlength=width)
        pred[test] = ((sums + prior * smoothing) / (counts + smoothing))[codes[test]]
    return pred


def relevance(codes: np.ndarray, y: np.ndarray, task: str, seed: int) -> dict:
    """auc (binary classification) or correlation (regression) out of fold, mutual information
    (sklearn, on the bins, in nats), and `score` in [0, 1] used for ranking."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression
    from sklearn.metrics import roc_auc_score

    out: dict = {"auc": None, "correlation": None}
    x = codes.reshape(-1, 1)
    if task == "classification":
        out["mutual_info"] = float(mutual_info_classif(x, y, discrete_features=True, random_state=seed)[0])
        if len(np.unique(y)) == 2:
            pred = out_of_fold(codes, (y == y.max()).astype(float), seed)
            out["auc"] = float(roc_auc_score(y == y.max(), pred))
            out["score"] = max(0.0, 2 * out["auc"] - 1)
        else:  # multiclass: share of the target's entropy the column explains
            _, counts = np.unique(y, return_counts=True)
            p = counts / counts.sum()
            out["score"] = min(1.0, out["mutual_info"] / float(-(p * np.log(p)).sum() or 1))
    else:
        out["mutual_info"] = float(mutual_info_regression(x, y, discrete_features=True, random_state=seed)[0])
        pred = out_of_fold(codes, y, seed)
        corr = float(np.corrcoef(pred, y)[0, 1]) if pred.std() > 0 and y.std() > 0 else 0.0
        out["correlation"] = corr
        out["score"] = max(0.0, corr)
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    out = np.full(len(values), np.nan)
    present = ~np.isnan(values)
    out[present] = rankdata(values[present])
    return out


def spearman(a_ranks: np.ndarray, b_ranks: np.ndarray) -> float | None:
    both = ~np.isnan(a_ranks) & ~np.isnan(b_ranks)
    if both.sum() < 30:
        return None
    a, b = a_ranks[both], b_ranks[both]
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])
