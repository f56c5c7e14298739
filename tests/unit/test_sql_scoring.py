"""SQL scoring (dwml_py.sql_scoring): the compiled SQL equals TrainedModel.predict_score to 1e-6 in
DuckDB for every algorithm and task, on rows with NULLs in numeric, boolean and categorical
features and categories never seen in training; the labels equal the Python ones; the SQL
transpiles to the other target dialects; what cannot be compiled is refused with a reason."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py import sql_scoring
from dwml_py.training import fit

CITIES = [f"city_{i:02d}" for i in range(12)]  # > high_cardinality below: the ordinal/target-encoded path
PLANS = ["basic", "family", "premium", "standard"]


def _table(rng: np.random.Generator, n: int, unseen: bool) -> pa.Table:
    """Mixed-type features with NULLs; `unseen` adds categories training never saw and NULLs in
    columns that had none in training."""
    amount = rng.gamma(2.0, 30.0, n)
    amount[rng.random(n) < 0.15] = np.nan
    tenure = rng.integers(0, 2000, n).astype(float)
    plans = rng.choice(PLANS + ([None] if unseen else []), n).tolist()
    cities = rng.choice(CITIES[:10] + ["city_10", "city_11"] if unseen else CITIES[:10], n).tolist()
    cities = [None if rng.random() < 0.1 else c for c in cities]
    if unseen:
        plans = [("enterprise" if rng.random() < 0.1 else p) for p in plans]
        tenure[rng.random(n) < 0.1] = np.nan  # no NULL in training: imputed, no indicator
    # no NULL in training, NULLs when scoring: OrdinalEncoder then counts them as unknown, not missing
    regions = [None if unseen and rng.random() < 0.2 else c for c in rng.choice(CITIES, n).tolist()]
    opt_in = [None if rng.random() < 0.1 else bool(b) for b in rng.random(n) < 0.4]
    plan_effect = np.array([{"basic": 0.8, "family": -0.3, "premium": -0.6}.get(p, 0.0) for p in plans])
    city_effect = np.array([0.0 if c is None else (int(c[-2:]) % 3 - 1) * 0.5 for c in cities])
    logit = (0.02 * np.nan_to_num(amount, nan=40.0) - 0.001 * np.nan_to_num(tenure, nan=900) + plan_effect
             + city_effect + np.array([0.3 if r in ("city_01", "city_02") else 0.0 for r in regions]) + np.array([0.4 if o else 0.0 for o in opt_in]) + rng.normal(0, 0.8, n) - 0.5)
    return pa.table({
        "customer_id": pa.array(np.arange(n), pa.int64()),
        "amount": pa.array(amount, pa.float64(), from_pandas=True),
        "tenure_days": pa.array(tenure, pa.float64(), from_pandas=True),
        "plan": pa.array(plans, pa.string()),
        "city": pa.array(cities, pa.string()),
        "region": pa.array(regions, pa.string()),
        "opt_in": pa.array(opt_in, pa.bool_()),
        "churned": pa.array((logit > 0).astype(np.int64)),
        "revenue": pa.array(logit * 10 + 50.0),
    })


FEATURES = ["amount", "tenure_days", "plan", "city", "region", "opt_in"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20240601)
    return _table(rng, 1500, unseen=False), _table(rng, 1200, unseen=True)


def _spec(task: str) -> dict:
    return {"label_column": "churned" if task == "classification" else "revenue", "task": task,
            "features": FEATURES, "entity": ["customer_id"]}


SMALL = {
    "random_forest": {"n_estimators": 15, "n_jobs": 1},
    "xgboost": {"n_estimators": 40},
}


def _fit(train, algorithm, task, **kw):
    params = dict(SMALL.get(algorithm, {}))
    params.update(kw.pop("params", {}))
    return fit(train, _spec(task), algorithm, params=params, seed=3, high_cardinality=8, **kw)


def _run_on_duckdb(query: exp.Expression, table: pa.Table, dialect: str = "duckdb") -> pa.Table:
    """`query` (over the relation `scored`) rendered for `dialect`, run in DuckDB over `table`, by customer."""
    con = duckdb.connect()
    try:
        con.register("scored", table)
        return con.sql(sqlmod.render(query, dialect) + ' ORDER BY "customer_id"').to_arrow_table()
    finally:
        con.close()


def _sql_scores(model, table: pa.Table, dialect: str = "duckdb"):
    compiled = sql_scoring.compile_model(model)
    query = compiled.query(sqlmod.table(None, "scored"), ["customer_id"], {"model_name": "m", "version": 7})
    return _run_on_duckdb(query, table, dialect), compiled


CASES = [
    ("logistic", "classification", {}),
    ("logistic", "classification", {"params": {"C": 0.3}, "balance_classes": False, "threshold": 0.3}),
    ("linear", "regression", {}),
    ("linear", "regression", {"params": {"alpha": 0.1, "l1_ratio": 0.5}}),
    ("random_forest", "classification", {}),
    ("random_forest", "regression", {}),
    ("xgboost", "classification", {}),
    ("xgboost", "regression", {}),
]


@pytest.mark.parametrize("algorithm,task,kw", CASES, ids=[f"{a}-{t}-{i}" for i, (a, t, _) in enumerate(CASES)])
def test_sql_equals_python(data, algorithm, task, kw):
    train, scored = data
    model = _fit(train, algorithm, task, **kw)
    out, compiled = _sql_scores(model, scored)
    expected = model.predict_score(scored)
    got = np.asarray(out.column("score").to_pylist(), dtype=float)
    assert out.column("customer_id").to_pylist() == scored.column("customer_id").to_pylist()
    assert not np.isnan(got).any()
    # XGBoost itself adds its trees in float32: a regression value of ~50 carries ~4e-6 of float32
    # rounding, so there the 1e-6 is relative; everything else is compared in absolute terms.
    scale = np.maximum(1.0, np.abs(expected)) if (algorithm, task) == ("xgboost", "regression") else 1.0
    assert np.max(np.abs(got - expected) / scale) < 1e-6, (algorithm, task, np.max(np.abs(got - expected)))
    if task == "classification":
        labels = [str(v) for v in model.predict(scored).tolist()]
        # a score within float noise of the threshold may fall either way; none here is that close
        close = np.abs(expected - model.threshold) < 1e-9
        assert [a for a, c in zip(out.column("predicted_label").to_pylist(), close) if not c] == \
               [b for b, c in zip(labels, close) if not c]
        assert set(labels) == {"0", "1"}  # both classes are predicted: the label is really checked
    else:
        assert out.column("predicted_label").null_count == out.num_rows
    assert set(out.column("model_name").to_pylist()) == {"m"} and set(out.column("version").to_pylist()) == {7}
    assert compiled.features == FEATURES
    assert (compiled.tree_nodes > 0) == (algorithm in ("random_forest", "xgboost"))


def test_the_high_cardinality_paths_are_the_ones_tested(data):
    """The data above does reach every encoder: ordinal codes for trees, target encoding for linear
    models, missing indicators for the numeric column with NULLs."""
    train, _ = data
    tree, linear = _fit(train, "random_forest", "classification"), _fit(train, "logistic", "classification")
    by_name = {f["name"]: f for f in tree.features}
    assert by_name["city"]["encoding"] == "high_cardinality" and by_name["plan"]["encoding"] == "onehot"
    assert by_name["region"]["encoding"] == "high_cardinality" and not by_name["region"]["missing"]
    steps = {type(s).__name__ for _, t, _ in linear.preprocessor.transformers_ for _, s in getattr(t, "steps", [])}
    assert {"TargetEncoder", "StandardScaler", "SimpleImputer", "OneHotEncoder"} <= steps
    assert [n for n in tree.transformed_names if "missing" in n] == ["missingindicator_amount", "missingindicator_opt_in"]


@pytest.mark.parametrize("algorithm,task", [("xgboost", "classification"), ("random_forest", "regression"),
                                            ("logistic", "classification")])
def test_large_lookups_are_joins_with_the_same_scores(data, monkeypatch, algorithm, task):
    """Past LOOKUP_JOIN_MIN_KEYS keys an ordinal code or a target encoding is a LEFT JOIN on a VALUES
    list: the same scores with NULL and unseen categories, every row once, in every dialect."""
    monkeypatch.setattr(sql_scoring, "LOOKUP_JOIN_MIN_KEYS", 3)  # city and region (10-12 keys) join
    train, scored = data
    model = _fit(train, algorithm, task)
    out, compiled = _sql_scores(model, scored)
    assert len(compiled.lookups) == 2
    assert out.column("customer_id").to_pylist() == scored.column("customer_id").to_pylist()
    got = np.asarray(out.column("score").to_pylist(), dtype=float)
    assert np.max(np.abs(got - model.predict_score(scored))) < 1e-6
    query = compiled.query(sqlmod.table("main", "features"), ["customer_id"])
    for dialect in ("postgres", "spark", "snowflake", "bigquery", "trino"):
        text = sqlmod.render(query, dialect)
        assert "LEFT JOIN" in text and isinstance(sqlglot.parse_one(text, read=dialect), exp.Select)


def test_one_hot_flags_and_codes_are_compared_without_needless_work(data):
    """A one-hot flag compares the raw column unless its category is the missing marker, and flags
    booleans and ordinal codes (float32 already) skip the float32 casts numeric tree inputs get."""
    from dwml_py.preprocessing import MISSING_CATEGORY

    imputed = exp.Coalesce(this=sqlmod.column("plan"), expressions=[exp.Literal.string(MISSING_CATEGORY)])
    con = duckdb.connect()
    for value in ("basic", None):
        for category in ("basic", "family", MISSING_CATEGORY):
            flag = sql_scoring._flag(sql_scoring._equals_text(imputed, category))
            got = con.sql(f"select {sqlmod.render(flag, 'duckdb')} from (select ?::varchar as plan)",
                          params=[value]).fetchall()[0][0]
            assert got == float((value or MISSING_CATEGORY) == category), (value, category)
            assert ("COALESCE" in sqlmod.render(flag, "duckdb")) == (category == MISSING_CATEGORY)
    con.close()
    train, _ = data
    model = _fit(train, "xgboost", "classification")
    model_inputs = dict(zip(model.transformed_names, sql_scoring.compile_model(model).inputs))
    for name, (_, expression) in model_inputs.items():
        rounded = "AS FLOAT" in sqlmod.render(expression, "duckdb").replace("REAL", "FLOAT")
        assert rounded == (name in ("amount", "tenure_days")), name


def test_a_single_decision_tree_compiles(data):
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    train, scored = data
    for task, cls in (("classification", DecisionTreeClassifier), ("regression", DecisionTreeRegressor)):
        model = _fit(train, "random_forest", task)
        y = model.transform(train)
        target = np.asarray(train.column(model.label).to_pylist())
        model.estimator = cls(max_depth=6, random_state=0).fit(y, target)
        out, compiled = _sql_scores(model, scored)
        got = np.asarray(out.column("score").to_pylist(), dtype=float)
        assert np.max(np.abs(got - model.predict_score(scored))) < 1e-9
        assert compiled.tree_nodes == model.estimator.tree_.node_count


def test_xgboost_thresholds_are_exact_float32_and_missing_follows_the_default(data):
    """Values exactly at a split threshold and NULLs everywhere: the float32 comparison and the
    default direction decide, as in XGBoost."""
    import json

    train, scored = data
    model = _fit(train, "xgboost", "classification")
    trees = json.loads(model.estimator.get_booster().save_raw(raw_format="json"))["learner"]["gradient_booster"][
        "model"]["trees"]
    amount_index = model.transformed_names.index("amount")
    cuts = sorted({float(np.float32(c)) for t in trees for c, i, l in
                   zip(t["split_conditions"], t["split_indices"], t["left_children"]) if l != -1 and i == amount_index})
    assert cuts
    n = scored.num_rows
    amounts = np.array([cuts[i % len(cuts)] for i in range(n)], dtype=float)
    amounts[::5] = np.nan
    edge = scored.set_column(scored.column_names.index("amount"), "amount",
                             pa.array(amounts, pa.float64(), from_pandas=True))
    nulls = pa.table({c: pa.nulls(n, edge.column(c).type) if c in FEATURES else edge.column(c)
                      for c in edge.column_names})
    for table in (edge, nulls):
        out, _ = _sql_scores(model, table)
        got = np.asarray(out.column("score").to_pylist(), dtype=float)
        assert np.max(np.abs(got - model.predict_score(table))) < 1e-6


def test_literals_are_exact_doubles():
    for value in (0.1, -2.5e-300, 1 / 3, 123456.789, float(np.float32(0.337)), 0.0, -0.0):
        text = sqlmod.render(sql_scoring.number(value), "duckdb")
        assert "e" in text
        con = duckdb.connect()
        assert con.sql(f"select typeof({text}), {text}").fetchall()[0] == ("DOUBLE", value)
        con.close()
    with pytest.raises(sql_scoring.NotCompilable, match="non-finite"):
        sql_scoring.number(float("inf"))


@pytest.mark.parametrize("dialect", ["postgres", "spark", "snowflake", "bigquery", "databricks", "trino"])
def test_the_sql_transpiles_and_parses_in_other_dialects(data, dialect):
    train, _ = data
    for algorithm, task in (("logistic", "classification"), ("xgboost", "regression")):
        model = _fit(train, algorithm, task, **({"params": {"n_estimators": 3}} if algorithm == "xgboost" else {}))
        query = sql_scoring.compile_model(model).query(sqlmod.table("main", "features"), ["customer_id"],
                                                        {"model_name": "m", "version": 1})
        text = sqlmod.render(query, dialect)
        parsed = sqlglot.parse_one(text, read=dialect)
        assert isinstance(parsed, exp.Select)
        assert {s.alias_or_name for s in parsed.selects} == {"customer_id", "score", "predicted_label",
                                                             "model_name", "version"}
        assert "__dwml_x0" in text
        # the exact double literals survive: the same number of exponent literals in both directions
        assert text.count("e-0") == sqlmod.render(parsed, dialect).count("e-0") > 0 or algorithm == "logistic"


def test_storage_row_has_the_query_with_a_placeholder(data):
    train, scored = data
    model = _fit(train, "xgboost", "classification", params={"n_estimators": 5})
    row = sql_scoring.storage_row(model, "churn", 3, "duckdb", ["customer_id"])
    assert row["status"] == "ready" and row["error"] is None
    assert row["relation_placeholder"] == '"__dwml_relation__"' and row["relation_placeholder"] in row["query_sql"]
    assert row["sql_chars"] == len(row["query_sql"]) and len(row["sha256"]) == 64 and row["tree_nodes"] > 5
    con = duckdb.connect()
    con.register("t", scored)
    got = con.sql(row["query_sql"].replace(row["relation_placeholder"], "t")).to_arrow_table()
    con.close()
    assert got.column_names == ["customer_id", "score", "predicted_label", "model_name", "version"]
    by_id = dict(zip(got.column("customer_id").to_pylist(), got.column("score").to_pylist()))
    expected = model.predict_score(scored)
    assert max(abs(by_id[i] - e) for i, e in zip(scored.column("customer_id").to_pylist(), expected)) < 1e-6


def test_refusals_say_why(data, monkeypatch):
    train, _ = data
    three = train.set_column(train.column_names.index("churned"), "churned",
                             pa.array(np.arange(train.num_rows) % 3, pa.int64()))
    multi = fit(three, _spec("classification"), "random_forest", params={"n_estimators": 3, "n_jobs": 1}, seed=0)
    nodes = sum(t.tree_.node_count for t in multi.estimator.estimators_)
    # a multiclass forest is written once per class: its trees fit under the limit, three copies do not
    monkeypatch.setattr(sql_scoring, "MAX_TREE_NODES", 2 * nodes)
    with pytest.raises(sql_scoring.NotCompilable, match="3 classes"):
        sql_scoring.compile_model(multi)
    row = sql_scoring.storage_row(multi, "m", 1, "duckdb", ["customer_id"])
    assert row["status"] == "unavailable" and "3 classes" in row["error"] and row["query_sql"] is None

    forest = _fit(train, "random_forest", "regression")
    monkeypatch.setattr(sql_scoring, "MAX_TREE_NODES", 100)
    with pytest.raises(sql_scoring.NotCompilable, match="tree nodes") as info:
        sql_scoring.compile_model(forest)
    assert "dwml predict" in info.value.hint


def test_pass_through_columns_must_not_clash(data):
    train, _ = data
    compiled = sql_scoring.compile_model(_fit(train, "logistic", "classification"))
    from dwml_py.errors import InputError

    with pytest.raises(InputError, match="score"):
        compiled.query(sqlmod.table(None, "t"), ["Score"])


def test_short_cuts_split_every_float32_as_the_threshold_does():
    """Thresholds are written with ~9 digits; no float32 input may change sides because of it."""
    rng = np.random.default_rng(5)
    thresholds = np.concatenate([rng.normal(0, 1e3, 300), rng.normal(0, 1e-3, 300), [0.0, 1.0, -2.5, 148.0, 1e-30]])
    for t in thresholds:
        t32 = np.float32(t)
        near = np.array([np.nextafter(t32, np.float32(-np.inf)), t32, np.nextafter(t32, np.float32(np.inf))],
                        dtype=np.float32)
        cut = float(sqlmod.render(sql_scoring._below_float32(float(t32)), "duckdb"))
        assert [float(x) < cut for x in near] == [float(x) < float(t32) for x in near]
        cut = float(sqlmod.render(sql_scoring._at_most_float32(float(t)), "duckdb"))
        assert [float(x) <= cut for x in near] == [float(x) <= float(t) for x in near]
        assert len(sqlmod.render(sql_scoring._below_float32(float(t32)), "duckdb")) <= 15


@pytest.mark.parametrize("algorithm", ["logistic", "random_forest", "xgboost"])
def test_nan_is_missing_in_sql_as_in_python(data, algorithm):
    """A float NaN (not a NULL) reaches the SQL from a real table; both paths treat it as missing."""
    train, scored = data
    amount = np.asarray(scored.column("amount").to_numpy(zero_copy_only=False), dtype=float)
    amount[::7] = np.nan
    with_nan = scored.set_column(scored.schema.get_field_index("amount"), "amount",
                                 pa.array(amount, pa.float64()))  # NaN kept as a value, not made NULL
    assert with_nan.column("amount").null_count == 0 and np.isnan(amount).sum() > 100
    model = _fit(train, algorithm, "classification")
    out, _ = _sql_scores(model, with_nan)
    got = np.asarray(out.column("score").to_pylist(), dtype=float)
    assert np.max(np.abs(got - model.predict_score(with_nan))) < 1e-6


# -- multiclass ----------------------------------------------------------------------------------

# a class name with a quote: the label CASE must quote it
REASONS = ["moved", "price", "it's the service", "quality"]


def _multiclass_table(rng: np.random.Generator, n: int, unseen: bool, classes: int) -> pa.Table:
    """_table with a label `reason` of `classes` classes: the argmax of one noisy logit per class,
    each driven by other features (so every class is predicted somewhere)."""
    table = _table(rng, n, unseen)
    amount = np.nan_to_num(np.asarray(table.column("amount").to_pylist(), dtype=float), nan=40.0)
    tenure = np.nan_to_num(np.asarray(table.column("tenure_days").to_pylist(), dtype=float), nan=900.0)
    plan = np.array([{"basic": 1.5, "family": -1.0, "premium": 0.5}.get(p, 0.0)
                     for p in table.column("plan").to_pylist()])
    city = np.array([0.0 if c is None else (int(c[-2:]) % 3) * 0.8 for c in table.column("city").to_pylist()])
    logits = np.stack([0.03 * amount - 1.5, plan, city, 0.0015 * tenure - 1.0][:classes], axis=1)
    logits += rng.gumbel(size=logits.shape)
    reasons = np.array(REASONS[:classes], dtype=object)[logits.argmax(axis=1)]
    return table.append_column("reason", pa.array(reasons.tolist(), pa.string()))


@pytest.fixture(scope="module")
def multiclass_data():
    rng = np.random.default_rng(20240617)
    return {k: (_multiclass_table(rng, 1500, False, k), _multiclass_table(rng, 1200, True, k)) for k in (3, 4)}


def _fit_multiclass(train, algorithm, **params):
    spec = {"label_column": "reason", "task": "classification", "features": FEATURES, "entity": ["customer_id"]}
    params = {**SMALL.get(algorithm, {}), **params}
    return fit(train, spec, algorithm, params=params, seed=3, high_cardinality=8)


def _check_multiclass(model, table: pa.Table, out: pa.Table, tie: float) -> None:
    """SQL = batch scoring: the score to 1e-6, the label on every row, the class probabilities to
    1e-6, summing to 1. The data has no near-tie (two most probable classes within `tie`: there
    float noise could order them otherwise than numpy's argmax), so every label is compared."""
    from dwml_py.batch_scoring import score_table

    expected, labels = score_table(model, table)
    assert out.column("customer_id").to_pylist() == table.column("customer_id").to_pylist()
    got = np.asarray(out.column("score").to_pylist(), dtype=float)
    assert not np.isnan(got).any() and np.max(np.abs(got - expected)) < 1e-6, np.max(np.abs(got - expected))
    proba = model.predict_proba(table)
    top2 = np.sort(proba, axis=1)[:, -2:]
    assert np.min(top2[:, 1] - top2[:, 0]) > tie
    assert out.column("predicted_label").to_pylist() == labels
    assert set(labels) == set(model.classes) == set(REASONS[:len(model.classes)])  # every class is predicted
    probabilities = np.stack([np.asarray(out.column(f"probability_{k}").to_pylist(), dtype=float)
                              for k in range(len(model.classes))], axis=1)
    assert np.max(np.abs(probabilities - proba)) < 1e-6
    assert np.max(np.abs(probabilities.sum(axis=1) - 1.0)) < 1e-12
    assert np.array_equal(probabilities.max(axis=1), got)  # the score is the top class's probability


MULTICLASS = [("xgboost", 3, "softmax"), ("xgboost", 4, "softmax"), ("logistic", 3, "softmax"),
              ("logistic", 4, "softmax"), ("random_forest", 3, "max"), ("random_forest", 4, "max")]


@pytest.mark.parametrize("algorithm,classes,link", MULTICLASS, ids=[f"{a}-{k}" for a, k, _ in MULTICLASS])
def test_multiclass_sql_equals_batch_scoring(multiclass_data, algorithm, classes, link):
    """Categorical and numeric features with NULLs and unseen categories; XGBoost's probabilities are
    float32, so its near-ties are taken within 1e-6."""
    train, scored = multiclass_data[classes]
    model = _fit_multiclass(train, algorithm)
    assert model.classes == sorted(REASONS[:classes])
    out, compiled = _sql_scores_multiclass(model, scored)
    assert compiled.link == link and len(compiled.margins) == classes
    _check_multiclass(model, scored, out, tie=1e-6 if algorithm == "xgboost" else 1e-12)
    assert set(out.column("model_name").to_pylist()) == {"m"} and set(out.column("version").to_pylist()) == {7}
    plain = compiled.query(sqlmod.table(None, "t"), ["customer_id"], {"model_name": "m", "version": 7})
    assert [s.alias_or_name for s in plain.selects] == ["customer_id", "score", "predicted_label", "model_name",
                                                        "version"]  # the shape of a binary model's query
    if algorithm == "random_forest":  # each tree once per class
        trees = sum(t.tree_.node_count for t in model.estimator.estimators_)
        assert compiled.tree_nodes == classes * trees


def _sql_scores_multiclass(model, table: pa.Table):
    compiled = sql_scoring.compile_model(model)
    query = compiled.query(sqlmod.table(None, "scored"), ["customer_id"], {"model_name": "m", "version": 7},
                           probabilities=True)
    return _run_on_duckdb(query, table), compiled


def _margins(compiled, table: pa.Table) -> np.ndarray:
    """The per-class margin columns of the compiled query (its __dwml_margins level), by row."""
    query = compiled.query(sqlmod.table(None, "scored"), ["customer_id"])
    level = next(s for s in query.find_all(exp.Subquery) if s.alias == "__dwml_margins").this
    out = _run_on_duckdb(level, table)
    return np.stack([np.asarray(out.column(f"__dwml_margin{k}").to_pylist(), dtype=float)
                     for k in range(len(compiled.margins))], axis=1)


@pytest.mark.parametrize("params", [{}, {"objective": "multi:softmax"}, {"num_parallel_tree": 2, "subsample": 0.7}],
                         ids=["softprob", "softmax", "parallel-trees"])
def test_xgboost_multiclass_margins_equal_output_margin(multiclass_data, params):
    """Each class's margin equals booster.predict(output_margin=True): base_score is a vector of
    margins, one per class, and each tree counts for the class `tree_info` gives it (with
    num_parallel_tree > 1 not i % num_class: the trees of an iteration come grouped by class)."""
    import json

    import xgboost as xgb

    train, scored = multiclass_data[3]
    model = _fit_multiclass(train, "xgboost", n_estimators=15, **params)
    saved = json.loads(model.estimator.get_booster().save_raw(raw_format="json"))["learner"]
    assert saved["objective"]["name"] == params.get("objective", "multi:softprob")
    assert len(saved["learner_model_param"]["base_score"].split(",")) == 3
    tree_info = saved["gradient_booster"]["model"]["tree_info"]
    if "num_parallel_tree" in params:
        assert tree_info[:6] == [0, 0, 1, 1, 2, 2]
    compiled = sql_scoring.compile_model(model)
    expected = model.estimator.get_booster().predict(xgb.DMatrix(model.transform(scored)), output_margin=True)
    # XGBoost adds its trees in float32: margins of a few units carry ~1e-6 of rounding
    assert np.max(np.abs(_margins(compiled, scored) - expected)) < 2e-6
    out, _ = _sql_scores_multiclass(model, scored)
    _check_multiclass(model, scored, out, tie=1e-6)


def test_multiclass_logistic_margins_are_the_decision_function(multiclass_data):
    train, scored = multiclass_data[4]
    model = _fit_multiclass(train, "logistic")
    expected = model.estimator.decision_function(model.transform(scored))
    assert np.max(np.abs(_margins(sql_scoring.compile_model(model), scored) - expected)) < 1e-12


@pytest.mark.parametrize("algorithm", ["logistic", "xgboost", "random_forest"])
def test_multiclass_large_lookups_are_joins(multiclass_data, monkeypatch, algorithm):
    """A multiclass target encoding (logistic) gives one input per feature and class: as a join, one
    VALUES list with a value column per class; ordinal codes (trees) stay one column."""
    monkeypatch.setattr(sql_scoring, "LOOKUP_JOIN_MIN_KEYS", 3)
    train, scored = multiclass_data[3]
    model = _fit_multiclass(train, algorithm)
    out, compiled = _sql_scores_multiclass(model, scored)
    assert len(compiled.lookups) == 2
    width = 1 + (3 if algorithm == "logistic" else 1)
    assert all(len(values.args["alias"].columns) == width for values, _ in compiled.lookups)
    _check_multiclass(model, scored, out, tie=1e-6 if algorithm == "xgboost" else 1e-12)


def test_a_single_multiclass_decision_tree_compiles(multiclass_data):
    from sklearn.tree import DecisionTreeClassifier

    train, scored = multiclass_data[4]
    model = _fit_multiclass(train, "random_forest")
    target = np.array([model.classes.index(v) for v in train.column("reason").to_pylist()])
    model.estimator = DecisionTreeClassifier(max_depth=6, random_state=0).fit(model.transform(train), target)
    out, compiled = _sql_scores_multiclass(model, scored)
    assert compiled.tree_nodes == 4 * model.estimator.tree_.node_count
    # a single tree's leaves tie often (small leaves): the label is checked where they do not
    from dwml_py.batch_scoring import score_table

    expected, labels = score_table(model, scored)
    assert np.max(np.abs(np.asarray(out.column("score").to_pylist()) - expected)) < 1e-12
    proba = np.sort(model.predict_proba(scored), axis=1)
    clear = proba[:, -1] > proba[:, -2]
    assert clear.mean() > 0.9
    assert [a for a, c in zip(out.column("predicted_label").to_pylist(), clear) if c] == \
           [b for b, c in zip(labels, clear) if c]


def test_multiclass_ties_take_the_first_class_as_argmax():
    """Equal margins: the label is the first of them in the model's classes, as numpy's argmax."""
    label = sql_scoring._top_class(["x", "y", "z"])
    compiled = sql_scoring.CompiledScoring(  # margins = the inputs a, b, c themselves
        algorithm="t", task="classification", features=["a", "b", "c"],
        inputs=[(f"__dwml_x{k}", sqlmod.column(c)) for k, c in enumerate("abc")],
        margins=[sqlmod.column(f"__dwml_x{k}") for k in range(3)], link="softmax", label=label)
    rows = [(1.0, 1.0, 0.0), (0.0, 2.0, 2.0), (3.0, 3.0, 3.0), (0.0, 0.0, 5.0), (-1000.0, 0.0, -2000.0)]
    con = duckdb.connect()
    table = pa.table({n: pa.array([r[i] for r in rows], pa.float64()) for i, n in enumerate("abc")})
    con.register("t", table)
    query = compiled.query(sqlmod.table(None, "t"), ["a"], probabilities=True)
    out = con.sql(sqlmod.render(query, "duckdb")).fetchall()
    con.close()
    margins = np.array(rows)
    assert [r[2] for r in out] == [["x", "y", "z"][i] for i in margins.argmax(axis=1)] == ["x", "y", "x", "z", "y"]
    softmax = np.exp(margins - margins.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    assert np.allclose([r[1] for r in out], softmax.max(axis=1), atol=1e-15, rtol=0)
    assert np.allclose([r[3:] for r in out], softmax, atol=1e-15, rtol=0)  # -1000 and -2000: clamped, no error


@pytest.mark.parametrize("dialect", ["postgres", "spark", "snowflake", "bigquery", "databricks", "trino"])
def test_multiclass_sql_transpiles_and_parses_in_other_dialects(multiclass_data, monkeypatch, dialect):
    monkeypatch.setattr(sql_scoring, "LOOKUP_JOIN_MIN_KEYS", 3)  # the multi-column VALUES join too
    train, _ = multiclass_data[3]
    for algorithm, params in (("logistic", {}), ("xgboost", {"n_estimators": 3})):
        model = _fit_multiclass(train, algorithm, **params)
        query = sql_scoring.compile_model(model).query(sqlmod.table("main", "features"), ["customer_id"],
                                                        {"model_name": "m", "version": 1})
        text = sqlmod.render(query, dialect)
        parsed = sqlglot.parse_one(text, read=dialect)
        assert [s.alias_or_name for s in parsed.selects] == ["customer_id", "score", "predicted_label",
                                                             "model_name", "version"]
        assert "GREATEST" in text.upper() and "__dwml_margin2" in text and "LEFT JOIN" in text


def test_class_probabilities_are_for_multiclass_only(data):
    from dwml_py.errors import InputError

    train, _ = data
    compiled = sql_scoring.compile_model(_fit(train, "logistic", "classification"))
    with pytest.raises(InputError, match="multiclass"):
        compiled.query(sqlmod.table(None, "t"), ["customer_id"], probabilities=True)


def test_multiclass_storage_row_is_ready(multiclass_data):
    train, scored = multiclass_data[3]
    model = _fit_multiclass(train, "xgboost", n_estimators=5)
    row = sql_scoring.storage_row(model, "reason", 2, "duckdb", ["customer_id"])
    assert row["status"] == "ready" and row["error"] is None and row["tree_nodes"] >= 15
    con = duckdb.connect()
    con.register("t", scored)
    got = con.sql(row["query_sql"].replace(row["relation_placeholder"], "t") + " ORDER BY customer_id").to_arrow_table()
    con.close()
    assert got.column_names == ["customer_id", "score", "predicted_label", "model_name", "version"]
    assert np.max(np.abs(np.asarray(got.column("score").to_pylist()) - model.predict_score(scored))) < 1e-6


def test_margins_are_fenced_on_postgres_only(multiclass_data, data):
    # PostgreSQL pulls subqueries up and would evaluate the trees once per reference to a margin
    # column; OFFSET 0 keeps the margins' SELECT apart there (and BigQuery rejects OFFSET without LIMIT)
    train, _ = multiclass_data[3]
    for model in (_fit_multiclass(train, "xgboost", n_estimators=3), _fit(data[0], "xgboost", "classification")):
        compiled = sql_scoring.compile_model(model)
        relation = sqlmod.table("s", "scored")
        assert compiled.query(relation, dialect="postgres").sql("postgres").count("OFFSET 0") == 1
        for dialect in ("duckdb", "bigquery", "spark", "snowflake"):
            assert "OFFSET" not in compiled.query(relation, dialect=dialect).sql(dialect)
        assert "OFFSET" not in compiled.query(relation).sql("postgres")
