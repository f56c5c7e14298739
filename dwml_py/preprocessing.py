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
    _check_columns(table, schema)
    data = {}
    for feature in schema:
        col = table.column(feature["name"])
        if feature["kind"] == "categorical":
            values = np.array(_strings(col).to_pylist(), dtype=object)
            values[pd.isna(values)] = np.nan
            # An explicit object Series: pandas 3 would otherwise infer its `str` dtype.
            values = pd.Series(values, dtype=object, index=pd.RangeIndex(table.num_rows))
        else:
            values = _numbers(feature["name"], col)
        data[feature["name"]] = values
    return pd.DataFrame(data, index=pd.RangeIndex(table.num_rows))


def _check_columns(table: pa.Table, schema: list[dict]) -> None:
    missing = [f["name"] for f in schema if f["name"] not in table.column_names]
    if missing:
        raise InputError(f"The table to score lacks feature column(s) {', '.join(map(repr, missing))}.",
                         hint="score a table with the same feature columns the model was trained on "
                         "(see feature_schema()).")


def _strings(col):
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return col


def _numbers(name: str, col) -> np.ndarray:
    """float64 values of a numeric/boolean feature, NaN for NULL; infinity refused."""
    try:
        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"Feature {name!r} should be numeric (as in training) but is "
                         f"{col.type}: {exc}", hint="cast it back to a number in the scored table.") from exc
    values = np.asarray(values, dtype=np.float64)
    _refuse_infinity(name, values)
    return values


class DirectTransform:
    """The fitted ColumnTransformer of an XGBoost model (numbers passed through, one-hot after
    imputing "__missing__", ordinal codes with -1 unknown / -2 missing) applied with pyarrow and
    numpy: no pandas object columns, no scikit-learn per-batch overhead, the same float64 matrix
    bit for bit (tests/unit/test_preprocessing.py compares them). `of` gives None for any other
    layout, which then goes through scikit-learn.
    """

    def __init__(self, blocks: list[tuple[str, str, pa.Array | None]], width: int):
        self.blocks = blocks  # (kind, column, categories) in the transformer's output order
        self.width = width

    @classmethod
    def of(cls, preprocessor) -> "DirectTransform | None":
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder

        blocks, width = [], 0
        for name, step, columns in getattr(preprocessor, "transformers_", []):
            if step == "drop":
                continue
            if step == "passthrough" or (isinstance(step, FunctionTransformer) and step.func is None):
                blocks += [("number", c, None) for c in columns]
                width += len(columns)
                continue
            if isinstance(step, Pipeline) and [n for n, _ in step.steps] == ["impute", "onehot"]:
                impute, onehot = step.named_steps["impute"], step.named_steps["onehot"]
                if not (impute.strategy == "constant" and impute.fill_value == MISSING_CATEGORY
                        and isinstance(onehot, OneHotEncoder) and onehot.handle_unknown == "ignore"
                        and onehot.drop is None and not getattr(onehot, "infrequent_categories_", None)
                        and _plain_strings(onehot.categories_)):
                    return None
                for column, categories in zip(columns, onehot.categories_):
                    blocks.append(("onehot", column, pa.array(list(categories), type=pa.string())))
                    width += len(categories)
                continue
            if isinstance(step, OrdinalEncoder) and step.unknown_value == UNKNOWN_CODE \
                    and step.encoded_missing_value == MISSING_CODE and step.handle_unknown == "use_encoded_value" \
                    and not getattr(step, "infrequent_categories_", None):
                for column, categories in zip(columns, step.categories_):
                    named = list(categories)
                    # NaN, sorted last, when values were missing in training: missing is then
                    # MISSING_CODE; scikit-learn counts a missing value never seen as unknown.
                    seen_missing = bool(named) and not isinstance(named[-1], str)
                    named = named[:-1] if seen_missing else named
                    if not _plain_strings([named]):
                        return None
                    blocks.append(("ordinal" if seen_missing else "ordinal_no_missing", column,
                                   pa.array(named, type=pa.string())))
                    width += 1
                continue
            return None
        return cls(blocks, width) if blocks else None

    def __call__(self, table: pa.Table, schema: list[dict]) -> np.ndarray:
        _check_columns(table, schema)
        n = table.num_rows
        x = np.zeros((n, self.width), dtype=np.float64)
        rows = np.arange(n)
        offset = 0
        for kind, name, categories in self.blocks:
            col = table.column(name)
            if kind == "number":
                x[:, offset] = _numbers(name, col)
                offset += 1
                continue
            col = _strings(col)
            if kind == "onehot":
                index = pc.index_in(pc.fill_null(col, MISSING_CATEGORY), value_set=categories)
                found = index.to_numpy(zero_copy_only=False)  # float with NaN where unknown
                known = ~np.isnan(found)
                x[rows[known], offset + found[known].astype(np.int64)] = 1.0
                offset += len(categories)
            else:
                codes = pc.fill_null(pc.index_in(col, value_set=categories), UNKNOWN_CODE)
                codes = codes.to_numpy(zero_copy_only=False).astype(np.float64)
                if kind == "ordinal":
                    codes[pc.is_null(col).to_numpy(zero_copy_only=False)] = MISSING_CODE
                x[:, offset] = codes
                offset += 1
        return x


def _plain_strings(category_lists) -> bool:
    return all(isinstance(c, str) for categories in category_lists for c in categories)


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
