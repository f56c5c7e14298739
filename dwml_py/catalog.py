"""The dbt catalog: models, sources, seeds and snapshots with their columns, types, tests,
owners, PII flags and DAG edges, read from target/manifest.json, with the columns of each built
relation from target/catalog.json when it is current, else from the warehouse
(dwml_py.relation_columns).

The artifacts are read as JSON (never through dbt-core internals, whose classes change between
releases); `metadata.dbt_schema_version` says which layout we got. Node objects are built on
first use from the raw dicts, so loading a 5,000-model manifest costs little more than the
JSON parse.

>>> cat = Catalog.from_dicts(_EXAMPLE_MANIFEST)
>>> cat.show("orders").columns["email"].pii
True
>>> [(h.name, h.column, h.matched) for h in cat.search("email")]
[('orders', 'email', ['exact name'])]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dwml_py.dbt_artifacts import (SUPPORTED_CATALOG_VERSIONS, SUPPORTED_MANIFEST_VERSIONS, check_version,
                                   read_catalog_json, read_json)
from dwml_py.dbt_artifact_shapes import check_shape
from dwml_py.errors import DbtCommandError, DwmlError, InputError, NotFoundError, did_you_mean
from dwml_py.pii import DEFAULT_MIN_MATCH_SHARE, DEFAULT_SAMPLE_ROWS
from dwml_py.relation_columns import RelationColumns

# The resources that hold data; tests, operations, analyses etc. are not catalog entries.
CATALOG_RESOURCE_TYPES = ("model", "source", "seed", "snapshot")
PII_META_KEYS = ("pii", "contains_pii")

# Search ranking tiers: exact name > name contains > tags/meta > description.
SCORE_EXACT, SCORE_NAME, SCORE_TAG_META, SCORE_DESCRIPTION = 100, 80, 60, 40
_NODE_BONUS = 5  # at the same tier a table outranks one of its columns


# -- the light objects ----------------------------------------------------------------------

@dataclass(slots=True)
class TestRef:
    """A dbt test attached to a node (and maybe to one of its columns)."""

    unique_id: str
    name: str
    test_name: str  # the generic test (`not_null`, `unique`, ...) or "singular"
    column: str | None = None
    severity: str | None = None

    def to_dict(self) -> dict:
        return {"unique_id": self.unique_id, "name": self.name, "test": self.test_name,
                "column": self.column, "severity": self.severity}


@dataclass(slots=True)
class Column:
    name: str
    type: str | None = None
    description: str = ""
    meta: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    tests: list[TestRef] = field(default_factory=list)
    sampled_pii: list[str] = field(default_factory=list)  # evidence from sampled values (Catalog.sample_pii)
    _evidence: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def pii_evidence(self) -> list[str]:
        """Why the column is PII: "meta pii: True", "tag pii", "name: email (email)", "values: ...".
        Worked out on first use: most columns of a large catalog are never asked."""
        if self._evidence is None:
            self._evidence = _pii_evidence(self.name, self.meta, self.tags) + self.sampled_pii
        return self._evidence

    @property
    def pii(self) -> bool:
        return bool(self.pii_evidence)

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "description": self.description, "meta": self.meta,
                "tags": self.tags, "pii": self.pii, "pii_evidence": list(self.pii_evidence),
                "tests": [t.name for t in self.tests]}

    def mark_pii(self, evidence: str) -> None:
        if evidence not in self.sampled_pii:
            self.sampled_pii.append(evidence)
            self._evidence = None


@dataclass(slots=True)
class Node:
    unique_id: str
    name: str
    resource_type: str
    package_name: str
    database: str | None
    schema: str | None
    alias: str | None  # the table/view name in the warehouse (`identifier` for sources)
    relation: str | None
    description: str
    tags: list[str]
    meta: dict
    owner: str | None
    classification: str | None
    columns: dict[str, Column]
    tests: list[TestRef]  # every test on the node, column tests included
    parents: list[str]
    children: list[str]
    compiled_code: str | None
    raw_code: str | None
    checksum: str | None
    source_name: str | None = None
    path: str | None = None
    materialized: str | None = None
    column_source: str = "yml"  # where the column list comes from: "catalog", "warehouse" or "yml"
    built: bool | None = None  # is its relation in the warehouse? None: nobody could say

    @property
    def display_name(self) -> str:
        """How users name the node: `model_name`, or `source_name.table_name` for sources."""
        return f"{self.source_name}.{self.name}" if self.source_name else self.name

    @property
    def sql(self) -> str | None:
        """Compiled SQL when dbt compiled the node, else the Jinja source."""
        return self.compiled_code if self.compiled_code is not None else self.raw_code

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.pii]

    def column(self, name: str) -> Column:
        """A column by name, case-insensitively; NotFoundError with the closest names."""
        found = self.columns.get(name) or _lower_lookup(self.columns, name)
        if found is None:
            raise NotFoundError(f"{self.display_name} ({self.unique_id}) has no column {name!r}.",
                                hint=did_you_mean(name, self.columns) if self.columns else
                                "no columns are known for it: build it (`dbt run --select "
                                f"{self.name}`) so that dwml can read them from the warehouse.")
        return found

    def to_dict(self, include_sql: bool = True) -> dict:
        out = {
            "unique_id": self.unique_id, "name": self.display_name, "resource_type": self.resource_type,
            "package": self.package_name, "relation": self.relation, "database": self.database,
            "schema": self.schema, "alias": self.alias, "description": self.description,
            "tags": self.tags, "meta": self.meta, "owner": self.owner, "classification": self.classification,
            "materialized": self.materialized, "path": self.path, "checksum": self.checksum,
            "pii_columns": self.pii_columns, "column_source": self.column_source, "built": self.built,
            "columns": [c.to_dict() for c in self.columns.values()],
            "tests": [t.to_dict() for t in self.tests],
            "parents": self.parents, "children": self.children,
        }
        if include_sql:
            out["sql"] = self.sql
            out["sql_is_compiled"] = self.compiled_code is not None
        return out


@dataclass(slots=True)
class SearchHit:
    unique_id: str
    resource_type: str
    name: str  # the node's display name
    column: str | None  # None when the node itself matched
    score: int
    matched: list[str]  # what matched: "exact name", "name", "tag 'pii'", "meta pii=True", "description"


# -- the catalog ----------------------------------------------------------------------------

class Catalog:
    """The nodes of one dbt project, as recorded by its manifest (and catalog) JSON."""

    def __init__(self, manifest: dict, catalog: dict | None = None, *, manifest_path: Path | None = None,
                 catalog_path: Path | None = None, warehouse=None, notes: Iterable[str] = (),
                 catalog_current: bool = True, project=None, pii_policy: dict | None = None):
        where = str(manifest_path) if manifest_path else "the manifest"
        check_shape(manifest, "manifest", where)
        self.manifest_version = check_version(manifest, "manifest", SUPPORTED_MANIFEST_VERSIONS, where)
        if catalog is not None:
            check_shape(catalog, "catalog", str(catalog_path) if catalog_path else "the catalog")
            check_version(catalog, "catalog", SUPPORTED_CATALOG_VERSIONS,
                           str(catalog_path) if catalog_path else "the catalog")
        self.manifest_path = manifest_path
        self.catalog_path = catalog_path
        self.metadata: dict = manifest.get("metadata") or {}
        self.notes: list[str] = list(notes)
        self._project = project  # set by `load`: lets `ensure_compiled` run dbt for this project
        self._warehouse = warehouse
        self._columns_of = RelationColumns(catalog, catalog_current, warehouse, self.notes)
        self._pii_policy = pii_policy or {"sample_rows": DEFAULT_SAMPLE_ROWS, "min_match_share": DEFAULT_MIN_MATCH_SHARE}
        self._manifest_nodes: dict = manifest.get("nodes") or {}
        self._groups: dict = manifest.get("groups") or {}
        self._raw: dict[str, dict] = {uid: n for uid, n in self._manifest_nodes.items()
                                      if n.get("resource_type") in CATALOG_RESOURCE_TYPES}
        self._raw.update(manifest.get("sources") or {})
        self._nodes: dict[str, Node] = {}
        self._tests: dict[str, list[TestRef]] | None = None
        self._children: dict[str, list[str]] | None = None
        self._names: dict[str, list[str]] | None = None
        self._search_index: list[tuple] | None = None
        self._lineage = None  # a dwml_py.lineage.LineageGraph, built on first use
        self._compiled_by: dict[str, str] = {}  # unique_id -> adapter of SQL compiled after the manifest
        self.compile_failed: set[str] = set()  # models dbt could not compile for lineage
        self._pii_sampled: set[str] = set()
        self._value_pii: dict[tuple[str, str], str] = {}  # (unique_id, column lower) -> evidence of sampled values

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dicts(cls, manifest: dict, catalog: dict | None = None, warehouse=None) -> "Catalog":
        return cls(manifest, catalog, warehouse=warehouse)

    @classmethod
    def from_files(cls, manifest_path: str | Path, catalog_path: str | Path | None = None,
                   warehouse=None) -> "Catalog":
        """Read a manifest.json (and optionally a catalog.json) from anywhere, e.g. in tests."""
        manifest_path = Path(manifest_path)
        manifest = read_json(manifest_path)
        catalog = read_json(Path(catalog_path)) if catalog_path else None
        return cls(manifest, catalog, manifest_path=manifest_path,
                   catalog_path=Path(catalog_path) if catalog_path else None, warehouse=warehouse)

    @classmethod
    def load(cls, project, refresh: bool = False, warehouse=None) -> "Catalog":
        """The catalog of a project from its target/ folder.

        Refuses a missing or stale manifest (older than a file dbt parses, packages' included) or
        one written for another project, naming the fixing command; `refresh=True` runs `dbt parse`
        first when the manifest is missing or stale. Columns and types come from catalog.json when
        it is current, else from `warehouse` (any dwml Warehouse; see dwml_py.relation_columns):
        without one, only the yml-documented columns are known.
        """
        from dwml_py.manifest_state import manifest_state, read_manifest

        notes: list[str] = []
        state = manifest_state(project)
        if refresh and (not state.exists or state.stale):
            notes.append(_parse(project, state))
            state = manifest_state(project)
        manifest = read_manifest(project, state)
        catalog_path = project.target_dir / "catalog.json"
        catalog, current = read_catalog_json(catalog_path, state.newest_source, warehouse is not None, notes)
        if warehouse is None and not current:
            notes.append("no warehouse to read columns from: they are only those documented in yml.")
        return cls(manifest, catalog, manifest_path=state.path, catalog_path=catalog_path if catalog else None,
                   warehouse=warehouse, notes=notes, catalog_current=current, project=project,
                   pii_policy=_pii_policy(project, notes))

    # -- properties --------------------------------------------------------------------------
    @property
    def adapter_type(self) -> str | None:
        return self.metadata.get("adapter_type")

    @property
    def dialect(self) -> str | None:
        """The sqlglot dialect of the compiled SQL (None: sqlglot's generic dialect)."""
        from dwml_py.sql import ADAPTER_DIALECTS

        return ADAPTER_DIALECTS.get(self.adapter_type or "", None)

    @property
    def project_name(self) -> str | None:
        return self.metadata.get("project_name")

    @property
    def has_types(self) -> bool:
        return self._columns_of.has_types

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, unique_id: str) -> bool:
        return unique_id in self._raw

    def unique_ids(self, resource_types: Iterable[str] | None = None) -> list[str]:
        wanted = _resource_types(resource_types)
        return [uid for uid, raw in self._raw.items() if raw.get("resource_type") in wanted]

    def nodes(self, resource_types: Iterable[str] | None = None) -> Iterator[Node]:
        for uid in self.unique_ids(resource_types):
            yield self.node(uid)

    def add_compiled_code(self, compiled: dict[str, str], adapter_type: str | None = None) -> None:
        """Give nodes the compiled SQL of a dbt run that did not write the manifest (lineage reads
        it, in the dialect of `adapter_type`, the adapter that compiled it); cached nodes and
        lineage are rebuilt on next use."""
        for uid, code in compiled.items():
            if uid in self._raw and code:
                self._raw[uid]["compiled_code"] = code
                self._nodes.pop(uid, None)
                if adapter_type:
                    self._compiled_by[uid] = adapter_type
        if compiled:
            self._lineage = None

    def dialect_of(self, unique_id: str) -> str | None:
        """The sqlglot dialect of a node's compiled SQL: that of the adapter which compiled it."""
        from dwml_py.sql import ADAPTER_DIALECTS

        adapter = self._compiled_by.get(unique_id) or self.adapter_type
        if adapter is None and self._project is not None:  # an old manifest without metadata.adapter_type
            try:
                adapter = self._project.profile.adapter_type
            except DwmlError:
                adapter = None
        return ADAPTER_DIALECTS.get(adapter or "", None)

    def ensure_compiled(self, unique_ids: Iterable[str]) -> str | None:
        """Compiled SQL for the given nodes and their SQL ancestors, for column lineage: from the
        manifest, else compiled once for this manifest (dwml_py.compiled_sql). A catalog not loaded
        from a project cannot run dbt: nodes without compiled SQL stay without lineage. Returns a
        note of what was compiled (also added to `notes`), or None."""
        if self._project is None:
            return None
        from dwml_py.compiled_sql import compile_missing, sql_ancestors

        note = compile_missing(self._project, self, sql_ancestors(self, unique_ids))
        if note:
            self.notes.append(note)
        return note

    def require_built(self, node: "Node") -> "Node":
        """The node, when its relation is in the warehouse (or nobody can tell); NotFoundError with
        the dbt command that builds it otherwise, before a query fails on a missing table."""
        if node.built is False:
            from dwml_py.relation_columns import build_command

            what = "declared as a dbt source" if node.resource_type == "source" else "in the dbt manifest"
            hint = ("load it, or fix the source's schema/identifier in its yml." if node.resource_type == "source"
                    else f"run `{build_command(node)}` (or `dbt build --select +{node.name}` to build and test "
                    "what it needs).")
            raise NotFoundError(f"{node.display_name} is {what} but not built in the warehouse "
                                f"({node.schema}.{node.alias} does not exist).", hint=hint)
        return node

    def sample_pii(self, unique_ids: Iterable[str]) -> None:
        """Mark the string columns of these nodes whose sampled values look like PII (the
        governance gate's values route, dwml_py.pii), one query per node, once per node."""
        from dwml_py.pii import is_string_type, sample_string_columns, values_pii

        rows = int(self._pii_policy.get("sample_rows") or 0)
        if self._warehouse is None or rows <= 0:
            return
        for uid in unique_ids:
            if uid in self._pii_sampled or uid not in self._raw:
                continue
            self._pii_sampled.add(uid)
            node = self.node(uid)
            if not node.built or node.relation is None:
                continue
            strings = [c.name for c in node.columns.values() if is_string_type(c.type)]
            try:
                sampled = sample_string_columns(self._warehouse, node.schema, node.alias, strings, rows)
            except DwmlError as exc:
                self.notes.append(f"could not sample {node.display_name} for PII: {exc.message.splitlines()[0][:200]}")
                continue
            for name, values in sampled.items():
                found = values_pii(values, self._pii_policy.get("min_match_share", DEFAULT_MIN_MATCH_SHARE))
                if found:
                    kind, share, seen = found
                    evidence = f"values: {share:.0%} of {seen:,} sampled values look like {kind}"
                    self._value_pii[(uid, name.lower())] = evidence
                    node.columns[name].mark_pii(evidence)

    def meta(self, unique_id: str) -> dict:
        """A node's meta (config.meta over the top-level one) without building the node: finding the
        nodes that declare an ML spec must not build (columns, tests, PII) every node of a project."""
        raw = self._raw[unique_id]
        return _merge_meta(raw, raw.get("config") or {})

    def raw(self, unique_id: str) -> dict:
        """The node's dict as in manifest.json (for fields the Node does not carry)."""
        return self._raw[unique_id]

    # -- nodes -------------------------------------------------------------------------------
    def node(self, unique_id: str) -> Node:
        """The Node of a unique_id (built once, on first use)."""
        node = self._nodes.get(unique_id)
        if node is None:
            if unique_id not in self._raw:
                raise NotFoundError(f"No node {unique_id!r} in the manifest.",
                                    hint=did_you_mean(unique_id, self._raw))
            node = self._nodes[unique_id] = self._build(unique_id, self._raw[unique_id])
        return node

    def resolve(self, ref: str) -> str:
        """The unique_id for a unique_id, a model/seed/snapshot name, or `source_name.table_name`."""
        if ref in self._raw:
            return ref
        candidates = self._name_index().get(ref.lower(), [])
        if len(candidates) > 1:
            # The root project's node wins over a package's node of the same name, as in dbt's ref().
            root = [uid for uid in candidates if self._raw[uid].get("package_name") == self.project_name]
            candidates = root if len(root) == 1 else candidates
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise NotFoundError(f"{ref!r} names several nodes: {', '.join(sorted(candidates))}.",
                                hint="pass the unique_id instead.")
        raise NotFoundError(f"No model, source, seed or snapshot named {ref!r} in the manifest.",
                            hint=did_you_mean(ref, self._display_names()))

    def show(self, ref: str) -> Node:
        """The Node for a unique_id, a model name or `source_name.table_name`."""
        return self.node(self.resolve(ref))

    def parents(self, unique_id: str) -> list[str]:
        deps = (self._raw[unique_id].get("depends_on") or {}).get("nodes") or []
        return [d for d in dict.fromkeys(deps) if d in self._raw]

    def ancestors(self, unique_ids: Iterable[str]) -> set[str]:
        """The given nodes (those in the catalog) and every node upstream of them."""
        seen = {uid for uid in unique_ids if uid in self._raw}
        stack = list(seen)
        while stack:
            for parent in self.parents(stack.pop()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def children(self, unique_id: str) -> list[str]:
        if self._children is None:
            children: dict[str, list[str]] = {}
            for uid in self._raw:
                for parent in self.parents(uid):
                    children.setdefault(parent, []).append(uid)
            self._children = children
        return list(self._children.get(unique_id, []))

    # -- search ------------------------------------------------------------------------------
    def search(self, term: str, resource_types: Iterable[str] | None = None, limit: int = 50) -> list[SearchHit]:
        """Nodes and columns whose name, tags, meta or description contain `term` (any case); a
        term that names a kind of PII (`ssn`, `dob`, `email`, or `pii` itself) also finds the
        columns whose names say they hold it.

        Ranked exact name > name contains > tags/meta/PII > description; a node before its columns
        at the same tier. Each hit says what matched. `limit` 0 returns every hit.
        """
        from dwml_py.pii import name_pii

        needle = str(term).strip().lower()
        if not needle:
            raise InputError("The search term is empty.", hint="pass a word to look for, e.g. `email`.")
        wanted = _resource_types(resource_types)
        pii_term = name_pii(needle)
        pii_kind = "any" if needle == "pii" else pii_term[0] if pii_term else None
        hits: list[SearchHit] = []
        for uid, rtype, display, column, names, tags, meta, description in self._index():
            if rtype not in wanted:
                continue
            score, matched = _match(needle, names, tags, meta, description)
            if pii_kind and column is not None and score < SCORE_TAG_META:
                kind = _name_pii_kind(column)
                if kind and pii_kind in ("any", kind):
                    score = SCORE_TAG_META
                    matched.append(f"PII {kind} by name")
            if score:
                if column is None:
                    score += _NODE_BONUS
                hits.append(SearchHit(uid, rtype, display, column, score, matched))
        hits.sort(key=lambda h: (-h.score, len(h.column or h.name), h.name, h.column or ""))
        return hits[:limit] if limit and limit > 0 else hits

    # -- internals ---------------------------------------------------------------------------
    def _name_index(self) -> dict[str, list[str]]:
        if self._names is None:
            names: dict[str, list[str]] = {}
            for uid, raw in self._raw.items():
                for name in {_display_name(raw), raw.get("name") or ""}:
                    if name:
                        names.setdefault(name.lower(), []).append(uid)
            # a bare source table name is a fallback only: it must not shadow a model's name
            for key, uids in names.items():
                if len(uids) > 1:
                    exact = [u for u in uids if _display_name(self._raw[u]).lower() == key]
                    names[key] = exact or uids
            self._names = names
        return self._names

    def _display_names(self) -> list[str]:
        return [_display_name(raw) for raw in self._raw.values()]

    def _tests_index(self) -> dict[str, list[TestRef]]:
        """Tests by the node they check; a test with no attached_node (singular tests) goes to
        every catalog node it depends on."""
        if self._tests is None:
            tests: dict[str, list[TestRef]] = {}
            for uid, raw in self._manifest_nodes.items():
                if raw.get("resource_type") != "test":
                    continue
                metadata = raw.get("test_metadata") or {}
                column = raw.get("column_name") or (metadata.get("kwargs") or {}).get("column_name")
                ref = TestRef(uid, raw.get("name") or uid, metadata.get("name") or "singular",
                              column=column or None, severity=(raw.get("config") or {}).get("severity"))
                attached = raw.get("attached_node")
                targets = [attached] if attached else (raw.get("depends_on") or {}).get("nodes") or []
                for target in dict.fromkeys(targets):
                    if target in self._raw:
                        tests.setdefault(target, []).append(ref)
            self._tests = tests
        return self._tests

    def _index(self) -> list[tuple]:
        """One row per node and per column: the lower-cased texts search looks at."""
        if self._search_index is None:
            rows = []
            for uid, raw in self._raw.items():
                rtype = raw.get("resource_type")
                display = _display_name(raw)
                config = raw.get("config") or {}
                names = {display.lower(), (raw.get("name") or "").lower()}
                description = (raw.get("description") or raw.get("source_description") or "").lower()
                rows.append((uid, rtype, display, None, names, _tags(raw, config),
                             _meta_items(_merge_meta(raw, config)), description))
                documented = raw.get("columns") or {}
                for name, col in documented.items():
                    col_config = col.get("config") or {}
                    cname = col.get("name") or name
                    rows.append((uid, rtype, display, cname, {cname.lower()}, _tags(col, col_config),
                                 _meta_items(_merge_meta(col, col_config)), (col.get("description") or "").lower()))
                # columns only catalog.json or the warehouse know (undocumented) are found by name
                typed = self._columns_of.lookup(uid, raw).columns
                if typed:
                    known = {(c.get("name") or n).lower() for n, c in documented.items()}
                    rows.extend((uid, rtype, display, name, {name.lower()}, (), (), "")
                                for name in typed if name.lower() not in known)
            self._search_index = rows
        return self._search_index

    def _build(self, uid: str, raw: dict) -> Node:
        config = raw.get("config") or {}
        meta = _merge_meta(raw, config)
        tests = list(self._tests_index().get(uid, []))
        found = self._columns_of.lookup(uid, raw)
        return Node(
            unique_id=uid, name=raw.get("name") or uid, resource_type=raw.get("resource_type") or "",
            package_name=raw.get("package_name") or "", database=raw.get("database"), schema=raw.get("schema"),
            alias=raw.get("identifier") or raw.get("alias") or raw.get("name"),
            relation=raw.get("relation_name") or _relation(raw),
            description=raw.get("description") or raw.get("source_description") or "",
            tags=_tags(raw, config), meta=meta, owner=self._owner(raw, config, meta),
            classification=_text_or_none(meta.get("classification")),
            columns=self._columns(uid, raw, tests, found.columns), tests=tests, parents=self.parents(uid),
            children=self.children(uid),
            compiled_code=raw.get("compiled_code", raw.get("compiled_sql")),
            raw_code=raw.get("raw_code", raw.get("raw_sql")),
            checksum=(raw.get("checksum") or {}).get("checksum"),
            source_name=raw.get("source_name"), path=raw.get("original_file_path"),
            materialized=config.get("materialized"), column_source=found.source, built=found.built,
        )

    def _columns(self, uid: str, raw: dict, tests: list[TestRef], typed: dict[str, dict]) -> dict[str, Column]:
        """The relation's columns in its order (see RelationColumns), then yml-only ones, each with
        its yml documentation, tests and PII evidence."""
        documented = raw.get("columns") or {}
        typed_lower = {k.lower(): v for k, v in typed.items()}
        names = list(typed)
        seen = {n.lower() for n in names}
        names += [(c.get("name") or n) for n, c in documented.items() if (c.get("name") or n).lower() not in seen]
        documented_lower = {(c.get("name") or n).lower(): c for n, c in documented.items()}
        columns: dict[str, Column] = {}
        for name in names:
            doc = documented_lower.get(name.lower(), {})
            col_config = doc.get("config") or {}
            meta = _merge_meta(doc, col_config)
            tags = _tags(doc, col_config)
            kind = (typed_lower.get(name.lower()) or {}).get("type") or doc.get("data_type")
            sampled = self._value_pii.get((uid, name.lower()))
            columns[name] = Column(
                name=name, type=kind, description=doc.get("description") or "", meta=meta, tags=tags,
                tests=[t for t in tests if t.column and _strip_quotes(t.column).lower() == name.lower()],
                sampled_pii=[sampled] if sampled else [],
            )
        return columns

    def _owner(self, raw: dict, config: dict, meta: dict) -> str | None:
        if meta.get("owner"):
            return _text_or_none(meta["owner"])
        group = raw.get("group") or config.get("group")
        if not group:
            return None
        for g in self._groups.values():
            if g.get("name") == group:
                owner = g.get("owner") or {}
                return owner.get("name") or owner.get("email") or group
        return group


# -- helpers --------------------------------------------------------------------------------

def is_pii(meta: dict, tags: Iterable[str]) -> bool:
    """Declared PII: meta says `pii`/`contains_pii` (truthy) or a tag is `pii`. A column's `pii`
    also counts its name (see `_pii_evidence`) and sampled values (`Catalog.sample_pii`)."""
    if any(_truthy(meta.get(key)) for key in PII_META_KEYS):
        return True
    return any(str(t).lower() == "pii" for t in tags)


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "y", "1"}
    return bool(value)


def _merge_meta(raw: dict, config: dict) -> dict:
    # dbt >= 1.10 moves meta under config; older yml puts it at the top level. Both may be set.
    meta = dict(raw.get("meta") or {})
    meta.update(config.get("meta") or {})
    return meta


def _tags(raw: dict, config: dict) -> list[str]:
    tags = raw.get("tags") or []
    extra = config.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(extra, str):
        extra = [extra]
    # a hand-made manifest may hold a null or a number among the tags: text, or left out
    return list(dict.fromkeys(str(tag) for tag in [*tags, *extra] if tag is not None))


def _meta_items(meta: dict, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key path, lower-cased key, lower-cased value text) of every leaf of a meta dict."""
    items = []
    for key, value in meta.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items.append((path, path.lower(), ""))
            items.extend(_meta_items(value, prefix=path + "."))
        else:
            items.append((path, path.lower(), _value_text(value).lower()))
    return items


def _value_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(v) for v in value)
    return "" if value is None else str(value)


def _match(needle: str, names: set[str], tags: list[str], meta: list[tuple], description: str) -> tuple[int, list[str]]:
    score, matched = 0, []
    if needle in names:
        score, matched = SCORE_EXACT, ["exact name"]
    elif any(needle in n for n in names):
        score, matched = SCORE_NAME, ["name"]
    for tag in tags:
        if needle in tag.lower():
            score = max(score, SCORE_TAG_META)
            matched.append(f"tag {tag!r}")
    for path, key, value in meta:
        if needle in key or (value and needle in value):
            score = max(score, SCORE_TAG_META)
            matched.append(f"meta {path}" + (f"={value}" if value else ""))
    if description and needle in description:
        score = max(score, SCORE_DESCRIPTION)
        matched.append("description")
    return score, matched


def _display_name(raw: dict) -> str:
    name = raw.get("name") or raw.get("unique_id") or ""
    return f"{raw['source_name']}.{name}" if raw.get("source_name") else name


def _relation(raw: dict) -> str | None:
    if (raw.get("config") or {}).get("materialized") == "ephemeral":
        return None
    parts = [raw.get("database"), raw.get("schema"), raw.get("identifier") or raw.get("alias") or raw.get("name")]
    return ".".join(f'"{p}"' for p in parts if p) or None


def _resource_types(resource_types: Iterable[str] | str | None) -> set[str]:
    if resource_types is None:
        return set(CATALOG_RESOURCE_TYPES)
    wanted = {resource_types} if isinstance(resource_types, str) else set(resource_types)
    unknown = wanted - set(CATALOG_RESOURCE_TYPES)
    if unknown:
        bad = sorted(unknown)[0]
        raise InputError(f"Unknown resource type {bad!r}.",
                            hint=f"use one of {', '.join(CATALOG_RESOURCE_TYPES)}; " + did_you_mean(bad, CATALOG_RESOURCE_TYPES))
    return wanted


def _lower_lookup(mapping: dict, name: str):
    lowered = name.lower()
    return next((v for k, v in mapping.items() if k.lower() == lowered), None)


def _strip_quotes(name: str) -> str:
    return name.strip().strip('"`[]')


def _text_or_none(value) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else _value_text(value)


def _parse(project, state) -> str:
    """`dbt parse` of a missing or stale manifest; DbtCommandError naming dbt's error."""
    from dwml_py.dbt_runner import run_dbt

    run = run_dbt(project, ["parse"])
    if not run.success:
        raise DbtCommandError(f"`dbt parse` failed in {str(project.project_dir)!r}: {run.error or 'see logs/dbt.log'}",
                              hint="fix what dbt names (`dwml doctor` checks the whole set-up).")
    return "ran `dbt parse`: target/manifest.json was " + ("missing." if not state.exists else
                                                          f"older than {state.newest_source}.")


def _pii_policy(project, notes: list[str]) -> dict:
    """The governance gate's sampling settings (vars: dwml: governance:), so the catalog calls the
    same columns PII; a broken setting is the gate's to refuse, here the defaults stand."""
    from dwml_py.governance_policy import resolve_policy

    try:
        return resolve_policy(project.config)
    except DwmlError as exc:
        notes.append(f"PII sampling uses dwml's defaults: {exc.message}")
        return {"sample_rows": DEFAULT_SAMPLE_ROWS, "min_match_share": DEFAULT_MIN_MATCH_SHARE}


def _pii_evidence(name: str, meta: dict, tags: Iterable[str]) -> list[str]:
    """Why a column is PII by its yml (meta, tags) and its name, as the governance gate decides."""
    evidence = [f"meta {key}: {meta[key]}" for key in PII_META_KEYS if _truthy(meta.get(key))]
    if any(str(t).lower() == "pii" for t in tags):
        evidence.append("tag pii")
    named = _name_pii(name)
    if named:
        evidence.append(f"name: {named[1]} ({named[0]})")
    return evidence


@lru_cache(maxsize=65536)
def _name_pii(name: str) -> tuple[str, str] | None:
    from dwml_py.pii import name_pii

    return name_pii(name)


def _name_pii_kind(name: str) -> str | None:
    named = _name_pii(name)
    return named[0] if named else None


# A tiny manifest for the module docstring.
_EXAMPLE_MANIFEST = {
    "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json", "adapter_type": "duckdb"},
    "nodes": {"model.p.orders": {
        "unique_id": "model.p.orders", "name": "orders", "resource_type": "model", "package_name": "p",
        "columns": {"email": {"name": "email", "meta": {"pii": True}, "description": "Where receipts go."}},
    }},
    "sources": {},
}
