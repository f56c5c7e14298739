"""Scoring compiled to SQL: a model version's preprocessing and estimator as sqlglot expressions.

`compile_model(model)` turns a TrainedModel into a `CompiledScoring`: the model inputs (the
preprocessor's output columns) as expressions over the raw feature columns, the margin over those
inputs and its link (identity, or logistic for P(classes[1])), so that the score is what
TrainedModel.predict_score returns, and the predicted label over the score (classes[1] when
score >= model.threshold). `CompiledScoring.query(relation, keep)` nests them as SELECTs, so each
raw column is imputed and encoded once per row, not once per tree node, and the margin once:

    SELECT keep, score, <label> AS predicted_label, <constants>
    FROM (SELECT keep, 1 / (1 + EXP(-__dwml_margin)) AS score           -- logistic link only
          FROM (SELECT keep, <margin over the inputs> AS __dwml_margin
                FROM (SELECT keep, <transform> AS __dwml_x0, ... FROM relation AS __dwml_input
                      LEFT JOIN (VALUES (key, value), ...) AS __dwml_lookup0 ON ...)))  -- large lookups

A multiclass model (more than two classes) has one margin per class, as batch scoring
(batch_scoring._scores) defines its outputs: the score is the highest class probability and the
label the first class of highest probability (numpy's argmax). The margins are the logits of a
softmax (XGBoost multi:softprob/softmax, multinomial logistic regression) or, for trees, the class
probabilities themselves (the forest's mean of its trees' leaf proportions). Two levels replace the
margin level above; the output columns are the same as a binary model's:

    SELECT keep, score, predicted_label, <constants>
    FROM (SELECT keep, 1 / (EXP(GREATEST(__dwml_margin0 - __dwml_max, -700)) + ...) AS score,  -- softmax;
                 CASE WHEN __dwml_margin0 = __dwml_max THEN 'class0' ...                      -- trees: __dwml_max
                      ELSE 'classK' END AS predicted_label
          FROM (SELECT keep, __dwml_margin0, ..., GREATEST(__dwml_margin0, ...) AS __dwml_max
                FROM (SELECT keep, <margin of class 0> AS __dwml_margin0, ... FROM (<inputs level>))))

`query(..., probabilities=True)` adds each class's probability (probability_<k>, k the class's
position in model.classes) for multiclass models.

A category lookup (ordinal code, target encoding) of more than LOOKUP_JOIN_MIN_KEYS keys is a LEFT
JOIN on a VALUES list (sqlglot writes it for each dialect; BigQuery gets an UNNEST of STRUCTs),
smaller ones a CASE chain; a multiclass target encoding (one input per class) is one VALUES list
with a value column per class.

Compiled: the preprocessing of dwml_py.preprocessing (median imputation + missing indicators,
StandardScaler, one-hot with unknown categories ignored and "__missing__", OrdinalEncoder with
-1 unknown / -2 missing, TargetEncoder, binary, continuous or multiclass); logistic regression
(binary or multinomial), Ridge/ElasticNet, DecisionTree and RandomForest (classifier: the mean of
the trees' class probabilities; regressor: the mean) and XGBoost gbtree (binary:logistic,
multi:softprob, multi:softmax, reg:squarederror and the other identity-link regressions).
Refused with `NotCompilable` (a reason, never a crash): other estimators, objectives (multi-target
among them) and transformers, and ensembles larger than `MAX_TREE_NODES` tree nodes; a multiclass
scikit-learn tree is written once per class (SQL has no vector-valued CASE), so a forest of n
nodes counts n x classes.

Exactness (the tests check |SQL - predict_score| < 1e-6 with NULLs and unseen categories):
- trees compare in float32 (scikit-learn casts X to float32 before its `<=`; XGBoost compares
  float32 with `<`): tree inputs are cast to FLOAT, then DOUBLE, and each threshold is written as
  the shortest decimal that no float32 separates from it (so every float32 input takes the same
  branch; ~9 digits instead of 17). Inputs that can only be small whole numbers (one-hot flags,
  missing indicators, ordinal codes) skip the two casts. Numbers are written in scientific notation, a DOUBLE literal
  in every target dialect (a plain decimal such as 0.5 is a DECIMAL in DuckDB); leaf values and
  coefficients exactly. Snowflake and BigQuery have no 32-bit float: there a value within
  float32 rounding of a threshold may take the other branch.
- XGBoost sends a missing value the split's default way through the comparison itself:
  `CASE WHEN x < t THEN left ELSE right` when missing goes right (NULL < t is not true),
  `CASE WHEN x >= t THEN right ELSE left` when it goes left; no IS NULL branches.
- XGBoost's base_score is read from the booster config (a probability for binary:logistic,
  whose margin is its logit; for multiclass a vector of margins, one per class, added as is).
  Multiclass trees belong to the class the model's `tree_info` names (not i % num_class, which
  num_parallel_tree > 1 breaks).
- multiclass: XGBoost adds its trees and computes the softmax in float32, SQL in double, so scores
  agree to ~1e-7 (tests: < 1e-6) and labels on every row where the two most probable classes are
  more than float32 noise apart; where they are that close, the SQL (comparing margins in double)
  may name the other of the two. The softmax subtracts the largest margin (no EXP overflows) and
  clamps each difference at -700 (PostgreSQL raises on an underflowing EXP too).
- the logistic link is clamped to [-700, 700] before EXP, so no engine overflows (PostgreSQL
  raises on an overflowing EXP); beyond that the probability is 1 or < 1e-300 anyway.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal

import numpy as np
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError

# Above this many tree nodes the SQL gets too large to compile, plan and store sensibly. Measured
# on the demo (2 busy cores): XGBoost 300 trees of depth 4 = 9k nodes, 336 KB, planned in 0.5 s;
# 10 trees of the default random forest = 127k nodes, 3.9 MB, 40 s to compile and 15 s to plan
# (all its 300 trees: 3.8M nodes). 50k covers XGBoost's 300 trees of depth 6 (<= 38k nodes).
MAX_TREE_NODES = 50_000
RELATION_PLACEHOLDER = "__dwml_relation__"
INPUT_PREFIX = "__dwml_x"
SCORE, LABEL = "score", "predicted_label"
_INPUT_ALIAS, _INPUTS_ALIAS, _SCORES_ALIAS = "__dwml_input", "__dwml_inputs", "__dwml_scores"
_MARGIN, _MARGINS_ALIAS = "__dwml_margin", "__dwml_margins"
_MAX, _TOP_ALIAS = "__dwml_max", "__dwml_top"  # multiclass: the largest margin of each row
_STRING_TYPES = ("string", "large_string", "string_view")
_LOGIT_CLAMP = 700.0
# A category lookup (ordinal code, target encoding) with more keys than this is a LEFT JOIN on a
# VALUES list rather than a CASE chain: a chain costs the engine one comparison per key and row
# (1,000 keys: 1.3-1.7 s per million rows in DuckDB), the join a hash probe (0.05 s).
LOOKUP_JOIN_MIN_KEYS = 16
# XGBoost's multiclass objectives: softprob and softmax have the same margins; what they output
# differs, but TrainedModel.predict_proba (the score) is the softmax of the margins for both.
_XGB_MULTICLASS = ("multi:softprob", "multi:softmax")
_LOOKUP_ALIAS, _LOOKUP_KEY, _LOOKUP_VALUE = "__dwml_lookup", "__dwml_key", "__dwml_value"


class NotCompilable(InputError):
    """The model cannot be scored in SQL; the message says why (batch scoring still works)."""


# -- literals and small expressions ------------------------------------------------------------

def number(value: float) -> exp.Expression:
    """An exact DOUBLE literal: the shortest scientific notation that reads back as `value`."""
    value = float(value)
    if not math.isfinite(value):
        raise NotCompilable(f"The model holds a non-finite number ({value!r}), which SQL cannot write as a literal.",
                            hint="score it with `dwml predict` (batch scoring in Python).")
    text = np.format_float_scientific(abs(value), unique=True, trim="-")
    literal = exp.Literal.number(text)
    return exp.Neg(this=literal) if value < 0 or (value == 0 and math.copysign(1, value) < 0) else literal


def _short_cut(low: float, high: float, strict_low: bool) -> exp.Expression:
    """The shortest decimal in (low, high] (strict_low) or [low, high): a float32 value compares
    with it as with the split's own threshold, since no float32 lies between them. Cuts shrink
    from 17 significant digits to about 9, and the SQL by a third."""
    for digits in range(1, 18):
        if strict_low:  # the largest decimal <= high
            value = float(Context(prec=digits, rounding=ROUND_FLOOR).plus(Decimal(high)))
            if low < value <= high:
                return number(value)
        else:  # the smallest decimal >= low
            value = float(Context(prec=digits, rounding=ROUND_CEILING).plus(Decimal(low)))
            if low <= value < high:
                return number(value)
    return number(high if strict_low else low)


def _below_float32(threshold: float) -> exp.Expression:
    """A cut c with (x < c) == (x < threshold) for every float32 x; threshold is a float32 (XGBoost's `<`)."""
    t = np.float32(threshold)
    return _short_cut(float(np.nextafter(t, np.float32(-np.inf))), float(t), strict_low=True)


def _at_most_float32(threshold: float) -> exp.Expression:
    """A cut c with (x <= c) == (x <= threshold) for every float32 x; threshold is a double
    (scikit-learn's `<=` of float32 inputs)."""
    f = np.float32(threshold)
    if float(f) > threshold:
        f = np.nextafter(f, np.float32(-np.inf))
    return _short_cut(float(f), float(np.nextafter(f, np.float32(np.inf))), strict_low=False)


def _text(value) -> exp.Expression:
    return exp.Literal.string(str(value))


def _case(condition: exp.Expression, then: exp.Expression, otherwise: exp.Expression) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition, true=then)], default=otherwise)


def _is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=e.copy(), expression=exp.Null())


def _flag(condition: exp.Expression) -> exp.Expression:
    return _case(condition, number(1.0), number(0.0))


def _float32(e: exp.Expression) -> exp.Expression:
    """Rounded to float32 and back: what the tree libraries compare."""
    return exp.cast(exp.cast(e, exp.DataType.Type.FLOAT), exp.DataType.Type.DOUBLE)


def _float32_exact(e: exp.Expression, lookups: "_Lookups") -> bool:
    """Whether every value `e` can take is NULL or a literal that float32 holds exactly (so rounding
    it to float32 is a no-op the engine can be spared)."""
    if isinstance(e, exp.Neg):
        return _float32_exact(e.this, lookups)
    if isinstance(e, exp.Literal):
        return e.is_number and float(np.float32(float(e.this))) == float(e.this)
    if isinstance(e, exp.Null):
        return True
    if isinstance(e, exp.Case):  # no ELSE: NULL
        return all(_float32_exact(i.args["true"], lookups) for i in e.args["ifs"]) \
            and _float32_exact(e.args.get("default") or exp.Null(), lookups)
    if isinstance(e, exp.Coalesce):
        return all(_float32_exact(a, lookups) for a in [e.this, *e.expressions])
    if isinstance(e, exp.Column):  # a lookup's value column: exact if every value in its list is
        tables = [values for values, _ in lookups if values.alias == e.table]
        if not tables:
            return False
        position = [c.name for c in tables[0].args["alias"].columns].index(e.name)
        return all(_float32_exact(row.expressions[position], lookups) for row in tables[0].expressions)
    return False


def _balanced_sum(terms: list[exp.Expression]) -> exp.Expression:
    """a + b + ... as a balanced tree: a chain of 300 additions nests too deep for sqlglot's renderer."""
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return exp.Paren(this=exp.Add(this=_balanced_sum(terms[:mid]), expression=_balanced_sum(terms[mid:])))


def _greatest(columns: list[exp.Expression]) -> exp.Expression:
    return exp.Greatest(this=columns[0].copy(), expressions=[c.copy() for c in columns[1:]])


def _exp_below(margin: exp.Expression, top: exp.Expression) -> exp.Expression:
    """EXP(margin - top), `top` the largest margin (so no EXP overflows), the difference clamped at
    -700: PostgreSQL raises on an underflowing EXP, and the term is < 1e-300 beside the top's 1 anyway."""
    return exp.Exp(this=exp.Greatest(this=exp.Sub(this=margin.copy(), expression=top.copy()),
                                     expressions=[number(-_LOGIT_CLAMP)]))


def _softmax_top(margins: list[exp.Expression], top: exp.Expression) -> exp.Expression:
    """The largest softmax probability: 1 / SUM(EXP(margin - top))."""
    return exp.Div(this=number(1.0), expression=exp.Paren(this=_balanced_sum([_exp_below(m, top) for m in margins])))


def _sigmoid(margin: exp.Expression) -> exp.Expression:
    """1 / (1 + EXP(-margin)), the margin clamped. Give it a column: sqlglot renders GREATEST/LEAST
    for DuckDB with NULL checks that repeat their argument."""
    clamped = exp.Least(this=exp.Greatest(this=margin, expressions=[number(-_LOGIT_CLAMP)]),
                        expressions=[number(_LOGIT_CLAMP)])
    return exp.Div(this=number(1.0), expression=exp.Paren(this=exp.Add(
        this=number(1.0), expression=exp.Exp(this=exp.Neg(this=exp.Paren(this=clamped))))))


# PostgreSQL (and Redshift, its descendant) pulls a subquery up into the query above it and
# then computes each reference to one of its columns again: the margin column is read by the score
# and by the label (binary), by GREATEST, the softmax and the label (multiclass), so every tree would
# be evaluated several times per row (a 3-class model of 40 trees: 90 s instead of 3 s on 1,200
# rows). OFFSET 0 keeps the margins' SELECT a subquery of its own there. Elsewhere it is left out:
# BigQuery accepts no OFFSET without LIMIT, and DuckDB computes a subquery's columns once.
_FENCED_DIALECTS = ("postgres", "redshift")


def _fence(select: exp.Select) -> exp.Select:
    return select.offset(0)


# -- the compiled form ---------------------------------------------------------------------------

@dataclass
class CompiledScoring:
    """Expressions of one model: `inputs` over the raw columns, `margins` over the inputs' names
    (one, or one per class of a multiclass model), the score = `link`(margins) and `label`.

    Links: "identity" and "logistic" (of the one margin; `label` reads the column `score`, NULL
    for regression); for multiclass "softmax" (the margins are logits: the score is the largest
    softmax probability) and "max" (the margins are the class probabilities: the score is the
    largest), and `label` reads the margin columns __dwml_margin<k> and their maximum __dwml_max."""

    algorithm: str
    task: str
    features: list[str]  # raw columns read
    inputs: list[tuple[str, exp.Expression]]  # (name, expression over raw columns)
    margins: list[exp.Expression]
    link: str
    label: exp.Expression
    tree_nodes: int = 0
    lookups: list[tuple[exp.Values, exp.Expression]] = field(default_factory=list)  # (VALUES, ON); _Lookups

    def query(self, relation: exp.Expression, keep: list[str] = (), constants: dict | None = None,
              probabilities: bool = False, dialect: str | None = None) -> exp.Select:
        """The scoring SELECT over `relation` (a table or subquery), passing the columns `keep`
        through and adding `constants` ({name: value}) as literal columns. `probabilities` (multiclass
        only) adds every class's probability, as probability_<k> for the k-th of the model's classes.
        `dialect`: the engine it is for, where that changes the SQL (see _FENCED_DIALECTS)."""
        if probabilities and len(self.margins) < 2:
            raise InputError("Class probabilities are added for multiclass models only.",
                             hint="for binary classification the score is P(second class); 1 - score the other's.")
        extra = self._probability_names() if probabilities else []
        lookup_columns = {c.name for values, _ in self.lookups for c in values.args["alias"].columns}
        clash = {c.lower() for c in keep} & {SCORE, LABEL, _MARGIN, _MAX, _LOOKUP_KEY, _LOOKUP_VALUE, *lookup_columns,
                                             *self._margin_names(), *extra, *(n for n, _ in self.inputs)}
        if clash:
            raise InputError(f"The pass-through column(s) {', '.join(sorted(clash))} clash with the columns SQL "
                             "scoring adds.", hint="rename them in the relation to score.")
        source = relation.copy()
        if isinstance(source, exp.Table):
            source.set("alias", exp.TableAlias(this=sqlmod.ident(_INPUT_ALIAS)))
        else:
            source = exp.Subquery(this=source, alias=exp.TableAlias(this=sqlmod.ident(_INPUT_ALIAS)))
        kept = [sqlmod.column(c) for c in keep]
        inner = exp.select(*kept, *(e.as_(sqlmod.ident(n)) for n, e in self.inputs)).from_(source)
        for values, on in self.lookups:
            inner = inner.join(values.copy(), on=on.copy(), join_type="left")
        fence = _fence if dialect in _FENCED_DIALECTS else (lambda select: select)
        if len(self.margins) > 1:
            middle = self._multiclass_scores(inner, kept, probabilities, fence)
            outer = exp.select(*(k.copy() for k in kept), sqlmod.column(SCORE), sqlmod.column(LABEL),
                               *(sqlmod.column(n) for n in extra))
        else:
            if self.link == "identity":
                middle = fence(exp.select(*(k.copy() for k in kept), self.margins[0].as_(sqlmod.ident(SCORE)))
                               .from_(inner.subquery(sqlmod.ident(_INPUTS_ALIAS))))
            else:  # the margin gets its own column, so the link does not repeat it
                margin = fence(exp.select(*(k.copy() for k in kept), self.margins[0].as_(sqlmod.ident(_MARGIN)))
                               .from_(inner.subquery(sqlmod.ident(_INPUTS_ALIAS))))
                middle = (exp.select(*(k.copy() for k in kept),
                                     _sigmoid(sqlmod.column(_MARGIN)).as_(sqlmod.ident(SCORE)))
                          .from_(margin.subquery(sqlmod.ident(_MARGINS_ALIAS))))
            outer = exp.select(*(k.copy() for k in kept), sqlmod.column(SCORE), self.label.as_(sqlmod.ident(LABEL)))
        for name, value in (constants or {}).items():
            outer = outer.select(sqlmod.literal(value).as_(sqlmod.ident(name)))
        return outer.from_(middle.subquery(sqlmod.ident(_SCORES_ALIAS)))

    def _margin_names(self) -> list[str]:
        return [f"{_MARGIN}{k}" for k in range(len(self.margins))] if len(self.margins) > 1 else []

    def _probability_names(self) -> list[str]:
        return [f"probability_{k}" for k in range(len(self.margins))]

    def _multiclass_scores(self, inner: exp.Select, kept: list[exp.Column], probabilities: bool,
                           fence) -> exp.Select:
        """SELECT keep, score, label over the inputs: each class's margin once, in a column of its
        own, then their maximum, which the softmax and the label (its first class) read."""
        names = self._margin_names()
        columns, top = [sqlmod.column(n) for n in names], sqlmod.column(_MAX)
        margins = fence(exp.select(*(k.copy() for k in kept),
                                   *(m.as_(sqlmod.ident(n)) for m, n in zip(self.margins, names)))
                        .from_(inner.subquery(sqlmod.ident(_INPUTS_ALIAS))))
        tops = (exp.select(*(k.copy() for k in kept), *(c.copy() for c in columns),
                           _greatest(columns).as_(sqlmod.ident(_MAX)))
                .from_(margins.subquery(sqlmod.ident(_MARGINS_ALIAS))))
        score = _softmax_top(columns, top) if self.link == "softmax" else top
        each = []
        if probabilities:  # softmax: the top class's probability (the score) times EXP(margin - top)
            each = [exp.Mul(this=exp.Paren(this=score.copy()), expression=_exp_below(c, top))
                    if self.link == "softmax" else c.copy() for c in columns]
        return (exp.select(*(k.copy() for k in kept), score.as_(sqlmod.ident(SCORE)),
                           self.label.as_(sqlmod.ident(LABEL)),
                           *(e.as_(sqlmod.ident(n)) for e, n in zip(each, self._probability_names())))
                .from_(tops.subquery(sqlmod.ident(_TOP_ALIAS))))


def compile_model(model) -> CompiledScoring:
    """Compile a TrainedModel; NotCompilable says why when it cannot be."""
    if model.task == "classification" and len(model.classes or []) < 2:
        raise NotCompilable(f"A classifier needs at least two classes; this model has {len(model.classes or [])}.",
                            hint="this artifact is inconsistent; retrain the model.")
    tree_model = model.algorithm in ("random_forest", "xgboost") or _is_sklearn_tree(model.estimator)
    lookups = _Lookups()
    inputs = _compile_preprocessor(model.preprocessor, model.features, lookups)
    n_inputs = getattr(model.estimator, "n_features_in_", None)
    if n_inputs is not None and int(n_inputs) != len(inputs):
        raise NotCompilable(f"The preprocessor gives {len(inputs)} inputs but the estimator expects {n_inputs}.",
                            hint="this artifact is inconsistent; retrain the model.")
    if tree_model:  # flags and codes are small whole numbers, float32 already
        inputs = [e if _float32_exact(e, lookups) else _float32(e) for e in inputs]
    names = [f"{INPUT_PREFIX}{i}" for i in range(len(inputs))]
    columns = [sqlmod.column(n) for n in names]
    margins, link, tree_nodes = _compile_estimator(model, columns)
    if len(margins) > 1:
        label = _top_class(model.classes)
    elif model.task == "classification":
        label = _case(sqlmod.column(SCORE) >= number(model.threshold), _text(model.classes[1]), _text(model.classes[0]))
    else:
        label = exp.cast(exp.Null(), exp.DataType.Type.TEXT)
    return CompiledScoring(algorithm=model.algorithm, task=model.task, features=list(model.feature_names),
                           inputs=list(zip(names, inputs)), margins=margins, link=link, label=label,
                           tree_nodes=tree_nodes, lookups=list(lookups))


def _top_class(classes: list) -> exp.Expression:
    """The first class whose margin is the largest, as numpy's argmax (over the columns
    __dwml_margin<k> and __dwml_max of CompiledScoring.query)."""
    return exp.Case(ifs=[exp.If(this=sqlmod.column(f"{_MARGIN}{k}").eq(sqlmod.column(_MAX)), true=_text(c))
                         for k, c in enumerate(classes[:-1])], default=_text(classes[-1]))


# -- preprocessing -------------------------------------------------------------------------------

def _raw_input(feature: dict) -> exp.Expression:
    """A raw column as the preprocessor sees it (preprocessing.to_frame): numbers as DOUBLE,
    booleans as 1/0, categories as text."""
    col = sqlmod.column(feature["name"])
    if feature["kind"] == "boolean":
        return exp.Case(ifs=[exp.If(this=col, true=number(1.0)),
                             exp.If(this=exp.Not(this=col.copy()), true=number(0.0))])
    if feature["kind"] == "numeric":
        # NaN is missing in Python scoring (the imputers and XGBoost treat it so); NULLIF makes it
        # NULL here, relying on DuckDB, Postgres and Spark treating NaN as equal to itself.
        return exp.Nullif(this=exp.cast(col, exp.DataType.Type.DOUBLE),
                          expression=exp.cast(exp.Literal.string("NaN"), exp.DataType.Type.DOUBLE))
    if feature["kind"] == "categorical":
        return col if feature["type"] in _STRING_TYPES else exp.cast(col, exp.DataType.Type.TEXT)
    raise NotCompilable(f"Feature {feature['name']!r} has kind {feature['kind']!r}, which SQL scoring does not know.",
                        hint="score it with `dwml predict`.")


def _compile_preprocessor(preprocessor, features: list[dict], lookups: "_Lookups") -> list[exp.Expression]:
    by_name = {f["name"]: f for f in features}
    out: list[exp.Expression] = []
    for _, transformer, columns in preprocessor.transformers_:
        if transformer == "drop" or len(columns) == 0:
            continue
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise NotCompilable(f"The preprocessor reads column(s) {missing} that the feature schema lacks.",
                                hint="this artifact is inconsistent; retrain the model.")
        values = [_raw_input(by_name[c]) for c in columns]
        if transformer == "passthrough":
            out.extend(values)
            continue
        steps = [s for _, s in transformer.steps] if hasattr(transformer, "steps") else [transformer]
        for step in steps:
            values = _compile_step(step, values, lookups)
        out.extend(values)
    expected = len(preprocessor.get_feature_names_out())
    if len(out) != expected:
        raise NotCompilable(f"Compiled {len(out)} model inputs, but the preprocessor gives {expected}.",
                            hint="a dwml bug: please report it with the model's algorithm and feature types.")
    return out


def _compile_step(step, values: list[exp.Expression], lookups: "_Lookups") -> list[exp.Expression]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler,
                                       TargetEncoder)

    if isinstance(step, FunctionTransformer) and step.func is None:  # a fitted "passthrough"
        return values
    if isinstance(step, SimpleImputer):
        return _imputer(step, values)
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else np.zeros(len(values))
        scale = step.scale_ if step.with_std else np.ones(len(values))
        return [exp.Div(this=exp.Paren(this=exp.Sub(this=v, expression=number(m))), expression=number(s))
                for v, m, s in zip(values, mean, scale)]
    if isinstance(step, OneHotEncoder):
        if step.drop_idx_ is not None or getattr(step, "_infrequent_enabled", False) or step.handle_unknown != "ignore":
            raise NotCompilable("Only one-hot encoding without dropped or infrequent categories and with unknown "
                                "categories ignored is compiled.", hint="score it with `dwml predict`.")
        return [_flag(_equals_text(v, c)) for v, cats in zip(values, step.categories_) for c in cats]
    if isinstance(step, OrdinalEncoder):
        return [_ordinal(step, v, cats, lookups) for v, cats in zip(values, step.categories_)]
    if isinstance(step, TargetEncoder):
        if step.target_type_ == "multiclass":
            return _multiclass_target_encoding(step, values, lookups)
        if step.target_type_ not in ("binary", "continuous"):
            raise NotCompilable(f"A {step.target_type_} target encoding is not compiled.",
                                hint="score it with `dwml predict`.")
        return [_lookup(v, cats, [number(e) for e in enc], number(step.target_mean_), lookups)
                for v, cats, enc in zip(values, step.categories_, step.encodings_)]
    raise NotCompilable(f"The preprocessing step {type(step).__name__} is not compiled to SQL.",
                        hint="score it with `dwml predict`.")


def _multiclass_target_encoding(step, values: list[exp.Expression], lookups: "_Lookups") -> list[exp.Expression]:
    """One input per feature and class, feature by feature (TargetEncoder's order: encodings_[i * k + j]
    is feature i's encoding of class j; an unknown category gets target_mean_[j]); a large lookup
    is one join giving every class's value."""
    k = len(step.classes_)
    means = [number(m) for m in step.target_mean_]
    out = []
    for i, (value, cats) in enumerate(zip(values, step.categories_)):
        encodings = step.encodings_[i * k:(i + 1) * k]
        out.extend(_lookup_many(value, cats, [[number(e) for e in enc] for enc in encodings], means, lookups))
    return out


def _imputer(step, values: list[exp.Expression]) -> list[exp.Expression]:
    missing = step.missing_values
    if not (missing is None or (isinstance(missing, float) and math.isnan(missing))):
        raise NotCompilable(f"An imputer of the value {missing!r} (not of missing values) is not compiled.",
                            hint="score it with `dwml predict`.")
    filled = []
    for v, fill in zip(values, step.statistics_):
        if isinstance(fill, str):
            filled.append(exp.Coalesce(this=v.copy(), expressions=[_text(fill)]))
        else:
            filled.append(exp.Coalesce(this=v.copy(), expressions=[number(fill)]))
    if step.add_indicator:
        filled += [_flag(_is_null(values[i])) for i in step.indicator_.features_]
    return filled


def _equals_text(value: exp.Expression, category) -> exp.Expression:
    """value = 'category'. The imputed COALESCE(x, fill) equals another category than its fill
    exactly when x does (a NULL x is then no match either way), so x is compared alone: one
    function call less per category and row."""
    fill = value.expressions[0] if isinstance(value, exp.Coalesce) and len(value.expressions) == 1 else None
    if isinstance(fill, exp.Literal) and fill.is_string and fill.this != str(category):
        return value.this.copy().eq(_text(category))
    return value.copy().eq(_text(category))


def _categories(cats) -> list:
    """Known category values, without the missing marker (NaN/None) OrdinalEncoder may keep."""
    return [c for c in cats if not (c is None or (isinstance(c, float) and math.isnan(c)))]


def _ordinal(step, value: exp.Expression, cats, lookups: "_Lookups") -> exp.Expression:
    if step.handle_unknown != "use_encoded_value":
        raise NotCompilable("Only an OrdinalEncoder that encodes unknown categories is compiled.",
                            hint="score it with `dwml predict`.")
    known = _categories(cats)
    missing_code = step.encoded_missing_value
    if isinstance(missing_code, float) and math.isnan(missing_code):
        raise NotCompilable("An OrdinalEncoder that keeps missing values as NaN is not compiled.",
                            hint="score it with `dwml predict`.")
    ordered = _lookup(value, known, [number(i) for i in range(len(known))], number(step.unknown_value), lookups)
    if len(known) < len(cats):  # missing values were seen in training; otherwise they count as unknown
        return _case(_is_null(value), number(missing_code), ordered)
    return ordered


def _lookup(value: exp.Expression, keys, results: list[exp.Expression], otherwise: exp.Expression,
            lookups: "_Lookups") -> exp.Expression:
    """The result of the key `value` equals, else `otherwise` (also for NULL)."""
    return _lookup_many(value, keys, [results], [otherwise], lookups)[0]


def _lookup_many(value: exp.Expression, keys, results: list[list[exp.Expression]], otherwise: list[exp.Expression],
                 lookups: "_Lookups") -> list[exp.Expression]:
    """_lookup of several result lists over the same keys; a join gives them all at once."""
    if len(keys) > LOOKUP_JOIN_MIN_KEYS:
        return [exp.Coalesce(this=c, expressions=[o]) for c, o in zip(lookups.add(value, keys, results), otherwise)]
    return [exp.Case(ifs=[exp.If(this=value.copy().eq(_text(k)), true=r) for k, r in zip(keys, rs)], default=o)
            for rs, o in zip(results, otherwise)]


class _Lookups(list):
    """The lookups compiled as joins: (VALUES (key, value), ... AS alias(key, value), ON value = key),
    LEFT JOINed to the relation in the inputs level; with several results per key (a multiclass
    target encoding) the columns are value0, value1, .... Keys are unique (a fitted encoder's
    categories), so the join neither drops nor repeats a row."""

    def add(self, value: exp.Expression, keys, results: list[list[exp.Expression]]) -> list[exp.Column]:
        alias = f"{_LOOKUP_ALIAS}{len(self)}"
        names = [_LOOKUP_VALUE] if len(results) == 1 else [f"{_LOOKUP_VALUE}{j}" for j in range(len(results))]
        rows = [exp.Tuple(expressions=[_text(k), *(r.copy() for r in row)]) for k, *row in zip(keys, *results)]
        table = exp.Values(expressions=rows, alias=exp.TableAlias(
            this=sqlmod.ident(alias), columns=[sqlmod.ident(_LOOKUP_KEY), *(sqlmod.ident(n) for n in names)]))
        self.append((table, value.copy().eq(sqlmod.column(_LOOKUP_KEY, alias))))
        return [sqlmod.column(n, alias) for n in names]


# -- estimators ----------------------------------------------------------------------------------

def _is_sklearn_tree(estimator) -> bool:
    from sklearn.tree import BaseDecisionTree

    return isinstance(estimator, BaseDecisionTree)


def _compile_estimator(model, columns: list[exp.Column]) -> tuple[list[exp.Expression], str, int]:
    """(margins: one, or one per class of a multiclass model; link; tree nodes compiled)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge

    est = model.estimator
    n_classes = len(model.classes) if model.task == "classification" else 0
    if n_classes > 2:
        _check_classes(est, n_classes)
    if isinstance(est, LogisticRegression):
        if n_classes > 2:  # multinomial: predict_proba is the softmax of one linear margin per class
            return [_linear(c, float(i), columns) for c, i in zip(est.coef_, est.intercept_)], "softmax", 0
        return [_linear(est.coef_.ravel(), float(np.ravel(est.intercept_)[0]), columns)], "logistic", 0
    if isinstance(est, (Ridge, ElasticNet)):
        return [_linear(np.ravel(est.coef_), float(np.ravel(est.intercept_)[0]), columns)], "identity", 0
    if isinstance(est, (RandomForestClassifier, RandomForestRegressor)) or _is_sklearn_tree(est):
        trees = list(est.estimators_) if hasattr(est, "estimators_") else [est]
        nodes = sum(int(t.tree_.node_count) for t in trees)
        classify = model.task == "classification"
        # a multiclass tree is written once per class (SQL has no vector-valued CASE), so it costs that many nodes
        outputs = list(range(n_classes)) if n_classes > 2 else [1 if classify else 0]
        _check_size(nodes * len(outputs), f"{len(trees)} trees" if len(outputs) == 1
                    else f"{len(trees)} trees of {nodes:,} nodes, written once for each of {n_classes} classes")
        margins = []
        for output in outputs:
            parts = [_sklearn_tree(t.tree_, columns, classify, output) for t in trees]
            total = _balanced_sum(parts)
            margins.append(total if len(parts) == 1 else exp.Div(this=total, expression=number(len(parts))))
        return margins, ("max" if n_classes > 2 else "identity"), nodes * len(outputs)
    if type(est).__name__ in ("XGBClassifier", "XGBRegressor"):
        return _xgboost(est, columns, n_classes)
    raise NotCompilable(f"The estimator {type(est).__name__} is not compiled to SQL.",
                        hint="score it with `dwml predict`.")


def _check_classes(estimator, n_classes: int) -> None:
    """The estimator's classes are the codes 0..n-1 of model.classes (training encodes the label so)."""
    codes = getattr(estimator, "classes_", None)
    if codes is None or list(np.ravel(codes)) != list(range(n_classes)):
        raise NotCompilable(f"The estimator's classes {codes!r} are not the codes 0..{n_classes - 1} of the model's "
                            f"{n_classes} classes.", hint="this artifact is inconsistent; retrain the model.")


def _linear(coef, intercept: float, columns: list[exp.Column]) -> exp.Expression:
    terms = [number(intercept)] + [exp.Mul(this=number(c), expression=col.copy())
                                   for c, col in zip(coef, columns) if c != 0.0]
    return exp.Paren(this=_balanced_sum(terms))


def _check_size(nodes: int, what: str) -> None:
    if nodes > MAX_TREE_NODES:
        raise NotCompilable(
            f"The model has {nodes:,} tree nodes ({what}); SQL scoring is limited to {MAX_TREE_NODES:,}, past which "
            "the SQL gets too large to plan and store.",
            hint="score it with `dwml predict`, or train fewer or shallower trees (n_estimators, max_depth, "
            "min_samples_leaf).")


def _sklearn_tree(tree, columns: list[exp.Column], classify: bool, output: int) -> exp.Expression:
    """A scikit-learn tree as nested CASE: left when x <= threshold. The leaf is the probability of
    class `output` (value normalised as DecisionTreeClassifier.predict_proba does) or the value."""
    left, right, feature, threshold = tree.children_left, tree.children_right, tree.feature, tree.threshold
    values = tree.value[:, 0, :]

    def leaf(i: int) -> exp.Expression:
        if not classify:
            return number(values[i, 0])
        total = values[i].sum()
        return number(values[i, output] / (total if total != 0 else 1.0))

    def node(i: int) -> exp.Expression:
        if left[i] == -1:
            return leaf(i)
        return _case(columns[feature[i]].copy() <= _at_most_float32(threshold[i]), node(left[i]), node(right[i]))

    return node(0)


def _xgboost(estimator, columns: list[exp.Column], n_classes: int) -> tuple[list[exp.Expression], str, int]:
    booster = estimator.get_booster()
    model = json.loads(booster.save_raw(raw_format="json"))
    learner = model["learner"]
    objective = learner["objective"]["name"]
    params = learner["learner_model_param"]
    num_class = int(params.get("num_class", "0"))
    if int(params.get("num_target", "1")) > 1:
        raise NotCompilable("Multi-target XGBoost models are not compiled.", hint="score it with `dwml predict`.")
    if num_class > 1 and objective not in _XGB_MULTICLASS:
        raise NotCompilable(f"XGBoost objective {objective!r} with {num_class} classes is not compiled "
                            f"({', '.join(_XGB_MULTICLASS)} are).", hint="score it with `dwml predict`.")
    if (num_class > 1 or n_classes > 2) and num_class != n_classes:
        raise NotCompilable(f"The XGBoost model has {num_class} classes but the dwml model {n_classes}.",
                            hint="this artifact is inconsistent; retrain the model.")
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree":
        raise NotCompilable(f"XGBoost booster {gbm.get('name')!r} is not compiled (only gbtree).",
                            hint="score it with `dwml predict`.")
    trees = gbm["model"]["trees"]
    best = booster.attributes().get("best_iteration")
    if best is not None:  # predict() stops at the best iteration of early stopping
        trees = trees[:gbm["model"]["iteration_indptr"][int(best) + 1]]
    nodes = sum(len(t["left_children"]) for t in trees)
    _check_size(nodes, f"{len(trees)} trees")
    if num_class > 1:
        return _xgboost_multiclass(gbm["model"], trees, params["base_score"], num_class, columns), "softmax", nodes
    base = float(params["base_score"].strip("[]").split(",")[0])
    if objective == "binary:logistic":
        base_margin = math.log(base / (1.0 - base))
    elif objective.startswith("reg:") and objective not in ("reg:logistic", "reg:gamma", "reg:tweedie"):
        base_margin = base
    else:
        raise NotCompilable(f"XGBoost objective {objective!r} is not compiled (binary:logistic and identity-link "
                            "regressions are).", hint="score it with `dwml predict`.")
    margin = exp.Paren(this=_balanced_sum([number(base_margin)] + [_xgb_tree(t, columns) for t in trees]))
    return [margin], ("logistic" if objective == "binary:logistic" else "identity"), nodes


def _xgboost_multiclass(gbtree: dict, trees: list[dict], base_score: str, num_class: int,
                        columns: list[exp.Column]) -> list[exp.Expression]:
    """One margin per class: its base margin plus its trees. Checked against XGBoost 3.2's
    predict(output_margin=True): base_score is a vector of margins, one per class (not
    probabilities, unlike binary:logistic's; a model saved with one value reads back with it
    repeated for each class). `tree_info` names each tree's class: with num_parallel_tree > 1 the
    trees of an iteration are grouped by class, so tree i is not of class i % num_class."""
    bases = [float(v) for v in base_score.strip("[]").split(",")]
    if len(bases) != num_class:
        raise NotCompilable(f"The XGBoost model has {len(bases)} base scores for {num_class} classes.",
                            hint="score it with `dwml predict`.")
    tree_class = gbtree["tree_info"]
    compiled = [_xgb_tree(t, columns) for t in trees]
    return [exp.Paren(this=_balanced_sum([number(bases[k])] + [c for c, k_ in zip(compiled, tree_class) if k_ == k]))
            for k in range(num_class)]


def _xgb_tree(tree: dict, columns: list[exp.Column]) -> exp.Expression:
    left, right = tree["left_children"], tree["right_children"]
    index, cond, default_left = tree["split_indices"], tree["split_conditions"], tree["default_left"]
    if any(tree.get("split_type") or []):
        raise NotCompilable("XGBoost categorical splits are not compiled.", hint="score it with `dwml predict`.")

    def node(i: int) -> exp.Expression:
        if left[i] == -1:
            return number(float(np.float32(cond[i])))
        x, t = columns[index[i]].copy(), _below_float32(cond[i])
        if default_left[i]:  # NULL >= t is not true: missing goes left
            return _case(x >= t, node(right[i]), node(left[i]))
        return _case(x < t, node(left[i]), node(right[i]))

    return node(0)


# -- what a deployment stores --------------------------------------------------------------------

def storage_row(model, model_name: str, version: int, dialect: str, keep: list[str]) -> dict:
    """The dwml.scoring_sql row of a version for one dialect: the whole scoring query with
    RELATION_PLACEHOLDER for the relation, or status 'unavailable' and the reason."""
    row = unavailable_row(model, model_name, version, dialect, None, keep)
    try:
        compiled = compile_model(model)
        placeholder = exp.Table(this=sqlmod.ident(RELATION_PLACEHOLDER))
        query = compiled.query(placeholder, keep, {"model_name": model_name, "version": int(version)},
                               dialect=dialect)
        text = sqlmod.render(query, dialect)
    except NotCompilable as exc:
        return {**row, "status": "unavailable", "error": exc.message}
    except RecursionError:
        return {**row, "status": "unavailable", "error": "the trees are too deep to render as nested CASE expressions"}
    return {**row, "status": "ready", "query_sql": text, "relation_placeholder": sqlmod.render(placeholder, dialect),
            "tree_nodes": compiled.tree_nodes, "sql_chars": len(text),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def unavailable_row(model, model_name: str, version: int, dialect: str, reason: str | None,
                    keep: list[str] = ()) -> dict:
    """A dwml.scoring_sql row without a query: the version cannot be scored in SQL, for `reason`."""
    from dwml_py.rows import utcnow

    return {"model_name": model_name, "version": int(version), "dialect": dialect, "status": "unavailable",
            "query_sql": None, "relation_placeholder": None, "input_columns": json.dumps(list(model.feature_names)),
            "key_columns": json.dumps(list(keep)), "tree_nodes": None, "sql_chars": None, "sha256": None,
            "error": reason, "compiled_at": utcnow()}


def store(warehouse, row: dict) -> None:
    """Replace the version's row for its dialect (a re-deploy compiles again), in one transaction."""
    from dwml_py.tables import DWML_SCHEMA
    from dwml_py.rows import table_rows

    where = exp.and_(*(sqlmod.column(c).eq(sqlmod.literal(row[c])) for c in ("model_name", "version", "dialect")))
    with warehouse.transaction():
        warehouse.execute(exp.delete(sqlmod.table(DWML_SCHEMA, "scoring_sql"), where=where))
        warehouse.write_arrow(table_rows("scoring_sql", [row]), DWML_SCHEMA, "scoring_sql")
