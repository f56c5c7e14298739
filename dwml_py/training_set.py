"""The training set of an ML model: its spec from the dbt yml, the point-in-time correct query,
a fingerprint computed in the warehouse, the Arrow fetch and the train/holdout split.

A feature model declares its ML models under `config: meta: dwml:`::

    dwml:
      entity: customer_id            # or a list of key columns
      timestamp: snapshot_date       # the as-of date of each feature row (optional)
      exclude: [some_column]         # optional, for every model of this feature table
      models:
        churn:
          task: classification
          label: {model: customer_labels, column: churned_30d, horizon_days: 30}
          # optional: features: [...], exclude: [...],
          # label.timestamp: the label model's event-time column when it has no snapshot column

How labels are joined (`TrainingSpec.join`):

- ``snapshot``: the label model has the entity and the snapshot column: an equi-join, so each
  feature row gets the label computed for exactly its snapshot (the demo).
- ``asof``: the label model has an event-time column instead (``label.timestamp``): each feature
  row gets the first label at or after its snapshot, and within ``horizon_days`` when given.
  DuckDB runs this as an ASOF join; other engines as a window join (ROW_NUMBER over the
  candidate labels), with the same result.
- ``entity``: the feature model has no timestamp: a join on the entity only.
- ``same``: the label column lives in the feature model itself.

Rows whose label is NULL (not mature yet) are dropped in the query, so immature labels never
reach training.

>>> spec = TrainingSpec("churn", "classification", "model.p.f", "main", "f", ["id"], "ts",
...                     "model.p.l", "main", "l", "y", 30, ["x"])
>>> print(render(build_training_query(spec, "duckdb", order=False), "duckdb"))
SELECT "f"."id", "f"."ts", "f"."x", "l"."y" AS "y" FROM "main"."f" AS "f" INNER JOIN "main"."l" AS "l" ON "f"."id" = "l"."id" AND "f"."ts" = "l"."ts" WHERE NOT "l"."y" IS NULL
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, InputError, NotFoundError, did_you_mean
from dwml_py.progress import SILENT, Progress
from dwml_py.sql import render  # noqa: F401  (the module doctest uses it)

TASKS = ("classification", "regression")
SPLIT_METHODS = ("time", "random")
_F, _L = "f", "l"  # table aliases in the training query
_RN = "__dwml_rn"  # row number column of the window join


@dataclass
class TrainingSpec:
    """Everything needed to build the training set of one ML model."""

    model_name: str
    task: str  # "classification" or "regression"
    feature_model: str  # unique_id of the dbt feature model
    feature_schema: str | None
    feature_table: str
    entity: list[str]
    timestamp: str | None
    label_model: str  # unique_id of the dbt model holding the label
    label_schema: str | None
    label_table: str
    label_column: str
    horizon_days: int | None = None
    features: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    label_timestamp: str | None = None  # event-time column of the label model (as-of join)
    feature_checksum: str | None = None  # manifest checksum of the feature model (for the run record)

    @property
    def join(self) -> str:
        """How labels are joined: 'same', 'snapshot', 'asof' or 'entity' (see the module doc)."""
        if self.label_model == self.feature_model:
            return "same"
        if not self.timestamp:
            return "entity"
        return "asof" if self.label_timestamp else "snapshot"

    @property
    def output_columns(self) -> list[str]:
        """Columns of the training query, in order: keys, timestamp, features, label."""
        keys = list(self.entity) + ([self.timestamp] if self.timestamp else [])
        return keys + [f for f in self.features if f not in keys] + [self.label_column]

    def to_dict(self) -> dict:
        return {**asdict(self), "join": self.join}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingSpec":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


# -- the spec from the catalog --------------------------------------------------------------

def declared_models(catalog) -> dict[str, str]:
    """ML model name -> unique_id of the feature model that declares it in meta.dwml.models."""
    found: dict[str, str] = {}
    for uid in catalog.unique_ids(["model", "seed", "snapshot"]):
        dwml = catalog.meta(uid).get("dwml")
        models = (dwml.get("models") if isinstance(dwml, dict) else None) or {}
        if isinstance(models, dict):
            for name in models:
                found.setdefault(str(name), uid)
    return found


def _as_list(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"meta.dwml {what} must be a column name or a list of names, got {value!r}.",
                      hint=f"write e.g. `{what}: [customer_id]` in the feature model's yml.")


def resolve_spec(catalog, model_name: str, *, feature_model: str | None = None, task: str | None = None,
                 label_model: str | None = None, label_column: str | None = None,
                 horizon_days: int | None = None, entity: str | list[str] | None = None,
                 timestamp: str | None = None, label_timestamp: str | None = None,
                 features: list[str] | None = None, exclude: list[str] | None = None,
                 require_built: bool = True) -> TrainingSpec:
    """The TrainingSpec of `model_name` from the meta.dwml of the feature model declaring it.

    Keyword arguments override the yml (as from the command line); with `feature_model`,
    `label_column` and `task` given, a model needs no yml declaration at all. A feature or label
    model that is not built is refused with the dbt command that builds it, unless
    `require_built` is False (train: its quality gate says why it is not built first).
    """
    declared = declared_models(catalog)
    if feature_model is not None:
        node = catalog.show(feature_model)
    elif model_name in declared:
        node = catalog.node(declared[model_name])
    else:
        raise NotFoundError(f"No feature model declares an ML model named {model_name!r} in meta.dwml.models.",
                            hint=did_you_mean(model_name, declared) + " (or declare it under `config: meta: dwml: "
                            "models:` of a feature model, or pass feature_model, label_column and task).")
    dwml = dict((node.meta or {}).get("dwml") or {})
    decl = dict((dwml.get("models") or {}).get(model_name) or {})
    label = decl.get("label") or {}
    if isinstance(label, str):  # `label: churned_30d` = a column of the feature model itself
        label = {"column": label}

    task = task or decl.get("task")
    if task not in TASKS:
        raise ConfigError(f"ML model {model_name!r} has task {task!r}; expected one of {', '.join(TASKS)}.",
                          hint=f"set `task:` under meta.dwml.models.{model_name} in {node.name}'s yml.")
    entity_cols = _as_list(entity if entity is not None else decl.get("entity", dwml.get("entity")), "entity")
    if not entity_cols:
        raise ConfigError(f"{node.name} declares no entity key for ML model {model_name!r}.",
                          hint="set `entity: <key column>` under config.meta.dwml in its yml.")
    ts = timestamp if timestamp is not None else decl.get("timestamp", dwml.get("timestamp"))
    label_col = label_column or label.get("column")
    if not label_col:
        raise ConfigError(f"ML model {model_name!r} has no label column.",
                          hint=f"set `label: {{model: ..., column: ...}}` under meta.dwml.models.{model_name}.")
    label_node = catalog.show(label_model or label.get("model") or node.unique_id)
    horizon = horizon_days if horizon_days is not None else label.get("horizon_days")

    if require_built:  # a model dbt knows but never built: say so, not that a query failed
        catalog.require_built(node)
        catalog.require_built(label_node)
    try:
        chosen, excluded, label_ts = _columns_of_spec(node, label_node, model_name, dwml, decl, entity_cols, ts,
                                                     label_col, label_timestamp or label.get("timestamp"),
                                                     features, exclude)
    except (ConfigError, InputError):
        # the yml documents too little of a model that is not built: that is what to fix
        catalog.require_built(node)
        catalog.require_built(label_node)
        raise
    return TrainingSpec(
        model_name=model_name, task=task, feature_model=node.unique_id, feature_schema=node.schema,
        feature_table=node.alias or node.name, entity=entity_cols, timestamp=ts,
        label_model=label_node.unique_id, label_schema=label_node.schema,
        label_table=label_node.alias or label_node.name, label_column=label_col,
        horizon_days=int(horizon) if horizon is not None else None, features=chosen, exclude=excluded,
        label_timestamp=label_ts, feature_checksum=node.checksum,
    )


def _columns_of_spec(node, label_node, model_name: str, dwml: dict, decl: dict, entity_cols: list[str],
                     ts: str | None, label_col: str, label_ts: str | None, features, exclude):
    """(features, excluded, label timestamp) of a spec, after checking that its columns exist."""
    columns = list(node.columns)
    if not columns:
        raise ConfigError(f"No columns are known for {node.name}.",
                          hint=f"build it (`dbt run --select {node.name}`): dwml reads columns from the warehouse.")
    for col in entity_cols + ([ts] if ts else []):
        node.column(col)  # NotFoundError with the closest names
    if label_node.unique_id != node.unique_id and label_node.columns:
        for col in entity_cols + [label_col]:
            label_node.column(col)
        if ts and not label_ts and ts not in label_node.columns:
            raise ConfigError(
                f"The label model {label_node.name} has no snapshot column {ts!r} to join on.",
                hint=f"add {ts!r} to it, or name its event-time column as `label.timestamp` for an as-of join.")
    elif label_node.unique_id == node.unique_id:
        node.column(label_col)

    excluded = list(dict.fromkeys(_as_list(dwml.get("exclude"), "exclude") + _as_list(decl.get("exclude"), "exclude")
                                  + list(exclude or [])))
    keys = set(entity_cols) | ({ts} if ts else set()) | {label_col}
    chosen = features if features is not None else decl.get("features")
    if chosen is not None:
        chosen = _as_list(chosen, "features")
        for col in chosen:
            node.column(col)
    else:
        # the labels of the feature model's other ML models are outcomes too, not features
        outcomes = set(_same_model_labels(dwml, node))
        chosen = [c for c in columns if c not in keys and c not in outcomes]
    chosen = [c for c in chosen if c not in excluded and c not in keys]
    if not chosen:
        raise InputError(f"ML model {model_name!r} has no features left in {node.name}.",
                         hint="check `features`/`exclude` in meta.dwml; keys, timestamp and label are never features.")
    return chosen, excluded, label_ts


def _same_model_labels(dwml: dict, node) -> list[str]:
    """Label columns that the ML models declared on `node` read from `node` itself."""
    labels = []
    for decl in (dwml.get("models") or {}).values():
        label = (decl or {}).get("label") if isinstance(decl, dict) else None
        if isinstance(label, str):
            labels.append(label)
        elif isinstance(label, dict) and label.get("column") and \
                str(label.get("model") or node.name) in (node.name, node.unique_id):
            labels.append(str(label["column"]))
    return labels


# -- the query ------------------------------------------------------------------------------

def build_training_query(spec: TrainingSpec, dialect: str = "duckdb", asof_join: bool | None = None,
                         order: bool = True) -> exp.Select:
    """The point-in-time correct training query: features as of each snapshot, labels after it.

    `asof_join` (default: dialect == "duckdb") uses the engine's ASOF join for the 'asof' join
    kind; otherwise a window join gives the same rows. `order` sorts by timestamp and entity so
    that fetches are deterministic (the same data and seed give the same model); fingerprints
    use order=False since they are order-independent anyway.
    """
    if asof_join is None:
        asof_join = dialect == "duckdb"
    f_cols = [c for c in spec.output_columns if c != spec.label_column]
    label_alias = _F if spec.join == "same" else _L
    select = [sqlmod.column(c, _F) for c in f_cols]
    select.append(exp.alias_(sqlmod.column(spec.label_column, label_alias), sqlmod.ident(spec.label_column)))
    source = sqlmod.table(spec.feature_schema, spec.feature_table, alias=_F)
    labels = sqlmod.table(spec.label_schema, spec.label_table, alias=_L)
    keys_eq = [sqlmod.column(k, _F).eq(sqlmod.column(k, _L)) for k in spec.entity]
    not_null = exp.Not(this=exp.Is(this=sqlmod.column(spec.label_column, label_alias), expression=exp.Null()))

    if spec.join == "same":
        query = exp.select(*select).from_(source).where(not_null)
    elif spec.join in ("snapshot", "entity"):
        on = keys_eq + ([sqlmod.column(spec.timestamp, _F).eq(sqlmod.column(spec.timestamp, _L))]
                        if spec.join == "snapshot" else [])
        query = exp.select(*select).from_(source).join(labels, on=exp.and_(*on), join_type="inner").where(not_null)
    else:
        query = _asof_query(spec, select, source, labels, keys_eq, not_null, asof_join)
    if order:
        keys = ([spec.timestamp] if spec.timestamp else []) + list(spec.entity)
        query = query.order_by(*[sqlmod.column(k) for k in keys]) if spec.join == "asof" and not asof_join \
            else query.order_by(*[sqlmod.column(k, _F) for k in keys])
    return query


def _within_horizon(spec: TrainingSpec) -> list[exp.Expression]:
    if spec.horizon_days is None:
        return []
    limit = exp.DateAdd(this=sqlmod.column(spec.timestamp, _F), expression=sqlmod.literal(int(spec.horizon_days)),
                        unit=exp.var("DAY"))
    return [sqlmod.column(spec.label_timestamp, _L) < limit]


def _asof_query(spec, select, source, labels, keys_eq, not_null, asof_join: bool) -> exp.Select:
    f_ts, l_ts = sqlmod.column(spec.timestamp, _F), sqlmod.column(spec.label_timestamp, _L)
    if asof_join:
        # ASOF takes the equality keys plus exactly one inequality: the nearest label at or after
        # the snapshot. The horizon can only be applied afterwards, as a filter.
        join = exp.Join(this=labels, method="ASOF", kind="INNER", on=exp.and_(*keys_eq, f_ts <= l_ts))
        query = exp.select(*select).from_(source)
        query.append("joins", join)
        return query.where(exp.and_(not_null, *_within_horizon(spec)))
    # Window join: every label at/after the snapshot (within the horizon), then the first one.
    keys = list(spec.entity) + [spec.timestamp]
    ranked = exp.Window(this=exp.RowNumber(),
                        partition_by=[sqlmod.column(k, _F) for k in keys], order=exp.Order(expressions=[l_ts]))
    inner = (exp.select(*select, exp.alias_(ranked, sqlmod.ident(_RN))).from_(source)
             .join(labels, on=exp.and_(*keys_eq, f_ts <= l_ts, *_within_horizon(spec)), join_type="inner"))
    return (exp.select(*[sqlmod.column(c) for c in spec.output_columns]).from_(inner.subquery("ranked"))
            .where(exp.and_(sqlmod.column(_RN).eq(sqlmod.literal(1)),
                            exp.Not(this=exp.Is(this=sqlmod.column(spec.label_column), expression=exp.Null())))))


# -- fingerprint, fetch ---------------------------------------------------------------------

def _md5_row_hash(columns: list[exp.Expression]) -> exp.Expression:
    """Postgres has no hash of many values: md5 of the row's text form (ROW(...)::text quotes
    values and tells NULL from '' apart), its first 15 hex digits read as a 60-bit integer.
    The text form follows the session's DateStyle and TimeZone (dwml leaves the defaults)."""
    row_text = exp.Cast(this=exp.Anonymous(this="ROW", expressions=columns), to=exp.DataType.build("TEXT"))
    hex15 = exp.Substring(this=exp.MD5(this=row_text), start=exp.Literal.number(1), length=exp.Literal.number(15))
    bits = exp.Cast(this=exp.DPipe(this=exp.Literal.string("x"), expression=hex15, safe=True),
                    to=exp.DataType.build("BIT(60)", dialect="postgres"))
    return exp.Cast(this=bits, to=exp.DataType.build("BIGINT"))


def _xxhash64_row_hash(columns: list[exp.Expression]) -> exp.Expression:
    """Spark's xxhash64 skips NULL arguments, so (NULL, 'x') and ('x', NULL) would hash alike:
    each value is followed by its IS NULL flag, which is never NULL."""
    flagged = [part for c in columns for part in (c, exp.Is(this=c.copy(), expression=exp.Null()))]
    return exp.Anonymous(this="xxhash64", expressions=flagged)


# dialect -> (method recorded with the fingerprint, row hash of the columns, type the hashes are summed in).
# Each engine hashes rows its own way, so fingerprints compare only within one engine (and version).
_FINGERPRINT_METHODS = {
    "duckdb": ("duckdb-hash-sum64", lambda cols: exp.Anonymous(this="hash", expressions=cols), "HUGEINT"),
    "postgres": ("postgres-md5-sum64", _md5_row_hash, "DECIMAL(38, 0)"),
    "spark": ("spark-xxhash64-sum64", _xxhash64_row_hash, "DECIMAL(38, 0)"),
    "snowflake": ("snowflake-hash-sum64", lambda cols: exp.Anonymous(this="HASH", expressions=cols), "DECIMAL(38, 0)"),
    "bigquery": ("bigquery-farm-fingerprint-sum64",
                 lambda cols: exp.FarmFingerprint(expressions=[exp.JSONFormat(this=exp.Struct(expressions=cols))]),
                 "BIGNUMERIC"),
}


def fingerprint_query(query: exp.Select, dialect: str) -> exp.Select:
    """count(*) and sum(hash(every column of a row)) mod 2^64 over the whole query.

    A sum of row hashes does not depend on row order and, unlike XOR, does not cancel duplicate
    rows. The row hash is the engine's own: DuckDB's `hash()` and Spark's `xxhash64()` take any
    number of arguments of any type (NULLs included), Snowflake's `HASH()` too, BigQuery hashes
    the row as JSON, Postgres takes md5 of the row's text (see `_md5_row_hash`). Hashes are
    summed as a wide integer (no overflow below ~2^63 rows) and brought into [0, 2^64).
    """
    if dialect not in _FINGERPRINT_METHODS:
        raise InputError(f"Fingerprints are not implemented for the {dialect!r} dialect yet.",
                         hint=f"supported: {', '.join(_FINGERPRINT_METHODS)}; see fingerprint_query's docstring.")
    _, row_hash_of, sum_type = _FINGERPRINT_METHODS[dialect]
    inner = query.copy()
    inner.set("order", None)
    row_hash = row_hash_of([sqlmod.column(n, "t") for n in inner.named_selects])
    total = exp.func("coalesce", exp.Sum(this=exp.Cast(this=row_hash, to=exp.DataType.build(sum_type, dialect=dialect))),
                     sqlmod.literal(0))
    # Signed hashes can make the sum negative: ((s mod m) + m) mod m is in [0, m) on every engine.
    modulus = exp.Literal.number(2 ** 64)
    if dialect == "bigquery":  # an integer literal there must fit INT64
        modulus = exp.Cast(this=exp.Literal.string(str(2 ** 64)), to=exp.DataType.build(sum_type, dialect=dialect))
    modded = exp.Mod(this=exp.Paren(this=exp.Add(this=exp.Paren(this=exp.Mod(this=total, expression=modulus)),
                                                 expression=modulus)),
                     expression=modulus)
    hash_sum = exp.Cast(this=modded, to=exp.DataType.build("DECIMAL(20, 0)"))
    return exp.select(exp.alias_(exp.Count(this=exp.Star()), "row_count"),
                      exp.alias_(hash_sum, "hash_sum")).from_(inner.subquery("t"))


def fingerprint(warehouse, query: exp.Select) -> dict:
    """{"row_count", "hash", "method"} of the exact training set, computed in the warehouse.

    Equal for the same rows in any order; any changed value changes the hash. The hash is
    engine-specific (compare fingerprints from the same engine and version).
    """
    row = warehouse.fetch_rows(fingerprint_query(query, warehouse.dialect))[0]
    return {"row_count": int(row["row_count"]), "hash": f"{int(row['hash_sum']):016x}",
            "method": _FINGERPRINT_METHODS[warehouse.dialect][0]}


def fetch_training_table(warehouse, query: exp.Select, batch_size: int = 100_000,
                         progress: Progress = SILENT) -> pa.Table:
    """The training set as one Arrow table, fetched in record batches."""
    batches = []
    rows = 0
    with progress.step("Fetching the training set") as step:
        for batch in warehouse.fetch_batches(query, batch_size=batch_size):
            if batch.num_rows:
                batches.append(batch)
                rows += batch.num_rows
                step.update(f"{rows:,} rows")
        step.summary = f"{rows:,} rows"
    if not batches:
        raise InputError("The training set is empty: no feature row has a (mature) label.",
                         hint="check the label model's join keys and that some labels are not NULL; "
                         "run `dbt build` if the tables are empty.")
    return pa.Table.from_batches(batches)


# -- split ----------------------------------------------------------------------------------

def class_balance(labels: Iterable | pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """{str(class): rows}, in the sorted order of the classes' text (NULL as 'None'). An Arrow
    column is counted in Arrow: no Python object per row."""
    if isinstance(labels, (pa.Array, pa.ChunkedArray)):
        merged: dict[str, int] = {}
        for item in pc.value_counts(labels).to_pylist():
            text = str(item["values"])
            merged[text] = merged.get(text, 0) + int(item["counts"])
        return dict(sorted(merged.items()))
    values, counts = np.unique(np.asarray(list(labels), dtype=object).astype(str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def split_method(spec: TrainingSpec, method: str | None, holdout_fraction: float) -> str:
    """The split method to use (time when the spec has a timestamp, else random), after checking
    it and the holdout fraction: shared by the in-memory split and the streamed one."""
    method = method or ("time" if spec.timestamp else "random")
    if method not in SPLIT_METHODS:
        raise InputError(f"Unknown split method {method!r}.", hint=f"use one of {', '.join(SPLIT_METHODS)}.")
    if not 0 < holdout_fraction < 1:
        raise InputError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction!r}.",
                         hint="e.g. 0.2 for a fifth of the rows.")
    return method


def split(table: pa.Table, spec: TrainingSpec, method: str | None = None, holdout_fraction: float = 0.2,
          seed: int = 0, gap_days: int = 0) -> tuple[pa.Table, pa.Table, dict]:
    """(train, holdout, info). Time split by default when the spec has a timestamp.

    Time: whole snapshots go to one side, the last ones to the holdout (about
    `holdout_fraction` of the rows), so no snapshot is on both sides. `gap_days` also drops
    train rows less than that many days before the cut (set it to the label horizon to purge
    labels whose window reaches into the holdout period). Random: stratified by the label for
    classification.
    """
    method = split_method(spec, method, holdout_fraction)
    if table.num_rows < 2:
        raise InputError(f"The training set has {table.num_rows} row(s); a split needs at least 2.",
                         hint="check the label join and maturity of the labels.")
    if method == "time":
        train, holdout, info = _time_split(table, spec, holdout_fraction, gap_days)
    else:
        train, holdout, info = _random_split(table, spec, holdout_fraction, seed)
    info.update(train_rows=train.num_rows, holdout_rows=holdout.num_rows)
    if spec.task == "classification":
        info["class_balance"] = {"train": class_balance(train.column(spec.label_column)),
                                 "holdout": class_balance(holdout.column(spec.label_column))}
    return train, holdout, info


def _time_split(table, spec, fraction, gap_days):
    if not spec.timestamp:
        raise InputError(f"ML model {spec.model_name!r} has no timestamp, so it cannot be split by time.",
                         hint="use method='random', or declare `timestamp:` in meta.dwml.")
    ts = table.column(spec.timestamp)
    if ts.null_count:
        raise InputError(f"{ts.null_count} training rows have a NULL {spec.timestamp!r}.",
                         hint="add a not_null test on the timestamp column of the feature model and fix the rows.")
    counts = pc.value_counts(ts).to_pylist()
    counts.sort(key=lambda d: d["values"])
    if len(counts) < 2:
        raise InputError(f"All training rows share one {spec.timestamp!r} ({counts[0]['values']}), so a time "
                         "split has nothing to hold out.", hint="use method='random'.")
    target, held, cut_index = fraction * table.num_rows, 0, len(counts)
    # Walk back from the latest snapshot until the holdout holds about `fraction` of the rows,
    # always leaving at least one snapshot to train on.
    while cut_index > 1 and held < target:
        cut_index -= 1
        held += counts[cut_index]["counts"]
    cut = counts[cut_index]["values"]
    train_mask = pc.less(ts, pa.scalar(cut, type=ts.type))
    if gap_days:
        import datetime as dt

        train_mask = pc.and_(train_mask, pc.less(ts, pa.scalar(cut - dt.timedelta(days=int(gap_days)), type=ts.type)))
    train = table.filter(train_mask)
    holdout = table.filter(pc.greater_equal(ts, pa.scalar(cut, type=ts.type)))
    if not train.num_rows:
        raise InputError(f"No training rows are left before {cut} with gap_days={gap_days}.",
                         hint="lower gap_days or holdout_fraction.")
    snapshots = [c["values"] for c in counts]
    info = {"method": "time", "cut": _iso(cut), "gap_days": gap_days,
            "train_snapshots": [_iso(snapshots[0]), _iso(pc.max(train.column(spec.timestamp)).as_py())],
            "holdout_snapshots": [_iso(cut), _iso(snapshots[-1])],
            "holdout_fraction": round(holdout.num_rows / table.num_rows, 4)}
    return train, holdout, info


def _random_split(table, spec, fraction, seed):
    from sklearn.model_selection import train_test_split

    index = np.arange(table.num_rows)
    stratify, note = None, None
    if spec.task == "classification":
        labels = _class_codes(table.column(spec.label_column))
        counts = np.bincount(labels)
        if counts.min() >= 2:
            stratify = labels
        else:
            note = "not stratified: a class has fewer than 2 rows"
    train_idx, hold_idx = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    # Sorted indices keep the original row order on each side (deterministic and readable).
    train, holdout = table.take(np.sort(train_idx)), table.take(np.sort(hold_idx))
    info = {"method": "random", "seed": seed, "stratified": stratify is not None,
            "holdout_fraction": round(holdout.num_rows / table.num_rows, 4)}
    if note:
        info["note"] = note
    return train, holdout, info


def _class_codes(column) -> np.ndarray:
    """Each row's class as a code numbered in the sorted order of the classes' text (str() of the
    value, NULL as 'None'): stratifying by these codes draws the same split as stratifying by the
    text itself, without a Python object per row (320k rows: 0.6 s -> 0.02 s)."""
    distinct = pc.unique(column)
    texts = [str(v) for v in distinct.to_pylist()]
    rank = np.empty(len(texts), dtype=np.int64)
    rank[sorted(range(len(texts)), key=texts.__getitem__)] = np.arange(len(texts))
    index = pc.index_in(column, value_set=distinct, skip_nulls=False)
    return rank[index.to_numpy(zero_copy_only=False).astype(np.int64)]


def _iso(value) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (None if value is None else str(value))
