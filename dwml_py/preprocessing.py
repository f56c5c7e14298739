"""The feature schema and scikit-learn preprocessing of a training table, derived from its types.

Decisions (documented here because scoring depends on them):

- **numeric** (integers, floats, decimals) and **boolean** (as 0/1) columns: median imputation
  with a missing-indicator column for features that had missing values in training; scaled
  (StandardScaler) for linear models only. For XGBoost numeric columns pass through untouched:
  it routes missing values natively (a learned default direction per split), which the SQL
  scorer relies on too.
- **categorical** (strings, dictionaries) with at most `high_cardinality` (50) distinct values
  in training: missing -> the category "__missing__", then one-hot with unknown categories
  ignored (an all-zero row: no crash on a category first seen at scoring time).
- **high-cardinality categorical** (more than 50 values): for tree models an OrdinalEncoder in
  which unknown categories are -1 and missing ones -2 (trees split such codes well enough and
  the codes are cheap); for linear models, where ordinal codes would be meaningless numbers,
  scikit-learn's TargetEncoder (cross-fitted, so it does not leak the label; unknown categories
  get the label mean).
- **dates and timestamps** are dropped: an absolute date is rarely a stable feature (it drifts
  by construction). Derive an age in the dbt feature model instead (e.g. days since signup).
- anything else (lists, structs, binary) is dropped; `dropped` in the schema says why.

The ColumnTransformer is stored with the model, and `to_frame` turns any Arrow table with the
feature columns into the exact input it expects, so scoring applies the same transforms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dwml_py.errors import InputError

HIGH_CARDINALITY = 50
MISSING_CATEGORY = "__missing__"
UNKNOWN_CODE, MISSING_CODE = -1, -2
LINEAR_ALGORITHMS = ("logistic", "linear")


def column_kind(dtype: pa.DataType) -> str | None:
    """numeric, boolean, categorical, or None (dropped) for an Arrow type."""
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_dictionary(dtype) \
            or getattr(pa.types, "is_string_view", lambda _: False)(dtype):
        return "categorical"
    return None


def _drop_reason(dtype: pa.DataType) -> str:
    if pa.types.is_temporal(dtype):
        return "date/time: derive an age in the dbt model instead"
    return f"unsupported type {dtype}"


def infer_feature_schema(table: pa.Table, features: list[str], high_cardinality: int = HIGH_CARDINALITY,
                         label: str | None = None) -> tuple[list[dict], list[dict]]:
    """(used features, dropped features) from the training table's types and values.

    Each used feature: {"name", "type", "kind", "encoding", "categories" (categorical), "missing"}.
    Raises InputError for a missing column or a feature with no value at all.
    """
    missing = [f for f in features if f not in table.column_names]
    if missing:
        raise InputError(f"The training table lacks feature column(s) {', '.join(map(repr, missing))}.",
                         hint="the table must come from the training query of the same spec.")
    used, dropped = [], []
    for name in features:
        col = table.column(name)
        kind = column_kind(col.type)
        if kind is None:
            dropped.append({"name": name, "type": str(col.type), "reason": _drop_reason(col.type)})
            continue
        if col.null_count == len(col):
            raise InputError(f"Feature {name!r} is NULL in every one of the {len(col):,} training rows.",
                             hint="fix it in the dbt model, or leave it out with `exclude: [" + name + "]` in "
                             "meta.dwml.")
        entry = {"name": name, "type": str(col.type), "kind": kind, "missing": col.null_count > 0}
        if kind == "categorical":
            values = pc.unique(pc.cast(col, pa.string()) if pa.types.is_dictionary(col.type) else col)
            categories = sorted(v for v in values.to_pylist() if v is not None)
            entry["encoding"] = "onehot" if len(categories) <= high_cardinality else "high_cardinality"
            entry["categories"] = categories
        else:
            entry["encoding"] = "numeric"
        used.append(entry)
    if not used:
        raise InputError("No usable feature is left: " + ", ".join(f"{d['name']} ({d['reason']})" for d in dropped),
                         hint="add numeric, boolean or string features to the feature model.")
    return used, dropped


def to_frame(table: pa.Table, schema: list[dict]) -> pd.DataFrame:
    """The pandas input of the preprocessor: float64 for numeric/boolean, object with NaN for
    missing for categorical. Built by hand so pandas' own type guesses (nullable dtypes, the
    pandas 3 string dtype) never change what the transformers see."""
    missing = [f["name"] for f in schema if f["name"] not in table.column_names]
    if missing:
        raise InputError(f"The table to score lacks feature column(s) {', '.join(map(repr, missing))}.",
                         hint="score a table with the same feature columns the model was trained on "
                         "(see feature_schema()).")
    data = {}
    for feature in schema:
        col = table.column(feature["name"])
        if feature["kind"] == "categorical":
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                col = pc.cast(col, pa.string())
            values = np.array(col.to_pylist(), dtype=object)
            values[pd.isna(values)] = np.nan
            # An explicit object Series: pandas 3 would otherwise infer its `str` dtype.
            values = pd.Series(values, dtype=object, index=pd.RangeIndex(table.num_rows))
        else:
            try:
                values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(f"Feature {feature['name']!r} should be numeric (as in training) but is "
                                 f"{col.type}: {exc}", hint="cast it back to a number in the scored table.") from exc
            values = np.asarray(values, dtype=np.float64)
            _refuse_infinity(feature["name"], values)
        data[feature["name"]] = values
    return pd.DataFrame(data, index=pd.RangeIndex(table.num_rows))


def _refuse_infinity(name: str, values: np.ndarray) -> None:
    # scikit-learn's imputers and scalers reject infinity with a bare ValueError and XGBoost
    # refuses it while training; name the column instead. NaN stays allowed: it means missing.
    infinite = int(np.isinf(values).sum())
    if infinite:
        raise InputError(f"Feature {name!r} holds {infinite:,} infinite value(s) (division by zero upstream?).",
                         hint=f"map them to NULL or a cap in the dbt model, e.g. `case when isinf({name}) then null "
                         f"else {name} end`, and rebuild it.")


def build_preprocessor(schema: list[dict], algorithm: str, task: str, seed: int = 0):
    """An unfitted ColumnTransformer for the feature schema and the algorithm's family."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

    linear = algorithm in LINEAR_ALGORITHMS
    numeric = [f["name"] for f in schema if f["kind"] in ("numeric", "boolean")]
    onehot = [f["name"] for f in schema if f["kind"] == "categorical" and f["encoding"] == "onehot"]
    high = [f["name"] for f in schema if f["kind"] == "categorical" and f["encoding"] == "high_cardinality"]
    parts = []
    if numeric:
        if algorithm == "xgboost":
            parts.append(("num", "passthrough", numeric))
        else:
            steps = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
            if linear:
                steps.append(("scale", StandardScaler()))
            parts.append(("num", Pipeline(steps), numeric))
    if onehot:
        parts.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)),
        ]), onehot))
    if high:
        if linear:
            encoder = Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                ("target", TargetEncoder(target_type="auto" if task == "classification" else "continuous",
                                         cv=_target_encoder_cv(task, seed))),
                ("scale", StandardScaler()),
            ])
        else:
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=UNKNOWN_CODE,
                                     encoded_missing_value=MISSING_CODE, dtype=np.float64)
        parts.append(("high", encoder, high))
    # verbose_feature_names_out=False keeps names readable ("plan_code_basic"); they are unique
    # because feature names are.
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False, sparse_threshold=0.0)


def _target_encoder_cv(task: str, seed: int):
    # The cross-fitting folds must be seeded for reproducibility (the encoder's own random_state
    # is deprecated in scikit-learn 1.9). The splitter is only used by fit_transform;
    # `strip_fit_only_state` replaces it afterwards so the artifact holds no splitter type.
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold if task == "classification" else KFold
    return splitter(n_splits=5, shuffle=True, random_state=seed)


def strip_fit_only_state(preprocessor) -> None:
    """Drop what only fitting needs (TargetEncoder's seeded splitter) from a fitted preprocessor."""
    from sklearn.preprocessing import TargetEncoder

    # Both the fitted transformers and the unfitted templates (the `transformers` parameter) hold one.
    for _, transformer, _ in list(getattr(preprocessor, "transformers_", [])) + list(preprocessor.transformers):
        steps = [s for _, s in transformer.steps] if hasattr(transformer, "steps") else [transformer]
        for step in steps:
            if isinstance(step, TargetEncoder):
                step.cv = 5


def output_names(preprocessor) -> list[str]:
    """Names of the transformed columns, in the estimator's input order."""
    return [str(n) for n in preprocessor.get_feature_names_out()]
