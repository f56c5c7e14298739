"""The dbt catalog: models, sources, seeds and snapshots with their columns, types, tests,
owners, PII flags and DAG edges, read from target/manifest.json and target/catalog.json.

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

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dwml_py.dbt_artifact_shapes import check_shape
from dwml_py.errors import ConfigError, DbtCommandError, InputError, NotFoundError, did_you_mean

# Manifest layouts we read: v10 (dbt 1.6), v11 (dbt 1.7), v12 (dbt 1.8 - 1.11).
SUPPORTED_MANIFEST_VERSIONS = (10, 11, 12)
SUPPORTED_CATALOG_VERSIONS = (1,)
# The resources that hold data; tests, operations, analyses etc. are not catalog entries.
CATALOG_RESOURCE_TYPES = ("model", "source", "seed", "snapshot")
PII_META_KEYS = ("pii", "contains_pii")

_VERSION_RE = re.compile(r"/(manifest|catalog)/v(\d+)\.json$")

# Search ranking tiers: exact name > name contains > tags/meta > description.
SCORE_EXACT, SCORE_NAME, SCORE_TAG_META, SCORE_DESCRIPTION = 100, 80, 60, 40
_NODE_BONUS = 5  # at the same tier a table outranks one of its columns


# -- JSON and schema versions -------------------------------------------------------------

def read_artifact(path: Path, kind: str) -> dict:
    """A dbt JSON artifact (`kind`: manifest, catalog or run_results), refused unless it is shaped as
    dbt writes it where dwml reads it (dwml_py.dbt_artifact_shapes)."""
    return check_shape(read_json(path), kind, str(path))


def read_json(path: Path) -> dict:
    """Parse a JSON artifact, with orjson when it happens to be installed (2-3x faster)."""
    try:
        import orjson
    except ImportError:
        orjson = None
    try:
        if orjson is not None:
            return orjson.loads(Path(path).read_bytes())
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise NotFoundError(f"No dbt artifact at {str(path)!r}.",
                            hint="run `dbt parse` (or `dbt docs generate` for column types) in the project.") from None
    except ValueError as exc:
        raise ConfigError(f"{str(path)!r} is not valid JSON: {exc}",
                          hint="the file is damaged or half-written; rerun `dbt parse` to rewrite it.") from exc


def schema_version(document: dict, kind: str, where: str = "") -> int:
    """The layout version of a dbt artifact from `metadata.dbt_schema_version`."""
    url = str((document.get("metadata") or {}).get("dbt_schema_version") or "")
    match = _VERSION_RE.search(url)
    if not match or match.group(1) != kind:
        raise ConfigError(
            f"{where or 'The ' + kind} does not look like a dbt {kind}.json: "
            f"metadata.dbt_schema_version is {url or 'missing'!r}.",
            hint=f"point dwml at the {kind}.json that dbt writes into target/ (run `dbt parse`).",
        )
    return int(match.group(2))


def _check_version(document: dict, kind: str, supported: tuple[int, ...], where: str) -> int:
    version = schema_version(document, kind, where)
    if version not in supported:
        dbt_version = (document.get("metadata") or {}).get("dbt_version", "unknown")
        known = ", ".join(f"v{v}" for v in supported)
        newer = version > max(supported)
        raise ConfigError(
            f"{where or kind} uses dbt {kind} schema v{version} (written by dbt {dbt_version}); "
            f"dwml reads {known}.",
            hint=("upgrade dwml, or regenerate the artifacts with dbt-core 1.11 (`dbt parse`)." if newer
                  else "regenerate the artifacts with a newer dbt-core (1.6 or later): `dbt parse`."),
        )
    return version


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
    pii: bool = False
    tests: list[TestRef] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "description": self.description, "meta": self.meta,
                "tags": self.tags, "pii": self.pii, "tests": [t.name for t in self.tests]}


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
                                "no columns are known for it: document them in its yml or run `dbt docs generate`.")
        return found

    def to_dict(self, include_sql: bool = True) -> dict:
        out = {
            "unique_id": self.unique_id, "name": self.display_name, "resource_type": self.resource_type,
            "package": self.package_name, "relation": self.relation, "database": self.database,
            "schema": self.schema, "alias": self.alias, "description": self.description,
            "tags": self.tags, "meta": self.meta, "owner": self.owner, "classification": self.classification,
            "materialized": self.materialized, "path": self.path, "checksum": self.checksum,
            "pii_columns": self.pii_columns,
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
                 catalog_path: Path | None = None, warehouse=None, notes: Iterable[str] = ()):
        where = str(manifest_path) if manifest_path else "the manifest"
        check_shape(manifest, "manifest", where)
        self.manifest_version = _check_version(manifest, "manifest", SUPPORTED_MANIFEST_VERSIONS, where)
        if catalog is not None:
            check_shape(catalog, "catalog", str(catalog_path) if catalog_path else "the catalog")
            _check_version(catalog, "catalog", SUPPORTED_CATALOG_VERSIONS,
                           str(catalog_path) if catalog_path else "the catalog")
        self.manifest_path = manifest_path
        self.catalog_path = catalog_path
        self.metadata: dict = manifest.get("metadata") or {}
        self.notes: list[str] = list(notes)
        self._warehouse = warehouse
        self._manifest_nodes: dict = manifest.get("nodes") or {}
        self._groups: dict = manifest.get("groups") or {}
        self._raw: dict[str, dict] = {uid: n for uid, n in self._manifest_nodes.items()
                                      if n.get("resource_type") in CATALOG_RESOURCE_TYPES}
        self._raw.update(manifest.get("sources") or {})
        self._types: dict[str, dict] = {}
        if catalog is not None:
            self._types.update(catalog.get("nodes") or {})
            self._types.update(catalog.get("sources") or {})
        self._nodes: dict[str, Node] = {}
        self._tests: dict[str, list[TestRef]] | None = None
        self._children: dict[str, list[str]] | None = None
        self._names: dict[str, list[str]] | None = None
        self._search_index: list[tuple] | None = None
        self._lineage = None  # a dwml_py.lineage.LineageGraph, built on first use

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

        Refuses a missing or stale manifest (older than a model or yml file) and names the
        fixing command. `refresh=True` first runs `dbt docs generate` (manifest with compiled
        SQL + catalog.json with types) when catalog.json is missing or stale, else `dbt parse`
        when only the manifest is stale. Column types come from catalog.json, or from
        `warehouse` (any dwml Warehouse) when there is no catalog.json.
        """
        from dwml_py.manifest_state import manifest_state

        catalog_path = project.target_dir / "catalog.json"
        notes: list[str] = []
        state = manifest_state(project)
        if refresh:
            notes += _refresh(project, state, catalog_path)
            state = manifest_state(project)
        if not state.exists:
            raise NotFoundError(
                f"No dbt manifest at {str(state.path)!r}.",
                hint=f"run `dbt parse` in {str(project.project_dir)!r} (or `dbt docs generate` for column "
                     "types and compiled SQL), or pass --refresh.",
            )
        if state.stale:
            raise ConfigError(
                f"The dbt manifest {str(state.path)!r} is older than {str(state.newest_source)!r}, "
                "so it may not describe the project as it is.",
                hint="run `dbt parse` (or `dbt docs generate` for column types and compiled SQL), "
                     "or pass --refresh.",
            )
        use_catalog = catalog_path.is_file()
        if use_catalog and _is_stale(catalog_path, state.newest_source):
            notes.append(f"{catalog_path} is older than {state.newest_source}; column types may be out of "
                         "date (run `dbt docs generate`).")
        elif not use_catalog:
            notes.append(f"no {catalog_path}: column types come "
                         + ("from the warehouse." if warehouse is not None else
                            "from yml `data_type` only (run `dbt docs generate`)."))
        manifest = read_artifact(state.path, "manifest")
        catalog = read_artifact(catalog_path, "catalog") if use_catalog else None
        return cls(manifest, catalog, manifest_path=state.path, catalog_path=catalog_path if use_catalog else None,
                   warehouse=warehouse, notes=notes)

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
        return bool(self._types) or self._warehouse is not None

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

    def add_compiled_code(self, compiled: dict[str, str]) -> None:
        """Give nodes the compiled SQL of a dbt run that did not write the manifest (lineage reads
        it); cached nodes and lineage are rebuilt on next use."""
        for uid, code in compiled.items():
            if uid in self._raw and code:
                self._raw[uid]["compiled_code"] = code
                self._nodes.pop(uid, None)
        self._lineage = None

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
        """Nodes and columns whose name, tags, meta or description contain `term` (any case).

        Ranked exact name > name contains > tags/meta > description; a node before its columns
        at the same tier. Each hit says what matched.
        """
        needle = str(term).strip().lower()
        if not needle:
            raise InputError("The search term is empty.", hint="pass a word to look for, e.g. `email`.")
        wanted = _resource_types(resource_types)
        hits: list[SearchHit] = []
        for uid, rtype, display, column, names, tags, meta, description in self._index():
            if rtype not in wanted:
                continue
            score, matched = _match(needle, names, tags, meta, description)
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
                # columns only catalog.json knows (undocumented) are found by name
                typed = (self._types.get(uid) or {}).get("columns") or {}
                if typed:
                    known = {n.lower() for n in documented}
                    rows.extend((uid, rtype, display, name, {name.lower()}, (), (), "")
                                for name in typed if name.lower() not in known)
            self._search_index = rows
        return self._search_index

    def _build(self, uid: str, raw: dict) -> Node:
        config = raw.get("config") or {}
        meta = _merge_meta(raw, config)
        tests = list(self._tests_index().get(uid, []))
        columns, column_source = self._columns(uid, raw, tests)
        return Node(
            unique_id=uid, name=raw.get("name") or uid, resource_type=raw.get("resource_type") or "",
            package_name=raw.get("package_name") or "", database=raw.get("database"), schema=raw.get("schema"),
            alias=raw.get("identifier") or raw.get("alias") or raw.get("name"),
            relation=raw.get("relation_name") or _relation(raw),
            description=raw.get("description") or raw.get("source_description") or "",
            tags=_tags(raw, config), meta=meta, owner=self._owner(raw, config, meta),
            classification=_text_or_none(meta.get("classification")),
            columns=columns, tests=tests, parents=self.parents(uid), children=self.children(uid),
            compiled_code=raw.get("compiled_code", raw.get("compiled_sql")),
            raw_code=raw.get("raw_code", raw.get("raw_sql")),
            checksum=(raw.get("checksum") or {}).get("checksum"),
            source_name=raw.get("source_name"), path=raw.get("original_file_path"),
            materialized=config.get("materialized"), column_source=column_source,
        )

    def _columns(self, uid: str, raw: dict, tests: list[TestRef]) -> tuple[dict[str, Column], str]:
        documented = raw.get("columns") or {}
        # Types: catalog.json (what the warehouse has) > warehouse lookup > yml data_type.
        typed = {c.get("name") or n: c for n, c in ((self._types.get(uid) or {}).get("columns") or {}).items()}
        source = "catalog" if typed else "yml"
        if not typed and self._warehouse is not None and not self._types:
            typed = self._warehouse_columns(raw)
            source = "warehouse" if typed else "yml"
        typed_lower = {k.lower(): v for k, v in typed.items()}
        names = sorted(typed, key=lambda n: typed[n].get("index") or 0) if typed else []
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
            columns[name] = Column(
                name=name, type=kind, description=doc.get("description") or "", meta=meta, tags=tags,
                pii=is_pii(meta, tags),
                tests=[t for t in tests if t.column and _strip_quotes(t.column).lower() == name.lower()],
            )
        return columns, source

    def _warehouse_columns(self, raw: dict) -> dict[str, dict]:
        schema, name = raw.get("schema"), raw.get("identifier") or raw.get("alias") or raw.get("name")
        try:
            found = self._warehouse.columns(schema, name)
        except Exception as exc:  # types are a nicety: a broken lookup must not hide the catalog
            self.notes.append(f"could not read the columns of {schema}.{name} from the warehouse: {exc}")
            return {}
        return {col: {"name": col, "type": kind, "index": i} for i, (col, kind) in enumerate(found)}

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
    """PII when meta says `pii`/`contains_pii` (truthy) or a tag is `pii`."""
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
    return list(dict.fromkeys([*tags, *extra]))


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


def _is_stale(path: Path, newest_source: Path | None) -> bool:
    return newest_source is not None and newest_source.stat().st_mtime > path.stat().st_mtime


def _refresh(project, state, catalog_path: Path) -> list[str]:
    """Bring target/ up to date with the fewest dbt commands; return notes of what ran."""
    from dwml_py.dbt_runner import run_dbt

    catalog_stale = not catalog_path.is_file() or _is_stale(catalog_path, state.newest_source)
    if catalog_stale:
        # docs generate parses, compiles (compiled SQL for lineage) and writes catalog.json.
        try:
            run = run_dbt(project, ["docs", "generate"])
        except DbtCommandError as exc:
            run, error = None, exc.message
        else:
            error = None if run.success else "; ".join(f"{n.name}: {n.message}" for n in run.failed_nodes) or "it failed"
        if error is None:
            return ["ran `dbt docs generate`."]
        if state.exists and not state.stale:
            return [f"`dbt docs generate` failed ({error}); using the existing manifest without types."]
        notes = [f"`dbt docs generate` failed ({error}); ran `dbt parse` instead (no types, no compiled SQL)."]
    elif state.stale:
        notes = ["ran `dbt parse`."]
    else:
        return []
    run = run_dbt(project, ["parse"])
    if not run.success:
        raise DbtCommandError(f"`dbt parse` failed in {str(project.project_dir)!r}.",
                              hint="run `dbt parse` yourself to see dbt's error.")
    return notes


# A tiny manifest for the module docstring.
_EXAMPLE_MANIFEST = {
    "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json", "adapter_type": "duckdb"},
    "nodes": {"model.p.orders": {
        "unique_id": "model.p.orders", "name": "orders", "resource_type": "model", "package_name": "p",
        "columns": {"email": {"name": "email", "meta": {"pii": True}, "description": "Where receipts go."}},
    }},
    "sources": {},
}


def _sql_ancestors(catalog: Catalog, uid: str) -> list[str]:
    """The node and its ancestors whose columns come from SQL (models and snapshots)."""
    seen, stack = {uid}, [uid]
    while stack:
        for parent in catalog.parents(stack.pop()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return [u for u in seen if catalog.raw(u).get("resource_type") in ("model", "snapshot")]


# Models dwml's default selector leaves out (selectors.yml): SQL scoring models need a deployed
# version and monitoring models judge dwml's own tables, so they are compiled only when selected.
DEFERRED_TAGS = frozenset({"dwml_scoring", "dwml_monitoring"})


def uncompiled(catalog: Catalog, unique_ids: Iterable[str] | None = None) -> list[str]:
    """Models and snapshots among `unique_ids` (default: all) without compiled SQL in the manifest,
    leaving out the deferred ones (DEFERRED_TAGS)."""
    if unique_ids is None:
        unique_ids = catalog.unique_ids(["model", "snapshot"])
    return sorted(uid for uid in unique_ids
                  if uid in catalog and catalog.raw(uid).get("resource_type") in ("model", "snapshot")
                  and catalog.raw(uid).get("compiled_code") is None
                  and not DEFERRED_TAGS & set(catalog.raw(uid).get("tags") or []))


def compile_upstream(project, catalog: Catalog, unique_id: str) -> str | None:
    """Give a node and its ancestors compiled SQL when the manifest lacks it, so their column
    lineage can be traced; see `compile_missing`."""
    return compile_missing(project, catalog, _sql_ancestors(catalog, unique_id))


def compile_missing(project, catalog: Catalog, unique_ids: Iterable[str] | None = None) -> str | None:
    """Compile the given models (default: every model and snapshot) whose compiled SQL the manifest
    lacks (a selective dbt command or `dbt parse` wrote it); returns a note, or None when nothing
    was missing.

    dbt compiles into project.gate_target_dir: writing target/manifest.json from a selective compile
    would drop the compiled SQL of every other model. The result is added to `catalog` in memory.
    """
    missing = uncompiled(catalog, unique_ids)
    if not missing:
        return None
    from dwml_py.call_context import current
    from dwml_py.dbt_runner import run_dbt

    names = [catalog.raw(uid).get("name") or uid for uid in missing]
    if current().read_only:  # compiling writes into target/: say what is missing instead
        return (f"the manifest has no compiled SQL for {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}, "
                "so their column lineage is unknown (read-only: not compiled; run `dbt compile`).")
    # Many names make a long command line; past a few dozen, compiling everything is as quick.
    select = ["--select", *names] if len(names) <= 50 else []
    run = run_dbt(project, ["compile", *select], target_path=project.gate_target_dir)
    what = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    catalog.add_compiled_code({n.unique_id: n.compiled_code for n in run.nodes if n.compiled_code})
    if not run.success:
        failed = ", ".join(n.name for n in run.failed_nodes[:5]) or "the project"
        return f"`dbt compile` of {what} failed for {failed}, so column lineage may be incomplete there."
    return f"compiled {what} (`dbt compile`): the manifest had no compiled SQL for their column lineage."
