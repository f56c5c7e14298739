"""Multiclass scoring SQL (dwml_py.sql_scoring) executed on PostgreSQL equals batch scoring: the
score, the label on every row and each class's probability, with category lookups as CASE chains
and as joins (a multiclass target encoding: one VALUES list with a column per class); margins far
apart do not make PostgreSQL's EXP raise on underflow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dwml_py import sql as sqlmod
from dwml_py import sql_scoring
from tests.unit.test_sql_scoring import _check_multiclass, _fit_multiclass, _multiclass_table

pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="module")
def engine(pg_module_warehouse):
    pg = pg_module_warehouse
    rng = np.random.default_rng(20240617)
    data = {k: (_multiclass_table(rng, 1500, False, k), _multiclass_table(rng, 1200, True, k)) for k in (3, 4)}
    for k, (_, scored) in data.items():
        pg.write_arrow(scored, "s", f"scored{k}")
    yield pg, data


@pytest.mark.parametrize("join_min_keys", [sql_scoring.LOOKUP_JOIN_MIN_KEYS, 3], ids=["case", "join"])
@pytest.mark.parametrize("algorithm,classes", [("xgboost", 3), ("logistic", 4), ("random_forest", 3)])
def test_multiclass_sql_scores_on_postgres_equal_batch_scoring(engine, monkeypatch, algorithm, classes, join_min_keys):
    pg, data = engine
    train, scored = data[classes]
    monkeypatch.setattr(sql_scoring, "LOOKUP_JOIN_MIN_KEYS", join_min_keys)
    model = _fit_multiclass(train, algorithm)
    compiled = sql_scoring.compile_model(model)
    assert bool(compiled.lookups) == (join_min_keys == 3)
    query = compiled.query(sqlmod.table("s", f"scored{classes}"), ["customer_id"], {"model_name": "m", "version": 7},
                           probabilities=True, dialect="postgres").order_by(sqlmod.column("customer_id"))
    _check_multiclass(model, scored, pg.fetch_arrow(query), tie=1e-6 if algorithm == "xgboost" else 1e-12)


def test_far_apart_margins_do_not_underflow_on_postgres(engine):
    pg, _ = engine
    with pytest.raises(Exception, match="underflow"):  # why the softmax clamps its differences
        pg.fetch_scalar("select exp(-1000::float8)")
    margins = [(0.0, -1000.0, -2000.0), (5.0, 5.0, -800.0)]
    pg.write_arrow(pa.table({n: pa.array([m[i] for m in margins], pa.float64()) for i, n in enumerate("abc")}),
                   "s", "margins")
    compiled = sql_scoring.CompiledScoring(
        algorithm="t", task="classification", features=["a", "b", "c"],
        inputs=[(f"__dwml_x{k}", sqlmod.column(c)) for k, c in enumerate("abc")],
        margins=[sqlmod.column(f"__dwml_x{k}") for k in range(3)], link="softmax",
        label=sql_scoring._top_class(["x", "y", "z"]))
    got = pg.fetch_arrow(compiled.query(sqlmod.table("s", "margins"), ["a"], probabilities=True)
                         .order_by(sqlmod.column("a")))
    assert got.column("score").to_pylist() == [1.0, 0.5] and got.column("predicted_label").to_pylist() == ["x", "x"]
    assert got.column("probability_1").to_pylist()[1] == 0.5 and got.column("probability_2").to_pylist()[0] < 1e-300
