"""Which algorithm to train: a ranking from the data's characteristics, and an optional quick
cross-validated bake-off on a sample.

The characteristics are computed in the warehouse over the whole training query (one aggregate
query, one grouped query for the label, one for the rows per snapshot) plus the column types
of a zero-row fetch; only aggregates leave the warehouse. A bake-off then pulls one sample.

Ranking rules (`rank_algorithms`): every algorithm starts from a prior and collects points,
each with the reason shown to the user. The ranking is a heuristic starting point for a
tabular data set, not a promise; run the bake-off to measure instead of guess.

* prior: xgboost +2 (gradient-boosted trees are the strongest default on tabular data: they
  find interactions and non-linear effects without feature work); random_forest +1 (robust
  with little tuning); logistic/linear +1 (fast, interpretable baseline).
* few rows (< 1,000 training rows): linear +2, xgboost -1, random_forest -0.5 (trees
  overfit small data; a regularised linear model has the fewest degrees of freedom).
* few rows per model input (< 20): linear +1 (wide data: regularisation matters most).
* many rows (>= 200,000): xgboost +1 (hist is linear in rows and multi-threaded),
  random_forest -1 (300 fully grown trees get slow and their artifact large).
* categorical features (>= 30% of the features) or high-cardinality ones (> 50 values):
  trees +1 (they split one-hot/ordinal codes directly); linear -0.5 for high cardinality
  (a target encoding is then its only option).
* missing values (a feature over 5% missing): xgboost +1 (learns where missing values go at
  each split); the others impute the median, which hides the missingness pattern.
* class imbalance (minority class < 10%): xgboost +0.5 (scale_pos_weight reweights the
  gradient; the others use class weights too, so this is a mild preference); below 1% every
  algorithm gets the reason "very rare class: judge by PR AUC".
* all features numeric and at most 20 model inputs: linear +0.5 (a linear model can be all you need).

Ties keep the order xgboost, random_forest, linear.

Bake-off (`bake_off`): time-series cross-validation when the spec has a timestamp (expanding
window over whole snapshots, so no snapshot is on both sides of a fold and the model never
sees the future), stratified k-fold otherwise (plain k-fold for regression). Algorithms run
in ranking order; one whose remaining folds would overrun the time budget is stopped and
listed in `skipped`. The metric is ROC AUC (classification; one-vs-rest for multiclass) or
RMSE (regression), computed by `training.evaluate`, i.e. exactly as on a holdout.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError
from dwml_py.preprocessing import HIGH_CARDINALITY, column_kind
from dwml_py.progress import SILENT, Progress
from dwml_py.training_set import TrainingSpec, build_training_query

FEW_ROWS, MANY_ROWS = 1_000, 200_000
WIDE_ROWS_PER_INPUT = 20
CATEGORICAL_SHARE = 0.3
MISSING_RATE = 0.05
IMBALANCED, VERY_RARE = 0.10, 0.01
DEFAULT_TIME_BUDGET = 60.0
DEFAULT_FOLDS = 5
DEFAULT_SAMPLE_ROWS = 20_000
_PRIORS = {
    "xgboost": (2.0, "gradient-boosted trees are the strongest default on tabular data"),
    "random_forest": (1.0, "robust with little tuning"),
    "linear": (1.0, "fast, interpretable baseline"),
}
_ORDER = ("xgboost", "random_forest", "linear")


def _linear_name(task: str) -> str:
    return "logistic" if task == "classification" else "linear"


def _asof(warehouse) -> bool:
    return bool(getattr(warehouse.capabilities, "asof_join", False))


def training_relation(warehouse, spec: TrainingSpec) -> exp.Subquery:
    """The (unordered) training query of `spec` as a subquery named t."""
    return build_training_query(spec, warehouse.dialect, asof_join=_asof(warehouse), order=False).subquery("t")


# -- characteristics -----------------------------------------------------------------------------

def column_types(warehouse, spec: TrainingSpec) -> pa.Schema:
    """The Arrow schema of the training query, from a zero-row fetch (nothing is scanned)."""
    query = build_training_query(spec, warehouse.dialect, asof_join=_asof(warehouse), order=False).limit(0)
    return warehouse.fetch_arrow(query).schema


def data_characteristics(warehouse, spec: TrainingSpec, holdout_fraction: float = 0.2) -> dict:
    """Rows, columns, types, cardinality, missingness, label balance and snapshots of the training
    set, computed in the warehouse.

    `train_rows` is what `training_set.split` would leave for fitting with `holdout_fraction`
    (the same walk back over whole snapshots for a time split), so cost estimates can use it.
    """
    schema = column_types(warehouse, spec)
    kinds = {f: column_kind(schema.field(f).type) for f in spec.features}
    categorical = [f for f in spec.features if kinds[f] == "categorical"]
    source = training_relation(warehouse, spec)
    aggregates = [exp.alias_(exp.Count(this=exp.Star()), "n")]
    for i, name in enumerate(spec.features):
        aggregates.append(exp.alias_(exp.Count(this=sqlmod.column(name, "t")), f"nn{i}"))
        if name in categorical:
            aggregates.append(exp.alias_(exp.Count(this=exp.Distinct(expressions=[sqlmod.column(name, "t")])),
                                         f"nd{i}"))
    stats = warehouse.fetch_rows(exp.select(*aggregates).from_(source))[0]
    rows = int(stats["n"])
    if rows == 0:
        raise InputError(f"The training set of {spec.model_name!r} is empty: no feature row has a (mature) label.",
                         hint="check the label join keys and label maturity; run `dbt build` if the tables are empty.")

    features, missing = [], {}
    for i, name in enumerate(spec.features):
        rate = 1 - int(stats[f"nn{i}"]) / rows
        entry = {"name": name, "type": str(schema.field(name).type), "kind": kinds[name] or "dropped",
                 "missing_rate": round(rate, 4)}
        if name in categorical:
            entry["distinct"] = int(stats[f"nd{i}"])
        features.append(entry)
        if rate > 0:
            missing[name] = round(rate, 4)
    used = [f for f in features if f["kind"] != "dropped"]
    high = [f["name"] for f in used if f.get("distinct", 0) > HIGH_CARDINALITY]
    # Model inputs as the preprocessing builds them: one column per numeric feature (+1 missing
    # indicator when it has NULLs), one per category of a one-hot feature, one per high-cardinality one.
    inputs = sum(1 + (f["missing_rate"] > 0) if f["kind"] in ("numeric", "boolean")
                 else (1 if f["name"] in high else f.get("distinct", 0) + (f["missing_rate"] > 0)) for f in used)
    snapshots = _rows_per_snapshot(warehouse, spec, source) if spec.timestamp else None
    result = {
        "task": spec.task, "rows": rows, "train_rows": _train_rows(rows, snapshots, holdout_fraction),
        "holdout_fraction": holdout_fraction, "columns": len(spec.features), "features_used": len(used),
        "numeric": sum(f["kind"] == "numeric" for f in used), "boolean": sum(f["kind"] == "boolean" for f in used),
        "categorical": len(categorical), "high_cardinality": high,
        "max_cardinality": max((f.get("distinct", 0) for f in used), default=0),
        "dropped": [f["name"] for f in features if f["kind"] == "dropped"],
        "model_inputs": int(inputs), "missing": missing,
        "max_missing_rate": max(missing.values(), default=0.0),
        "timestamp": spec.timestamp, "snapshots": len(snapshots) if snapshots is not None else None,
        "label": _label_stats(warehouse, spec, source, rows), "features": features,
    }
    return result


def _rows_per_snapshot(warehouse, spec: TrainingSpec, source) -> list[int]:
    ts = sqlmod.column(spec.timestamp, "t")
    query = (exp.select(exp.alias_(ts, "ts"), exp.alias_(exp.Count(this=exp.Star()), "n")).from_(source.copy())
             .group_by(ts).order_by(sqlmod.column("ts")))
    return [int(r["n"]) for r in warehouse.fetch_rows(query) if r["ts"] is not None]


def _train_rows(rows: int, snapshots: list[int] | None, holdout_fraction: float) -> int:
    """Rows left for fitting after training_set.split (same rules, computed from counts)."""
    if snapshots and len(snapshots) >= 2:
        held, cut = 0, len(snapshots)
        while cut > 1 and held < holdout_fraction * rows:
            cut -= 1
            held += snapshots[cut]
        return rows - held
    return rows - math.ceil(holdout_fraction * rows)  # train_test_split rounds the test side up


def _label_stats(warehouse, spec: TrainingSpec, source, rows: int) -> dict:
    label = sqlmod.column(spec.label_column, "t")
    if spec.task == "regression":
        row = warehouse.fetch_rows(exp.select(
            exp.alias_(exp.Avg(this=label), "mean"), exp.alias_(exp.func("stddev_samp", label.copy()), "std"),
            exp.alias_(exp.Min(this=label.copy()), "min"), exp.alias_(exp.Max(this=label.copy()), "max"),
        ).from_(source.copy()))[0]
        return {name: (float(v) if v is not None else None) for name, v in row.items()}
    grouped = (exp.select(exp.alias_(label, "value"), exp.alias_(exp.Count(this=exp.Star()), "n"))
               .from_(source.copy()).group_by(label.copy()))
    counts = {str(r["value"]): int(r["n"]) for r in warehouse.fetch_rows(grouped)}
    minority = min(counts.values()) if counts else 0
    return {"classes": dict(sorted(counts.items())), "n_classes": len(counts),
            "minority_share": round(minority / rows, 4) if rows else None,
            "imbalance_ratio": round(max(counts.values()) / minority, 2) if minority else None}


# -- ranking -------------------------------------------------------------------------------------

def rank_algorithms(ch: dict) -> list[dict]:
    """[{algorithm, rank, score, reasons}] best first, by the rules in the module docstring.

    >>> ranked = rank_algorithms({"task": "classification", "train_rows": 500, "model_inputs": 8,
    ...                           "features_used": 8, "categorical": 0, "high_cardinality": [],
    ...                           "max_missing_rate": 0.0, "label": {"minority_share": 0.4}})
    >>> [r["algorithm"] for r in ranked]
    ['logistic', 'xgboost', 'random_forest']
    """
    points: dict[str, list[tuple[float, str]]] = {a: [_PRIORS[a]] for a in _ORDER}

    def add(algorithm: str, score: float, reason: str) -> None:
        points[algorithm].append((score, reason))

    rows = int(ch.get("train_rows") or ch.get("rows") or 0)
    inputs = max(int(ch.get("model_inputs") or 0), 1)
    used = max(int(ch.get("features_used") or 0), 1)
    if rows < FEW_ROWS:
        add("linear", 2, f"only {rows:,} training rows: a regularised linear model overfits least")
        add("xgboost", -1, f"only {rows:,} training rows: boosted trees overfit small data")
        add("random_forest", -0.5, f"only {rows:,} training rows: trees have little to split on")
    if rows / inputs < WIDE_ROWS_PER_INPUT:
        add("linear", 1, f"{rows / inputs:.0f} rows per model input ({inputs}): wide data, regularisation matters")
    if rows >= MANY_ROWS:
        add("xgboost", 1, f"{rows:,} rows: hist boosting is linear in rows and multi-threaded")
        add("random_forest", -1, f"{rows:,} rows: 300 deep trees get slow and their artifact large")
    categorical, high = int(ch.get("categorical") or 0), list(ch.get("high_cardinality") or [])
    if categorical and (categorical / used >= CATEGORICAL_SHARE or high):
        why = f"{categorical} of {used} features are categorical" + (
            f" ({', '.join(high)} with > {HIGH_CARDINALITY} values)" if high else "")
        add("xgboost", 1, why + ": trees split their codes directly")
        add("random_forest", 1, why + ": trees split their codes directly")
        if high:
            add("linear", -0.5, f"high-cardinality {', '.join(high)} can only be target-encoded for a linear model")
    max_missing = float(ch.get("max_missing_rate") or 0.0)
    if max_missing > MISSING_RATE:
        add("xgboost", 1, f"up to {max_missing:.0%} missing values: XGBoost learns where missing values go")
    minority = (ch.get("label") or {}).get("minority_share")
    if ch.get("task") == "classification" and minority is not None:
        if minority < IMBALANCED:
            add("xgboost", 0.5, f"minority class is {minority:.1%} of rows: scale_pos_weight reweights the gradient")
        if minority < VERY_RARE:
            for algorithm in _ORDER:
                add(algorithm, 0, f"very rare class ({minority:.2%}): judge by PR AUC, not accuracy")
    if not categorical and inputs <= 20:
        add("linear", 0.5, f"all {used} features are numeric and few: a linear model may be all you need")

    ranked = sorted(_ORDER, key=lambda a: (-sum(s for s, _ in points[a]), _ORDER.index(a)))
    task = ch.get("task", "classification")
    return [{"algorithm": _linear_name(task) if a == "linear" else a, "rank": i + 1,
             "score": round(sum(s for s, _ in points[a]), 2),
             "reasons": [(f"{s:+g} " if s else "") + r for s, r in points[a]]} for i, a in enumerate(ranked)]


# -- samples -------------------------------------------------------------------------------------

def sample_query(warehouse, spec: TrainingSpec, rows: int, seed: int = 0) -> exp.Select:
    """At most `rows` rows of the training set, a deterministic pseudo-random sample chosen in
    the warehouse: ordered by md5(seed | keys), so the same seed gives the same rows on any engine."""
    keys = list(spec.entity) + ([spec.timestamp] if spec.timestamp else [])
    key_text = exp.ConcatWs(expressions=[exp.Literal.string("|"), exp.Literal.string(str(int(seed)))]
                            + [exp.cast(sqlmod.column(k, "t"), "text") for k in keys])
    return (exp.select(*[sqlmod.column(c, "t") for c in spec.output_columns]).from_(training_relation(warehouse, spec))
            .order_by(exp.MD5(this=key_text), *[sqlmod.column(k, "t") for k in keys]).limit(int(rows)))


def sample_training_table(warehouse, spec: TrainingSpec, rows: int, seed: int = 0) -> pa.Table:
    """The sample of `sample_query`, sorted by timestamp and entity (the training order)."""
    if rows < 1:
        raise InputError(f"A sample needs at least 1 row, got {rows!r}.", hint="e.g. 20000.")
    table = warehouse.fetch_arrow(sample_query(warehouse, spec, rows, seed))
    if table.num_rows == 0:
        raise InputError(f"The training set of {spec.model_name!r} is empty.",
                         hint="check the label join and label maturity; run `dbt build` if the tables are empty.")
    keys = ([spec.timestamp] if spec.timestamp else []) + list(spec.entity)
    return table.sort_by([(k, "ascending") for k in keys])


# -- cross-validation ----------------------------------------------------------------------------

def cv_folds(table: pa.Table, spec: TrainingSpec, folds: int = DEFAULT_FOLDS,
             seed: int = 0) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(kind, [(train_idx, test_idx)]): 'time' folds over whole snapshots when the spec has a
    timestamp and the table at least 3 snapshots; 'stratified' or 'kfold' otherwise."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    if folds < 2:
        raise InputError(f"folds must be at least 2, got {folds!r}.", hint="e.g. 5.")
    if spec.timestamp and spec.timestamp in table.column_names:
        ts = table.column(spec.timestamp)
        snapshots = pc.unique(ts.filter(pc.is_valid(ts))).sort()
        if len(snapshots) >= 3:
            codes = pc.index_in(ts, value_set=snapshots).to_numpy(zero_copy_only=False)
            splitter = TimeSeriesSplit(n_splits=min(folds, len(snapshots) - 1))
            out = []
            for train_snaps, test_snaps in splitter.split(np.arange(len(snapshots))):
                out.append((np.flatnonzero(np.isin(codes, train_snaps)), np.flatnonzero(np.isin(codes, test_snaps))))
            return "time", out
    index = np.arange(table.num_rows)
    if spec.task == "classification":
        labels = np.asarray(table.column(spec.label_column).to_pylist(), dtype=object).astype(str)
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= folds:
            return "stratified", list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(index, labels))
    if table.num_rows < folds:
        raise InputError(f"{table.num_rows} rows are too few for {folds}-fold cross-validation.",
                         hint="lower --folds or use a larger sample.")
    return "kfold", list(KFold(folds, shuffle=True, random_state=seed).split(index))


def _metric(task: str) -> tuple[str, bool]:
    """(metric name in evaluate()'s result, greater is better)."""
    return ("roc_auc", True) if task == "classification" else ("rmse", False)


def bake_off(table: pa.Table, spec: TrainingSpec, algorithms: list[str], folds: int = DEFAULT_FOLDS,
             time_budget_seconds: float = DEFAULT_TIME_BUDGET, seed: int = 0, params: dict | None = None,
             progress: Progress = SILENT) -> dict:
    """Cross-validated comparison of `algorithms` on `table` within a time budget.

    `params`: {algorithm: params} overriding defaults. Returns {metric, greater_is_better, cv,
    folds, rows, results[{algorithm, mean, std, seconds, scores}], skipped[{algorithm, reason}],
    best, time_budget_seconds, seconds}; results are sorted best first.
    """
    from dwml_py.training import evaluate, fit

    if time_budget_seconds <= 0:
        raise InputError(f"time_budget_seconds must be positive, got {time_budget_seconds!r}.", hint="e.g. 60.")
    kind, splits = cv_folds(table, spec, folds, seed)
    metric, greater = _metric(spec.task)
    started = time.perf_counter()
    results, skipped = [], []
    for algorithm in algorithms:
        scores, seconds, fitted_rows, failures = [], 0.0, 0, []
        reason = None
        with progress.step(f"Bake-off: {algorithm}, {len(splits)} {kind} folds") as step:
            for i, (train_idx, test_idx) in enumerate(splits):
                elapsed = time.perf_counter() - started
                # Predict the remaining folds from this algorithm's seconds per training row so far
                # (time-series folds grow, so per-row is fairer than per-fold).
                remaining_rows = sum(len(t) for t, _ in splits[i:])
                predicted = seconds / fitted_rows * remaining_rows if fitted_rows else 0.0
                if elapsed >= time_budget_seconds or elapsed + predicted > time_budget_seconds:
                    reason = (f"time budget of {time_budget_seconds:g} s: {i} of {len(splits)} folds done after "
                              f"{elapsed:.1f} s, about {predicted:.1f} s more needed")
                    break
                fold_start = time.perf_counter()
                try:
                    model = fit(table.take(train_idx), spec, algorithm, (params or {}).get(algorithm), seed=seed)
                    value = evaluate(model, table.take(test_idx))["metrics"].get(metric)
                except InputError as exc:  # e.g. a time fold whose training snapshots hold one class
                    value, failures = None, failures + [f"fold {i + 1}: {exc}"]
                seconds += time.perf_counter() - fold_start
                fitted_rows += len(train_idx)
                if value is not None:
                    scores.append(float(value))
                step.update(f"fold {i + 1}/{len(splits)}")
            step.summary = f"{seconds:.1f} s"
        if reason is not None:
            skipped.append({"algorithm": algorithm, "reason": reason})
            continue
        if not scores:
            skipped.append({"algorithm": algorithm, "reason": f"{metric} undefined on every fold: "
                            + "; ".join(failures or ["each test fold holds a single class"])})
            continue
        entry = {"algorithm": algorithm, "mean": round(float(np.mean(scores)), 6),
                 "std": round(float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0, 6),
                 "seconds": round(seconds, 3), "scores": [round(s, 6) for s in scores], "folds_scored": len(scores)}
        if failures:
            entry["failed_folds"] = failures
        results.append(entry)
    results.sort(key=lambda r: -r["mean"] if greater else r["mean"])
    return {"metric": metric, "greater_is_better": greater, "cv": kind, "folds": len(splits), "rows": table.num_rows,
            "results": results, "skipped": skipped, "best": results[0]["algorithm"] if results else None,
            "time_budget_seconds": time_budget_seconds, "seconds": round(time.perf_counter() - started, 3)}


# -- the whole tool ------------------------------------------------------------------------------

def select_model(warehouse, spec: TrainingSpec, *, run_bake_off: bool = False,
                 time_budget_seconds: float = DEFAULT_TIME_BUDGET, folds: int = DEFAULT_FOLDS,
                 sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0, progress: Progress = SILENT) -> dict:
    """{model, characteristics, ranking, bake_off | None} for the ML model of `spec`."""
    with progress.step(f"Characterising the training set of {spec.model_name}") as step:
        characteristics = data_characteristics(warehouse, spec)
        step.summary = f"{characteristics['rows']:,} rows x {characteristics['columns']} features"
    ranking = rank_algorithms(characteristics)
    result = {"model": spec.model_name, "characteristics": characteristics, "ranking": ranking, "bake_off": None}
    if run_bake_off:
        with progress.step(f"Sampling up to {sample_rows:,} rows"):
            sample = sample_training_table(warehouse, spec, sample_rows, seed=seed)
        result["bake_off"] = bake_off(sample, spec, [r["algorithm"] for r in ranking], folds=folds,
                                      time_budget_seconds=time_budget_seconds, seed=seed, progress=progress)
    return result
