"""Why a model predicts what it does: global importance and per-row contributions, per original
feature (one-hot and missing-indicator columns are summed back into the feature they came from).

Global importance, two kinds:

* **model importance**, from the fitted estimator, as shares summing to 1: XGBoost's
  `total_gain` (the loss reduction of every split on a feature; total rather than the average
  `gain`, because averages of one-hot columns cannot be added up); a random forest's impurity
  decrease (`feature_importances_`); |coefficient| for linear models (on standardised inputs,
  so magnitudes compare; mean over classes for multiclass). Gain and impurity favour features
  with many split points, which is why the second kind exists.
* **permutation importance** (sklearn.inspection.permutation_importance), when the table has
  the label: how much the score drops when one original feature's values are shuffled (the
  whole feature, before preprocessing, so a one-hot feature is permuted as one). Score: ROC
  AUC (binary), negative log loss (multiclass, or binary with one class present), R2 (regression).

Per-row contributions, in the model's additive output space, so `bias + sum(contributions)`
equals the model output for that row (checked and reported as `additivity_error`):

* XGBoost: exact TreeSHAP from the booster (`pred_contribs=True`); the output is the margin
  (log-odds for binary classification, the prediction for regression).
* linear models: coefficient x transformed value, the bias being the intercept; the output is
  the decision function (log-odds) or the prediction.
* random forest: the tree-path (Saabas) decomposition: along each tree's path, the change of
  the node value at a split is credited to the split's feature, averaged over trees; the
  output is the predicted probability (or the prediction). Exactly additive, but unlike SHAP it
  over-credits splits near the leaves; treat it as indicative.

For multiclass models contributions are towards each row's predicted class.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dwml_py.errors import InputError
from dwml_py.preprocessing import to_frame

DEFAULT_ROWS = 5
DEFAULT_SAMPLE_ROWS = 5_000
DEFAULT_REPEATS = 5


# -- transformed column -> source feature ----------------------------------------------------------

def _step_sources(step, sources: list[str]) -> list[str]:
    """The source feature of each output column of one fitted transformer step."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, TargetEncoder

    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            sources = _step_sources(inner, sources)
        return sources
    if isinstance(step, SimpleImputer):
        kept = sources
        stats = getattr(step, "statistics_", None)
        if stats is not None and stats.dtype.kind == "f" and not step.keep_empty_features:
            kept = [s for s, v in zip(sources, stats) if not np.isnan(v)]  # all-missing columns are dropped
        indicator = getattr(step, "indicator_", None)
        return kept + ([sources[i] for i in indicator.features_] if indicator is not None else [])
    if isinstance(step, OneHotEncoder):
        out = []
        drop = getattr(step, "drop_idx_", None)
        for i, categories in enumerate(step.categories_):
            count = len(categories) - (drop is not None and drop[i] is not None)
            out += [sources[i]] * count
        return out
    if isinstance(step, TargetEncoder) and getattr(step, "target_type_", None) == "multiclass":
        return [s for s in sources for _ in step.classes_]
    return list(sources)  # one output per input: scalers, ordinal and binary/continuous target encoders


def source_features(model) -> list[str]:
    """The original feature of every column of `model.transform(...)`, in order."""
    out: list[str] = []
    for name, transformer, columns in model.preprocessor.transformers_:
        if name == "remainder" or (isinstance(transformer, str) and transformer == "drop"):
            continue
        columns = list(columns)
        out += columns if isinstance(transformer, str) else _step_sources(transformer, columns)
    names = model.transformed_names
    if names and len(out) != len(names):
        # A transformer we do not know: match output names to the longest feature name they contain.
        features = sorted(model.feature_names, key=len, reverse=True)
        out = [next((f for f in features if n == f or n.startswith(f + "_") or n.endswith("_" + f)), n) for n in names]
    return out


def _membership(model) -> tuple[list[str], np.ndarray]:
    """(features, matrix M) with M[j, f] = 1 when transformed column j comes from feature f."""
    sources = source_features(model)
    features = list(dict.fromkeys([f for f in model.feature_names if f in sources] + sources))
    index = {f: i for i, f in enumerate(features)}
    matrix = np.zeros((len(sources), len(features)))
    for j, source in enumerate(sources):
        matrix[j, index[source]] = 1.0
    return features, matrix


# -- global importance -------------------------------------------------------------------------

def model_importance(model) -> tuple[str, dict[str, float]]:
    """(kind, {feature: share}) from the estimator itself; shares sum to 1 (see the module doc)."""
    features, member = _membership(model)
    estimator = model.estimator
    width = member.shape[0]
    if model.algorithm == "xgboost":
        kind = "total_gain"
        booster = estimator.get_booster()
        names = booster.feature_names
        position = {n: i for i, n in enumerate(names)} if names else None
        raw = np.zeros(width)
        for key, value in booster.get_score(importance_type="total_gain").items():
            raw[position[key] if position else int(key[1:])] = value  # unnamed features are "f0", "f1", ...
    elif model.algorithm == "random_forest":
        kind, raw = "impurity", np.asarray(estimator.feature_importances_, dtype=np.float64)
    else:
        kind = "abs_coefficient"
        coef = np.abs(np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64)))
        raw = coef.mean(axis=0)
    per_feature = raw @ member
    total = per_feature.sum()
    shares = per_feature / total if total > 0 else per_feature
    return kind, {f: float(v) for f, v in zip(features, shares)}


def _encoded_labels(model, table: pa.Table, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(y, mask of usable rows): labels encoded as in training; NULL and unseen labels are masked."""
    values = table.column(label).to_pylist()
    if model.task == "regression":
        y = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        return y, ~np.isnan(y)
    index = {c: i for i, c in enumerate(model.classes)}
    y = np.array([index.get(v, -1) for v in values], dtype=np.int64)
    return y, y >= 0


def _score_function(model, y: np.ndarray):
    """(metric name, score(x_frame) -> float, greater is better)."""
    from sklearn import metrics as skm

    def transform(frame):
        return np.asarray(model.preprocessor.transform(frame), dtype=np.float64)

    if model.task == "regression":
        return "r2", lambda frame: float(skm.r2_score(y, model.estimator.predict(transform(frame))))
    labels = list(range(len(model.classes)))
    if len(labels) == 2 and len(np.unique(y)) == 2:
        def auc(frame):
            return float(skm.roc_auc_score(y, model.estimator.predict_proba(transform(frame))[:, 1]))

        return "roc_auc", auc

    def neg_log_loss(frame):
        proba = np.asarray(model.estimator.predict_proba(transform(frame)), dtype=np.float64)
        return -float(skm.log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=labels))

    return "neg_log_loss", neg_log_loss


class _Frozen:
    """A fitted model as the estimator permutation_importance wants: it only checks for `fit`."""

    def fit(self, x, y=None):  # never called: the model is already fitted
        return self


def permutation_importances(model, table: pa.Table, label: str | None = None, repeats: int = DEFAULT_REPEATS,
                            seed: int = 0) -> dict:
    """{available, metric, baseline, rows, repeats, importance{feature: {mean, std}}} or
    {available: False, reason} when the table has no usable label."""
    from sklearn.inspection import permutation_importance

    label = label or model.label
    if label not in table.column_names:
        return {"available": False, "reason": f"the table has no label column {label!r}: permutation importance "
                "needs labels (explain a table with the label, e.g. the training set, the default)"}
    y, usable = _encoded_labels(model, table, label)
    if usable.sum() < 10:
        return {"available": False, "reason": f"only {int(usable.sum())} rows have a usable label {label!r} "
                "(NULL or a class unseen in training); at least 10 are needed"}
    if not usable.all():
        table, y = table.filter(pa.array(usable)), y[usable]
    frame = to_frame(table, model.features)
    metric, score = _score_function(model, y)
    result = permutation_importance(_Frozen(), frame, y, scoring=lambda _est, x, _y: score(x),
                                    n_repeats=repeats, random_state=seed)
    importance = {name: {"mean": float(m), "std": float(s)}
                  for name, m, s in zip(frame.columns, result.importances_mean, result.importances_std)}
    return {"available": True, "metric": metric, "baseline": score(frame), "rows": table.num_rows,
            "repeats": repeats, "importance": importance}


# -- per-row contributions ---------------------------------------------------------------------

def _xgboost_contributions(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(contributions (K, inputs), bias (K,), output (K,), space) towards each row's class."""
    import xgboost as xgb

    booster = model.estimator.get_booster()
    matrix = xgb.DMatrix(x, missing=np.nan, feature_names=booster.feature_names)
    contribs = booster.predict(matrix, pred_contribs=True).astype(np.float64)
    margin = booster.predict(matrix, output_margin=True).astype(np.float64)
    if contribs.ndim == 3:  # multiclass: (rows, classes, inputs + 1), explain the predicted class
        chosen = margin.argmax(axis=1)
        contribs = contribs[np.arange(len(x)), chosen]
        margin = margin[np.arange(len(x)), chosen]
    space = "log-odds margin" if model.task == "classification" else "prediction"
    return contribs[:, :-1], contribs[:, -1], margin, space


def _linear_contributions(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    estimator = model.estimator
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    if coef.shape[0] > 1:  # multiclass: the predicted class's row of coefficients
        chosen = (x @ coef.T + intercept).argmax(axis=1)
        coef_rows, bias = coef[chosen], intercept[chosen]
    else:
        coef_rows, bias = np.broadcast_to(coef[0], x.shape), np.full(len(x), intercept[0])
    contributions = x * coef_rows
    output = contributions.sum(axis=1) + bias
    space = "log-odds (decision function)" if model.task == "classification" else "prediction"
    return contributions, bias, output, space


def _forest_contributions(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Tree-path (Saabas) decomposition, averaged over the forest's trees."""
    from scipy import sparse

    forest = model.estimator
    classification = model.task == "classification"
    if classification:
        proba = np.asarray(forest.predict_proba(x), dtype=np.float64)
        # Binary: towards the positive class (what predict_score returns); multiclass: the predicted one.
        chosen = np.ones(len(x), dtype=int) if proba.shape[1] == 2 else proba.argmax(axis=1)
    contributions = np.zeros_like(x)
    bias = np.zeros(len(x))
    for tree in forest.estimators_:
        t = tree.tree_
        values = t.value[:, 0, :] if classification else t.value[:, 0, :1]
        if classification:  # class fractions per node (older scikit-learn stores weighted counts)
            values = values / values.sum(axis=1, keepdims=True)
        parent = np.full(t.node_count, -1)
        internal = np.flatnonzero(t.children_left >= 0)
        parent[t.children_left[internal]] = internal
        parent[t.children_right[internal]] = internal
        nodes = np.flatnonzero(parent >= 0)
        path = tree.decision_path(x)  # (rows, nodes) indicator of each row's root-to-leaf path
        for k in (np.unique(chosen) if classification else [0]):
            rows = np.flatnonzero(chosen == k) if classification else np.arange(len(x))
            delta = values[nodes, k] - values[parent[nodes], k]
            credit = sparse.csr_matrix((delta, (nodes, t.feature[parent[nodes]])), shape=(t.node_count, x.shape[1]))
            contributions[rows] += np.asarray((path[rows] @ credit).todense())
            bias[rows] += values[0, k]
    contributions /= len(forest.estimators_)
    bias /= len(forest.estimators_)
    if classification:
        output = proba[np.arange(len(x)), chosen]
        space = "probability"
    else:
        output = np.asarray(forest.predict(x), dtype=np.float64)
        space = "prediction"
    return contributions, bias, output, space


def row_contributions(model, table: pa.Table, rows: int = DEFAULT_ROWS, keys: list[str] | None = None) -> dict:
    """Per-row contributions for the first `rows` rows of `table` (see the module docstring).

    {method, space, rows[{index, keys, output, bias, score, contributions{feature: value}}],
    additivity_error}: `bias + sum(contributions) == output` up to `additivity_error`.
    """
    if rows < 1:
        raise InputError(f"rows must be at least 1, got {rows!r}.", hint="e.g. --rows 5.")
    part = table.slice(0, rows)
    x = model.transform(part)
    method = {"xgboost": "xgboost pred_contribs (TreeSHAP)", "random_forest": "tree path (Saabas) decomposition"}
    compute = {"xgboost": _xgboost_contributions, "random_forest": _forest_contributions}
    contributions, bias, output, space = compute.get(model.algorithm, _linear_contributions)(model, x)
    features, member = _membership(model)
    per_feature = contributions @ member
    scores = model.predict_score(part)
    keys = [k for k in (keys or []) if k in part.column_names]
    key_values = {k: part.column(k).to_pylist() for k in keys}
    out = []
    for i in range(part.num_rows):
        ordered = sorted(zip(features, per_feature[i]), key=lambda fv: -abs(fv[1]))
        out.append({"index": i, "keys": {k: _plain(key_values[k][i]) for k in keys}, "output": float(output[i]),
                    "bias": float(bias[i]), "score": float(scores[i]),
                    "contributions": {f: float(v) for f, v in ordered}})
    error = float(np.max(np.abs(bias + contributions.sum(axis=1) - output))) if len(output) else 0.0
    return {"method": method.get(model.algorithm, "coefficient x transformed value"), "space": space,
            "rows": out, "additivity_error": error}


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


# -- everything at once ------------------------------------------------------------------------

def explain(model, table: pa.Table, label: str | None = None, rows: int = DEFAULT_ROWS,
            sample_rows: int = DEFAULT_SAMPLE_ROWS, repeats: int = DEFAULT_REPEATS, seed: int = 0,
            keys: list[str] | None = None) -> dict:
    """Global importance (model + permutation) and per-row contributions of a TrainedModel on a table.

    Permutation importance uses at most `sample_rows` rows (a seeded random subset); the
    contributions are for the first `rows` rows. `keys`: columns to echo per row (entity, timestamp).

    >>> # explain(fit(train, spec, "xgboost"), holdout, rows=3)["importance"][0]["feature"]
    """
    if table.num_rows == 0:
        raise InputError("The table to explain is empty.", hint="pass a table (or relation) with rows.")
    missing = [f for f in model.feature_names if f not in table.column_names]
    if missing:
        raise InputError(f"The table lacks feature column(s) {', '.join(map(repr, missing))} of the model.",
                         hint="explain a table with the model's features (its feature model, or the training set).")
    sample = table
    if table.num_rows > sample_rows:
        picked = np.sort(np.random.default_rng(seed).choice(table.num_rows, sample_rows, replace=False))
        sample = table.take(picked)
    kind, shares = model_importance(model)
    permutation = permutation_importances(model, sample, label, repeats=repeats, seed=seed)
    perm = permutation.pop("importance", {})
    importance = [{"feature": f, "model_importance": round(shares.get(f, 0.0), 6),
                   "permutation_mean": round(perm[f]["mean"], 6) if f in perm else None,
                   "permutation_std": round(perm[f]["std"], 6) if f in perm else None} for f in shares]
    importance.sort(key=lambda e: (-(e["permutation_mean"] if e["permutation_mean"] is not None else -np.inf),
                                   -e["model_importance"]))
    for rank, entry in enumerate(importance, 1):
        entry["rank"] = rank
    return {"algorithm": model.algorithm, "task": model.task, "rows": table.num_rows,
            "model_importance_kind": kind, "permutation": permutation, "importance": importance,
            "contributions": row_contributions(model, table, rows, keys=keys)}
