"""Training XGBoost on a training set larger than the memory it is given.

The in-memory path (training_set.fetch_training_table -> split -> training.fit) holds the whole
training set several times over: the Arrow table, its train/holdout copies, the pandas frame
and the float64 model matrix. This path holds one Arrow batch at a time; XGBoost's quantised
matrix is built page by page into a cache on disk:

1. **Split without the data** (`StreamedTrainingSet.plan`). Time split: snapshot row counts
   come from one GROUP BY in the warehouse, and the cut is chosen exactly as
   training_set.split does it; a row is a training row when its timestamp is before the cut.
   Random split: only the label column is fetched, and training_set.split draws the same
   stratified split from it, as positions in the (ordered) training query.
2. **One pass of streamed statistics** (`scan`): per feature its Arrow type, NULL count, a
   value, and every distinct category; the label's class counts; a systematic sample of the
   training rows for the reference profile. From these a tiny *witness table* is built (same
   types, every category, a NULL where the feature had one), and `infer_feature_schema` and the
   preprocessor are fitted on it. For XGBoost that is exact: numeric columns pass through and
   the encoders' only state is the set of categories, so the fitted preprocessor equals the one
   fitted on the whole table. (Imputed medians, scaling and target encoding are not, which is
   why this path is XGBoost only.)
3. **The fit** (`fit_streamed`): the training rows are streamed again, batch by batch, through
   an `xgboost.DataIter` into an `ExtMemQuantileDMatrix` with the estimator's max_bin: XGBoost
   sketches the quantiles over the batches (as a QuantileDMatrix over them would), quantises each
   batch into a page written to a cache folder beside the spill file, and reads the pages back
   while it trains; the cache is removed when the fit ends, failed or not. Trained with the
   same parameters the scikit-learn wrapper would pass, the result is a normal TrainedModel (an
   XGBClassifier/XGBRegressor): same artifact, same scoring path. (An in-memory
   `QuantileDMatrix` would hold the whole quantised matrix, 2-5 bytes per cell, the one part of
   this path that grew with the table.)
4. **The holdout** (`evaluate_streamed`) is scored in batches; the metrics need only the
   labels and scores.

What still grows with the rows, tens of bytes per row against hundreds for the matrix: the
random split's label column while the split is drawn (training_set.split takes it whole, so that
it draws the in-memory path's split) and its one-byte train mask; XGBoost's own per-row state
while it trains (labels, gradients, predictions: about 28 bytes per row measured, against 390
for a 77-input QuantileDMatrix); the holdout's labels and scores.

The training query runs once (the random split's label column aside): its first pass is also
written to a local Arrow file in a temporary folder (TMPDIR; as large as the fetched table), which
the later passes read; XGBoost's page cache goes to the same folder (about the size of the
quantised matrix). The warehouse's own memory while it sorts the query is the warehouse's
business: DuckDB sorts within its `memory_limit` and spills beyond it (set it under `settings:`
of the dbt target).

The choice is automatic (`choose_mode`): out-of-core when the estimated in-memory peak exceeds
`vars: dwml: training: max_in_memory_mb` (default 4096) of dbt_project.yml, or when forced
(`dwml train NAME --out-of-core`). Batch size: `vars: dwml: training: batch_rows` (100000).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import traceback
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, InputError
from dwml_py.preprocessing import HIGH_CARDINALITY, build_preprocessor, column_kind, infer_feature_schema, \
    output_names, to_frame
from dwml_py.progress import SILENT, Progress
from dwml_py.reference_profile import SAMPLE_ROWS  # the reference profile's sample, as in memory
from dwml_py.settings import project_var

DEFAULT_MAX_IN_MEMORY_MB = 4096.0
DEFAULT_BATCH_ROWS = 100_000
ESTIMATE_SAMPLE_ROWS = 2_000
# Peak memory of the in-memory path per byte of the fetched Arrow table: the table and its split
# copies, the pandas frame (strings as Python objects), the float64 matrix with one-hot columns and
# XGBoost's own copy. Measured with benchmarks/bench_training_memory.py on 20 numeric + 4
# categorical features (docs/benchmarks.md): 10.3x at 1M rows, 8.6x at 5M, above the process's base.
IN_MEMORY_FACTOR = 10.0
_ROW = "__dwml_row"


# -- the decision -----------------------------------------------------------------------------

def training_settings(project_config: dict | None) -> dict:
    """{max_in_memory_mb, batch_rows} from `vars: dwml: training:` of dbt_project.yml, with defaults."""
    training = project_var(project_config, "training")
    if training is None:
        training = {}
    if not isinstance(training, dict):
        raise ConfigError(f"vars: dwml: training: in dbt_project.yml must be a mapping, got {training!r}.",
                          hint="write e.g. `training: {max_in_memory_mb: 4096, batch_rows: 100000}`.")
    out = {"max_in_memory_mb": training.get("max_in_memory_mb", DEFAULT_MAX_IN_MEMORY_MB),
           "batch_rows": training.get("batch_rows", DEFAULT_BATCH_ROWS)}
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"vars: dwml: training: {key} must be a positive number, got {value!r}.",
                              hint="e.g. max_in_memory_mb: 4096, batch_rows: 100000")
    out["batch_rows"] = int(out["batch_rows"])
    return out


def _unordered(query: exp.Select) -> exp.Select:
    inner = query.copy()
    inner.set("order", None)
    return inner


def estimate_in_memory_mb(warehouse, query: exp.Select, row_count: int) -> dict:
    """{arrow_bytes_per_row, table_mb, estimated_peak_mb} of the in-memory path for `row_count`
    rows, from the Arrow size of a few rows (strings make rows wide, so it is measured)."""
    sample = warehouse.fetch_arrow(_unordered(query).limit(ESTIMATE_SAMPLE_ROWS))
    per_row = sample.nbytes / sample.num_rows if sample.num_rows else 0.0
    table_mb = per_row * row_count / 2**20
    return {"arrow_bytes_per_row": round(per_row, 1), "table_mb": round(table_mb, 1),
            "estimated_peak_mb": round(table_mb * IN_MEMORY_FACTOR, 1)}


def check_out_of_core(algorithm: str, out_of_core: bool | None) -> None:
    """Refuse forcing out-of-core training for an algorithm other than XGBoost (before any work)."""
    if out_of_core and algorithm != "xgboost":
        raise InputError(f"--out-of-core trains XGBoost only, but the algorithm is {algorithm!r}.",
                         hint="use --algorithm xgboost, or train the other algorithm in memory (drop --out-of-core).")


def choose_mode(warehouse, query: exp.Select, row_count: int, algorithm: str, out_of_core: bool | None,
                max_in_memory_mb: float) -> dict:
    """{out_of_core, reason, estimated_peak_mb, table_mb, max_in_memory_mb}: whether to stream.

    `out_of_core` True forces it (XGBoost only), False forbids it, None decides from the estimate.
    """
    check_out_of_core(algorithm, out_of_core)
    estimate = estimate_in_memory_mb(warehouse, query, row_count)
    decision = {"max_in_memory_mb": float(max_in_memory_mb), **estimate}
    over = estimate["estimated_peak_mb"] > max_in_memory_mb
    if out_of_core is not None:
        reason = "forced (--out-of-core)" if out_of_core else "in memory as asked"
        return {"out_of_core": bool(out_of_core), "reason": reason, **decision}
    if not over:
        return {"out_of_core": False, "reason": "the estimated peak fits the memory budget", **decision}
    if algorithm != "xgboost":
        return {"out_of_core": False, "reason": f"over the memory budget, but only XGBoost trains out of core "
                f"({algorithm} is trained in memory)", **decision}
    return {"out_of_core": True, "reason": "the estimated in-memory peak exceeds max_in_memory_mb", **decision}


# -- the split, as a predicate on streamed rows --------------------------------------------------

def _iso(value) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (None if value is None else str(value))


def time_cut(snapshot_counts: list[tuple], fraction: float) -> int:
    """Index of the first holdout snapshot in (snapshot, rows) pairs sorted by snapshot: walk back
    from the latest until the holdout holds about `fraction` of the rows, leaving at least one
    snapshot to train on. The same walk as training_set.split's time split (a test holds them equal).

    >>> time_cut([("d1", 50), ("d2", 30), ("d3", 20)], 0.2)
    2
    """
    total = sum(n for _, n in snapshot_counts)
    target, held, cut_index = fraction * total, 0, len(snapshot_counts)
    while cut_index > 1 and held < target:
        cut_index -= 1
        held += snapshot_counts[cut_index][1]
    return cut_index


def total_order(query: exp.Select) -> exp.Select:
    """The query ordered by its own keys, then by every other output column.

    Every pass over the streamed training set must see the rows in the same order: XGBoost takes
    the labels from the first pass of its iterator and the features from a later one, and a random
    split selects rows by position. The training query orders by timestamp and entity, which may
    tie (several rows of an entity without a timestamp); the other columns break the ties, and rows
    equal in every column are interchangeable. Where the keys are unique the order is unchanged.
    """
    ordered = query.copy()
    order = ordered.args.get("order")
    keys = [o.this if isinstance(o, exp.Ordered) else o for o in (order.expressions if order else [])]
    taken = {k.name for k in keys if isinstance(k, exp.Column)}
    extra = [sqlmod.column(name) for name in ordered.named_selects if name not in taken]
    return ordered.order_by(*extra) if extra else ordered


@dataclass
class StreamedTrainingSet:
    """The training query streamed in Arrow batches and split into train/holdout batch by batch.

    Built by `plan`; `batches("train")` / `batches("holdout")` re-run the query each time.
    """

    warehouse: object
    query: exp.Select
    spec: object
    batch_rows: int
    split_info: dict
    train_rows: int
    holdout_rows: int
    cut: object = None  # time split: the first holdout snapshot
    train_mask: np.ndarray | None = None  # random split: one bool per row of the ordered query
    largest_batch_rows: int = 0  # the most rows held in one batch so far (memory is bounded by it)
    passes: int = 0  # passes over the training set
    queries: int = 0  # of which ran the training query (the others read the spill file)
    spill: bool = True  # keep the first pass's batches in a local Arrow file for the later passes
    _spill_dir: str | None = field(default=None, repr=False)
    _spilled: bool = field(default=False, repr=False)

    @classmethod
    def plan(cls, warehouse, query: exp.Select, spec, method: str | None = None, holdout_fraction: float = 0.2,
             seed: int = 0, batch_rows: int = DEFAULT_BATCH_ROWS) -> "StreamedTrainingSet":
        from dwml_py.training_set import split_method

        method = split_method(spec, method, holdout_fraction)
        if int(batch_rows) < 1:
            raise InputError(f"batch_rows must be at least 1, got {batch_rows!r}.", hint="e.g. 100000")
        query = total_order(query)
        if method == "time":
            return cls._plan_time(warehouse, query, spec, holdout_fraction, int(batch_rows))
        return cls._plan_random(warehouse, query, spec, holdout_fraction, seed, int(batch_rows))

    @classmethod
    def _plan_time(cls, warehouse, query, spec, fraction, batch_rows):
        if not spec.timestamp:
            raise InputError(f"ML model {spec.model_name!r} has no timestamp, so it cannot be split by time.",
                             hint="use method='random', or declare `timestamp:` in meta.dwml.")
        ts = sqlmod.column(spec.timestamp, "t")
        counts_query = (exp.select(exp.alias_(ts, "snapshot"), exp.alias_(exp.Count(this=exp.Star()), "n"))
                        .from_(_unordered(query).subquery("t")).group_by(ts))
        counts = [(r["snapshot"], int(r["n"])) for r in warehouse.fetch_rows(counts_query)]
        nulls = sum(n for s, n in counts if s is None)
        if nulls:
            raise InputError(f"{nulls} training rows have a NULL {spec.timestamp!r}.",
                             hint="add a not_null test on the timestamp column of the feature model and fix the rows.")
        counts.sort(key=lambda sc: sc[0])
        total = sum(n for _, n in counts)
        if total < 2:
            raise InputError(f"The training set has {total} row(s); a split needs at least 2.",
                             hint="check the label join and maturity of the labels.")
        if len(counts) < 2:
            raise InputError(f"All training rows share one {spec.timestamp!r} ({counts[0][0]}), so a time "
                             "split has nothing to hold out.", hint="use method='random'.")
        cut_index = time_cut(counts, fraction)
        holdout = sum(n for _, n in counts[cut_index:])
        info = {"method": "time", "cut": _iso(counts[cut_index][0]), "gap_days": 0,
                "train_snapshots": [_iso(counts[0][0]), _iso(counts[cut_index - 1][0])],
                "holdout_snapshots": [_iso(counts[cut_index][0]), _iso(counts[-1][0])],
                "holdout_fraction": round(holdout / total, 4), "train_rows": total - holdout, "holdout_rows": holdout}
        return cls(warehouse, query, spec, batch_rows, info, total - holdout, holdout, cut=counts[cut_index][0])

    @classmethod
    def _plan_random(cls, warehouse, query, spec, fraction, seed, batch_rows):
        from dwml_py.training_set import split

        # Only the label column, in the query's order: training_set.split then draws exactly the
        # split the in-memory path draws, and its positions select rows of the streamed batches.
        labels_only = query.copy()
        labels_only.set("expressions", [query.expressions[-1].copy()])  # the label is the last column
        parts = [b for b in warehouse.fetch_batches(labels_only, batch_size=batch_rows) if b.num_rows]
        labels = pa.Table.from_batches(parts) if parts else pa.table({spec.label_column: pa.array([], pa.int64())})
        labels = labels.append_column(_ROW, pa.array(np.arange(labels.num_rows, dtype=np.int64)))
        train, holdout, info = split(labels, spec, method="random", holdout_fraction=fraction, seed=seed)
        mask = np.zeros(labels.num_rows, dtype=bool)
        mask[train.column(_ROW).to_numpy()] = True
        return cls(warehouse, query, spec, batch_rows, info, train.num_rows, holdout.num_rows, train_mask=mask)

    # -- streaming --------------------------------------------------------------------------
    def _is_train(self, batch: pa.RecordBatch, offset: int) -> np.ndarray:
        if self.train_mask is not None:
            mask = self.train_mask[offset:offset + batch.num_rows]
            if len(mask) != batch.num_rows:
                raise InputError("The training query returned more rows than when its split was drawn: the "
                                 "tables changed during training.", hint="train again once the dbt run is finished.")
            return mask
        column = batch.column(batch.schema.get_field_index(self.spec.timestamp))
        return pc.less(column, pa.scalar(self.cut, type=column.type)).to_numpy(zero_copy_only=False)

    def stream(self) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        """(batch, is-train mask) for every non-empty batch of one pass over the training set."""
        self.passes += 1
        offset = 0
        for batch in self._read_spill() if self._spilled else self._query():
            self.largest_batch_rows = max(self.largest_batch_rows, batch.num_rows)
            mask = self._is_train(batch, offset)
            offset += batch.num_rows
            yield batch, mask

    def work_dir(self) -> str:
        """This training's temporary folder (the spill file, XGBoost's page cache); removed by
        `close`, or when the object is collected."""
        if self._spill_dir is None:
            self._spill_dir = tempfile.mkdtemp(prefix="dwml-out-of-core-")
            weakref.finalize(self, shutil.rmtree, self._spill_dir, ignore_errors=True)
        return self._spill_dir

    # The training query is run once: its first full pass is also written, batch by batch, to an
    # Arrow IPC file in a temporary folder (as large as the fetched table), and later passes read
    # that file. XGBoost alone makes several passes, and each run of the ordered query would make
    # the warehouse sort the whole set again (time, and DuckDB's memory while it sorts). The file
    # is read with plain reads, not mapped: its pages sit in the OS cache, not in this process.
    def _spill_path(self) -> str:
        return os.path.join(self.work_dir(), "training_set.arrows")

    def _query(self) -> Iterator[pa.RecordBatch]:
        self.queries += 1
        writer, complete = None, False
        try:
            for batch in self.warehouse.fetch_batches(self.query, batch_size=self.batch_rows):
                if not batch.num_rows:
                    continue
                if self.spill:
                    writer = writer or pa.ipc.new_stream(self._spill_path(), batch.schema)
                    writer.write_batch(batch)
                yield batch
            complete = True
        finally:
            if writer is not None:
                writer.close()
            self._spilled = complete and writer is not None  # an unfinished pass is not reused

    def _read_spill(self) -> Iterator[pa.RecordBatch]:
        with pa.OSFile(self._spill_path(), "rb") as source:
            yield from pa.ipc.open_stream(source)

    def close(self) -> None:
        """Remove the work folder and the spill file now (they are removed anyway when the object
        is collected)."""
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir, self._spilled = None, False

    def batches(self, part: str) -> Iterator[pa.Table]:
        """The rows of one side ("train" or "holdout"), as one small table per batch."""
        if part not in ("train", "holdout"):
            raise ValueError(f"part must be 'train' or 'holdout', got {part!r}")
        for batch, mask in self.stream():
            keep = mask if part == "train" else ~mask
            if keep.any():
                yield pa.Table.from_batches([batch.filter(pa.array(keep))])


# -- one pass of streamed statistics ------------------------------------------------------------

@dataclass
class _ColumnStats:
    type: pa.DataType
    nulls: int = 0
    value: pa.Array | None = None  # one non-null value, of the column's type
    categories: set = field(default_factory=set)


@dataclass
class TrainingStats:
    """What one pass over the streamed training set learns (see `scan`)."""

    rows: int
    columns: dict[str, _ColumnStats]
    label_counts: dict  # classification: label value -> training rows; regression: {}
    holdout_label_counts: dict
    sample: pa.Table  # a systematic sample of the training rows (for the reference profile)

    def witness(self, features: list[str]) -> pa.Table:
        """A small table with each feature's type, every category and a NULL where the training
        rows had one: what infer_feature_schema and the preprocessor are fitted on."""
        length = max([len(self.columns[f].categories) for f in features] + [1]) + 1
        data = {}
        for name in features:
            stats = self.columns[name]
            kind = column_kind(stats.type)
            null = pa.nulls(1, type=stats.type)
            if kind is None or stats.value is None:  # dropped, or NULL everywhere (refused before)
                data[name] = pa.nulls(length, type=stats.type)
            elif kind == "categorical":
                values = sorted(stats.categories)
                values = values + [values[0]] * (length - 1 - len(values))
                data[name] = pa.concat_arrays([pa.array(values, type=pa.string()).cast(stats.type),
                                               null if stats.nulls else pa.array(values[:1]).cast(stats.type)])
            else:
                data[name] = pa.concat_arrays([stats.value] * (length - 1) + [null if stats.nulls else stats.value])
        return pa.table(data)


def _add_counts(counts: dict, column: pa.Array) -> None:
    for entry in pc.value_counts(column).to_pylist():
        counts[entry["values"]] = counts.get(entry["values"], 0) + int(entry["counts"])


def scan(data: StreamedTrainingSet, features: list[str], label: str, task: str,
         sample_rows: int = SAMPLE_ROWS, progress: Progress = SILENT) -> TrainingStats:
    """Stream the training set once: per-feature statistics and class counts of the training
    rows, label counts of the holdout rows, and every k-th training row as the profile sample."""
    step_rows = max(1, math.ceil(data.train_rows / max(1, sample_rows)))
    columns: dict[str, _ColumnStats] = {}
    label_counts: dict = {}
    holdout_counts: dict = {}
    sampled: list[pa.RecordBatch] = []
    seen = 0
    with progress.step("Streaming statistics of the training rows") as step:
        for batch, mask in data.stream():
            if task == "classification":
                _add_counts(holdout_counts, batch.column(batch.schema.get_field_index(label)).filter(pa.array(~mask)))
            if not mask.any():
                continue
            train = batch.filter(pa.array(mask))
            missing = [f for f in features + [label] if f not in train.schema.names]
            if missing:
                raise InputError(f"The training query lacks column(s) {', '.join(map(repr, missing))}.",
                                 hint="the query must be the training query of the same spec.")
            for name in features:
                col = train.column(train.schema.get_field_index(name))
                stats = columns.setdefault(name, _ColumnStats(col.type))
                stats.nulls += col.null_count
                kind = column_kind(col.type)
                if stats.value is None and col.null_count < len(col):
                    stats.value = pc.drop_null(col).slice(0, 1)
                if kind == "categorical":
                    text = pc.cast(col, pa.string()) if pa.types.is_dictionary(col.type) else col
                    stats.categories.update(v for v in pc.unique(text).to_pylist() if v is not None)
            y = train.column(train.schema.get_field_index(label))
            if y.null_count:
                raise InputError(f"{y.null_count:,} training rows have a NULL label {label!r}.",
                                 hint="labels that are not mature must be dropped; the training query does that.")
            if task == "classification":
                _add_counts(label_counts, y)
            else:
                _float_labels(y, label)
            positions = np.arange(seen, seen + train.num_rows)
            picked = np.flatnonzero(positions % step_rows == 0)
            if len(picked):
                sampled.append(train.take(pa.array(picked)))
            seen += train.num_rows
            step.update(f"{seen:,} training rows")
        step.summary = f"{seen:,} training rows, {sum(len(s.categories) for s in columns.values()):,} categories"
    if not seen:
        raise InputError("The training set is empty.", hint="check the label join and label maturity.")
    for name in features:
        if name in columns and columns[name].nulls == seen and column_kind(columns[name].type) is not None:
            raise InputError(f"Feature {name!r} is NULL in every one of the {seen:,} training rows.",
                             hint="fix it in the dbt model, or leave it out with `exclude: [" + name + "]` in "
                             "meta.dwml.")
    sample = pa.Table.from_batches(sampled)
    return TrainingStats(seen, columns, label_counts, holdout_counts, sample)


def _float_labels(column, label: str) -> np.ndarray:
    try:
        return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"Label {label!r} of a regression must be numeric, got {column.type}.",
                         hint="use task 'classification' for categories.") from exc


def class_balance_of(counts: dict) -> dict[str, int]:
    """training_set.class_balance from value counts instead of the values."""
    merged: dict[str, int] = {}
    for value, n in counts.items():
        merged[str(value)] = merged.get(str(value), 0) + n
    return dict(sorted(merged.items()))


# -- the fit ------------------------------------------------------------------------------------

def _batch_iterator(data: StreamedTrainingSet, model, label_codes, weights, cache_prefix: str):
    """An xgboost.DataIter over the streamed training rows, transformed exactly as scoring does;
    XGBoost caches the quantised pages it builds from them under `cache_prefix`."""
    import xgboost as xgb

    class Batches(xgb.DataIter):
        def __init__(self):
            super().__init__(cache_prefix=cache_prefix, release_data=True)
            self._source = None
            self.batches = 0

        def reset(self) -> None:
            if self._source is not None:
                self._source.close()  # ends the warehouse cursor of an unfinished pass
            self._source = None

        def next(self, input_data) -> bool:
            if self._source is None:
                self._source = data.batches("train")
            table = next(self._source, None)
            if table is None:
                return False
            y = label_codes(table.column(model.label))
            input_data(data=model.transform(table), label=y, weight=None if weights is None else weights[y])
            self.batches += 1
            return True

    return Batches()


def fit_streamed(data: StreamedTrainingSet, spec, algorithm: str = "xgboost", params: dict | None = None,
                 seed: int = 0, progress: Progress = SILENT, *, balance_classes: bool = True,
                 threshold: float = 0.5, high_cardinality: int = HIGH_CARDINALITY,
                 sample_rows: int = SAMPLE_ROWS):
    """(TrainedModel, the profile sample of training rows): training.fit's model, fitted from
    streamed batches (see the module doc). XGBoost only."""
    import xgboost as xgb

    from dwml_py.training import (TrainedModel, _canonical_algorithm, _jsonable, _make_estimator, _spec_fields,
                                  _XGBProgress, default_params)

    label, task, features, spec_dict = _spec_fields(spec)
    algorithm = _canonical_algorithm(algorithm, task)
    if algorithm != "xgboost":
        raise InputError(f"Out-of-core training is for XGBoost; got algorithm {algorithm!r}.",
                         hint="train other algorithms in memory, or use xgboost.")
    if not 0 < threshold < 1:
        raise InputError(f"threshold must be between 0 and 1, got {threshold!r}.", hint="0.5 is the default.")
    effective = {**default_params(algorithm, task), **(params or {})}

    started = time.perf_counter()
    stats = scan(data, features, label, task, sample_rows=sample_rows, progress=progress)
    with progress.step(f"Preparing {len(features)} features from their statistics") as step:
        witness = stats.witness(features)
        schema, dropped = infer_feature_schema(witness, features, high_cardinality=high_cardinality)
        preprocessor = build_preprocessor(schema, algorithm, task, seed=seed)
        preprocessor.fit(to_frame(witness, schema))
        names = output_names(preprocessor)
        step.summary = f"{len(names)} model inputs from {len(schema)} features" + (
            f"; dropped {', '.join(d['name'] for d in dropped)}" if dropped else "")
    classes, weights = None, None
    if task == "classification":
        classes = sorted(stats.label_counts)
        if len(classes) < 2:
            raise InputError(f"The label {label!r} has a single class ({classes[0]!r}) in all {stats.rows:,} "
                             "training rows; a classifier needs at least two.",
                             hint="check the label definition and its maturity filter, or train on a longer period.")
        counts = np.array([stats.label_counts[c] for c in classes], dtype=np.float64)
        if balance_classes and len(classes) == 2 and "scale_pos_weight" not in effective:
            effective["scale_pos_weight"] = float((stats.rows - counts[1]) / max(counts[1], 1))
        elif balance_classes and len(classes) > 2:
            weights = stats.rows / (len(classes) * counts)  # compute_sample_weight("balanced"), per class
        value_set = pa.array(classes)

        def label_codes(column):
            return pc.index_in(column, value_set=value_set.cast(column.type)).to_numpy(zero_copy_only=False)
    else:
        def label_codes(column):
            return _float_labels(column, label)
    prepared = time.perf_counter()

    estimator, _ = _make_estimator(algorithm, task, effective, seed, np.empty(0), len(classes or []), False)
    model = TrainedModel(algorithm=algorithm, task=task, params={}, seed=seed, preprocessor=preprocessor,
                         estimator=estimator, features=schema, label=label, classes=classes,
                         threshold=threshold if classes and len(classes) == 2 else None, dropped=dropped,
                         transformed_names=names, spec=_jsonable(spec_dict))
    rounds = estimator.get_num_boosting_rounds()
    with progress.step(f"Fitting xgboost on {stats.rows:,} streamed rows x {len(names)} inputs") as step:
        booster_params = estimator.get_xgb_params()
        if classes and len(classes) > 2:  # what XGBClassifier.fit sets for more than two classes
            booster_params.update(objective="multi:softprob", num_class=len(classes))
        cache_dir = tempfile.mkdtemp(prefix="xgboost-pages-", dir=data.work_dir())
        matrix = None
        try:
            batches = _batch_iterator(data, model, label_codes, weights, os.path.join(cache_dir, "train"))
            # pages of the quantised matrix on disk, not the whole of it in memory (module doc, 3.)
            matrix = xgb.ExtMemQuantileDMatrix(batches, max_bin=estimator.max_bin, nthread=estimator.n_jobs,
                                               missing=estimator.missing,
                                               enable_categorical=bool(estimator.enable_categorical))
            step.update(f"quantised {matrix.num_row():,} rows in {batches.batches} batches")
            booster = xgb.train(booster_params, matrix, rounds, evals=[], verbose_eval=False,
                                early_stopping_rounds=estimator.early_stopping_rounds,
                                callbacks=[_XGBProgress(step, rounds)])
        except (TypeError, ValueError) as exc:
            traceback.clear_frames(exc.__traceback__)  # see below
            raise InputError(f"{algorithm} refused its parameters or data: {exc}",
                             hint=f"check params {sorted(params or {})}; "
                             f"defaults: {default_params(algorithm, task)}") from exc
        except BaseException as exc:
            # The frames of a failure (xgb.train's among them) hold the matrix: cleared, it is
            # freed below, and XGBoost closes and removes its own page files before the folder goes.
            traceback.clear_frames(exc.__traceback__)
            raise
        finally:
            del matrix
            shutil.rmtree(cache_dir, ignore_errors=True)
        # The wrapper loads the booster as it would load the artifact: a normal XGBClassifier/XGBRegressor.
        estimator.load_model(bytearray(booster.save_raw(raw_format="json")))
        step.summary = f"{time.perf_counter() - prepared:.1f} s"
    finished = time.perf_counter()

    info = {"train_rows": int(stats.rows), "inputs": len(names), "prepare_seconds": round(prepared - started, 3),
            "fit_seconds": round(finished - prepared, 3), "balance_classes": balance_classes,
            "out_of_core": {"batch_rows": data.batch_rows, "batches_per_pass": batches.batches,
                            "largest_batch_rows": data.largest_batch_rows, "passes": data.passes,
                            "max_bin": int(estimator.max_bin or 256)}}
    if classes:
        info["class_counts"] = {str(c): int(stats.label_counts[c]) for c in classes}
        if task == "classification":
            data.split_info["class_balance"] = {"train": class_balance_of(stats.label_counts),
                                                "holdout": class_balance_of(stats.holdout_label_counts)}
    model.params = _jsonable(effective)
    model.fit_info = info
    return model, stats.sample


def evaluate_streamed(model, data: StreamedTrainingSet, progress: Progress = SILENT) -> dict:
    """training.evaluate on the streamed holdout rows, scored batch by batch."""
    from dwml_py.training import evaluation_of, holdout_labels

    labels, outputs = [], []
    with progress.step(f"Evaluating on {data.holdout_rows:,} streamed holdout rows"):
        for table in data.batches("holdout"):
            labels.append(holdout_labels(model, table.column(model.label)))
            outputs.append(model.predict(table) if model.task == "regression" else model.predict_proba(table))
    if not labels:
        raise InputError("The holdout set is empty.", hint="lower holdout_fraction or train on more snapshots.")
    return evaluation_of(model, np.concatenate(labels), np.concatenate(outputs))
