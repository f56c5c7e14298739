"""Live model performance on matured labels: `dwml evaluate NAME [--version N | --alias A] [--window W]
[--label-delay-days D] [--relation R] [--after D] [--before D]`.

Where the (score, label) pairs come from:

* by default, the version's predictions in dwml.predictions (the latest score per entity and
  snapshot when batches overlap), joined to the labels of the version's label model the way
  training joined them (the training query of the version's spec, without its features: the
  same point-in-time rules for every join kind);
* with `relation`, a labelled table (the version's features + its label column) scored here
  with the version itself.

Label maturity: only snapshots with `snapshot + label_delay_days <= as_of` count (the delay
defaults to the label's `horizon_days` from the spec; `as_of` to now), on top of the label
model's own NULL-until-mature labels.

Where the metrics are computed: the join, the maturity and window filters, the de-duplication
of predictions and the time bucketing (`date_trunc` of the snapshot to month/week/day) run in
the warehouse; three narrow columns (window, score, label) come back as Arrow and the metrics
are computed in Python with `dwml_py.training.binary_metrics` / `regression_metrics`, the very
functions that computed the training holdout metrics. Why not in SQL: ROC AUC and average
precision need a sort of each window, log loss clips probabilities exactly as scikit-learn
does, and one implementation shared with training is what makes the live value and the
holdout baseline mean the same thing. The fetch is small: three numeric columns.

Metrics: classification (binary) roc_auc, pr_auc, log_loss, accuracy, f1, brier (accuracy and
f1 at the version's threshold); regression rmse, mae, r2.

Degradation (configurable in `vars: dwml: performance:` of dbt_project.yml and in the feature
model's `meta: dwml: performance:`, meta winning):

=============== =============================== ===========================================
key             default                         meaning
=============== =============================== ===========================================
tolerance       0.05                            a judged metric is degraded when it is worse
                                                than the holdout baseline by more than this
                                                share of the baseline (relative drop of a
                                                higher-is-better metric, relative rise of
                                                log_loss, brier, rmse, mae)
metrics         [roc_auc] / [rmse]              the metrics judged against the baseline
limits          {}                              worst acceptable values, e.g. {roc_auc: 0.7,
                                                log_loss: 0.5}: beyond them a metric is
                                                degraded whatever the baseline (judged even
                                                when not in `metrics`)
min_rows        100                             windows with fewer labelled rows are
                                                recorded but not judged (too noisy)
label_delay_days the label's horizon_days       default label delay
=============== =============================== ===========================================

Every window and metric is a row of dwml.performance_metrics (is_degraded NULL when not
judged); the result's `alert` is true when any window degraded (the CLI then exits 2).
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, InputError, did_you_mean
from dwml_py.progress import SILENT, Progress
from dwml_py.settings import meta_section, project_var
from dwml_py.tables import DWML_SCHEMA

WINDOWS = ("month", "week", "day")
CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "log_loss", "accuracy", "f1", "brier")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
DEFAULT_RULE = {"tolerance": 0.05, "metrics": None, "limits": {}, "min_rows": 100, "label_delay_days": None}
_PRIMARY = {"classification": ["roc_auc"], "regression": ["rmse"]}
WINDOW_COLUMN, SCORE_PREFIX, LABEL_COLUMN, _RN = "__dwml_window", "__dwml_score", "__dwml_label", "__dwml_rn"


def task_metrics(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


# -- the degradation rule ------------------------------------------------------------------------

def _rule_block(block, where: str, task: str) -> dict:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise ConfigError(f"{where} must be a mapping, got {block!r}.", hint="e.g. `performance: {tolerance: 0.1}`.")
    known = task_metrics(task)
    out = {}
    for key, value in block.items():
        if key not in DEFAULT_RULE:
            raise ConfigError(f"Unknown performance setting {key!r} in {where}.",
                              hint=f"{did_you_mean(str(key), DEFAULT_RULE)} (known: {', '.join(DEFAULT_RULE)})")
        if key == "tolerance":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"{where}.tolerance must be a share in [0, 1), got {value!r}.",
                                  hint="e.g. 0.05 for a 5% relative drop.")
            value = float(value)
        elif key == "metrics":
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or any(m not in known for m in value):
                raise ConfigError(f"{where}.metrics must list metrics of a {task} model, got {value!r}.",
                                  hint=f"choose from {', '.join(known)}.")
        elif key == "limits":
            if not isinstance(value, dict) or any(m not in known for m in value) or any(
                    isinstance(v, bool) or not isinstance(v, (int, float)) for v in value.values()):
                raise ConfigError(f"{where}.limits must map {task} metrics to numbers, got {value!r}.",
                                  hint=f"e.g. `limits: {{{known[0]}: 0.7}}`; metrics: {', '.join(known)}.")
            value = {m: float(v) for m, v in value.items()}
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}.{key} must be a whole number >= 0, got {value!r}.", hint="e.g. 30.")
        out[key] = value
    return out


def resolve_rule(project_config: dict | None, model_meta: dict | None, task: str) -> dict:
    """The degradation rule from defaults < vars dwml.performance < meta.dwml.performance.

    >>> r = resolve_rule({"vars": {"dwml": {"performance": {"tolerance": 0.1}}}},
    ...                  {"dwml": {"performance": {"limits": {"roc_auc": 0.7}}}}, "classification")
    >>> r["tolerance"], r["metrics"], r["limits"], r["min_rows"]
    (0.1, ['roc_auc'], {'roc_auc': 0.7}, 100)
    """
    rule = {**DEFAULT_RULE,
            **_rule_block(project_var(project_config, "performance"), "vars: dwml: performance:", task),
            **_rule_block(meta_section(model_meta, "performance"), "meta.dwml.performance", task)}
    rule["metrics"] = list(rule["metrics"] or _PRIMARY[task])
    return rule


def is_degraded(metric: str, value: float | None, baseline: float | None, rule: dict, rows: int) -> bool | None:
    """True/False when the metric is judged in this window, None when it is not (see the module doc).

    >>> rule = resolve_rule(None, None, "classification")
    >>> is_degraded("roc_auc", 0.70, 0.75, rule, 500), is_degraded("roc_auc", 0.72, 0.75, rule, 500)
    (True, False)
    >>> is_degraded("log_loss", 0.5, 0.4, rule, 500) is None  # not a judged metric by default
    True
    """
    limit = rule["limits"].get(metric)
    if value is None or rows < rule["min_rows"] or (metric not in rule["metrics"] and limit is None):
        return None
    worse = (lambda a, b: a > b) if metric in LOWER_IS_BETTER else (lambda a, b: a < b)
    if limit is not None and worse(value, limit):
        return True
    if metric in rule["metrics"] and baseline is not None and baseline != 0:
        change = (value - baseline) / abs(baseline)  # > 0: the metric went up
        return bool((change > rule["tolerance"]) if metric in LOWER_IS_BETTER else (-change > rule["tolerance"]))
    return False


# -- SQL -----------------------------------------------------------------------------------------

def _when(value, what: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"{what} {value!r} is not an ISO date or timestamp.",
                         hint="e.g. 2025-06-01 or '2025-06-01 12:00:00'.") from None


def _timestamp(value: datetime) -> exp.Expression:
    return exp.cast(sqlmod.literal(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)


def _bucket(column: exp.Expression, window: str) -> exp.Expression:
    return exp.cast(exp.TimestampTrunc(this=exp.cast(column, exp.DataType.Type.TIMESTAMP),
                                       unit=exp.var(window.upper())), exp.DataType.Type.TIMESTAMP)


def time_filter(column: str, cutoff: datetime | None, after, before) -> list[exp.Expression]:
    """`column <= cutoff` (matured), `column >= after`, `column < before`; the ones given."""
    parts = []
    if cutoff is not None:
        parts.append(exp.LTE(this=sqlmod.column(column), expression=_timestamp(cutoff)))
    if after is not None:
        parts.append(exp.GTE(this=sqlmod.column(column), expression=_timestamp(_when(after, "after"))))
    if before is not None:
        parts.append(exp.LT(this=sqlmod.column(column), expression=_timestamp(_when(before, "before"))))
    return parts


def labels_query(spec: dict, dialect: str, asof_join: bool) -> exp.Select:
    """Entity key(s), snapshot and label of every feature row with a label: the version's training
    query without its features (so labels are joined exactly as training joined them)."""
    from dwml_py.training_set import TrainingSpec, build_training_query

    return build_training_query(TrainingSpec.from_dict({**spec, "features": []}), dialect, asof_join=asof_join,
                                order=False)


# -- matching a prediction's entity_key to its label row -------------------------------------------
#
# entity_key is text (batch_scoring.entity_keys, or the dwml_prediction_key macro of SQL scoring):
# one column's value as text, or several as JSON text. Texts of one value differ between writers
# and engines (pyarrow writes '2024-03-05 10:00:03.000000' and 2.0 as '2', DuckDB casts them to
# '2024-03-05 10:00:03' and '2.0'; JSON holds Python's str(datetime) and true/false), so each key
# column is read back as its column's type and values are compared: in the join to the labels
# (an equality of a prediction-row and a label-row expression, which keeps the hash join), between
# versions, and in "the latest score per entity" (a batch and an SQL score of one row are one
# entity). Text and integer keys stay texts (every writer writes the same digits).
# Where a key does not parse: TRY_CAST on DuckDB and Spark, so it matches nothing; PostgreSQL has
# no TRY_CAST (sqlglot writes CAST; pg_input_is_valid needs 16+), so there it fails the query.
# Keys are written from the column itself, so only a key column whose type changed after scoring
# does that. PostgreSQL's JSON functions take json, so its composite keys are cast to json first.

def key_types(warehouse, spec: dict) -> dict[str, pa.DataType]:
    """The Arrow type of each entity column, as batch scoring reads it: a zero-row fetch of the
    version's labels query (nothing is scanned)."""
    query = labels_query(spec, warehouse.dialect, warehouse.capabilities.asof_join).limit(0)
    schema = warehouse.fetch_arrow(query).schema
    by_name = {f.name.lower(): f.type for f in schema}
    entity = spec["entity"] if isinstance(spec["entity"], list) else [spec["entity"]]
    return {name: by_name[name.lower()] for name in entity if name.lower() in by_name}


def key_sql_type(arrow_type: pa.DataType | None) -> exp.DataType | None:
    """The SQL type a key column's text is read back as, or None to compare texts: text keys, and
    integers, whose text is the same digits from every writer (and needs no range to read back).

    >>> key_sql_type(pa.timestamp("us")).sql("duckdb"), key_sql_type(pa.float32()).sql("spark")
    ('TIMESTAMP', 'FLOAT')
    >>> key_sql_type(pa.decimal128(10, 2)).sql("postgres"), key_sql_type(pa.int64()) is None
    ('DECIMAL(10, 2)', True)
    """
    t = arrow_type
    if t is not None and pa.types.is_dictionary(t):
        t = t.value_type
    kind = exp.DataType.Type
    if t is None:
        return None
    if pa.types.is_boolean(t):
        return exp.DataType(this=kind.BOOLEAN)
    if pa.types.is_floating(t):  # float32 keys compare as float32: 0.1 read as a double is another number
        return exp.DataType(this=kind.FLOAT if t.bit_width <= 32 else kind.DOUBLE)
    if pa.types.is_decimal(t) and t.precision <= 38:
        return exp.DataType.build(f"DECIMAL({t.precision}, {t.scale})")
    if pa.types.is_date(t):
        return exp.DataType(this=kind.DATE)
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            return exp.DataType(this=kind.TIMESTAMPTZ)
        return exp.DataType(this=kind.TIMESTAMP_NS if t.unit == "ns" else kind.TIMESTAMP)
    if pa.types.is_time(t):
        return exp.DataType(this=kind.TIME)
    return None


def _key_values(entity: list[str], alias: str | None, types: dict | None,
                dialect: str | None = None) -> list[tuple[exp.Expression, exp.Expression]]:
    """Per entity column: (its value read from <alias>.entity_key, the label row's value it must equal)."""
    key = sqlmod.column("entity_key", alias)
    if len(entity) > 1 and dialect == "postgres":  # its JSON functions take json, not the text column
        key = exp.cast(key, exp.DataType.Type.JSON)
    pairs = []
    for name in entity:
        if len(entity) == 1:
            text = key.copy()
        else:
            path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=name)])
            text = exp.JSONExtractScalar(this=key.copy(), expression=path)
        to = key_sql_type((types or {}).get(name))
        label = sqlmod.column(name, "l")
        if to is None:
            pairs.append((text, exp.cast(label, exp.DataType.Type.VARCHAR)))
        else:
            pairs.append((exp.TryCast(this=text, to=to, safe=True), label))  # safe: Spark's TRY_CAST too
    return pairs


def _key_match(entity: list[str], alias: str, types: dict | None = None, dialect: str | None = None) -> exp.Expression:
    """<alias>.entity_key = the label row's key, column by column: values of each column's type in
    `types` (column -> Arrow type, from key_types), texts for the others."""
    return exp.and_(*[value.eq(label) for value, label in _key_values(entity, alias, types, dialect)])


def latest_predictions(name: str, version: int, filters: list[exp.Expression],
                       key: list[exp.Expression] | None = None) -> exp.Select:
    """The version's predictions, each (entity, snapshot) numbered newest score first (`__dwml_rn`);
    the entity is `key` (the key's values, see _key_values) or the key text."""
    newest = exp.Window(this=exp.RowNumber(),
                        partition_by=[*(key or [sqlmod.column("entity_key")]), sqlmod.column("snapshot_at")],
                        order=exp.Order(expressions=[exp.Ordered(this=sqlmod.column("scored_at"), desc=True)]))
    where = [sqlmod.column("model_name").eq(sqlmod.literal(name)),
             sqlmod.column("version").eq(sqlmod.literal(int(version))), *filters]
    return (exp.select(sqlmod.column("entity_key"), sqlmod.column("snapshot_at"), sqlmod.column("score"),
                       exp.alias_(newest, _RN, quoted=True))
            .from_(sqlmod.table(DWML_SCHEMA, "predictions")).where(exp.and_(*where)))


def score_column(k: int) -> str:
    return f"{SCORE_PREFIX}_{k}"


def predictions_query(name: str, versions: list[int], spec: dict, dialect: str, asof_join: bool, window: str,
                      filters: list[exp.Expression], types: dict | None = None) -> exp.Select:
    """(window, label, score of each version) for every (entity, snapshot) that all `versions` scored
    (their latest score) and that has a label; keys matched as `types` says (see _key_match)."""
    entity = spec["entity"] if isinstance(spec["entity"], list) else [spec["entity"]]
    timestamp = spec.get("timestamp")
    first = "p0"
    on = [_key_match(entity, first, types, dialect)]
    if timestamp:
        on.append(sqlmod.column("snapshot_at", first).eq(
            exp.cast(sqlmod.column(timestamp, "l"), exp.DataType.Type.TIMESTAMP)))
        bucket = _bucket(sqlmod.column("snapshot_at", first), window)
    else:
        bucket = exp.cast(exp.Null(), exp.DataType.Type.TIMESTAMP)
    query = exp.select(exp.alias_(bucket, WINDOW_COLUMN, quoted=True),
                       exp.alias_(sqlmod.column(spec["label_column"], "l"), LABEL_COLUMN, quoted=True),
                       *[exp.alias_(sqlmod.column("score", f"p{k}"), score_column(k), quoted=True)
                         for k in range(len(versions))])
    # the latest score per value, not per text: a batch and an SQL score of a row may differ in text
    key = [value for value, _ in _key_values(entity, None, types, dialect)]
    query = query.from_(latest_predictions(name, versions[0], filters, key).subquery(first))
    where = [sqlmod.column(_RN, first).eq(sqlmod.literal(1))]
    for k, version in enumerate(versions[1:], start=1):
        alias = f"p{k}"
        # by value too: one version may be scored by batch, another by SQL, with other key texts
        same = [mine.eq(theirs) for (mine, _), (theirs, _) in zip(_key_values(entity, alias, types, dialect),
                                                                 _key_values(entity, first, types, dialect))]
        if timestamp:
            same.append(sqlmod.column("snapshot_at", alias).eq(sqlmod.column("snapshot_at", first)))
        query = query.join(latest_predictions(name, version, filters, key).subquery(alias), on=exp.and_(*same),
                           join_type="inner")
        where.append(sqlmod.column(_RN, alias).eq(sqlmod.literal(1)))
    query = query.join(labels_query(spec, dialect, asof_join).subquery("l"), on=exp.and_(*on), join_type="inner")
    return query.where(exp.and_(*where))


def relation_query(source: exp.Table | exp.Subquery, label: str, features: list[str], timestamp: str | None,
                   window: str, cutoff: datetime | None, after, before) -> exp.Select:
    """(window, label, features) of the labelled rows of a relation, matured and in the window."""
    if timestamp:
        bucket, where = _bucket(sqlmod.column(timestamp), window), time_filter(timestamp, cutoff, after, before)
    else:
        if after is not None or before is not None:
            raise InputError("A time window needs the model's timestamp column, and the relation has none.",
                             hint="drop --after/--before, or evaluate a relation with the model's timestamp column.")
        bucket, where = exp.cast(exp.Null(), exp.DataType.Type.TIMESTAMP), []
    where.append(exp.Not(this=exp.Is(this=sqlmod.column(label), expression=exp.Null())))
    return (exp.select(exp.alias_(bucket, WINDOW_COLUMN, quoted=True),
                       exp.alias_(sqlmod.column(label), LABEL_COLUMN, quoted=True),
                       *[sqlmod.column(c) for c in features]).from_(source).where(exp.and_(*where)))


def scored_pairs(warehouse, query: exp.Select, models: list, features: list[str]) -> pa.Table:
    """Stream `query` (window, label, `features`) in Arrow batches and score every batch with each
    model: (window, label, score of each model). Memory holds one batch of features at a time."""
    from dwml_py.batch_scoring import score_table

    parts = []
    for batch in warehouse.fetch_batches(query):
        if not batch.num_rows:
            continue
        chunk = pa.Table.from_batches([batch]).rename_columns([WINDOW_COLUMN, LABEL_COLUMN, *features])
        columns = {WINDOW_COLUMN: chunk.column(WINDOW_COLUMN), LABEL_COLUMN: chunk.column(LABEL_COLUMN)}
        for k, model in enumerate(models):
            columns[score_column(k)] = pa.array(score_table(model, chunk)[0], type=pa.float64())
        parts.append(pa.table(columns))
    if not parts:
        return pa.table({WINDOW_COLUMN: pa.array([], pa.timestamp("us")), LABEL_COLUMN: pa.array([], pa.float64()),
                         **{score_column(k): pa.array([], pa.float64()) for k in range(len(models))}})
    return pa.concat_tables(parts)


def relation_pairs(project, warehouse, models: list, relation: str, window: str, cutoff, after, before):
    """(pairs, source text): a labelled relation (label column + every model's features) scored by each model."""
    from dwml_py.batch_scoring import match_columns
    from dwml_py.relations import resolve_relation

    schema, table = resolve_relation(project, warehouse, relation)
    name = f"{schema}.{table}"
    spec = models[0].spec or {}
    available = [c for c, _ in warehouse.columns(schema, table)]
    features = list(dict.fromkeys(f for m in models for f in m.feature_names))
    label = match_columns(available, [spec["label_column"]], name, "evaluation (the label)")[0]
    actual = match_columns(available, features, name, "the model version(s)")
    timestamp = spec.get("timestamp")
    if timestamp and timestamp.lower() in {c.lower() for c in available}:
        timestamp = match_columns(available, [timestamp], name, "the time window")[0]
    else:
        timestamp = None
    query = relation_query(sqlmod.table(schema, table), label, actual, timestamp, window, cutoff, after, before)
    return scored_pairs(warehouse, query, models, features), f"{name} scored with the version(s)"


def maturity(spec: dict, label_delay_days: int | None, rule_delay: int | None, as_of) -> tuple[int, datetime,
                                                                                                datetime | None]:
    """(label delay in days, as-of time, latest matured snapshot or None without a timestamp)."""
    from dwml_py.rows import utcnow

    if label_delay_days is not None and (isinstance(label_delay_days, bool) or not isinstance(label_delay_days, int)
                                         or label_delay_days < 0):
        raise InputError(f"label_delay_days must be a whole number >= 0, got {label_delay_days!r}.",
                         hint="e.g. --label-delay-days 30")
    delay = label_delay_days if label_delay_days is not None else rule_delay
    if delay is None:
        delay = int(spec.get("horizon_days") or 0)
    now = _when(as_of, "as_of") if as_of is not None else utcnow()
    return int(delay), now, (now - timedelta(days=int(delay)) if spec.get("timestamp") else None)


def has_predictions(warehouse, name: str, version: int) -> bool:
    if not warehouse.table_exists(DWML_SCHEMA, "predictions"):
        return False
    query = (exp.select(exp.func("count", exp.Star())).from_(sqlmod.table(DWML_SCHEMA, "predictions"))
             .where(exp.and_(sqlmod.column("model_name").eq(sqlmod.literal(name)),
                             sqlmod.column("version").eq(sqlmod.literal(int(version))))))
    return bool(warehouse.fetch_scalar(query))


# -- metrics -------------------------------------------------------------------------------------

def encode_labels(task: str, classes: list | None, labels: list) -> tuple[np.ndarray, np.ndarray]:
    """(y, kept mask): 0/1 for the positive class classes[1] (rows with another value are dropped),
    floats for regression."""
    if task == "regression":
        return np.asarray(labels, dtype=np.float64), np.ones(len(labels), dtype=bool)
    index = {c: i for i, c in enumerate(classes)}
    codes = np.array([index.get(v, -1) for v in labels], dtype=np.int64)
    kept = codes >= 0
    return codes[kept], kept


def window_metrics(task: str, y: np.ndarray, score: np.ndarray, threshold: float | None) -> dict:
    """{metric: value or None} of one window, by the functions that computed the holdout metrics."""
    from dwml_py.training import binary_metrics, regression_metrics

    if task == "regression":
        values = regression_metrics(y, score)
    else:
        values = binary_metrics(y, score, threshold)[0]
    return {m: (None if values.get(m) is None or not math.isfinite(values[m]) else float(values[m]))
            for m in task_metrics(task)}


def _window_end(start: datetime | None, window: str) -> datetime | None:
    if start is None:
        return None
    if window == "day":
        return start + timedelta(days=1)
    if window == "week":
        return start + timedelta(days=7)
    year, month = divmod(start.month, 12)
    return start.replace(year=start.year + year, month=month + 1)


# -- the evaluation ------------------------------------------------------------------------------

def load_version(project, warehouse, name: str, version: int | None, alias: str | None):
    """(version row, TrainedModel) of a registered version, its artifact verified."""
    from dwml_py import model_registry as registry
    from dwml_py.artifacts import ArtifactStore

    row = registry.get_version(warehouse, name, version=version, alias=alias)
    return row, registry.load_version_model(ArtifactStore.for_project(project), row)


def check_binary(model, name: str, version: int, what: str) -> None:
    if model.task == "classification" and len(model.classes or []) != 2:
        raise InputError(f"{what} handles binary classification and regression; version {version} of {name!r} has "
                         f"{len(model.classes or [])} classes.",
                         hint="compare multiclass versions on their training holdout metrics for now.")


def labelled_pairs(project, warehouse, name: str, versions: list[int], models: list, relation: str | None,
                   window: str, cutoff, after, before) -> tuple[pa.Table, str]:
    """(window, label, score of each version) on matured labels: from the versions' predictions (rows
    every version scored), or, with `relation`, by scoring that labelled table with each version."""
    spec = models[0].spec or {}
    if relation:
        return relation_pairs(project, warehouse, models, relation, window, cutoff, after, before)
    if (after is not None or before is not None) and not spec.get("timestamp"):
        raise InputError("A time window needs the model's timestamp column, and this version records none.",
                         hint="drop --after/--before.")
    filters = time_filter("snapshot_at", cutoff, after, before) if spec.get("timestamp") else []
    query = predictions_query(name, versions, spec, warehouse.dialect, warehouse.capabilities.asof_join, window,
                              filters, key_types(warehouse, spec))
    return warehouse.fetch_arrow(query), f"{DWML_SCHEMA}.predictions (latest score per entity and snapshot)"


def evaluate_performance(project, name: str, version: int | None = None, alias: str | None = "production",
                         window: str = "month", label_delay_days: int | None = None, relation: str | None = None,
                         after=None, before=None, as_of=None, warehouse=None,
                         progress: Progress = SILENT) -> dict:
    """Metrics of a version per time window on matured labels, against its holdout baseline; see the module doc."""
    from dwml_py.drift import feature_meta
    from dwml_py.rows import ensure_once, table_rows, utcnow
    from dwml_py.warehouse import given_or_connected

    started = time.perf_counter()
    if window not in WINDOWS:
        raise InputError(f"Unknown window {window!r}.", hint=f"use one of {', '.join(WINDOWS)}.")
    if version is not None:
        alias = None
    with given_or_connected(project, warehouse) as warehouse:
        ensure_once(warehouse)
        with progress.step("Loading the model version") as step:
            row, model = load_version(project, warehouse, name, version, alias)
            version = int(row["version"])
            step.summary = f"{name} v{version} ({model.algorithm}, {model.task})"
        task = model.task
        check_binary(model, name, version, "evaluate_model")
        meta, meta_note = feature_meta(project, row.get("feature_model"))
        rule = resolve_rule(project.config, meta, task)
        notes = [meta_note] if meta_note else []
        delay, now, cutoff = maturity(model.spec or {}, label_delay_days, rule["label_delay_days"], as_of)
        if cutoff is None:
            notes.append("the model has no snapshot timestamp: maturity is judged by the label being present only.")
        if not relation and not has_predictions(warehouse, name, version):
            raise InputError(f"Version {version} of {name!r} has no predictions in {DWML_SCHEMA}.predictions to "
                             "evaluate.", hint=f"score with `dwml predict {name} --version {version}` first, or pass "
                             "--relation with a labelled table to score and evaluate directly.")

        with progress.step("Joining scores to matured labels in the warehouse") as step:
            pairs, source = labelled_pairs(project, warehouse, name, [version], [model], relation, window, cutoff,
                                           after, before)
            step.summary = f"{pairs.num_rows:,} labelled rows from {source}"

        y, kept = encode_labels(task, model.classes, pairs.column(LABEL_COLUMN).to_pylist())
        if not kept.all():
            notes.append(f"{int((~kept).sum()):,} rows with a label outside the version's classes "
                         f"{model.classes!r} were left out.")
        score = np.asarray(pairs.column(score_column(0)).to_numpy(zero_copy_only=False), dtype=np.float64)[kept]
        # windows as small integer codes: one vectorised mask per window, not a Python loop per row
        encoded = pc.dictionary_encode(pairs.column(WINDOW_COLUMN).combine_chunks(), null_encoding="encode")
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))[kept]
        window_starts = encoded.dictionary.to_pylist()
        baseline = {m: (row.get("metrics") or {}).get(m) for m in task_metrics(task)}
        evaluation_id, computed_at = uuid.uuid4().hex, utcnow()
        windows, out_rows = [], []
        for code in sorted(set(codes.tolist()), key=lambda c: (window_starts[c] is not None, window_starts[c])):
            start, mask = window_starts[code], codes == code
            rows = int(mask.sum())
            values = window_metrics(task, y[mask], score[mask], model.threshold)
            judged = {m: is_degraded(m, v, baseline[m], rule, rows) for m, v in values.items()}
            end = _window_end(start, window)
            windows.append({"window_start": iso(start), "window_end": iso(end), "rows": rows, "metrics": values,
                            "degraded": [m for m, d in judged.items() if d], "judged": rows >= rule["min_rows"]})
            for metric, value in values.items():
                out_rows.append({"evaluation_id": evaluation_id, "model_name": name, "version": version,
                                 "window_start": start, "window_end": end, "metric": metric, "value": value,
                                 "baseline": baseline[metric], "is_degraded": judged[metric], "row_count": rows,
                                 "computed_at": computed_at})
        if not windows:
            notes.append("no scored row has a matured label yet" + (f" (snapshots up to {iso(cutoff)})" if cutoff
                                                                    else "") + ": nothing to judge.")
        small = [w["window_start"] for w in windows if not w["judged"]]
        if small:
            notes.append(f"{len(small)} window(s) with fewer than {rule['min_rows']} labelled rows were not judged.")
        if out_rows:
            with warehouse.transaction():
                warehouse.write_arrow(table_rows("performance_metrics", out_rows), DWML_SCHEMA, "performance_metrics")
        degraded = [w for w in windows if w["degraded"]]
        return {
            "evaluation_id": evaluation_id, "model_name": name, "version": version, "task": task,
            "source": source, "window": window, "label_delay_days": delay, "as_of": iso(now),
            "matured_until": iso(cutoff), "after": iso(after), "before": iso(before), "rows": int(len(y)),
            "baseline": baseline, "rule": rule, "windows": windows,
            "overall": window_metrics(task, y, score, model.threshold) if len(y) else None,
            "degraded_windows": [w["window_start"] for w in degraded], "notes": notes,
            "seconds": round(time.perf_counter() - started, 3), "alert": bool(degraded),
        }


def iso(value):
    """ISO text of a date or timestamp (None stays None)."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)
