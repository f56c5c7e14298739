"""Out-of-core XGBoost training (dwml_py.out_of_core) from a Spark table: the same model and
metrics as in-memory training on the same engine, with the rows reaching the driver only in
batches (SparkWarehouse.fetch_batches: each partition converted to Arrow on the executors and
streamed to the driver one at a time), never as one fetch of the whole training query."""

from __future__ import annotations

import numpy as np
import pytest

from dwml_py import out_of_core as ooc
from dwml_py.training import evaluate, fit
from dwml_py.training_set import build_training_query, fetch_training_table, split
from dwml_py.warehouse.spark import SparkWarehouse
from tests.unit.test_out_of_core import PARAMS, _spec, _table

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

ROWS, BATCH = 20_000, 1_500
SCHEMA = "ooc_spark"


class RecordingWarehouse(SparkWarehouse):
    """The Spark warehouse, recording how many rows each read brought to the driver."""

    def __init__(self, spark):
        super().__init__(spark)
        self.arrow_rows: list[int] = []  # one entry per fetch_arrow (fetch_rows goes through it)
        self.batch_rows: list[int] = []  # one entry per batch of fetch_batches

    def fetch_arrow(self, query):
        table = super().fetch_arrow(query)
        self.arrow_rows.append(table.num_rows)
        return table

    def fetch_batches(self, query, batch_size: int = 100_000):
        for batch in super().fetch_batches(query, batch_size=batch_size):
            self.batch_rows.append(batch.num_rows)
            yield batch


def _spark_spec(**kwargs):
    spec = _spec(**kwargs)
    spec.feature_schema = spec.label_schema = SCHEMA
    return spec


@pytest.fixture(scope="module")
def trained(spark_session):
    """The same 20k rows trained in memory and streamed in 1,500-row batches, both on Spark."""
    warehouse = RecordingWarehouse(spark_session)
    warehouse.write_arrow(_table(ROWS), SCHEMA, "feats", mode="replace")
    spec = _spark_spec()
    query = build_training_query(spec, "spark", asof_join=warehouse.capabilities.asof_join)
    table = fetch_training_table(warehouse, query)
    train, holdout, info = split(table, spec, method="time", holdout_fraction=0.2, seed=0)
    in_memory = fit(train, spec, "xgboost", PARAMS, seed=0)
    expected = evaluate(in_memory, holdout)

    warehouse.arrow_rows.clear()
    warehouse.batch_rows.clear()
    data = ooc.StreamedTrainingSet.plan(warehouse, query, spec, method="time", holdout_fraction=0.2, seed=0,
                                        batch_rows=BATCH)
    streamed, _ = ooc.fit_streamed(data, spec, "xgboost", PARAMS, seed=0)
    got = ooc.evaluate_streamed(streamed, data)
    return {"warehouse": warehouse, "query": query, "info": info, "holdout": holdout, "in_memory": in_memory,
            "expected": expected, "table_bytes_per_row": table.nbytes / table.num_rows, "data": data,
            "streamed": streamed, "got": got, "batches": list(warehouse.batch_rows),
            "arrow_rows": list(warehouse.arrow_rows)}


def test_streamed_model_and_metrics_equal_the_in_memory_ones(trained):
    a, b, holdout = trained["in_memory"], trained["streamed"], trained["holdout"]
    assert trained["data"].split_info == trained["info"]
    assert b.features == a.features and b.transformed_names == a.transformed_names and b.params == a.params
    # Same rows, same preprocessing, same max_bin: XGBoost's quantile sketch over 1,500-row pages
    # gives the cut points of the in-memory matrix here, so the trees are the same; 1e-6 allows
    # for float32 rounding of the leaf sums in another order.
    np.testing.assert_allclose(b.predict_score(holdout), a.predict_score(holdout), atol=1e-6)
    expected, got = trained["expected"], trained["got"]
    assert got["rows"] == expected["rows"] == holdout.num_rows
    for name, value in expected["metrics"].items():
        assert got["metrics"][name] == pytest.approx(value, abs=1e-6), name


def test_rows_reach_the_driver_only_in_batches(trained):
    data, batches = trained["data"], trained["batches"]
    # The training query ran once on Spark (the statistics pass), in batches; XGBoost's passes and
    # the holdout's read the local spill file written from those batches.
    assert data.queries == 1 and data.passes >= 3
    assert sum(batches) == ROWS and len(batches) >= ROWS // BATCH
    assert max(batches) <= BATCH and data.largest_batch_rows <= BATCH
    # the only whole results fetched: the per-snapshot row counts of the time split (10 snapshots)
    assert max(trained["arrow_rows"]) == 10


def test_large_tables_choose_the_streamed_mode_on_spark(trained):
    warehouse, query = trained["warehouse"], trained["query"]
    fits = ooc.choose_mode(warehouse, query, ROWS, "xgboost", None, max_in_memory_mb=4096)
    assert fits["out_of_core"] is False
    # the estimate is the Arrow bytes of 2,000 rows fetched from Spark, scaled to the row count, as
    # on DuckDB: within 10% of the bytes per row of the whole fetched table
    assert fits["arrow_bytes_per_row"] == pytest.approx(trained["table_bytes_per_row"], rel=0.1)
    assert fits["estimated_peak_mb"] == pytest.approx(
        fits["arrow_bytes_per_row"] * ROWS / 2**20 * ooc.IN_MEMORY_FACTOR, rel=0.02)
    large = ooc.choose_mode(warehouse, query, 50_000_000, "xgboost", None, max_in_memory_mb=4096)
    assert large["out_of_core"] is True and large["reason"].startswith("the estimated in-memory peak")
