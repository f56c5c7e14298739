"""Batch scoring in Python: `dwml predict NAME [--version N | --alias A] [--relation R]`.

The version's artifact is loaded (its sha256 checked against the registry), the relation to
score (the version's feature model unless told otherwise) is streamed from the warehouse in Arrow
record batches holding only the columns scoring needs (entity key(s), timestamp, features), and
each batch is scored and appended to dwml.predictions. Memory is bounded by `batch_size` rows
whatever the size of the relation (in DuckDB also by a memory_limit for the run,
`SCORING_MEMORY_LIMIT`). XGBoost inputs are built with pyarrow/numpy
(preprocessing.DirectTransform), equal to the stored ColumnTransformer's.

Re-running a batch replaces it: only its rows of source 'batch' (dwml_py.prediction_batches), so
a batch id can never replace rows that dbt or the REST server scored. Each scored slice is
committed into a staging table of its own run (in DuckDB a temporary table, elsewhere
`dwml._predictions_staging_<id>`; see _Staging), so
the engine never holds millions of uncommitted rows; at the end one short transaction deletes the
batch's old rows and moves the staged ones into dwml.predictions, and the staging table is
dropped. The relation is read on a second connection, so the stream and the writes do not
disturb each other, and each slice is written on a second thread while the next one is read and
scored. A failure half-way leaves dwml.predictions as it was: the previous rows of the batch
stay, and there are never duplicates or half a batch.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dwml_py import model_registry as registry
from dwml_py import sql as sqlmod
from dwml_py.entity_keys import entity_keys
from dwml_py.errors import InputError
from dwml_py.prediction_batches import batch_filter, check_batch_id
from dwml_py.progress import SILENT, Progress
from dwml_py.tables import DWML_SCHEMA

PREDICTIONS = "predictions"
SOURCE = "batch"
# DuckDB's memory while scoring: one batch streamed in, one written out, and the final move
# (which spills to the database file beyond it). Peak memory then no longer grows with the table.
SCORING_MEMORY_LIMIT = "384MB"


def _count(warehouse, where: exp.Expression) -> int:
    query = exp.select(exp.func("count", exp.Star())).from_(sqlmod.table(DWML_SCHEMA, PREDICTIONS)).where(where)
    return int(warehouse.fetch_scalar(query) or 0)


def resolve_scoring_relation(project, warehouse, spec: dict, relation: str | None) -> tuple[str, str]:
    """(schema, table) to score: `relation` (schema.table or a dbt model name), else the feature model
    the version was trained on (from its ML `spec`)."""
    from dwml_py.relations import resolve_relation

    if relation:
        return resolve_relation(project, warehouse, relation)
    spec = spec or {}
    schema, table = spec.get("feature_schema"), spec.get("feature_table")
    if schema and table and warehouse.table_exists(schema, table):
        return schema, table
    if not table:
        raise InputError("The model version does not record the feature model it was trained on.",
                         hint="name the table to score with --relation schema.table.")
    return resolve_relation(project, warehouse, table)


def scoring_columns(model) -> tuple[list[str], str | None, list[str]]:
    """(entity columns, timestamp column or None, feature columns) a version needs to score."""
    spec = model.spec or {}
    entity = spec.get("entity") or []
    entity = [entity] if isinstance(entity, str) else list(entity)
    if not entity:
        raise InputError("The model version records no entity key; predictions need one.",
                         hint="retrain it with `entity:` set in the feature model's meta.dwml.")
    return entity, spec.get("timestamp"), list(model.feature_names)


def match_columns(available: list[str], needed: list[str], relation: str, what: str) -> list[str]:
    """The relation's spelling of each needed column (case-insensitive); InputError naming the missing ones."""
    by_lower = {name.lower(): name for name in available}
    missing = [c for c in needed if c.lower() not in by_lower]
    if missing:
        raise InputError(
            f"{relation} lacks column(s) {', '.join(missing)} that {what} needs (the schema changed since training?).",
            hint="score a relation with the columns the version was trained on, rebuild the feature model "
            "(`dbt run -s MODEL`), or train and deploy a new version on the new schema.")
    return [by_lower[c.lower()] for c in needed]


def _snapshots(batch: pa.Table, column: str | None) -> pa.Array:
    if column is None:
        return pa.nulls(batch.num_rows, type=pa.timestamp("us"))
    values = batch.column(column)
    if pa.types.is_timestamp(values.type) and values.type.tz is not None:
        values = pc.cast(values, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))  # UTC, no zone
    return pc.cast(values, pa.timestamp("us"))


def score_table(model, table: pa.Table) -> tuple[np.ndarray, list | None]:
    """(score, predicted label or None) per row: the version's predict_score and, for classification,
    its label at the version's threshold."""
    score, labels = _scores(model, table)
    return score, None if labels is None else labels.to_pylist()


def _scores(model, table: pa.Table) -> tuple[np.ndarray, pa.Array | None]:
    """score_table with the labels as an Arrow string array (taken from the class names, not built
    row by row in Python)."""
    if model.task != "classification":
        return model.predict_score(table), None
    proba = model.predict_proba(table)
    score = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    if proba.shape[1] == 2:  # as TrainedModel._labels_from_proba
        which = (proba[:, 1] >= model.threshold).astype(np.int64)
    else:
        which = proba.argmax(axis=1)
    names = pa.array([None if c is None else str(c) for c in model.classes], type=pa.string())
    return np.asarray(score, dtype=np.float64), names.take(pa.array(which))


def _scored_rows(batch: pa.Table, entity: list[str], timestamp: str | None, model) -> pa.Table:
    """The per-row columns of the batch's predictions; the columns that are the same on every row
    (model, version, batch, source, time) are added when the rows move into dwml.predictions."""
    score, labels = _scores(model, batch)
    return pa.table({
        "entity_key": entity_keys(batch, entity),
        "snapshot_at": _snapshots(batch, timestamp),
        "score": pa.array(score, type=pa.float64()),
        "predicted_label": labels if labels is not None else pa.nulls(batch.num_rows, type=pa.string()),
    })


def _move_rows(staging: exp.Table, columns: list[str], constants: dict) -> exp.Insert:
    """INSERT INTO dwml.predictions (constants..., columns...) SELECT literals, columns FROM staging."""
    values = []
    for value in constants.values():
        if isinstance(value, datetime):
            values.append(exp.cast(sqlmod.literal(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP))
        else:
            values.append(sqlmod.literal(value))
    names = list(constants) + list(columns)
    target = exp.Schema(this=sqlmod.table(DWML_SCHEMA, PREDICTIONS), expressions=[sqlmod.ident(c) for c in names])
    query = exp.select(*values, *[sqlmod.column(c) for c in columns]).from_(staging.copy())
    return exp.insert(query, target)


class _Staging:
    """Where a run's scored slices wait, committed, for the final move into dwml.predictions.

    In DuckDB a temporary table: it is never written to the database file or its log (each
    committed slice would otherwise cost a log write, and the move a second compression), it
    spills to DuckDB's temp directory beyond the memory limit, and it cannot outlive the
    connection, even if the process dies. Elsewhere a table in the dwml schema, appended with
    write_arrow.
    """

    def __init__(self, warehouse):
        self.warehouse = warehouse
        name = f"_{PREDICTIONS}_staging_{uuid.uuid4().hex[:16]}"
        self.temporary = getattr(warehouse, "dialect", "") == "duckdb"
        self.table = sqlmod.table("main", name, database="temp") if self.temporary else sqlmod.table(DWML_SCHEMA, name)
        self._created = False

    def append(self, rows: pa.Table) -> None:
        if not self.temporary:
            self.warehouse.write_arrow(rows, self.table.db, self.table.name)
            return
        with self.warehouse.registered(rows) as source:
            select = exp.select(exp.Star()).from_(exp.Table(this=sqlmod.ident(source)))
            if self._created:
                self.warehouse.execute(exp.insert(select, self.table.copy()))
            else:
                self.warehouse.execute(exp.Create(this=self.table.copy(), kind="TABLE", expression=select,
                                                  properties=exp.Properties(expressions=[exp.TemporaryProperty()])))
                self._created = True

    def drop(self) -> None:
        self.warehouse.execute(sqlmod.drop("TABLE", self.table.copy()))


@contextlib.contextmanager
def _bounded_memory(warehouse):
    """DuckDB keeps every block it read or wrote cached up to its memory_limit (80% of RAM by
    default), so a scoring run's peak memory would grow with the table. Bound it for the run
    (the setting is the process's database instance's) and put the old value back afterwards."""
    if getattr(warehouse, "dialect", "") != "duckdb":
        yield
        return
    previous = warehouse.fetch_scalar(exp.select(exp.func("current_setting", sqlmod.literal("memory_limit"))))
    warehouse.execute(_set_memory_limit(SCORING_MEMORY_LIMIT))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            warehouse.execute(_set_memory_limit(previous))


def _set_memory_limit(value: str) -> exp.Set:
    return exp.Set(expressions=[exp.SetItem(this=exp.EQ(this=exp.column("memory_limit"),
                                                        expression=sqlmod.setting_literal(value)))])


def _slices(batches, size: int):
    """Record batches cut to at most `size` rows (engines may hand out larger ones)."""
    for batch in batches:
        for start in range(0, batch.num_rows, size):
            yield pa.Table.from_batches([batch.slice(start, size)])


def _overlapped(items, write):
    """Yield each item of `items` after handing it to `write` on a second thread, which runs while
    the next item is read and scored (the engine and XGBoost release the GIL). One write at a time
    and at most one waiting, so memory stays a few batches; a write's error is raised here, and
    no write is left running when this ends."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dwml-predict-write") as pool:
        pending = None  # leaving the block waits for it, whatever happened
        for item in items:
            if pending is not None:
                pending.result()
            pending = pool.submit(write, item)
            yield item
        if pending is not None:
            pending.result()


def predict(project, name: str, version: int | None = None, alias: str | None = "production",
            relation: str | None = None, batch_id: str | None = None, batch_size: int = 50_000,
            progress: Progress = SILENT) -> dict:
    """Score a relation with a model version and write dwml.predictions; see the module doc.

    Returns {model_name, version, alias, relation, batch_id, rows, replaced_rows, batches, seconds}.
    """
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.rows import ensure_once, utcnow
    from dwml_py.warehouse import connect

    started = time.perf_counter()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number >= 1, got {batch_size!r}.", hint="e.g. --batch-size 50000")
    if batch_id is not None:
        check_batch_id(batch_id, SOURCE)
    if version is not None:
        alias = None  # an explicit version wins over the default alias
    with connect(project) as warehouse:
        ensure_once(warehouse)
        with progress.step("Loading the model version") as step:
            row = registry.get_version(warehouse, name, version=version, alias=alias)
            model = registry.load_version_model(ArtifactStore.for_project(project), row)
            step.summary = f"{name} v{row['version']} ({model.algorithm}, {model.task})"
        version = int(row["version"])
        schema, table = resolve_scoring_relation(project, warehouse, model.spec, relation)
        relation_name = f"{schema}.{table}"
        entity, timestamp, features = scoring_columns(model)
        needed = list(dict.fromkeys(entity + ([timestamp] if timestamp else []) + features))
        available = [c for c, _ in warehouse.columns(schema, table)]
        actual = match_columns(available, needed, relation_name, f"{name} version {version}")
        rename = dict(zip(actual, needed))
        batch_id = batch_id or f"{name}-v{version}-{relation_name}"[:256]
        query = exp.select(*[sqlmod.column(c) for c in actual]).from_(sqlmod.table(schema, table))

        rows = batches = 0
        scored_at = utcnow()
        staging = _Staging(warehouse)
        columns: list[str] = []
        reader = connect(project)  # a second connection streams the relation while this one writes
        chunks = None
        try:
            with _bounded_memory(warehouse), \
                    progress.step(f"Scoring {relation_name} in batches of {batch_size:,} rows") as step:
                chunks = _slices(reader.fetch_batches(query, batch_size=batch_size), batch_size)
                scored = (_scored_rows(chunk.rename_columns([rename[c] for c in chunk.column_names]), entity,
                                       timestamp, model) for chunk in chunks)
                for out in _overlapped(scored, staging.append):  # each slice committed: memory stays per batch
                    columns = out.column_names
                    rows += out.num_rows
                    batches += 1
                with warehouse.transaction():  # the swap: short, and all or nothing
                    batch = batch_filter(SOURCE, batch_id, model_name=name)
                    replaced = _count(warehouse, batch)
                    warehouse.execute(exp.delete(sqlmod.table(DWML_SCHEMA, PREDICTIONS), where=batch))
                    if columns:
                        warehouse.execute(_move_rows(staging.table, columns, {
                            "model_name": name, "version": version, "batch_id": batch_id, "source": SOURCE,
                            "scored_at": scored_at}))
                step.summary = f"{rows:,} rows in {batches} batches, {replaced:,} earlier rows of the batch replaced"
        finally:
            # an error's traceback keeps the generators' frames, and with them the open stream, which
            # keeps DuckDB's database open in this process: end the stream here
            if chunks is not None:
                chunks.close()
            reader.close()
            # a leftover staging table would only hold a failed run's rows: never let dropping it
            # hide the error that got us here
            with contextlib.suppress(Exception):
                staging.drop()
    return {"model_name": name, "version": version, "alias": alias, "relation": relation_name,
            "batch_id": batch_id, "rows": rows, "replaced_rows": replaced, "batches": batches,
            "seconds": round(time.perf_counter() - started, 3)}
