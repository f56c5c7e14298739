"""Column-level lineage over the dbt DAG, from each model's compiled SQL with sqlglot.

For one model, sqlglot qualifies the compiled SQL against the columns of the model's parents
(catalog.json, the warehouse, or the parents' own parsed SQL, so `select *` expands) and walks
every output column through CTEs, joins, aliases and subqueries down to parent columns. Chaining
those per-model edges through the DAG gives the upstream closure of a column, its downstream
uses, and the spread of tags such as `pii` to every column derived from a tagged one.

Work is lazy and cached: asking about one column parses only that model's ancestors.

>>> from dwml_py.catalog import Catalog
>>> cat = Catalog.from_dicts(_example_manifest())
>>> [str(r) for r in column_lineage(cat, "b", "mail").direct]
['model.p.a.email']
>>> propagate_tags(cat)[("model.p.b", "mail")]
('model.p.a', 'email')
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from dwml_py.errors import NotFoundError, did_you_mean

# Resource types whose compiled SQL derives their columns from parents.
SQL_RESOURCE_TYPES = ("model", "snapshot")
_UNKNOWN_TYPE = "UNKNOWN"  # sqlglot needs column names only; real types may not parse in every dialect


@dataclass(frozen=True, slots=True, order=True)
class ColumnRef:
    """One column of one node. `node_id` is a unique_id, or `relation:<name>` for a table
    the manifest does not know (a hard-coded relation in the SQL)."""

    node_id: str
    column: str

    def __str__(self) -> str:
        return f"{self.node_id}.{self.column}"

    def to_dict(self) -> dict:
        return {"node": self.node_id, "column": self.column}


@dataclass
class ModelLineage:
    """Direct upstream columns of every output column of one node."""

    node_id: str
    columns: dict[str, list[ColumnRef]] = field(default_factory=dict)
    unavailable: str | None = None  # why lineage could not be computed, with the fix
    unresolved: dict[str, str] = field(default_factory=dict)  # column -> why part of it is unknown

    def upstream(self, column: str) -> list[ColumnRef] | None:
        found = self.columns.get(column)
        if found is None:
            lowered = column.lower()
            found = next((v for k, v in self.columns.items() if k.lower() == lowered), None)
        return found


@dataclass(slots=True)
class LineageStep:
    ref: ColumnRef
    depth: int  # 1 = direct parent (or child, downstream)
    via: ColumnRef  # the column one step nearer the asked-for column


@dataclass
class LineageResult:
    target: ColumnRef
    direction: str  # "upstream" or "downstream"
    direct: list[ColumnRef]
    steps: list[LineageStep]  # every related column once, nearest first
    unavailable: dict[str, str] = field(default_factory=dict)  # node -> reason its lineage is unknown
    unresolved: dict[str, str] = field(default_factory=dict)  # "node.column" -> what could not be traced

    @property
    def ancestors(self) -> list[LineageStep]:
        return self.steps if self.direction == "upstream" else []

    @property
    def descendants(self) -> list[LineageStep]:
        return self.steps if self.direction == "downstream" else []

    def path(self, ref: ColumnRef) -> list[ColumnRef]:
        """The chain of columns from the asked-for column to `ref` (both included)."""
        by_ref = {s.ref: s for s in self.steps}
        if ref not in by_ref:
            raise NotFoundError(f"{ref} is not {self.direction} of {self.target}.",
                                hint="look at the result's steps for the related columns.")
        chain = [ref]
        while chain[-1] != self.target:
            chain.append(by_ref[chain[-1]].via)
        return chain[::-1]

    def to_dict(self) -> dict:
        return {
            "node": self.target.node_id, "column": self.target.column, "direction": self.direction,
            "direct": [r.to_dict() for r in self.direct],
            "columns": [{**s.ref.to_dict(), "depth": s.depth, "path": [str(r) for r in self.path(s.ref)]}
                        for s in self.steps],
            "unavailable": dict(self.unavailable), "unresolved": dict(self.unresolved),
        }


class LineageGraph:
    """Per-model column lineage of one catalog, computed on first use and cached."""

    def __init__(self, catalog):
        self.catalog = catalog
        self._models: dict[str, ModelLineage] = {}
        self._reverse: dict[str, dict[tuple[str, str], list[str]]] = {}
        self._relations: dict[tuple, list[str]] | None = None

    # -- one model -------------------------------------------------------------------------
    def model(self, node_id: str) -> ModelLineage:
        """Lineage of every output column of a node (parsing its ancestors first as needed)."""
        if node_id not in self._models:
            # Parents whose columns are only known from their SQL must be parsed first; walk
            # iteratively so a 5,000-deep chain cannot hit Python's recursion limit.
            stack = [(node_id, False)]
            while stack:
                uid, ready = stack.pop()
                if uid in self._models:
                    continue
                if ready:
                    self._models[uid] = self._compute(uid)
                    continue
                stack.append((uid, True))
                for parent in self.catalog.parents(uid):
                    if parent not in self._models and self._needs_sql_columns(parent):
                        stack.append((parent, False))
        return self._models[node_id]

    def output_columns(self, node_id: str) -> list[str]:
        """The columns a node has: from the warehouse's view when known, else from its SQL, else yml."""
        node = self.catalog.node(node_id)
        if node.column_source in ("catalog", "warehouse") or node.resource_type not in SQL_RESOURCE_TYPES:
            return list(node.columns)
        parsed = self.model(node_id)
        if parsed.unavailable is None and parsed.columns and "*" not in parsed.columns:
            return list(parsed.columns)
        return list(node.columns)

    def children_of(self, ref: ColumnRef, within: set[str] | None = None) -> list[ColumnRef]:
        """Columns of child nodes computed directly from `ref` (only children in `within` when
        given: the others are not parsed)."""
        if ref.node_id not in self.catalog:
            return []
        out = []
        key = (ref.node_id, ref.column.lower())
        for child in self.catalog.children(ref.node_id):
            if within is not None and child not in within:
                continue
            reverse = self._reverse.get(child)
            if reverse is None:
                reverse = {}
                for column, ups in self.model(child).columns.items():
                    for up in ups:
                        reverse.setdefault((up.node_id, up.column.lower()), []).append(column)
                self._reverse[child] = reverse
            out.extend(ColumnRef(child, c) for c in reverse.get(key, []))
        return out

    # -- internals -------------------------------------------------------------------------
    def _needs_sql_columns(self, uid: str) -> bool:
        node = self.catalog.node(uid)
        return node.resource_type in SQL_RESOURCE_TYPES and node.column_source not in ("catalog", "warehouse")

    def _compute(self, uid: str) -> ModelLineage:
        node = self.catalog.node(uid)
        if node.resource_type not in SQL_RESOURCE_TYPES:
            return ModelLineage(uid)  # sources and seeds are where lineage starts
        if (self.catalog.raw(uid).get("language") or "sql") != "sql":
            return ModelLineage(uid, unavailable="lineage unavailable: a Python model has no SQL to parse.")
        if node.compiled_code is None:
            return ModelLineage(uid, unavailable="lineage unavailable: the manifest has no compiled SQL for "
                                "this node (run `dbt compile`).")
        try:
            return self._parse(uid, node.compiled_code)
        except Exception as exc:  # one bad model must not take the whole catalog down
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return ModelLineage(uid, unavailable=f"lineage unavailable: {type(exc).__name__}: {reason[:300]}")

    def _parse(self, uid: str, sql: str) -> ModelLineage:
        import sqlglot
        from sqlglot import exp

        dialect = self.catalog.dialect_of(uid)
        statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
        queries = [s for s in statements if isinstance(s, exp.Query)]
        if not queries:
            return ModelLineage(uid, unavailable="lineage unavailable: the compiled SQL holds no SELECT.")
        schema, parent_relations = self._schema(uid)
        roots, failed = _lineage_roots(queries[-1], sql, schema, dialect)

        node_columns = {c.lower(): c for c in self.catalog.node(uid).columns}
        result = ModelLineage(uid)
        lateral: dict[str, list[str]] = {}  # column -> names it read that no table has (maybe earlier aliases)
        for out_name, root in roots.items():
            name = node_columns.get(out_name.lower(), out_name)
            refs: dict[ColumnRef, None] = {}
            for leaf in root.walk():
                if leaf.downstream:
                    continue
                if isinstance(leaf.expression, exp.Table):
                    ref = self._leaf_ref(leaf, parent_relations, dialect)
                    if ref.column == "*":
                        result.unresolved[name] = (f"`select *` from {ref.node_id} could not be expanded: its "
                                                   "columns are unknown (build it, or document them in its yml).")
                    else:
                        refs[ref] = None
                elif isinstance(leaf.expression, exp.Placeholder):
                    lateral.setdefault(name, []).append(leaf.name)
            for unknown in _stand_ins(root):
                result.unresolved[name] = (f"column {unknown!r} could not be resolved (a parent's columns are "
                                           "unknown: build it, or document them in its yml).")
            result.columns[name] = list(refs)
        for name, reason in failed.items():
            result.columns[node_columns.get(name.lower(), name)] = []
            result.unresolved[node_columns.get(name.lower(), name)] = f"could not be traced: {reason}"
        _resolve_lateral_aliases(result, lateral)
        return result

    def _schema(self, uid: str) -> tuple[dict, dict[tuple, str]]:
        """The sqlglot schema of the model's parents, and their relation keys -> unique_id."""
        parents = []
        relations: dict[tuple, str] = {}
        for parent in self.catalog.parents(uid):
            node = self.catalog.node(parent)
            if node.alias and node.relation is not None:
                relations[((node.database or "").lower(), (node.schema or "").lower(), node.alias.lower())] = parent
                columns = self.output_columns(parent)
                if columns:  # sqlglot refuses a table with no columns; unknown ones are left out
                    parents.append((node, columns))
        # sqlglot wants every table at the same depth: use the parts all parents have.
        depth = 3 if all(n.database for n, _ in parents) else 2 if all(n.schema for n, _ in parents) else 1
        schema: dict = {}
        for node, columns in parents:
            parts = [p.lower() for p in (node.database, node.schema, node.alias)[3 - depth:]]
            level = schema
            for part in parts[:-1]:
                level = level.setdefault(part, {})
            level[parts[-1]] = {c: _UNKNOWN_TYPE for c in columns}
        return schema, relations

    def _leaf_ref(self, leaf, parent_relations: dict[tuple, str], dialect: str | None) -> ColumnRef:
        from sqlglot import exp

        table = leaf.expression
        key = (table.catalog.lower(), table.db.lower(), table.name.lower())
        uid = parent_relations.get(key) or self._match_relation(key, parent_relations)
        alias = table.alias_or_name
        column = leaf.name[len(alias) + 1:] if leaf.name.startswith(alias + ".") else leaf.name
        try:
            column = exp.to_column(column, dialect=dialect).name
        except Exception:
            column = column.strip('"`')
        if uid is None:
            return ColumnRef("relation:" + ".".join(p for p in key if p), column)
        known = {c.lower(): c for c in self.catalog.node(uid).columns}
        return ColumnRef(uid, known.get(column.lower(), column))

    def _match_relation(self, key: tuple, parent_relations: dict[tuple, str]) -> str | None:
        """A relation written with fewer parts than the manifest has (no database, or a bare
        name), or an ephemeral model's grandparent: match on the trailing parts, parents first."""
        everything = [(k, uid) for k, uids in self._relation_index().items() for uid in uids]
        for items in (list(parent_relations.items()), everything):
            found = {uid for k, uid in items if _suffix_match(k, key)}
            if len(found) == 1:
                return found.pop()
        return None

    def _relation_index(self) -> dict[tuple, list[str]]:
        if self._relations is None:
            index: dict[tuple, list[str]] = {}
            for uid in self.catalog.unique_ids():
                raw = self.catalog.raw(uid)
                name = raw.get("identifier") or raw.get("alias") or raw.get("name") or ""
                key = ((raw.get("database") or "").lower(), (raw.get("schema") or "").lower(), name.lower())
                index.setdefault(key, []).append(uid)
            self._relations = index
        return self._relations


def _suffix_match(known: tuple, written: tuple) -> bool:
    """Does a relation written as (catalog, db, name), some parts empty, name the known one?"""
    return all(not w or w == k for k, w in zip(known, written)) and known[2] == written[2]


_UNRESOLVABLE = "dwml_unresolvable"  # meta key of the NULL that stands in for a column sqlglot cannot resolve
_RESOLVE_ERROR = re.compile(r"'([^']+)'|Unknown column: (\S+)")
_MAX_STAND_INS = 25


def _lineage_roots(query, sql: str, schema: dict, dialect: str | None) -> tuple[dict, dict[str, str]]:
    """sqlglot lineage of every output column: {column: root node}, and {column: why it failed}.

    One column that cannot be resolved must not cost the others their lineage. When qualifying
    fails (e.g. a Snowflake lateral column alias next to a parent whose columns are unknown, which
    sqlglot cannot tell apart from a column of that parent), the SQL is qualified again without
    expanding alias references (such an alias is left as an untraced name for
    `_resolve_lateral_aliases`), and each column sqlglot still cannot resolve is replaced by a
    marked NULL, so only the output columns computed from it lose (that part of) their lineage.
    When building the lineage fails, each column is tried alone."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import OptimizeError
    from sqlglot.lineage import lineage
    from sqlglot.optimizer import build_scope
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.schema import ensure_schema

    schema = ensure_schema(schema, dialect=dialect)  # once, for qualify and lineage both
    options = {"dialect": dialect, "schema": schema, "validate_qualify_columns": False, "identify": False}
    try:
        qualified = qualify(query, **options)
    except OptimizeError:
        stand_ins: set[str] = set()
        while True:
            fresh = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None][-1]
            for column in list(fresh.find_all(exp.Column)):
                if column.name.lower() in stand_ins and not column.table:
                    null = exp.Null()
                    null.meta[_UNRESOLVABLE] = column.name
                    column.replace(null)
            try:
                qualified = qualify(fresh, expand_alias_refs=False, **options)
                break
            except OptimizeError as exc:
                match = _RESOLVE_ERROR.search(str(exc))
                name = (match.group(1) or match.group(2)).lower() if match else None
                if name is None or name in stand_ins or len(stand_ins) >= _MAX_STAND_INS:
                    raise
                stand_ins.add(name)
    scope = build_scope(qualified)
    # trim_selects=False: the trimmed copies of each SELECT cost two thirds of the time and we
    # only read the leaves.
    try:
        return lineage(None, qualified, schema=schema, dialect=dialect, scope=scope, copy=False,
                       trim_selects=False), {}
    except Exception:  # noqa: BLE001 - fall back to one column at a time
        pass
    roots, failed = {}, {}
    for select in scope.expression.selects:
        name = select.alias_or_name
        try:
            roots[name] = lineage(name, qualified, schema=schema, dialect=dialect, scope=scope, copy=False,
                                  trim_selects=False)
        except Exception as exc:  # noqa: BLE001 - this column only
            text = str(exc).strip()
            failed[name] = f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"
    return roots, failed


def _stand_ins(root) -> list[str]:
    """Names of unresolvable columns (replaced by a marked NULL) that a column's lineage went through."""
    from sqlglot import exp

    return [null.meta[_UNRESOLVABLE] for node in root.walk() for null in node.expression.find_all(exp.Null)
            if _UNRESOLVABLE in null.meta]


def _resolve_lateral_aliases(result: ModelLineage, untraced: dict[str, list[str]]) -> None:
    """A name no table has that is another output column of the model is a lateral column alias
    (`amount * 2 as dbl, dbl + 1 as dbl1`): it reads what that column reads. Other such names stay
    unresolved, on their column only."""
    by_name = {k.lower(): k for k in result.columns}
    changed = True
    while changed:  # an alias of an alias
        changed = False
        for column, names in untraced.items():
            for name in list(names):
                other = by_name.get(name.lower())
                if other is None or other == column or other in untraced:
                    continue
                known = result.columns[column]
                result.columns[column] = known + [r for r in result.columns[other] if r not in known]
                names.remove(name)
                changed = True
    for column, names in untraced.items():
        for name in names:
            result.unresolved[column] = (f"column {name!r} could not be traced to a table "
                                         "(ambiguous or unknown columns in a join).")


# -- the public functions ---------------------------------------------------------------------

def lineage_graph(catalog) -> LineageGraph:
    """The catalog's lineage graph (one per catalog, so its cache is shared)."""
    if catalog._lineage is None:
        catalog._lineage = LineageGraph(catalog)
    return catalog._lineage


def model_lineage(catalog, node: str) -> ModelLineage:
    """Direct upstream columns of every column of one model (unique_id or name)."""
    return lineage_graph(catalog).model(catalog.resolve(node))


def column_lineage(catalog, model: str, column: str) -> LineageResult:
    """Where a column comes from: its direct parent columns and every ancestor column with its
    depth and path, through the whole DAG.

    A model whose lineage cannot be computed (no compiled SQL, SQL sqlglot cannot read) is listed
    in `unavailable` with the reason; the walk goes on everywhere else.
    """
    graph = lineage_graph(catalog)
    target = _target(catalog, graph, model, column)
    unavailable: dict[str, str] = {}
    unresolved: dict[str, str] = {}
    direct = _upstream(graph, target, unavailable, unresolved)
    steps = _walk(target, direct, lambda ref: _upstream(graph, ref, unavailable, unresolved))
    return LineageResult(target, "upstream", direct, steps, unavailable, unresolved)


def downstream(catalog, node: str, column: str, within=None) -> LineageResult:
    """Every column computed from this one, in every descendant model, nearest first.

    `unavailable` names the children (of the node, and of every model the walk reached) whose
    lineage is unknown, e.g. not compiled: what they compute from the column is unknown, not
    none. `within` (node ids) walks only those descendants."""
    graph = lineage_graph(catalog)
    target = _target(catalog, graph, node, column)
    scope = set(within) if within is not None else None
    direct = graph.children_of(target, scope)
    steps = _walk(target, direct, lambda ref: graph.children_of(ref, scope))
    unavailable = {}
    reached = {target.node_id} | {s.ref.node_id for s in steps}
    for uid in {child for uid in reached for child in catalog.children(uid)}:
        if scope is not None and uid not in scope:
            continue
        reason = graph.model(uid).unavailable if uid in catalog else None
        if reason:
            unavailable[uid] = reason
    return LineageResult(target, "downstream", direct, steps, unavailable)


def propagate_tags(catalog, tag: str = "pii", within=None) -> dict[tuple[str, str], tuple[str, str]]:
    """Every column carrying `tag`, declared or derived: (node_id, column) -> the tagged
    (node_id, column) it derives from, nearest first; a declared column maps to itself.

    A column is tagged when it has the tag, or meta `<tag>: true` (for `pii` also
    `contains_pii`). Used by governance (PII) and for leakage checks (tag the target). For `pii`,
    a column whose name (or sampled values) says PII is tagged too, but after the declared ones
    have spread: a column derived from declared PII names that as its origin, even if its own
    name also looks like PII.

    `within` (node ids) limits the work to those nodes and their ancestors, the only nodes a
    tag can reach them through: their entries are the same as the whole catalog's (breadth first
    from the same origins in the same order, less branches that never reach them), and only
    their lineage is parsed, instead of every model's.
    """
    graph = lineage_graph(catalog)
    wanted = tag.lower()
    scope = catalog.ancestors(within) if within is not None else None
    origin: dict[tuple[str, str], tuple[str, str]] = {}
    columns = []
    for uid in catalog.unique_ids():
        if scope is not None and uid not in scope:
            continue  # not even built: building the catalog's every node costs more than the walk
        node = catalog.node(uid)
        columns.extend((node.unique_id, col) for col in node.columns.values())
    for declared in (True, False):
        queue: deque[ColumnRef] = deque()
        for uid, col in columns:
            key = (uid, col.name)
            if key not in origin and _has_tag(col, wanted, declared):
                origin[key] = key
                queue.append(ColumnRef(*key))
        while queue:  # breadth first from every tagged column at once: the nearest origin wins
            ref = queue.popleft()
            source = origin[(ref.node_id, ref.column)]
            for child in graph.children_of(ref, scope):
                key = (child.node_id, child.column)
                if key not in origin:
                    origin[key] = source
                    queue.append(child)
    return origin


# -- helpers ------------------------------------------------------------------------------------

def _target(catalog, graph: LineageGraph, model: str, column: str) -> ColumnRef:
    uid = catalog.resolve(model)
    node = catalog.node(uid)
    parsed = graph.model(uid)
    names = list(parsed.columns) + [c for c in node.columns if parsed.upstream(c) is None]
    lowered = {n.lower(): n for n in names}
    if column.lower() not in lowered:
        if parsed.unavailable and not node.columns:
            return ColumnRef(uid, column)  # nothing to check against; the result says why
        raise NotFoundError(f"{node.display_name} ({uid}) has no column {column!r}.",
                            hint=did_you_mean(column, names) if names else parsed.unavailable or
                            "no columns are known for it: run `dbt docs generate`.")
    return ColumnRef(uid, lowered[column.lower()])


def _upstream(graph: LineageGraph, ref: ColumnRef, unavailable: dict, unresolved: dict) -> list[ColumnRef]:
    if ref.node_id not in graph.catalog:
        return []
    parsed = graph.model(ref.node_id)
    if parsed.unavailable:
        unavailable[ref.node_id] = parsed.unavailable
        return []
    key = next((k for k in parsed.unresolved if k.lower() == ref.column.lower()), None)
    if key is not None:
        unresolved[str(ref)] = parsed.unresolved[key]
    return parsed.upstream(ref.column) or []


def _walk(target: ColumnRef, direct: list[ColumnRef], step) -> list[LineageStep]:
    seen = {target}
    steps: list[LineageStep] = []
    queue: deque[tuple[ColumnRef, int, ColumnRef]] = deque((r, 1, target) for r in direct)
    while queue:
        ref, depth, via = queue.popleft()
        if ref in seen:
            continue
        seen.add(ref)
        steps.append(LineageStep(ref, depth, via))
        queue.extend((nxt, depth + 1, ref) for nxt in step(ref) if nxt not in seen)
    return steps


def _has_tag(column, tag: str, declared: bool = True) -> bool:
    if tag == "pii":
        from dwml_py.catalog import is_pii

        return is_pii(column.meta, column.tags) if declared else column.pii
    value = column.meta.get(tag)
    return any(str(t).lower() == tag for t in column.tags) or (value is not None and value is not False
                                                                 and str(value).lower() not in ("false", "no", "0", ""))


def _example_manifest() -> dict:
    def model(name, sql, columns=(), deps=()):
        return {"unique_id": f"model.p.{name}", "name": name, "resource_type": "model", "package_name": "p",
                "database": "db", "schema": "main", "alias": name, "compiled_code": sql,
                "depends_on": {"nodes": list(deps)},
                "columns": {c: {"name": c, **({"meta": {"pii": True}} if c == "email" else {})} for c in columns}}

    return {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                         "adapter_type": "duckdb"},
            "nodes": {"model.p.a": model("a", "select 1 as id, 'x' as email", ["id", "email"]),
                      "model.p.b": model("b", 'select id, upper(email) as mail from "db"."main"."a"',
                                         deps=["model.p.a"])},
            "sources": {}}
