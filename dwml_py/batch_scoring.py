"""Batch scoring in Python: `dwml predict NAME [--version N | --alias A] [--relation R]`.

The version's artifact is loaded (its sha256 checked against the registry), the relation to
score (the version's feature model unless told otherwise) is streamed from the warehouse in Arrow
record batches holding only the columns scoring needs (entity key(s), timestamp, features), and
each batch is scored and appended to dwml.predictions. Memory is bounded by `batch_size` rows
whatever the size of the relation.

Re-running a batch replaces it: the batch's old rows are deleted and the new ones inserted in one
transaction on the writing connection (the relation is read on a second connection, so the
stream and the writes do not disturb each other). A failure half-way rolls everything back: the
previous rows of the batch stay, and there are never duplicates or half a batch.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dwml_py import model_registry as registry
from dwml_py import sql as sqlmod
from dwml_py.errors import InputError
from dwml_py.progress import SILENT, Progress
from dwml_py.tables import DWML_SCHEMA

PREDICTIONS = "predictions"
SOURCE = "batch"


def _batch_filter(model_name: str, batch_id: str) -> exp.Expression:
    return exp.and_(sqlmod.column("batch_id").eq(sqlmod.literal(batch_id)),
                    sqlmod.column("model_name").eq(sqlmod.literal(model_name)))


def _count(warehouse, where: exp.Expression) -> int:
    query = exp.select(exp.func("count", exp.Star())).from_(sqlmod.table(DWML_SCHEMA, PREDICTIONS)).where(where)
    return int(warehouse.fetch_scalar(query) or 0)


def resolve_scoring_relation(project, warehouse, model, relation: str | None) -> tuple[str, str]:
    """(schema, table) to score: `relation` (schema.table or a dbt model name), else the feature model
    the version was trained on."""
    from dwml_py.relations import resolve_relation

    if relation:
        return resolve_relation(project, warehouse, relation)
    spec = model.spec or {}
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


def entity_keys(batch: pa.Table, columns: list[str]) -> pa.Array:
    """The entity key of each row as text: the value for one column, JSON text for several."""
    if len(columns) == 1:
        column = batch.column(columns[0])
        try:
            return pc.cast(column, pa.string()).combine_chunks() if isinstance(column, pa.ChunkedArray) \
                else pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.array([None if v is None else str(v) for v in column.to_pylist()], type=pa.string())
    values = [batch.column(c).to_pylist() for c in columns]
    return pa.array([json.dumps(dict(zip(columns, row)), default=str) for row in zip(*values)], type=pa.string())


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
    if model.task != "classification":
        return model.predict_score(table), None
    proba = model.predict_proba(table)
    score = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    labels = model._labels_from_proba(proba)
    return np.asarray(score, dtype=np.float64), [None if v is None else str(v) for v in labels.tolist()]


def _prediction_rows(model_name: str, version: int, batch_id: str, batch: pa.Table, entity: list[str],
                     timestamp: str | None, model, scored_at) -> pa.Table:
    score, labels = score_table(model, batch)
    n = batch.num_rows
    return pa.table({
        "model_name": pa.array([model_name] * n, type=pa.string()),
        "version": pa.array(np.full(n, version, dtype=np.int64)),
        "entity_key": entity_keys(batch, entity),
        "snapshot_at": _snapshots(batch, timestamp),
        "score": pa.array(score, type=pa.float64()),
        "predicted_label": pa.array(labels if labels is not None else [None] * n, type=pa.string()),
        "batch_id": pa.array([batch_id] * n, type=pa.string()),
        "source": pa.array([SOURCE] * n, type=pa.string()),
        "scored_at": pa.array([scored_at] * n, type=pa.timestamp("us")),
    })


def _slices(batches, size: int):
    """Record batches cut to at most `size` rows (engines may hand out larger ones)."""
    for batch in batches:
        for start in range(0, batch.num_rows, size):
            yield pa.Table.from_batches([batch.slice(start, size)])


def predict(project, name: str, version: int | None = None, alias: str | None = "production",
            relation: str | None = None, batch_id: str | None = None, batch_size: int = 50_000,
            progress: Progress = SILENT) -> dict:
    """Score a relation with a model version and write dwml.predictions; see the module doc.

    Returns {model_name, version, alias, relation, batch_id, rows, replaced_rows, batches, seconds}.
    """
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.tracking import ensure_once, utcnow
    from dwml_py.training import TrainedModel
    from dwml_py.warehouse import connect

    started = time.perf_counter()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number >= 1, got {batch_size!r}.", hint="e.g. --batch-size 50000")
    if version is not None:
        alias = None  # an explicit version wins over the default alias
    with connect(project) as warehouse:
        ensure_once(warehouse)
        with progress.step("Loading the model version") as step:
            row = registry.get_version(warehouse, name, version=version, alias=alias)
            model = TrainedModel.from_bytes(registry.load_model_bytes(ArtifactStore.for_project(project), row))
            step.summary = f"{name} v{row['version']} ({model.algorithm}, {model.task})"
        version = int(row["version"])
        schema, table = resolve_scoring_relation(project, warehouse, model, relation)
        relation_name = f"{schema}.{table}"
        entity, timestamp, features = scoring_columns(model)
        needed = list(dict.fromkeys(entity + ([timestamp] if timestamp else []) + features))
        available = [c for c, _ in warehouse.columns(schema, table)]
        actual = match_columns(available, needed, relation_name, f"{name} version {version}")
        rename = dict(zip(actual, needed))
        batch_id = batch_id or f"{name}-v{version}-{relation_name}"
        query = exp.select(*[sqlmod.column(c) for c in actual]).from_(sqlmod.table(schema, table))

        rows = batches = 0
        scored_at = utcnow()
        reader = connect(project)  # a second connection streams the relation while this one writes
        try:
            with progress.step(f"Scoring {relation_name} in batches of {batch_size:,} rows") as step:
                with warehouse.transaction():
                    replaced = _count(warehouse, _batch_filter(name, batch_id))
                    warehouse.execute(exp.delete(sqlmod.table(DWML_SCHEMA, PREDICTIONS),
                                                 where=_batch_filter(name, batch_id)))
                    for chunk in _slices(reader.fetch_batches(query, batch_size=batch_size), batch_size):
                        chunk = chunk.rename_columns([rename[c] for c in chunk.column_names])
                        out = _prediction_rows(name, version, batch_id, chunk, entity, timestamp, model, scored_at)
                        warehouse.write_arrow(out, DWML_SCHEMA, PREDICTIONS)
                        rows += out.num_rows
                        batches += 1
                step.summary = f"{rows:,} rows in {batches} batches, {replaced:,} earlier rows of the batch replaced"
        finally:
            reader.close()
    return {"model_name": name, "version": version, "alias": alias, "relation": relation_name,
            "batch_id": batch_id, "rows": rows, "replaced_rows": replaced, "batches": batches,
            "seconds": round(time.perf_counter() - started, 3)}
