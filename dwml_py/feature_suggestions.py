"""Feature suggestions: which columns of the dbt catalog could predict a target, and which must not.

Candidates come from every model, source, seed and snapshot that can be joined to the target on
its entity key: a column of the same name and a compatible type, a `relationships` test to a
column of that name, or a join declared in the node's meta (`meta: dwml: join_keys: {customer_id:
cust_id}`). Each candidate node gets a join plan (see `JoinPlan`): on entity + timestamp for
snapshot-grain tables, point-in-time "latest row before the snapshot" for tables with an event
time, on the entity alone for one-row-per-entity tables without one.

Relevance is measured on a deterministic sample drawn inside the warehouse: the target's rows are
ordered by md5(entity | timestamp | seed) and the first `sample_size` kept; every candidate node
is joined to that sample in SQL, and only the joined sample comes back as Arrow. Per column:
out-of-fold binned AUC (classification) or correlation (regression), sklearn mutual information,
null rate, distinct count, tests and freshness, plus flags that exclude it:

- LEAKAGE: derived from the target or another declared label (column lineage); the target is
  computed from it; a label model's column; a near-perfect univariate score; values (or a row
  state) dated after the snapshot.
- ID_LIKE, PII (catalog meta/tags, lineage propagation, column-name patterns), CONSTANT,
  REDUNDANT (|Spearman| > 0.95 with a stronger kept candidate), DATETIME, UNSUPPORTED_TYPE.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError, NotFoundError, WarehouseError
from dwml_py.feature_relevance import _ranks, arrow_to_values, relevance, spearman
from dwml_py.pii import name_pii
from dwml_py.profiling import classify
from dwml_py.defaults import SUGGESTION_SAMPLE_SIZE

DEFAULT_SAMPLE_SIZE = SUGGESTION_SAMPLE_SIZE
LEAKAGE_SCORE = 0.95  # univariate AUC (or |correlation|) above which a column "knows" the answer
REDUNDANT_CORR = 0.95
ID_DISTINCT_RATIO = 0.98

_KEY_NAME = re.compile(r"(^id$|_id$|_key$|_uuid$|^uuid$)")


def pii_name_match(name: str) -> bool:
    """Does a column name look like a direct identifier (email, phone, birth date, ...)? The
    governance gate's name rules (dwml_py.pii), so both call the same columns PII.

    >>> pii_name_match("email"), pii_name_match("billing_tickets_90d"), pii_name_match("email_domain")
    (True, False, False)
    """
    return name_pii(name) is not None


# -- what is asked ------------------------------------------------------------------------------

@dataclass
class TargetSpec:
    """The target column and the grain everything is joined onto."""

    node_id: str
    column: str
    entity: str
    timestamp: str | None
    task: str | None  # classification / regression; None: decided from the data
    labels: list[tuple[str, str]] = field(default_factory=list)  # every declared label (node, column)
    spec_from: str = ""  # where entity/timestamp came from


def split_column_ref(ref: str, what: str = "target") -> tuple[str, str]:
    model, _, column = str(ref).strip().rpartition(".")
    if not model or not column:
        raise InputError(f"The {what} {ref!r} is not MODEL.COLUMN.",
                         hint="name the column with its model, e.g. `customer_labels.churned_30d`.")
    return model, column


def dwml_specs(catalog) -> list[tuple[str, dict]]:
    """(node_id, meta.dwml) of every node that declares an ML spec."""
    out = []
    for uid in catalog.unique_ids(["model", "seed", "snapshot"]):
        spec = catalog.meta(uid).get("dwml")
        if isinstance(spec, dict):
            out.append((uid, spec))
    return out


def declared_labels(catalog) -> list[tuple[str, str, dict, str]]:
    """(label node_id, column, model spec, feature node_id) of every label in a meta.dwml spec."""
    out = []
    for feature_id, spec in dwml_specs(catalog):
        for model in (spec.get("models") or {}).values():
            label = (model or {}).get("label") or {}
            if isinstance(label, str):  # `label: column`: a column of the feature model itself
                label = {"column": label}
            if not isinstance(label, dict) or not label.get("column"):
                continue
            try:
                label_id = catalog.resolve(str(label.get("model"))) if label.get("model") else feature_id
            except NotFoundError:
                continue
            out.append((label_id, str(label["column"]), model, feature_id))
    return out


def resolve_target(catalog, target: str, entity: str | None = None, timestamp: str | None = None) -> TargetSpec:
    """The target's node and column, with entity/timestamp from the arguments, the target model's
    meta.dwml, or the spec of a feature model that names this target as its label."""
    model, column = split_column_ref(target)
    node = catalog.require_built(catalog.show(model))
    column = node.column(column).name
    labels = declared_labels(catalog)
    task, spec_from = None, "arguments"
    own = node.meta.get("dwml") if isinstance(node.meta.get("dwml"), dict) else {}
    feature_spec = next(((spec, fid) for lid, col, spec, fid in labels
                         if lid == node.unique_id and col.lower() == column.lower()), None)
    if feature_spec is not None:
        task = feature_spec[0].get("task")
    specs = dict(dwml_specs(catalog))
    source = own if own.get("entity") else specs.get(feature_spec[1], {}) if feature_spec else {}
    if entity is None or timestamp is None:
        spec_from = (f"meta.dwml of {node.display_name}" if own.get("entity") else
                     f"meta.dwml of {catalog.node(feature_spec[1]).display_name}" if feature_spec else "arguments")
    entity = entity or source.get("entity")
    if not entity:
        raise InputError(f"No entity key for the target {target!r}: pass one, or declare it in a feature model's "
                         "meta.dwml (entity, timestamp, models.<name>.label).",
                         hint="e.g. `--entity customer_id`; the key must be a column of the target's model.")
    if timestamp is None:
        timestamp = source.get("timestamp")
    node.column(entity)  # NotFoundError names the columns it has
    if timestamp:
        timestamp = node.column(timestamp).name
    all_labels = list(dict.fromkeys([(node.unique_id, column), *((lid, col) for lid, col, _, _ in labels)]))
    return TargetSpec(node.unique_id, column, node.column(entity).name, timestamp, task, all_labels, spec_from)


# -- which nodes join, and how -----------------------------------------------------------------

@dataclass
class JoinPlan:
    """How one node is joined onto the target's grain.

    kind: "snapshot" (equal entity + timestamp), "as_of" (latest row with time < the target's
    timestamp), "entity" (entity only; one row per entity), or None when it cannot be joined.
    """

    node_id: str
    name: str
    entity_column: str
    found_by: str  # "same key name", "relationships test", "meta join_keys"
    time_column: str | None = None
    kind: str | None = None
    rows: int | None = None
    entities: int | None = None
    latest: str | None = None
    skipped: str | None = None

    def to_dict(self) -> dict:
        return {"node": self.node_id, "name": self.name, "join": self.kind, "entity_column": self.entity_column,
                "time_column": self.time_column, "found_by": self.found_by, "rows": self.rows,
                "entities": self.entities, "latest": self.latest, "skipped": self.skipped}


def type_family(data_type: str | None) -> str | None:
    if not data_type:
        return None
    t = data_type.upper()
    if any(k in t for k in ("TIMESTAMP", "DATE", "TIME")):
        return "temporal"
    if any(k in t for k in ("CHAR", "TEXT", "STRING", "UUID")):
        return "string"
    if any(k in t for k in ("INT", "DECIMAL", "NUMERIC", "NUMBER")):
        return "integer"
    if any(k in t for k in ("FLOAT", "DOUBLE", "REAL")):
        return "float"
    if "BOOL" in t:
        return "boolean"
    return "other"


def _compatible(a: str | None, b: str | None) -> bool:
    fa, fb = type_family(a), type_family(b)
    return fa is None or fb is None or fa == fb


def _is_temporal(col) -> bool:
    if col.type:
        return type_family(col.type) == "temporal"
    return bool(re.search(r"(_at|_date|_time|_ts|^date)$", col.name.lower()))


def event_time_column(node, spec: TargetSpec) -> str | None:
    """The column that dates a node's rows: meta.dwml.timestamp, else a date/time column, those
    with a not_null test first (an event time is always set; `cancelled_at` is not), PII-like
    names (birth dates) never."""
    declared = (node.meta.get("dwml") or {}).get("timestamp") if isinstance(node.meta.get("dwml"), dict) else None
    if declared and declared in node.columns:
        return declared
    temporal = [c for c in node.columns.values() if _is_temporal(c) and not pii_name_match(c.name)]
    temporal.sort(key=lambda c: (not any(t.test_name == "not_null" for t in c.tests),
                                 not c.name.lower().endswith("_at")))
    return temporal[0].name if temporal else None


def _manifest_test(catalog, test_uid: str) -> dict:
    # TestRef keeps no arguments; the relationships target is in the raw test node. Catalog has
    # no public accessor for test nodes, so read its parsed manifest dict (no second JSON parse).
    return (getattr(catalog, "_manifest_nodes", {}) or {}).get(test_uid) or {}


def _relationship_key(catalog, node, spec: TargetSpec) -> str | None:
    """A column of `node` with a relationships test pointing at a column named like the entity."""
    for test in node.tests:
        if test.test_name != "relationships" or not test.column:
            continue
        kwargs = (_manifest_test(catalog, test.unique_id).get("test_metadata") or {}).get("kwargs") or {}
        if str(kwargs.get("field") or "").strip('"').lower() == spec.entity.lower():
            return test.column.strip('"')
    return None


def find_joinable(catalog, spec: TargetSpec) -> list[JoinPlan]:
    """Every catalog node (the target's included) that can be joined on the entity key.
    Static: from names, types, tests and meta only; `measure_grain` decides the join kind."""
    target = catalog.node(spec.node_id)
    key_type = target.column(spec.entity).type
    plans = []
    for node in catalog.nodes():
        if node.relation is None:
            continue  # ephemeral: no table to read
        declared = ((node.meta.get("dwml") or {}).get("join_keys") or {}) if isinstance(node.meta.get("dwml"), dict) else {}
        lowered = {c.lower(): c for c in node.columns}
        column, found_by = None, ""
        if spec.entity.lower() in lowered and _compatible(node.columns[lowered[spec.entity.lower()]].type, key_type):
            column, found_by = lowered[spec.entity.lower()], "same key name"
        elif isinstance(declared, dict) and declared.get(spec.entity) in node.columns:
            column, found_by = declared[spec.entity], "meta join_keys"
        else:
            related = _relationship_key(catalog, node, spec)
            if related and related.lower() in lowered:
                column, found_by = lowered[related.lower()], "relationships test"
        if column is None:
            continue
        plan = JoinPlan(node.unique_id, node.display_name, column, found_by)
        if spec.timestamp and spec.timestamp.lower() in lowered and _compatible(
                node.columns[lowered[spec.timestamp.lower()]].type, target.column(spec.timestamp).type):
            plan.time_column, plan.kind = lowered[spec.timestamp.lower()], "snapshot"
        else:
            plan.time_column = event_time_column(node, spec) if spec.timestamp else None
        plans.append(plan)
    return plans


def relation_of(node) -> exp.Table:
    return sqlmod.table(node.schema, node.alias, database=node.database)


def measure_grain(warehouse, catalog, plan: JoinPlan, spec: TargetSpec) -> JoinPlan:
    """Rows, distinct entities and latest time of the node, in the warehouse; sets plan.kind."""
    node = catalog.node(plan.node_id)
    rel = relation_of(node).as_("c")
    key = sqlmod.column(plan.entity_column, "c")
    selects = [exp.Count(this=exp.Star()).as_("n_rows"),
               exp.Count(this=exp.Distinct(expressions=[key])).as_("n_entities")]
    if plan.time_column:
        selects.append(exp.Max(this=sqlmod.column(plan.time_column, "c")).as_("latest"))
    try:
        row = warehouse.fetch_rows(exp.select(*selects).from_(rel))[0]
    except WarehouseError as exc:
        plan.skipped = (f"could not be read from the warehouse ({str(exc.message).splitlines()[0][:200]}); "
                        "build it with `dbt build`.")
        return plan
    plan.rows, plan.entities = int(row["n_rows"] or 0), int(row["n_entities"] or 0)
    plan.latest = None if row.get("latest") is None else str(row["latest"])
    if plan.kind == "snapshot":
        pair = [sqlmod.column(plan.entity_column), sqlmod.column(plan.time_column)]
        dup = exp.select(*pair).from_(relation_of(node)).group_by(*pair).having(
            exp.Count(this=exp.Star()) > exp.Literal.number(1)).limit(1)
        if warehouse.fetch_rows(dup):
            plan.kind, plan.skipped = None, (f"several rows per {plan.entity_column} and {plan.time_column}: "
                                             "aggregate it to that grain in a model first.")
    elif plan.time_column and spec.timestamp:
        plan.kind = "as_of"
    elif plan.rows == plan.entities:
        plan.kind = "entity"
    else:
        plan.skipped = (f"several rows per {plan.entity_column} and no time column to pick the one valid at the "
                        "target's time: aggregate it in a model first.")
    return plan


# -- SQL of the sample ----------------------------------------------------------------------------

_E, _T, _Y, _RN = "__dwml_entity", "__dwml_time", "__dwml_target", "__dwml_rn"


def sample_base(catalog, spec: TargetSpec, sample_size: int, seed: int) -> exp.Select:
    """The target's rows with a known label, ordered by a hash of their key: deterministic and
    portable (md5 exists on every engine we target), so the same seed gives the same sample."""
    node = catalog.node(spec.node_id)
    keys = [spec.entity] + ([spec.timestamp] if spec.timestamp else [])
    text = exp.DataType.build("text")
    parts: list[exp.Expression] = []
    for k in keys:
        parts += [exp.Coalesce(this=exp.Cast(this=sqlmod.column(k, "t"), to=text),
                               expressions=[exp.Literal.string("")]), exp.Literal.string("|")]
    parts.append(exp.Literal.string(str(seed)))
    order = exp.MD5(this=exp.Concat(expressions=parts))
    selects = [sqlmod.column(spec.entity, "t").as_(_E)]
    if spec.timestamp:
        selects.append(sqlmod.column(spec.timestamp, "t").as_(_T))
    selects.append(sqlmod.column(spec.column, "t").as_(_Y))
    return (exp.select(*selects).from_(relation_of(node).as_("t"))
            .where(exp.Not(this=exp.Is(this=sqlmod.column(spec.column, "t"), expression=exp.Null())))
            .order_by(order).limit(sample_size))


def sample_query(catalog, spec: TargetSpec, plan: JoinPlan, columns: list[str], temporal: list[str],
                 base: exp.Select) -> exp.Select:
    """The sample joined to one candidate node: key, target, `columns` as c_0.., and for each
    `temporal` column whether it lies after the target's time (f_0..). Rows in key order."""
    node = catalog.node(plan.node_id)
    b_e, b_t = sqlmod.column(_E, "b"), sqlmod.column(_T, "b") if spec.timestamp else None
    on = sqlmod.column(plan.entity_column, "c").eq(b_e)
    if plan.kind == "snapshot":
        on = on.and_(sqlmod.column(plan.time_column, "c").eq(b_t))
    elif plan.kind == "as_of":
        on = on.and_(sqlmod.column(plan.time_column, "c") < b_t)
    selects = [b_e] + ([b_t] if b_t is not None else []) + [sqlmod.column(_Y, "b")]
    selects += [sqlmod.column(c, "c").as_(f"c_{i}") for i, c in enumerate(columns)]
    selects += [exp.GT(this=sqlmod.column(c, "c"), expression=b_t).as_(f"f_{i}")
                for i, c in enumerate(temporal) if b_t is not None]
    order_keys = [sqlmod.column(_E), *([sqlmod.column(_T)] if b_t is not None else [])]
    if plan.kind == "as_of":
        rank = exp.Window(this=exp.RowNumber(), partition_by=[b_e, b_t],
                          order=exp.Order(expressions=[exp.Ordered(this=sqlmod.column(plan.time_column, "c"),
                                                                   desc=True)]))
        inner = (exp.select(*selects, rank.as_(_RN)).from_(_base_ref())
                 .join(relation_of(node).as_("c"), on=on, join_type="left"))
        query = (exp.select(exp.Star()).from_(inner.subquery("j"))
                 .where(sqlmod.column(_RN).eq(exp.Literal.number(1))))
    else:
        query = (exp.select(*selects)
                 .from_(_base_ref())
                 .join(relation_of(node).as_("c"), on=on, join_type="left"))
    return query.with_("base", as_=base).order_by(*order_keys)


def _base_ref() -> exp.Table:
    return exp.Table(this=sqlmod.ident("base"), alias=exp.TableAlias(this=sqlmod.ident("b")))


# -- the kind of a column ------------------------------------------------------------------------

def column_kind(data_type: str | None, dialect: str) -> str:
    """numeric, boolean, categorical, temporal or other (unknown types count as categorical)."""
    spec = classify("column", data_type, dialect) if data_type else None
    if spec is None:
        return "temporal" if type_family(data_type) == "temporal" else "categorical"
    if spec.kind == "numeric":
        return "numeric"
    if spec.is_bool:
        return "boolean"
    if spec.kind in ("string", "categorical"):
        return "categorical"
    return spec.kind  # temporal / other


# -- static checks: lineage, labels, PII ------------------------------------------------------------

def _label(catalog, node_id: str, column: str) -> str:
    return f"{catalog.node(node_id).display_name}.{column}" if node_id in catalog else f"{node_id}.{column}"


def lineage_scope(catalog, spec: TargetSpec, plans) -> set[str]:
    """The nodes whose lineage the leakage and PII checks read: the target, the candidate nodes
    and all their ancestors."""
    return catalog.ancestors([spec.node_id, *(p.node_id for p in plans)])


def lineage_leakage(catalog, spec: TargetSpec, within=None) -> tuple[dict, dict, dict]:
    """(derived, ancestors, unavailable): columns computed from the target or another declared
    label; columns the target is computed from (walks through the entity/timestamp columns are
    left out: every table shares those); nodes whose lineage is unknown, with the reason.
    `within` (node ids) limits the walk from the labels to those nodes (see `lineage_scope`)."""
    from dwml_py.lineage import column_lineage, downstream

    derived: dict[tuple[str, str], str] = {}
    unavailable: dict[str, str] = {}
    for label_id, label_col in spec.labels:
        try:
            down = downstream(catalog, label_id, label_col, within=within)
        except NotFoundError:
            continue
        unavailable.update(down.unavailable)
        for step in down.steps:
            chain = " -> ".join(_label(catalog, r.node_id, r.column) for r in down.path(step.ref))
            derived.setdefault((step.ref.node_id, step.ref.column.lower()),
                               f"derived from the label {_label(catalog, label_id, label_col)} through column "
                               f"lineage ({chain})")
    keys = {spec.entity.lower(), (spec.timestamp or "").lower()}
    ancestors: dict[tuple[str, str], str] = {}
    up = column_lineage(catalog, spec.node_id, spec.column)
    unavailable.update(up.unavailable)
    for step in up.steps:
        path = up.path(step.ref)
        if any(r.column.lower() in keys for r in path[1:]):
            continue
        chain = " <- ".join(_label(catalog, r.node_id, r.column) for r in path)
        ancestors[(step.ref.node_id, step.ref.column.lower())] = (
            f"the target {_label(catalog, spec.node_id, spec.column)} is computed from it (column lineage: {chain})")
    return derived, ancestors, unavailable


def label_models(catalog, spec: TargetSpec) -> set[str]:
    """Nodes that hold labels and no features: the target's node and every meta.dwml label model,
    unless the node declares its own feature spec (labels kept next to features)."""
    feature_nodes = {uid for uid, s in dwml_specs(catalog) if s.get("entity")}
    return {uid for uid, _ in spec.labels if uid not in feature_nodes}


def pii_reasons(catalog, nodes=None) -> dict[tuple[str, str], str]:
    """PII columns from catalog meta/tags and from lineage propagation, with the reason; with
    `nodes`, only theirs are complete (only their ancestors' lineage is parsed)."""
    from dwml_py.lineage import propagate_tags

    out = {}
    for (uid, col), origin in propagate_tags(catalog, "pii", within=nodes).items():
        if origin == (uid, col):
            evidence = catalog.node(uid).column(col).pii_evidence
            out[(uid, col.lower())] = ("marked PII in the catalog (meta/tags)" if any(
                e.startswith(("meta", "tag")) for e in evidence) else f"PII by its {'; '.join(evidence)}")
        else:
            out[(uid, col.lower())] = f"derived from the PII column {_label(catalog, *origin)} (column lineage)"
    return out


# -- the suggestion ---------------------------------------------------------------------------------

@dataclass
class _Column:
    plan: JoinPlan
    node: object
    name: str
    kind: str
    values: np.ndarray | None = None
    codes: np.ndarray | None = None
    stats: dict = field(default_factory=dict)
    flags: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def flag(self, name: str, reason: str) -> None:
        self.flags.append({"flag": name, "reason": reason})

    @property
    def ref(self) -> str:
        return f"{self.node.display_name}.{self.name}"


_PREFERENCE = {"model": 0, "snapshot": 1, "seed": 2, "source": 3}


def suggest(catalog, warehouse, target: str, entity: str | None = None, timestamp: str | None = None,
            sample_size: int = DEFAULT_SAMPLE_SIZE, seed: int = 0, limit: int = 50) -> dict:
    """Rank the catalog's columns as features of `target` (MODEL.COLUMN); see the module doc."""
    started = time.perf_counter()
    if sample_size < 50:
        raise InputError(f"sample_size must be at least 50, got {sample_size}.", hint="e.g. --sample-size 20000.")
    spec = resolve_target(catalog, target, entity, timestamp)  # every argument checked before dbt may run
    dialect = warehouse.dialect
    joinable = find_joinable(catalog, spec)
    # Leakage and PII follow column lineage through the target's ancestors and the candidates'
    # (a label's derived columns reach a candidate only through its ancestors): compile only those.
    scope = lineage_scope(catalog, spec, joinable)
    catalog.ensure_compiled(scope)
    notes: list[str] = list(catalog.notes)
    plans = [measure_grain(warehouse, catalog, p, spec) for p in joinable]

    base = sample_base(catalog, spec, sample_size, seed)
    target_rel = relation_of(catalog.node(spec.node_id)).as_("t")
    not_null = exp.Not(this=exp.Is(this=sqlmod.column(spec.column, "t"), expression=exp.Null()))
    population = warehouse.fetch_scalar(exp.select(exp.Count(this=exp.Star())).from_(target_rel).where(not_null))
    if not population:
        raise InputError(f"{target} has no non-null values in the warehouse.",
                         hint="build the target's model (`dbt build`), and check that its labels have matured.")

    derived, ancestors, unavailable = lineage_leakage(catalog, spec, within=scope)
    if unavailable:
        notes.append("column lineage is unknown for " + ", ".join(sorted(unavailable)) + ": leakage through "
                     "those models cannot be checked (`dbt compile --select` them to see why).")
    pii = pii_reasons(catalog, {p.node_id for p in plans})  # only the joinable nodes' columns are flagged
    labels_only = label_models(catalog, spec)
    label_cols = {(uid, col.lower()) for uid, col in spec.labels}

    columns: list[_Column] = []
    y: np.ndarray | None = None
    for plan in plans:
        if plan.skipped or plan.kind is None:
            continue
        node = catalog.node(plan.node_id)
        keys = {plan.entity_column.lower(), spec.entity.lower()}
        if plan.kind == "snapshot":
            keys.add(plan.time_column.lower())
        names = [c for c in node.columns if c.lower() not in keys
                 and not (plan.node_id == spec.node_id and c.lower() == spec.column.lower())]
        if not names:
            continue
        types = {c: node.columns[c].type for c in names}
        if any(t is None for t in types.values()):
            # No type in the catalog (catalog.json missing, stale or without this source): ask the
            # warehouse, or a date column would pass as a category and escape the timing checks.
            found = {n.lower(): t for n, t in warehouse.columns(node.schema, node.alias)}
            types = {c: t if t is not None else found.get(c.lower()) for c, t in types.items()}
        kinds = {c: column_kind(types[c], dialect) for c in names}
        temporal = [c for c in names if kinds[c] == "temporal"]
        data = warehouse.fetch_arrow(sample_query(catalog, spec, plan, names, temporal, base))
        if y is None:
            y = _target_values(data.column(_Y))
        future = {c: _share(data.column(f"f_{i}")) for i, c in enumerate(temporal) if f"f_{i}" in data.column_names}
        # A row joined on the entity whose dates lie after the snapshot was written (or updated) later.
        late = [(c, s) for c, s in future.items() if s > 0] if plan.kind in ("as_of", "entity") else []
        for i, name in enumerate(names):
            col = _Column(plan, node, name, kinds[name])
            raw = data.column(f"c_{i}")
            col.stats = {"null_rate": round(raw.null_count / max(len(raw), 1), 4),
                         "distinct": len(set(v for v in raw.to_pylist() if v is not None))}
            if kinds[name] in ("numeric", "boolean", "categorical"):
                col.values, col.codes = arrow_to_values(raw, kinds[name])
            _static_flags(col, spec, derived, ancestors, pii, labels_only, label_cols, future.get(name), late)
            columns.append(col)

    task = spec.task or _infer_task(y)
    if y is not None and task == "classification" and len(np.unique(y)) < 2:
        raise InputError(f"{target} has a single value in the sample: nothing to predict.",
                         hint="check the target column, or pass a larger --sample-size.")
    _data_flags(columns, y, task, seed)
    ranked, excluded = _rank(columns)
    n = 0 if y is None else len(y)
    candidates = [_column_dict(c, n, rank=i + 1) for i, c in enumerate(ranked)]
    return {
        "target": {"model": catalog.node(spec.node_id).display_name, "node": spec.node_id, "column": spec.column,
                   "task": task, **_target_summary(y, task)},
        "entity": spec.entity, "timestamp": spec.timestamp, "spec_from": spec.spec_from,
        "sample": {"rows": n, "requested": sample_size, "population": int(population), "seed": seed,
                   "method": f"the target's rows with a non-null {spec.column}, ordered by md5(entity|timestamp|seed), "
                             f"first {sample_size:,} (deterministic, drawn in the warehouse)"},
        "joined": [p.to_dict() for p in plans],
        "candidates": candidates[:limit] if limit and limit > 0 else candidates,
        "candidates_total": len(candidates),
        "excluded": [_column_dict(c, n) for c in excluded],
        "flag_counts": _flag_counts(excluded),
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _share(array) -> float:
    values = [v for v in array.to_pylist() if v is not None]
    return sum(values) / len(array) if len(array) else 0.0


def _target_values(array) -> np.ndarray:
    values = array.to_pylist()
    if all(isinstance(v, (bool, int, float)) for v in values):
        return np.array([float(v) for v in values])
    order = {v: i for i, v in enumerate(sorted(set(map(str, values))))}
    return np.array([float(order[str(v)]) for v in values])


def _infer_task(y: np.ndarray | None) -> str:
    if y is None:
        return "classification"
    distinct = np.unique(y)
    return "classification" if len(distinct) <= 2 or (len(distinct) <= 10 and np.all(distinct == np.round(distinct))) \
        else "regression"


def _target_summary(y: np.ndarray | None, task: str) -> dict:
    if y is None or not len(y):
        return {}
    if task == "classification" and len(np.unique(y)) == 2:
        return {"positive_rate": round(float((y == y.max()).mean()), 4)}
    return {"mean": round(float(y.mean()), 4), "std": round(float(y.std()), 4)}


def _static_flags(col: _Column, spec, derived, ancestors, pii, labels_only, label_cols, future_share, late) -> None:
    key = (col.node.unique_id, col.name.lower())
    meta_col = col.node.columns[col.name]
    if key in label_cols:
        col.flag("LEAKAGE", "it is a label declared in meta.dwml")
    elif col.node.unique_id in labels_only:
        col.flag("LEAKAGE", f"{col.node.display_name} holds labels (the target's model or a meta.dwml label model): "
                            "its values are known only after the label time")
    if "dwml_scoring" in (col.node.tags or []):
        col.flag("LEAKAGE", f"{col.node.display_name} holds a deployed ML model's scores (tag dwml_scoring): a "
                            "model trained on them learns from models fitted to the labels")
    if key in derived:
        col.flag("LEAKAGE", derived[key])
    if key in ancestors:
        col.flag("LEAKAGE", ancestors[key])
    if future_share:
        col.flag("LEAKAGE", f"{future_share:.1%} of its values lie after the target's {spec.timestamp}")
    if late and col.kind != "temporal":
        which = ", ".join(f"{c} ({s:.1%})" for c, s in late)
        col.flag("LEAKAGE", f"the joined {col.node.display_name} row has dates after {spec.timestamp} ({which}): "
                            "it was written or updated after the label time, so this value may be too")
    if key in pii:
        col.flag("PII", pii[key])
    elif pii_name_match(col.name):
        col.flag("PII", f"the column name {col.name!r} looks like a direct identifier")
    if any(t.test_name == "unique" for t in meta_col.tests):
        col.flag("ID_LIKE", f"it has a unique test in {col.node.display_name}")
    if col.kind == "temporal":
        col.flag("DATETIME", "a date/time is not a feature as such: derive an age or duration from it in a model")
    elif col.kind == "other":
        col.flag("UNSUPPORTED_TYPE", f"type {meta_col.type} is neither numeric, boolean nor categorical")


def _data_flags(columns: list[_Column], y, task: str, seed: int) -> None:
    n = 0 if y is None else len(y)
    for col in columns:
        distinct, nulls = col.stats["distinct"], col.stats["null_rate"]
        if col.codes is None:
            continue
        if distinct <= 1:
            col.flag("CONSTANT", "no values in the sample" if distinct == 0 else "a single value in the sample")
            continue
        non_null = n * (1 - nulls)
        integral = col.kind == "categorical" or type_family(col.node.columns[col.name].type) == "integer"
        if integral and non_null >= 50 and distinct >= ID_DISTINCT_RATIO * non_null and \
                not any(f["flag"] == "ID_LIKE" for f in col.flags):
            col.flag("ID_LIKE", f"{distinct:,} distinct values in {int(non_null):,} sampled rows")
        elif _KEY_NAME.search(col.name.lower()) and distinct > 50 and not any(f["flag"] == "ID_LIKE" for f in col.flags):
            col.flag("ID_LIKE", f"named like a key, with {distinct:,} distinct values in the sample")
        col.stats.update(relevance(col.codes, y, task, seed))
        strength = col.stats.get("auc") if col.stats.get("auc") is not None else col.stats.get("correlation")
        if strength is not None and strength > LEAKAGE_SCORE:
            col.flag("LEAKAGE", f"near-perfect univariate {'AUC' if col.stats.get('auc') is not None else 'correlation'} "
                                f"{strength:.3f} on the sample: it (nearly) knows the answer")
        if nulls > 0.5:
            col.warnings.append(f"{nulls:.0%} null in the sample")
        if not meta_col_tests(col):
            col.warnings.append("no dbt tests on this column")


def meta_col_tests(col: _Column) -> list[str]:
    return [t.name for t in col.node.columns[col.name].tests]


def _rank(columns: list[_Column]) -> tuple[list[_Column], list[_Column]]:
    """Scored, unflagged columns by score; each then flagged REDUNDANT when it follows a kept
    stronger one too closely (|Spearman| > 0.95 on the sample)."""
    def order(c: _Column):
        has_spec = isinstance(c.node.meta.get("dwml"), dict)
        return (-(c.stats.get("score") or 0.0), -(c.stats.get("mutual_info") or 0.0), not has_spec,
                _PREFERENCE.get(c.node.resource_type, 9), c.ref)

    pool = sorted((c for c in columns if not c.flags and "score" in c.stats), key=order)
    kept: list[tuple[_Column, np.ndarray]] = []
    for col in pool:
        ranks = _ranks(col.values)
        for stronger, stronger_ranks in kept:
            rho = spearman(ranks, stronger_ranks)
            if rho is not None and abs(rho) > REDUNDANT_CORR:
                col.flag("REDUNDANT", f"|Spearman| {abs(rho):.3f} with the stronger candidate {stronger.ref}")
                break
        else:
            kept.append((col, ranks))
    ranked = [c for c, _ in kept]
    excluded = sorted((c for c in columns if c.flags), key=order)
    return ranked, excluded


def _round(value):
    return None if value is None else round(float(value), 4)


def _column_dict(col: _Column, n: int, rank: int | None = None) -> dict:
    meta_col = col.node.columns[col.name]
    s = col.stats
    tests = meta_col_tests(col)
    reasons = []
    if s.get("auc") is not None:
        reasons.append(f"AUC {s['auc']:.3f} out of fold on {n:,} sampled rows")
    elif s.get("correlation") is not None:
        reasons.append(f"correlation {s['correlation']:.3f} out of fold on {n:,} sampled rows")
    if s.get("mutual_info") is not None:
        reasons.append(f"mutual information {s['mutual_info']:.4f} nats")
    reasons.append(f"{s['null_rate']:.0%} null, {s['distinct']:,} distinct")
    reasons.append(f"tested ({', '.join(t.test_name for t in meta_col.tests)})" if tests else "untested")
    plan = col.plan
    out = {
        "ref": col.ref, "model": col.node.display_name, "node": col.node.unique_id,
        "resource_type": col.node.resource_type, "column": col.name, "type": meta_col.type, "kind": col.kind,
        "description": meta_col.description, "join": plan.kind, "found_by": plan.found_by,
        "score": _round(s.get("score")), "auc": _round(s.get("auc")), "correlation": _round(s.get("correlation")),
        "mutual_info": _round(s.get("mutual_info")), "null_rate": s["null_rate"], "distinct": s["distinct"],
        "has_tests": bool(tests), "tests": tests,
        "freshness": {"time_column": plan.time_column, "latest": plan.latest},
        "flags": col.flags, "warnings": col.warnings,
        "reasons": [f"{f['flag']}: {f['reason']}" for f in col.flags] or reasons,
    }
    if rank is not None:
        out["rank"] = rank
    return out


def _flag_counts(excluded: list[_Column]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for col in excluded:
        for name in dict.fromkeys(f["flag"] for f in col.flags):
            counts[name] = counts.get(name, 0) + 1
    return counts
