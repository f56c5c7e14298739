"""The compiled scoring SQL (dwml_py.sql_scoring) executed on PostgreSQL equals
TrainedModel.predict_score, with category lookups both as CASE chains and as joins on VALUES
lists, on rows with NULLs and categories never seen in training."""

from __future__ import annotations

import numpy as np
import pytest

from dwml_py import sql as sqlmod
from dwml_py import sql_scoring
from tests.unit.test_sql_scoring import _fit, _table

pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="module")
def engine(pg_module_warehouse):
    pg = pg_module_warehouse
    rng = np.random.default_rng(20240601)
    train, scored = _table(rng, 1500, unseen=False), _table(rng, 1200, unseen=True)
    pg.write_arrow(scored, "s", "scored")
    yield pg, train, scored


@pytest.mark.parametrize("join_min_keys", [sql_scoring.LOOKUP_JOIN_MIN_KEYS, 3], ids=["case", "join"])
@pytest.mark.parametrize("algorithm", ["xgboost", "logistic"])
def test_sql_scores_on_postgres_equal_python(engine, monkeypatch, algorithm, join_min_keys):
    pg, train, scored = engine
    monkeypatch.setattr(sql_scoring, "LOOKUP_JOIN_MIN_KEYS", join_min_keys)
    model = _fit(train, algorithm, "classification")
    compiled = sql_scoring.compile_model(model)
    assert bool(compiled.lookups) == (join_min_keys == 3)
    query = compiled.query(sqlmod.table("s", "scored"), ["customer_id"], dialect="postgres").order_by(
        sqlmod.column("customer_id"))
    got = pg.fetch_arrow(query)
    assert got.column("customer_id").to_pylist() == scored.column("customer_id").to_pylist()
    scores = np.asarray(got.column("score").to_pylist(), dtype=float)
    assert np.max(np.abs(scores - model.predict_score(scored))) < 1e-6
