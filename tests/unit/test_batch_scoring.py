"""Batch scoring's pieces that need no trained project: labels taken from the class names, the
final move of staged rows, and DuckDB's memory limit put back after a run."""

import datetime as dt

import numpy as np
import pyarrow as pa
from sqlglot import exp

from dwml_py import batch_scoring
from dwml_py import sql as sqlmod
from dwml_py.training import TrainedModel
from dwml_py.warehouse.duckdb import DuckDBWarehouse


class _Model:
    """Just what _scores reads of a TrainedModel: task, classes, threshold, predict_proba."""

    def __init__(self, proba, classes, threshold=0.5):
        self.task, self.classes, self.threshold, self._proba = "classification", classes, threshold, proba

    def predict_proba(self, table):
        return self._proba

    _labels_from_proba = TrainedModel._labels_from_proba


def test_labels_equal_the_models_own_labels():
    binary = _Model(np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]), [False, True], threshold=0.5)
    multi = _Model(np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]), ["a", 2, "c"])
    for model in (binary, multi):
        score, labels = batch_scoring.score_table(model, pa.table({"x": [1]}))
        expected = [str(v) for v in model._labels_from_proba(model._proba).tolist()]
        assert labels == expected
    assert batch_scoring.score_table(binary, None)[1] == ["False", "True", "True"]  # >= threshold
    assert batch_scoring.score_table(multi, None)[0].tolist() == [0.5, 0.6]


def test_staged_rows_move_with_the_run_constants_and_memory_is_bounded_then_restored():
    wh = DuckDBWarehouse(":memory:")
    try:
        wh.execute("create schema dwml")
        wh.execute("create table dwml.predictions (model_name varchar, version bigint, entity_key varchar, "
                   "snapshot_at timestamp, score double, predicted_label varchar, batch_id varchar, "
                   "source varchar, scored_at timestamp)")
        staged = pa.table({"entity_key": ["1", "2"], "snapshot_at": pa.nulls(2, pa.timestamp("us")),
                           "score": [0.25, 0.5], "predicted_label": pa.nulls(2, pa.string())})
        wh.write_arrow(staged, "dwml", "_stage")
        at = dt.datetime(2025, 1, 2, 3, 4, 5, 678901)
        wh.execute(batch_scoring._move_rows(sqlmod.table("dwml", "_stage"), staged.column_names, {
            "model_name": "it's", "version": 3, "batch_id": 'b"1', "source": "batch", "scored_at": at}))
        assert wh.fetch_rows("select * from dwml.predictions order by entity_key") == [
            {"model_name": "it's", "version": 3, "entity_key": k, "snapshot_at": None, "score": s,
             "predicted_label": None, "batch_id": 'b"1', "source": "batch", "scored_at": at}
            for k, s in (("1", 0.25), ("2", 0.5))]

        setting = "select current_setting('memory_limit') as v"
        wh.execute("set memory_limit = '1GB'")
        before = wh.fetch_scalar(setting)
        with batch_scoring._bounded_memory(wh):
            assert wh.fetch_scalar(setting) == "366.2 MiB"  # 384MB
        after = wh.fetch_scalar(setting)  # put back as DuckDB prints it, to its 0.1 MiB
        assert after.endswith(" MiB") and abs(float(after.split()[0]) - float(before.split()[0])) < 0.11
    finally:
        wh.close()


def test_staging_is_a_temporary_table_in_duckdb_and_a_dwml_table_elsewhere(tmp_path):
    path = tmp_path / "w.duckdb"
    wh = DuckDBWarehouse(str(path))
    rows = pa.table({"entity_key": ["a", "b"], "score": [0.5, 0.25]})
    try:
        staging = batch_scoring._Staging(wh)
        staging.append(rows)
        staging.append(rows.slice(1))
        assert wh.render(staging.table).startswith('"temp"."main"."_predictions_staging_')
        assert wh.fetch_rows(exp.select("entity_key", "score").from_(staging.table.copy())) == [
            {"entity_key": "a", "score": 0.5}, {"entity_key": "b", "score": 0.25}, {"entity_key": "b", "score": 0.25}]
        staging.drop()
        assert wh.fetch_rows("select table_name from information_schema.tables") == []
        batch_scoring._Staging(wh).append(rows)  # left behind: never in the database file, gone on close
    finally:
        wh.close()
    wh = DuckDBWarehouse(str(path))
    try:
        assert wh.fetch_rows("select table_name from information_schema.tables") == []
    finally:
        wh.close()

    class _NoArrowRegistration:  # an engine without DuckDB's Arrow registration (Postgres, Spark)
        def __init__(self):
            self.written = []

        def write_arrow(self, data, schema, name):
            self.written.append((schema, name, data.num_rows))

    plain = _NoArrowRegistration()
    staging = batch_scoring._Staging(plain)
    staging.append(rows)
    assert plain.written == [("dwml", staging.table.name, 2)] and staging.table.name.startswith("_predictions_staging_")


def test_overlapped_writes_keep_order_and_raise_the_first_error():
    import threading
    import time

    written, threads = [], set()

    def write(item):
        time.sleep(0.01)
        threads.add(threading.get_ident())
        written.append(item)

    seen = []
    for item in batch_scoring._overlapped(iter(range(6)), write):
        seen.append(item)
        assert len(written) >= item  # the one before is written: at most one write is pending
    assert seen == written == list(range(6)) and threading.get_ident() not in threads

    def fail_on_two(item):
        if item == 2:
            raise ValueError("write 2 failed")

    got = []
    try:
        for item in batch_scoring._overlapped(iter(range(6)), fail_on_two):
            got.append(item)
    except ValueError as exc:
        assert "write 2" in str(exc)
    else:
        raise AssertionError("the write's error was not raised")
    assert got == [0, 1, 2]  # raised when the next item is handed over, not lost

    def items():
        yield 0
        raise RuntimeError("scoring failed")

    done = []
    try:
        for _ in batch_scoring._overlapped(items(), lambda item: (time.sleep(0.05), done.append(item))):
            pass
    except RuntimeError:
        assert done == [0]  # the pending write finished before the error left
