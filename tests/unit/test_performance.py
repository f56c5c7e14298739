"""dwml_py.performance without dbt: the warehouse-side join of predictions to matured labels (on an
in-memory DuckDB), per-window metrics against scikit-learn, and the degradation rule."""

from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from dwml_py import performance as perf
from dwml_py.batch_scoring import entity_keys
from dwml_py.errors import ConfigError, InputError
from dwml_py.tables import ensure_tables
from dwml_py.tracking import table_rows
from dwml_py.warehouse.duckdb import DuckDBWarehouse

SNAPSHOTS = [date(2025, 1, 1), date(2025, 1, 15), date(2025, 2, 1), date(2025, 3, 1)]
SPEC = {"model_name": "m", "task": "classification", "feature_model": "model.p.f", "feature_schema": "main",
        "feature_table": "f", "entity": ["customer_id"], "timestamp": "snapshot_date", "label_model": "model.p.l",
        "label_schema": "main", "label_table": "l", "label_column": "y", "horizon_days": 30, "features": ["x"]}


def _prediction_rows(keys: pa.Array, snapshots, scores, version, batch, scored_at):
    n = len(scores)
    return [{"model_name": "m", "version": version, "entity_key": keys[i].as_py(),
             "snapshot_at": datetime.combine(snapshots[i], datetime.min.time()), "score": float(scores[i]),
             "batch_id": batch, "source": "batch", "scored_at": scored_at} for i in range(n)]


@pytest.fixture(scope="module")
def world():
    """200 customers x 4 snapshots; labels NULL for the last snapshot (not mature); version 1 scored
    everything twice (the second, later batch is the one that counts), version 2 only the odd ids."""
    rng = np.random.default_rng(3)
    wh = DuckDBWarehouse(":memory:")
    ensure_tables(wh)
    ids = np.tile(np.arange(200), len(SNAPSHOTS))
    snaps = np.repeat(np.array(SNAPSHOTS, dtype=object), 200)
    y = (rng.random(len(ids)) < 0.3).astype(int)
    x = y + rng.normal(size=len(ids))
    labels = pa.table({"customer_id": ids, "snapshot_date": pa.array(list(snaps), pa.date32()),
                       "y": pa.array([None if s == SNAPSHOTS[-1] else int(v) for s, v in zip(snaps, y)], pa.int64())})
    wh.write_arrow(pa.table({"customer_id": ids, "snapshot_date": labels.column("snapshot_date"), "x": x}), "main", "f")
    wh.write_arrow(labels, "main", "l")
    keys = entity_keys(pa.table({"customer_id": ids}), ["customer_id"])
    new = 1 / (1 + np.exp(-x))
    old = rng.random(len(ids))
    t0 = datetime(2025, 6, 1)
    rows = _prediction_rows(keys, snaps, old, 1, "old", t0) + _prediction_rows(keys, snaps, new, 1, "new",
                                                                                t0 + timedelta(hours=1))
    odd = ids % 2 == 1
    v2 = np.clip(new + rng.normal(scale=0.1, size=len(ids)), 0, 1)
    rows += _prediction_rows(keys.filter(pa.array(odd)), snaps[odd], v2[odd], 2, "v2", t0)
    wh.write_arrow(table_rows("predictions", rows), "dwml", "predictions")
    yield {"wh": wh, "ids": ids, "snaps": snaps, "y": y, "score": new, "v2": v2}
    wh.close()


def _fetch(wh, versions, cutoff=None, after=None, before=None, window="month"):
    filters = perf.time_filter("snapshot_at", cutoff, after, before)
    table = wh.fetch_arrow(perf.predictions_query("m", versions, SPEC, "duckdb", True, window, filters))
    return table.to_pydict()


def test_latest_predictions_joined_to_labels_per_window(world):
    got = _fetch(world["wh"], [1])
    labelled = np.array([s != SNAPSHOTS[-1] for s in world["snaps"]])
    assert len(got[perf.LABEL_COLUMN]) == labelled.sum()  # one row per (entity, snapshot): old batch dropped
    assert sorted(got[perf.score_column(0)]) == pytest.approx(sorted(world["score"][labelled]))
    months = {w.date() for w in got[perf.WINDOW_COLUMN]}
    assert months == {date(2025, 1, 1), date(2025, 2, 1)}  # 2025-01-15 falls in January; March has no label
    # per-window metrics equal scikit-learn's on the same rows
    for month in months:
        mask = np.array([s.month == month.month for s in world["snaps"]]) & labelled
        y, score = world["y"][mask], world["score"][mask]
        idx = [i for i, w in enumerate(got[perf.WINDOW_COLUMN]) if w.date() == month]
        fetched_y = np.array([got[perf.LABEL_COLUMN][i] for i in idx])
        fetched_s = np.array([got[perf.score_column(0)][i] for i in idx])
        values = perf.window_metrics("classification", fetched_y, fetched_s, 0.5)
        assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
        assert values["pr_auc"] == pytest.approx(skm.average_precision_score(y, score), abs=1e-12)
        assert values["log_loss"] == pytest.approx(skm.log_loss(y, score), abs=1e-12)
        assert values["brier"] == pytest.approx(skm.brier_score_loss(y, score), abs=1e-12)
        assert values["accuracy"] == pytest.approx(skm.accuracy_score(y, score >= 0.5), abs=1e-12)
        assert values["f1"] == pytest.approx(skm.f1_score(y, score >= 0.5), abs=1e-12)
        assert len(idx) == mask.sum()


def test_maturity_cutoff_and_windows_filter_snapshots(world):
    # as of 2025-02-20 with a 30-day delay only snapshots up to 2025-01-21 have matured
    delay, now, cutoff = perf.maturity(SPEC, None, None, "2025-02-20")
    assert (delay, now, cutoff) == (30, datetime(2025, 2, 20), datetime(2025, 1, 21))
    got = _fetch(world["wh"], [1], cutoff=cutoff)
    assert {w.date() for w in got[perf.WINDOW_COLUMN]} == {date(2025, 1, 1)} and len(got[perf.LABEL_COLUMN]) == 400
    got = _fetch(world["wh"], [1], after="2025-01-10", before="2025-02-01", window="day")
    assert {w.date() for w in got[perf.WINDOW_COLUMN]} == {date(2025, 1, 15)}
    assert perf.maturity(SPEC, 0, 7, "2025-02-20")[0] == 0  # the argument wins over the configured delay
    assert perf.maturity({**SPEC, "timestamp": None}, None, None, None)[2] is None
    with pytest.raises(InputError, match="label_delay_days"):
        perf.maturity(SPEC, -1, None, None)
    with pytest.raises(InputError, match="ISO"):
        perf.maturity(SPEC, None, None, "last tuesday")


def test_two_versions_are_compared_on_the_rows_both_scored(world):
    got = _fetch(world["wh"], [1, 2])
    assert len(got[perf.LABEL_COLUMN]) == 300  # odd ids x 3 labelled snapshots
    odd = (world["ids"] % 2 == 1) & np.array([s != SNAPSHOTS[-1] for s in world["snaps"]])
    assert sorted(got[perf.score_column(1)]) == pytest.approx(sorted(world["v2"][odd]))
    assert sorted(got[perf.score_column(0)]) == pytest.approx(sorted(world["score"][odd]))


def test_multi_column_entity_keys_match_the_json_text():
    wh = DuckDBWarehouse(":memory:")
    try:
        ensure_tables(wh)
        keys = pa.table({"shop": ["a", "b", "o'x"], "item": [1, 2, 3]})
        snap = pa.array([date(2025, 1, 1)] * 3, pa.date32())
        wh.write_arrow(keys.append_column("snapshot_date", snap).append_column("x", pa.array([0.1, 0.2, 0.3])),
                       "main", "f")
        wh.write_arrow(keys.append_column("snapshot_date", snap).append_column("y", pa.array([0, 1, 1])), "main", "l")
        text = entity_keys(keys, ["shop", "item"])
        wh.write_arrow(table_rows("predictions", _prediction_rows(text, [date(2025, 1, 1)] * 3, [0.2, 0.7, 0.9], 1,
                                                                  "b", datetime(2025, 6, 1))), "dwml", "predictions")
        spec = {**SPEC, "entity": ["shop", "item"]}
        got = wh.fetch_arrow(perf.predictions_query("m", [1], spec, "duckdb", True, "month", [])).to_pydict()
        assert sorted(zip(got[perf.LABEL_COLUMN], got[perf.score_column(0)])) == [(0, 0.2), (1, 0.7), (1, 0.9)]
    finally:
        wh.close()


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300) * 10
    pred = y + rng.normal(size=300)
    values = perf.window_metrics("regression", y, pred, None)
    assert values == pytest.approx({"rmse": np.sqrt(skm.mean_squared_error(y, pred)),
                                    "mae": skm.mean_absolute_error(y, pred), "r2": skm.r2_score(y, pred)}, abs=1e-12)
    single = perf.window_metrics("classification", np.zeros(5, dtype=int), np.full(5, 0.2), 0.5)
    assert single["roc_auc"] is None and single["pr_auc"] is None and single["accuracy"] == 1.0


def test_degradation_rule():
    rule = perf.resolve_rule(None, None, "classification")
    assert rule == {"tolerance": 0.05, "metrics": ["roc_auc"], "limits": {}, "min_rows": 100,
                    "label_delay_days": None}
    assert perf.is_degraded("roc_auc", 0.7124, 0.75, rule, 500) is True  # 5.01% relative drop
    assert perf.is_degraded("roc_auc", 0.7126, 0.75, rule, 500) is False
    assert perf.is_degraded("roc_auc", 0.5, 0.75, rule, 99) is None  # too few rows to judge
    assert perf.is_degraded("brier", 0.5, 0.1, rule, 500) is None  # recorded, not judged
    rule = perf.resolve_rule({"vars": {"dwml": {"performance": {"tolerance": 0.1, "min_rows": 10}}}},
                             {"dwml": {"performance": {"limits": {"log_loss": 0.4, "roc_auc": 0.8}}}}, "classification")
    assert perf.is_degraded("log_loss", 0.41, 0.41, rule, 50) is True  # beyond its limit whatever the baseline
    assert perf.is_degraded("log_loss", 0.39, 0.2, rule, 50) is False  # limit only: not judged on the baseline
    assert perf.is_degraded("roc_auc", 0.79, 0.8, rule, 50) is True  # within tolerance but below the limit
    reg = perf.resolve_rule(None, {"dwml": {"performance": {"metrics": ["rmse", "r2"]}}}, "regression")
    assert perf.is_degraded("rmse", 10.6, 10.0, reg, 500) is True  # lower is better: a 6% rise
    assert perf.is_degraded("r2", -0.2, -0.1, reg, 500) is True  # relative to |baseline|
    for bad, match in (({"tolerance": 2}, "tolerance"), ({"metrics": ["rmse"]}, "metrics"),
                       ({"limits": {"roc_auc": "high"}}, "limits"), ({"tolerence": 0.1}, "tolerance"),
                       ({"min_rows": -1}, "min_rows")):
        with pytest.raises(ConfigError, match=match):
            perf.resolve_rule({"vars": {"dwml": {"performance": bad}}}, None, "classification")


def test_window_end():
    assert perf._window_end(datetime(2025, 12, 1), "month") == datetime(2026, 1, 1)
    assert perf._window_end(datetime(2025, 3, 3), "week") == datetime(2025, 3, 10)
    assert perf._window_end(datetime(2025, 3, 3), "day") == datetime(2025, 3, 4)
    assert perf._window_end(None, "month") is None
