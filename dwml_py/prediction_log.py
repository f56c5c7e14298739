"""Served predictions on their way to dwml.predictions: buffered, written in batches, never dropped quietly.

The REST server (dwml_py.serving) scores one request at a time; writing each request to the
warehouse would be slow, and on DuckDB it would hold the file's single write lock all the time.
So `PredictionLog` buffers rows and a background thread writes them every `flush_rows` rows or
`flush_seconds` seconds, and once more when the server stops.

Each flush becomes one batch (`batch_id` rest-<time>-<random>, source 'rest') written on a
connection opened for that flush and closed right after, so between flushes other processes
(a `dbt run`, `dwml predict`) can take the DuckDB file's write lock. When the warehouse refuses
(the file is still locked by another writer after DWML_LOCK_WAIT_SECONDS, a server is down), the
batch stays pending with its batch_id, the failure is logged, and the next flush tries again.
A batch is written as delete + insert of its batch_id in one transaction, so a retry after an
ambiguous failure never duplicates rows (and, keyed by source too, never touches another
source's rows: dwml_py.prediction_batches). Pending rows are bounded by `max_pending_rows`: beyond
it the oldest batches are dropped with an error in the log and counted in
`stats()["dropped_rows"]`. What still cannot be written at shutdown is saved as Parquet under
<artifact dir>/unflushed_predictions/ and the log says how to load it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.batch_scoring import PREDICTIONS
from dwml_py.prediction_batches import batch_filter
from dwml_py.tables import DWML_SCHEMA

SOURCE = "rest"
# Each attempt already waits for a locked DuckDB file (DWML_LOCK_WAIT_SECONDS, 15 s by default).
SHUTDOWN_ATTEMPTS = 2

log = logging.getLogger("dwml.serving")


def new_batch_id() -> str:
    return f"rest-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}"


def write_batch(project, batch_id: str, rows: pa.Table) -> None:
    """Replace the rows of `batch_id` in dwml.predictions with `rows`, on a connection of its own."""
    from dwml_py.rows import ensure_once
    from dwml_py.warehouse import connect

    rows = rows.set_column(rows.schema.get_field_index("batch_id"), "batch_id",
                           pa.array([batch_id] * rows.num_rows, type=pa.string()))
    with connect(project) as warehouse:
        ensure_once(warehouse)
        with warehouse.transaction():
            warehouse.execute(exp.delete(sqlmod.table(DWML_SCHEMA, PREDICTIONS), where=batch_filter(SOURCE, batch_id)))
            warehouse.write_arrow(rows, DWML_SCHEMA, PREDICTIONS)


class PredictionLog:
    """A buffer of dwml.predictions rows with a background writer; see the module doc.

    >>> log = PredictionLog(project, flush_rows=1000, flush_seconds=5)  # doctest: +SKIP
    >>> log.start(); log.add(rows); log.close()                          # doctest: +SKIP
    """

    def __init__(self, project, flush_rows: int = 1000, flush_seconds: float = 5.0,
                 max_pending_rows: int = 1_000_000, writer=write_batch):
        self.project = project
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self._writer = writer
        self._buffer: list[pa.Table] = []
        self._buffer_rows = 0
        self._pending: list[tuple[str, pa.Table]] = []  # cut into batches, not written yet (oldest first)
        self._lock = threading.Lock()  # guards the buffer, the pending list and the counters
        self._flushing = threading.Lock()  # one flush at a time
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._thread: threading.Thread | None = None
        self.written_rows = 0
        self.written_batches = 0
        self.failed_flushes = 0
        self.dropped_rows = 0
        self.last_error_at: float | None = None

    # -- producer side ----------------------------------------------------------------------------
    def add(self, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        with self._lock:
            self._buffer.append(rows)
            self._buffer_rows += rows.num_rows
            if self._buffer_rows >= self.flush_rows:
                self._wake.notify()

    def pending_rows(self) -> int:
        with self._lock:
            return self._buffer_rows + sum(t.num_rows for _, t in self._pending)

    def stats(self) -> dict:
        return {"pending_rows": self.pending_rows(), "written_rows": self.written_rows,
                "written_batches": self.written_batches, "failed_flushes": self.failed_flushes,
                "dropped_rows": self.dropped_rows}

    # -- writing ------------------------------------------------------------------------------------
    def _cut_batch(self) -> None:
        """Move the buffer into a new pending batch (under self._lock)."""
        if self._buffer_rows:
            self._pending.append((new_batch_id(), pa.concat_tables(self._buffer)))
            self._buffer, self._buffer_rows = [], 0
        excess = sum(t.num_rows for _, t in self._pending) - self.max_pending_rows
        while excess > 0 and len(self._pending) > 1:
            batch_id, dropped = self._pending.pop(0)
            excess -= dropped.num_rows
            self.dropped_rows += dropped.num_rows
            log.error("dropped %d served predictions of batch %s: more than %d rows are waiting for the "
                      "warehouse (it has refused every flush since)", dropped.num_rows, batch_id,
                      self.max_pending_rows)

    def flush(self) -> bool:
        """Write the buffer and every pending batch now. True when nothing is left pending."""
        with self._flushing:
            with self._lock:
                self._cut_batch()
                batches = list(self._pending)
            for batch_id, rows in batches:
                try:
                    self._writer(self.project, batch_id, rows)
                except Exception as exc:  # the warehouse refused: keep the batch, say so, retry next time
                    with self._lock:
                        self.failed_flushes += 1
                        self.last_error_at = time.time()
                    log.warning("could not write %d served predictions (batch %s) to %s.%s, will retry: %s",
                                rows.num_rows, batch_id, DWML_SCHEMA, PREDICTIONS, exc)
                    return False
                with self._lock:
                    self._pending = [p for p in self._pending if p[0] != batch_id]
                    self.written_rows += rows.num_rows
                    self.written_batches += 1
                log.info("wrote %d served predictions (batch %s)", rows.num_rows, batch_id)
            return True

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._stop and self._buffer_rows < self.flush_rows:
                    self._wake.wait(self.flush_seconds)
                if self._stop:
                    return
                due = self._buffer_rows or self._pending
            if due:
                self.flush()

    # -- lifetime -------------------------------------------------------------------------------------
    def start(self) -> "PredictionLog":
        self._thread = threading.Thread(target=self._run, name="dwml-prediction-log", daemon=True)
        self._thread.start()
        return self

    def close(self) -> dict:
        """Stop the writer and flush what is left (a few tries); spill the rest to Parquet."""
        with self._lock:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
        for attempt in range(SHUTDOWN_ATTEMPTS):
            if self.flush():
                return self.stats()
            time.sleep(0.5)
        self._spill()
        return self.stats()

    def _spill(self) -> None:
        import pyarrow.parquet as pq

        from dwml_py.artifacts import artifact_root

        with self._lock:
            batches, self._pending = self._pending, []
        folder = Path(artifact_root(self.project)) / "unflushed_predictions"
        for batch_id, rows in batches:
            path = folder / f"{batch_id}.parquet"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(rows, path)
            except OSError as exc:
                self.dropped_rows += rows.num_rows
                log.error("lost %d served predictions (batch %s): the warehouse refused them and %s could not "
                          "be written: %s", rows.num_rows, batch_id, path, exc)
                continue
            log.error("the warehouse refused %d served predictions (batch %s) at shutdown; they are saved in %s. "
                      "Load them with: INSERT INTO %s.%s BY NAME SELECT * FROM '%s'", rows.num_rows, batch_id,
                      path, DWML_SCHEMA, PREDICTIONS, path)
