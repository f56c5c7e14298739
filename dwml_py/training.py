"""Fitting and evaluating one model on an Arrow training table, and its portable artifact.

`fit(train, spec, algorithm)` derives the preprocessing from the column types
(dwml_py.preprocessing), fits it with the estimator and returns a `TrainedModel`, which scores
Arrow tables with exactly the same transforms and serialises to one zip without pickle.

Algorithms (`ALGORITHMS`): `logistic` (classification), `linear` (Ridge; ElasticNet when
`l1_ratio` is given; for classification it means logistic), `random_forest` and `xgboost`
(hist). Class imbalance: class_weight='balanced' for the scikit-learn models, scale_pos_weight
(binary) or balanced sample weights (multiclass) for XGBoost; `balance_classes=False` turns it off.
Balanced weights move predicted probabilities away from the base rate (the calibration bins in
`evaluate` show it); they are what makes the fixed decision threshold of 0.5 the balanced point
between the classes, which is why the threshold is fixed rather than tuned on the (overfit)
training predictions. Pass `threshold=` to choose another.

Every random choice takes `seed`, and the fit is single-pass and deterministic: the same table,
params and seed give the same model and the same metrics.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits
import pyarrow as pa

from dwml_py import artifacts
from dwml_py.errors import InputError
from dwml_py.preprocessing import (HIGH_CARDINALITY, DirectTransform, build_preprocessor, infer_feature_schema,
                                   output_names, strip_fit_only_state, to_frame)
from dwml_py.progress import SILENT, Progress
from dwml_py.versions import package_versions

ALGORITHMS = ("logistic", "linear", "random_forest", "xgboost")
FORMAT_VERSION = 1
CALIBRATION_BINS = 10

# Defaults chosen for tabular data of thousands to millions of rows; `params` overrides them.
_DEFAULTS = {
    ("logistic", "classification"): {"C": 1.0, "l1_ratio": 0.0, "max_iter": 2000, "solver": "lbfgs"},
    ("linear", "regression"): {"alpha": 1.0},
    ("random_forest", "classification"): {"n_estimators": 300, "min_samples_leaf": 5, "max_features": "sqrt",
                                          "n_jobs": -1},
    ("random_forest", "regression"): {"n_estimators": 300, "min_samples_leaf": 5, "max_features": 0.5,
                                      "n_jobs": -1},
    ("xgboost", "classification"): {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 4,
                                    "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 5.0,
                                    "tree_method": "hist"},
    ("xgboost", "regression"): {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 4,
                                "subsample": 0.8, "colsample_bytree": 0.8, "tree_method": "hist"},
}


def default_params(algorithm: str, task: str) -> dict:
    """The default hyper-parameters of an algorithm for a task."""
    algorithm = _canonical_algorithm(algorithm, task)
    return dict(_DEFAULTS[(algorithm, task)])


def _canonical_algorithm(algorithm: str, task: str) -> str:
    if algorithm not in ALGORITHMS:
        from dwml_py.errors import did_you_mean

        raise InputError(f"Unknown algorithm {algorithm!r}.", hint=did_you_mean(algorithm, ALGORITHMS))
    if task not in ("classification", "regression"):
        raise InputError(f"Unknown task {task!r}.", hint="use 'classification' or 'regression'.")
    if algorithm == "linear" and task == "classification":
        return "logistic"
    if algorithm == "logistic" and task == "regression":
        raise InputError("Algorithm 'logistic' is for classification, but the task is regression.",
                         hint="use 'linear' (Ridge/ElasticNet) for regression.")
    return algorithm


# -- the trained model ------------------------------------------------------------------------

@dataclass
class TrainedModel:
    """A fitted preprocessor + estimator with everything needed to score and describe it."""

    algorithm: str
    task: str
    params: dict  # the effective hyper-parameters
    seed: int
    preprocessor: object  # fitted sklearn ColumnTransformer
    estimator: object  # fitted sklearn estimator or XGBClassifier/XGBRegressor
    features: list[dict]  # the feature schema (see preprocessing.infer_feature_schema)
    label: str
    classes: list | None = None  # original label values; index = encoded class
    threshold: float | None = None  # binary decision threshold on P(classes[1])
    dropped: list[dict] = field(default_factory=list)
    transformed_names: list[str] = field(default_factory=list)
    spec: dict = field(default_factory=dict)
    fit_info: dict = field(default_factory=dict)

    # -- scoring -------------------------------------------------------------------------------
    def transform(self, table: pa.Table) -> np.ndarray:
        """The estimator's input matrix for an Arrow table (extra columns are ignored)."""
        cached = self.__dict__.get("_direct")
        if cached is None or cached[0] is not self.preprocessor:  # decided once per preprocessor
            cached = self.__dict__["_direct"] = (self.preprocessor, DirectTransform.of(self.preprocessor))
        direct = cached[1]  # XGBoost's layout is built with pyarrow/numpy, any other by scikit-learn
        if direct is not None:
            return direct(table, self.features)
        return np.asarray(self.preprocessor.transform(to_frame(table, self.features)), dtype=np.float64)

    def predict_proba(self, table: pa.Table) -> np.ndarray:
        """Class probabilities, shape (rows, len(classes)), columns in the order of `classes`."""
        if self.task != "classification":
            raise InputError(f"predict_proba is for classification; this model does {self.task}.",
                             hint="use predict().")
        return _predict_in_chunks(self.estimator.predict_proba, self.transform(table))

    def predict_score(self, table: pa.Table) -> np.ndarray:
        """One number per row: P(positive class) for binary classification, the probability of the
        predicted class for multiclass, the prediction for regression."""
        if self.task == "regression":
            return self.predict(table)
        proba = self.predict_proba(table)
        return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)

    def predict(self, table: pa.Table) -> np.ndarray:
        """Predicted label values (classification, at `threshold` when binary) or numbers."""
        if self.task == "regression":
            return _predict_in_chunks(self.estimator.predict, self.transform(table))
        return self._labels_from_proba(self.predict_proba(table))

    def _labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        classes = np.asarray(self.classes, dtype=object)
        if proba.shape[1] == 2:
            return classes[(proba[:, 1] >= self.threshold).astype(int)]
        return classes[proba.argmax(axis=1)]

    # -- description ---------------------------------------------------------------------------
    @property
    def positive_class(self):
        return self.classes[1] if self.classes and len(self.classes) == 2 else None

    def feature_schema(self) -> list[dict]:
        """[{"name", "type", "kind", "encoding", "missing", "categories"?}] of the features used."""
        return [dict(f) for f in self.features]

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def describe(self) -> dict:
        """JSON-serialisable description (what meta.json holds)."""
        return {
            "format_version": FORMAT_VERSION, "algorithm": self.algorithm, "task": self.task,
            "params": self.params, "seed": self.seed, "label": self.label, "classes": self.classes,
            "threshold": self.threshold, "features": self.features, "dropped": self.dropped,
            "transformed_names": self.transformed_names, "spec": self.spec, "fit_info": self.fit_info,
            "package_versions": package_versions(),
        }

    # -- the artifact --------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """One zip: meta.json, preprocessor.skops, and estimator.skops or model.json (XGBoost JSON)."""
        buffer = io.BytesIO()
        # A fixed timestamp on every entry makes the zip a function of the model only, so the
        # same model gives the same bytes (and the same sha256).
        stamp = (2020, 1, 1, 0, 0, 0)
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            def add(name: str, data: bytes) -> None:
                archive.writestr(zipfile.ZipInfo(name, date_time=stamp), data, compress_type=zipfile.ZIP_DEFLATED)

            add("meta.json", json.dumps(self.describe(), sort_keys=True, default=_json_default).encode())
            add("preprocessor.skops", artifacts.dump_sklearn(self.preprocessor))
            if self.algorithm == "xgboost":
                add("model.json", artifacts.dump_xgboost(self.estimator, raw_format="json"))
            else:
                add("estimator.skops", artifacts.dump_sklearn(self.estimator))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, trusted: list[str] | None = None) -> "TrainedModel":
        """Load what to_bytes wrote. skops parts load only trusted types (artifacts.TRUSTED_TYPES
        plus `trusted`); any other type is refused, named, before anything is rebuilt."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            names = set(archive.namelist())
            meta = json.loads(archive.read("meta.json"))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise artifacts.ArtifactFormatError(f"Not a dwml model artifact ({exc}).",
                                                hint="pass the bytes written by TrainedModel.to_bytes().") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise artifacts.ArtifactFormatError(
                f"Model artifact format {meta.get('format_version')!r} is not the one this dwml reads "
                f"({FORMAT_VERSION}).", hint="install the dwml version that wrote it, or retrain.")
        with archive:
            preprocessor = artifacts.load_sklearn(archive.read("preprocessor.skops"), trusted=trusted)
            if "model.json" in names:
                estimator = artifacts.load_xgboost(archive.read("model.json"))
            else:
                estimator = artifacts.load_sklearn(archive.read("estimator.skops"), trusted=trusted)
        return cls(algorithm=meta["algorithm"], task=meta["task"], params=meta["params"], seed=meta["seed"],
                   preprocessor=preprocessor, estimator=estimator, features=meta["features"],
                   label=meta["label"], classes=meta["classes"], threshold=meta["threshold"],
                   dropped=meta.get("dropped", []), transformed_names=meta.get("transformed_names", []),
                   spec=meta.get("spec", {}), fit_info=meta.get("fit_info", {}))


_CHUNK_ROWS = 50_000


def _predict_in_chunks(predict, x: np.ndarray) -> np.ndarray:
    """Predict row chunks in parallel threads. Parallel over rows, never over trees: a random
    forest predicting with n_jobs > 1 adds its trees' outputs in thread order, which changes the
    last bits of a probability from call to call (estimators are kept at n_jobs=1 after fit)."""
    if len(x) <= _CHUNK_ROWS:
        return np.asarray(predict(x), dtype=np.float64)
    import os
    from concurrent.futures import ThreadPoolExecutor

    chunks = [x[i:i + _CHUNK_ROWS] for i in range(0, len(x), _CHUNK_ROWS)]
    with ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1)) as pool:
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in pool.map(predict, chunks)])


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- fitting ----------------------------------------------------------------------------------

def _spec_fields(spec) -> tuple[str, str, list[str], dict]:
    """(label, task, features, spec dict) from a TrainingSpec or an equivalent dict."""
    data = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    return data["label_column"], data["task"], list(data["features"]), data


def _encode_labels(table: pa.Table, label: str, task: str):
    if label not in table.column_names:
        raise InputError(f"The training table has no label column {label!r}.",
                         hint="build it with build_training_query for the same spec.")
    col = table.column(label)
    if col.null_count:
        raise InputError(f"{col.null_count:,} training rows have a NULL label {label!r}.",
                         hint="labels that are not mature must be dropped; the training query does that.")
    if task == "regression":
        try:
            return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"Label {label!r} of a regression must be numeric, got {col.type}.",
                             hint="use task 'classification' for categories.") from exc
    values = col.to_pylist()
    classes = sorted(set(values))
    if len(classes) < 2:
        raise InputError(f"The label {label!r} has a single class ({classes[0]!r}) in all {len(values):,} "
                         "training rows; a classifier needs at least two.",
                         hint="check the label definition and its maturity filter, or train on a longer period.")
    index = {c: i for i, c in enumerate(classes)}
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values)), classes


def _make_estimator(algorithm: str, task: str, params: dict, seed: int, y: np.ndarray, n_classes: int,
                    balance: bool):
    """(estimator, fit kwargs)."""
    fit_kwargs = {}
    if algorithm == "logistic":
        from sklearn.linear_model import LogisticRegression

        estimator = LogisticRegression(random_state=seed, class_weight="balanced" if balance else None, **params)
    elif algorithm == "linear":
        from sklearn.linear_model import ElasticNet, Ridge

        estimator = (ElasticNet(random_state=seed, max_iter=5000, **params) if "l1_ratio" in params
                     else Ridge(random_state=seed, **params))
    elif algorithm == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        if task == "classification":
            estimator = RandomForestClassifier(random_state=seed, class_weight="balanced" if balance else None,
                                               **params)
        else:
            estimator = RandomForestRegressor(random_state=seed, **params)
    else:
        import xgboost as xgb

        params = dict(params)
        if task == "classification":
            if balance and n_classes == 2 and "scale_pos_weight" not in params:
                positives = int(y.sum())
                params["scale_pos_weight"] = (len(y) - positives) / max(positives, 1)
            elif balance and n_classes > 2:
                from sklearn.utils.class_weight import compute_sample_weight

                fit_kwargs["sample_weight"] = compute_sample_weight("balanced", y)
            estimator = xgb.XGBClassifier(random_state=seed, **params)
        else:
            estimator = xgb.XGBRegressor(random_state=seed, **params)
    return estimator, fit_kwargs


def _check_params(algorithm: str, task: str, params: dict) -> None:
    estimator, _ = _make_estimator(algorithm, task, {}, 0, np.array([0, 1]), 2, False)
    known = set(estimator.get_params())
    if algorithm == "linear":
        from sklearn.linear_model import ElasticNet

        known |= set(ElasticNet().get_params())
    if algorithm == "xgboost":
        return  # XGBoost accepts any booster parameter by name; it rejects bad ones itself at fit
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(f"Unknown parameter(s) {', '.join(map(repr, unknown))} for algorithm {algorithm!r}.",
                         hint="valid: " + ", ".join(sorted(known - {'random_state'})))


class _XGBProgress:
    """An XGBoost training callback that reports every 25 trees to a progress step."""

    def __new__(cls, step, total: int):
        import xgboost as xgb

        class Callback(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                if (epoch + 1) % 25 == 0 or epoch + 1 == total:
                    step.update(f"tree {epoch + 1}/{total}")
                return False

        return Callback()


def fit(train: pa.Table, spec, algorithm: str = "xgboost", params: dict | None = None, seed: int = 0,
        progress: Progress = SILENT, *, balance_classes: bool = True, threshold: float = 0.5,
        high_cardinality: int = HIGH_CARDINALITY) -> TrainedModel:
    """Fit preprocessing + `algorithm` on the training table of `spec` (a TrainingSpec or its dict).

    >>> # model = fit(train, spec, "xgboost", seed=0); model.predict_score(holdout)
    """
    label, task, features, spec_dict = _spec_fields(spec)
    algorithm = _canonical_algorithm(algorithm, task)
    if train.num_rows == 0:
        raise InputError("The training set is empty.", hint="check the label join and label maturity.")
    if not 0 < threshold < 1:
        raise InputError(f"threshold must be between 0 and 1, got {threshold!r}.", hint="0.5 is the default.")
    effective = {**default_params(algorithm, task), **(params or {})}
    _check_params(algorithm, task, effective)

    started = time.perf_counter()
    with progress.step(f"Preparing {len(features)} features of {train.num_rows:,} rows") as step:
        schema, dropped = infer_feature_schema(train, features, high_cardinality=high_cardinality)
        y, classes = _encode_labels(train, label, task)
        preprocessor = build_preprocessor(schema, algorithm, task, seed=seed)
        x = _fit_preprocessor(preprocessor, train, schema, y, algorithm)
        strip_fit_only_state(preprocessor)
        names = output_names(preprocessor)
        step.summary = f"{x.shape[1]} model inputs from {len(schema)} features" + (
            f"; dropped {', '.join(d['name'] for d in dropped)}" if dropped else "")
    prepared = time.perf_counter()

    with progress.step(f"Fitting {algorithm} on {x.shape[0]:,} rows x {x.shape[1]} inputs") as step:
        estimator, fit_kwargs = _make_estimator(algorithm, task, effective, seed, y,
                                                len(classes) if classes else 0, balance_classes)
        if algorithm == "xgboost":
            estimator.set_params(callbacks=[_XGBProgress(step, int(estimator.get_params()["n_estimators"]))])
        try:
            # One BLAS thread for the linear solvers: on small machines OpenBLAS's multi-threaded
            # kernels made the same logistic fit 5-6x slower past ~500k cells (measured here),
            # which also threw off the cost estimate. Trees use their own threads.
            blas_threads = 1 if algorithm in ("logistic", "linear") else None
            with threadpool_limits(limits=blas_threads, user_api="blas"):
                estimator.fit(x, y, **fit_kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{algorithm} refused its parameters or data: {exc}",
                             hint=f"check params {sorted(params or {})}; defaults: {default_params(algorithm, task)}") from exc
        finally:
            if algorithm == "xgboost":
                estimator.set_params(callbacks=None)  # callbacks are code: never part of the artifact
        if algorithm == "random_forest":
            estimator.set_params(n_jobs=1)  # deterministic predictions: see _predict_in_chunks
        step.summary = f"{time.perf_counter() - prepared:.1f} s"
    finished = time.perf_counter()

    if algorithm == "xgboost" and estimator.get_params().get("scale_pos_weight") is not None:
        effective["scale_pos_weight"] = float(estimator.get_params()["scale_pos_weight"])  # as computed
    info = {"train_rows": int(train.num_rows), "inputs": int(x.shape[1]),
            "prepare_seconds": round(prepared - started, 3), "fit_seconds": round(finished - prepared, 3),
            "balance_classes": balance_classes}
    if classes:
        info["class_counts"] = {str(c): int((y == i).sum()) for i, c in enumerate(classes)}
    return TrainedModel(algorithm=algorithm, task=task, params=_jsonable(effective), seed=seed,
                        preprocessor=preprocessor, estimator=estimator, features=schema, label=label,
                        classes=classes, threshold=threshold if classes and len(classes) == 2 else None,
                        dropped=dropped, transformed_names=names, spec=_jsonable(spec_dict), fit_info=info)


def _fit_preprocessor(preprocessor, train: pa.Table, schema: list[dict], y, algorithm: str) -> np.ndarray:
    """Fit `preprocessor` on `train` and return the model matrix.

    XGBoost's preprocessing (numbers passed through, one-hot and ordinal codes) learns nothing
    but the set of distinct values of each categorical column, so it is fitted on a few rows
    holding every one of them (`category_witness`) and the matrix is built by DirectTransform,
    as scoring builds it: the same fitted state and the same matrix bit for bit
    (tests/unit/test_training.py), without turning every string into a Python object (at 320k rows
    1.1 s -> 0.1 s). Any other layout, and the linear families' TargetEncoder (which needs y),
    is fitted on the whole table.
    """
    if algorithm == "xgboost":
        preprocessor.fit(to_frame(category_witness(train, schema), schema))
        direct = DirectTransform.of(preprocessor)
        if direct is not None:
            return direct(train, schema)
    return np.asarray(preprocessor.fit_transform(to_frame(train, schema), y), dtype=np.float64)


def category_witness(table: pa.Table, schema: list[dict]) -> pa.Table:
    """The fewest rows of `table`'s feature columns that hold every distinct value (NULL
    included) of each categorical feature; shorter columns repeat their first value, and
    numeric columns are the table's first rows (a pass-through learns nothing from them)."""
    import pyarrow.compute as pc

    distinct = {f["name"]: pc.unique(table.column(f["name"])) for f in schema if f["kind"] == "categorical"}
    rows = max([len(values) for values in distinct.values()] + [1])
    columns = {}
    for feature in schema:
        name = feature["name"]
        if name in distinct:
            values = distinct[name]
            columns[name] = pa.concat_arrays([values, values.take(np.zeros(rows - len(values), dtype=np.int64))])
        else:
            columns[name] = table.column(name).slice(0, rows)
    return pa.table(columns)


def _jsonable(value):
    return json.loads(json.dumps(value, default=_json_default))


# -- evaluation -------------------------------------------------------------------------------

def evaluate(model: TrainedModel, holdout: pa.Table, progress: Progress = SILENT) -> dict:
    """Holdout metrics: {"task", "rows", "metrics": {name: float}, "calibration": [bins]}.

    Classification: roc_auc, pr_auc (average precision), log_loss, brier, accuracy, f1,
    precision, recall (at `model.threshold`, positive class = classes[1]), positive_rate,
    mean_score, ece (expected calibration error over 10 equal-width bins). Multiclass: roc_auc
    (one-vs-rest, weighted), log_loss, accuracy, f1 (macro). Regression: rmse, mae, r2.
    A metric that is undefined on this holdout (e.g. ROC AUC with one class) is None.
    """
    if holdout.num_rows == 0:
        raise InputError("The holdout set is empty.", hint="lower holdout_fraction or train on more snapshots.")
    with progress.step(f"Evaluating on {holdout.num_rows:,} holdout rows"):
        y = holdout_labels(model, holdout.column(model.label))
        output = model.predict(holdout) if model.task == "regression" else model.predict_proba(holdout)
        return evaluation_of(model, y, output)


def holdout_labels(model: TrainedModel, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The holdout's labels as the metrics take them: floats for regression, class indices (into
    `model.classes`) for classification. Refuses NULL labels and classes unseen in training."""
    if column.null_count:
        raise InputError(f"{column.null_count:,} holdout rows have a NULL label {model.label!r}.",
                         hint="drop rows whose label is not mature yet.")
    if model.task == "regression":
        return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    index = {c: i for i, c in enumerate(model.classes)}
    values = column.to_pylist()
    unseen = sorted({v for v in values if v not in index}, key=str)
    if unseen:
        raise InputError(f"The holdout has label value(s) {unseen!r} never seen in training "
                         f"(classes {model.classes!r}).", hint="train on a period that contains every class.")
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))


def evaluation_of(model: TrainedModel, y: np.ndarray, output: np.ndarray) -> dict:
    """The `evaluate` result from holdout labels (see holdout_labels) and the model's output on the
    same rows: predictions for regression, class probabilities for classification. Scores may be
    computed in batches (dwml_py.out_of_core): the metrics only need these two arrays."""
    if model.task == "regression":
        return {"task": "regression", "rows": int(len(y)), "metrics": regression_metrics(y, output),
                "calibration": []}
    if output.shape[1] == 2:
        metrics, calibration = binary_metrics(y, output[:, 1], model.threshold)
    else:
        metrics, calibration = _multiclass_metrics(y, output), []
    return {"task": "classification", "rows": int(len(y)), "metrics": metrics, "calibration": calibration}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    """rmse, mae, r2 (None below 2 rows), mean_label, mean_prediction. Shared with dwml_py.performance,
    so a live metric means exactly what the holdout metric meant."""
    from sklearn import metrics as skm

    return {"rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
            "mae": float(skm.mean_absolute_error(y, pred)),
            "r2": float(skm.r2_score(y, pred)) if len(y) > 1 else None,
            "mean_label": float(y.mean()), "mean_prediction": float(pred.mean())}


def binary_metrics(y: np.ndarray, score: np.ndarray, threshold: float) -> tuple[dict, list[dict]]:
    """(metrics, calibration bins) of P(positive) scores against 0/1 labels; see `evaluate`. Shared
    with dwml_py.performance, so a live metric means exactly what the holdout metric meant."""
    from sklearn import metrics as skm

    both = len(np.unique(y)) == 2
    pred = (score >= threshold).astype(int)
    metrics = {
        "roc_auc": float(skm.roc_auc_score(y, score)) if both else None,
        "pr_auc": float(skm.average_precision_score(y, score)) if both else None,
        "log_loss": float(skm.log_loss(y, score, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, score, pos_label=1)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "threshold": float(threshold),
        "positive_rate": float(y.mean()),
        "mean_score": float(score.mean()),
    }
    calibration = calibration_bins(y, score)
    metrics["ece"] = float(sum(b["count"] * abs(b["mean_score"] - b["observed_rate"])
                               for b in calibration if b["count"]) / len(y))
    return metrics, calibration


def calibration_bins(y: np.ndarray, score: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Equal-width score bins: [{"lower", "upper", "count", "mean_score", "observed_rate"}]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-open bins, the last one closed so that a score of exactly 1.0 is counted.
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    out = []
    for i in range(bins):
        mask = which == i
        count = int(mask.sum())
        out.append({"lower": float(edges[i]), "upper": float(edges[i + 1]), "count": count,
                    "mean_score": float(score[mask].mean()) if count else None,
                    "observed_rate": float(y[mask].mean()) if count else None})
    return out


def _multiclass_metrics(y: np.ndarray, proba: np.ndarray) -> dict:
    from sklearn import metrics as skm

    labels = list(range(proba.shape[1]))
    # XGBoost's float32 probabilities can miss a sum of 1 by ~1e-7, which log_loss warns about.
    proba = proba / proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    present = len(np.unique(y)) == proba.shape[1]
    return {
        "roc_auc": float(skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=labels))
        if present else None,
        "log_loss": float(skm.log_loss(y, proba, labels=labels)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "f1": float(skm.f1_score(y, pred, average="macro", labels=labels, zero_division=0)),
    }
