"""Catalog tools: search the dbt catalog, show one node, trace a column's lineage.

Each returns a JSON-serialisable dict (the CLI renders it, the agent server sends it as is).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

from dwml_py.errors import DwmlError, InputError
from dwml_py.tools.registry import TEXT_MAX, TOOLS, Param

if TYPE_CHECKING:  # imported where used, so that listing the tools stays quick
    from dwml_py.catalog import Catalog
    from dwml_py.lineage import ColumnRef


@TOOLS.tool("search_catalog", cli=("catalog", "search"))
def search_catalog(
    project,
    term: Annotated[str, Param("text to look for in names, descriptions, tags and meta", positional=True,
                               max_length=TEXT_MAX)],
    resource_type: Annotated[str | None, Param("only this kind: model, source, seed or snapshot")] = None,
    limit: Annotated[int, Param("at most this many hits (0: all)", minimum=0, maximum=10_000)] = 20,
    refresh: Annotated[bool, Param("run `dbt parse` first when target/manifest.json is missing or stale", writes=True)] = False,
) -> dict:
    """Find models, sources, seeds, snapshots and columns by name, description, tag or meta.

    Hits are ranked exact name > name contains > tags/meta/PII > description, and each says what
    matched, with the relation, type, tests, owner and PII flags (by meta, tags, names and sampled
    values, as the governance gate decides). A term naming a kind of PII (`ssn`, `dob`, `pii`)
    finds the columns whose names say they hold it. `total` counts every hit, `count` those shown.
    """
    with _catalog(project, refresh) as catalog:
        every = catalog.search(term, resource_types=[resource_type] if resource_type else None, limit=0)
        hits = every[:limit] if limit and limit > 0 else every
        catalog.sample_pii(dict.fromkeys(h.unique_id for h in hits))
        return {"term": term, "resource_type": resource_type, "count": len(hits), "total": len(every),
                "truncated": len(hits) < len(every), "limit": limit,
                "hits": [_hit(catalog, h) for h in hits], "notes": catalog.notes}


@TOOLS.tool("show_catalog_node", cli=("catalog", "show"))
def show_catalog_node(
    project,
    node: Annotated[str, Param("a model name, source_name.table_name or unique_id", positional=True)],
    refresh: Annotated[bool, Param("run `dbt parse` first when target/manifest.json is missing or stale", writes=True)] = False,
) -> dict:
    """Everything the catalog knows about one node: columns with types, tests, owner, PII, parents,
    children and its (compiled) SQL."""
    from dwml_py.lineage import lineage_graph

    with _catalog(project, refresh) as catalog:
        uid = catalog.resolve(node)
        catalog.sample_pii([uid])
        found = catalog.node(uid)
        out = found.to_dict()
        out["lineage_unavailable"] = lineage_graph(catalog).model(found.unique_id).unavailable
        out["notes"] = catalog.notes
        return out


@TOOLS.tool("catalog_lineage", cli=("catalog", "lineage"))
def catalog_lineage(
    project,
    column: Annotated[str, Param("MODEL.COLUMN (or source_name.table_name.COLUMN)", positional=True)],
    refresh: Annotated[bool, Param("run `dbt parse` first when target/manifest.json is missing or stale", writes=True)] = False,
) -> dict:
    """Column-level lineage: the columns a column is computed from (through the whole DAG), the
    columns computed from it, and which of them are PII (by meta, tags, names and sampled values).

    Only the column's model and its ancestors are compiled when the manifest lacks their SQL (once
    per manifest: the next call reuses it); children without compiled SQL are counted in
    `downstream_unknown`, not guessed."""
    from dwml_py.lineage import column_lineage, downstream

    model, _, name = column.rpartition(".")
    if not model or not name:
        raise InputError(f"{column!r} is not MODEL.COLUMN.",
                         hint="name the column with its model, e.g. `customer_features.age_years`.")
    with _catalog(project, refresh) as catalog:
        uid = catalog.resolve(model)
        catalog.ensure_compiled([uid])
        up = column_lineage(catalog, uid, name)
        down = downstream(catalog, uid, name)
        catalog.sample_pii(dict.fromkeys([uid, *(s.ref.node_id for s in up.steps), *(s.ref.node_id for s in down.steps)]))
        target = catalog.node(up.target.node_id)
        upstream_refs = [_ref(catalog, s.ref, depth=s.depth, path=[str(r) for r in up.path(s.ref)])
                         for s in up.steps]
        return {
            "model": target.display_name, "node": target.unique_id, "column": up.target.column,
            "relation": target.relation,
            "pii": _column_pii(catalog, up.target),
            "derived_from_pii": any(r["pii"] for r in upstream_refs),
            "direct": [_ref(catalog, r) for r in up.direct],
            "upstream": upstream_refs,
            "pii_sources": [r for r in upstream_refs if r["pii"]],
            "downstream": [_ref(catalog, s.ref, depth=s.depth, path=[str(r) for r in down.path(s.ref)])
                           for s in down.steps],
            "downstream_unknown": sorted(down.unavailable),
            "unavailable": {**up.unavailable, **down.unavailable},
            "unresolved": up.unresolved,
            "notes": catalog.notes,
        }


# -- helpers ------------------------------------------------------------------------------------

@contextlib.contextmanager
def _catalog(project, refresh: bool):
    """Load the catalog with a read-only warehouse for columns and PII samples (read-only, so a
    running dbt elsewhere keeps its lock); without one the catalog still works from yml."""
    from dwml_py.catalog import Catalog

    with contextlib.ExitStack() as stack:
        warehouse = _open_warehouse(project)
        if warehouse is not None:
            stack.callback(warehouse.close)
        yield Catalog.load(project, refresh=refresh, warehouse=warehouse)


def _open_warehouse(project):
    from dwml_py.warehouse import connect

    try:
        return connect(project, read_only=True)
    except (DwmlError, Exception):  # a missing or locked warehouse only costs the columns dbt did not document
        return None


def _hit(catalog: Catalog, hit) -> dict:
    node = catalog.node(hit.unique_id)
    out = {"name": node.display_name, "unique_id": node.unique_id, "resource_type": node.resource_type,
           "column": hit.column, "relation": node.relation, "owner": node.owner,
           "classification": node.classification, "parents": node.parents,
           "matched": hit.matched, "score": hit.score}
    col = node.columns.get(hit.column) if hit.column else None
    if hit.column and col is None:
        col = next((c for c in node.columns.values() if c.name.lower() == hit.column.lower()), None)
    if col is not None:
        out.update(type=col.type, description=col.description, tests=[t.name for t in col.tests],
                   tags=col.tags, pii=col.pii, pii_evidence=col.pii_evidence, pii_columns=[col.name] if col.pii else [])
    else:
        out.update(type=node.materialized or node.resource_type, description=node.description,
                   tests=[t.name for t in node.tests], tags=node.tags, pii=bool(node.pii_columns),
                   pii_columns=node.pii_columns)
    return out


def _ref(catalog: Catalog, ref: ColumnRef, **extra) -> dict:
    from dwml_py.catalog import Node

    node: Node | None = catalog.node(ref.node_id) if ref.node_id in catalog else None
    return {"node": ref.node_id, "name": node.display_name if node else ref.node_id,
            "resource_type": node.resource_type if node else None, "column": ref.column,
            "pii": _column_pii(catalog, ref), **extra}


def _column_pii(catalog: Catalog, ref: ColumnRef) -> bool:
    if ref.node_id not in catalog:
        return False
    columns = catalog.node(ref.node_id).columns
    col = columns.get(ref.column) or next((c for c in columns.values() if c.name.lower() == ref.column.lower()), None)
    return bool(col and col.pii)
