"""The columns of a built relation and their types: the one place every command gets them from.

1. target/catalog.json, when it is current (newer than every file dbt parses) and lists the
   relation: what the warehouse had at `dbt docs generate`, read without a query.
2. Else the warehouse itself (information_schema, one query per schema for engines that have
   it): what `dbt run` built, whether or not anyone documented it or ran `dbt docs generate`.
3. Else (no warehouse could be opened) a stale catalog.json entry, and last the columns the yml
   documents. yml is documentation: it describes columns, it is not where they come from.

A relation the warehouse does not have is "not built" (`built` False), which commands turn into
"run `dbt run --select X`" rather than a failed query later.
"""

from __future__ import annotations

from dataclasses import dataclass

from dwml_py.errors import DwmlError


@dataclass(slots=True)
class Found:
    columns: dict[str, dict]  # name -> {"name", "type", "index"} in the relation's order
    source: str  # "catalog", "warehouse" or "yml" (nothing found: the yml columns stand)
    built: bool | None  # None: nobody could say (no warehouse)


class RelationColumns:
    """Columns of manifest nodes from catalog.json or the warehouse (see the module doc)."""

    def __init__(self, catalog_doc: dict | None = None, catalog_current: bool = True, warehouse=None,
                 notes: list[str] | None = None):
        self._catalog: dict[str, dict] = {}
        if catalog_doc is not None:
            self._catalog.update(catalog_doc.get("nodes") or {})
            self._catalog.update(catalog_doc.get("sources") or {})
        self.catalog_current = catalog_current
        self.warehouse = warehouse
        self.notes = notes if notes is not None else []
        self._schemas: dict[str, dict[str, list[tuple[str, str]]] | None] = {}
        self._broken = False  # the warehouse failed once: do not ask (and note) again for every node

    @property
    def has_types(self) -> bool:
        return bool(self._catalog) or self.warehouse is not None

    def lookup(self, unique_id: str, raw: dict) -> Found:
        entry = self._catalog.get(unique_id)
        if entry and self.catalog_current:
            return Found(_from_catalog(entry), "catalog", True)
        built = None
        relation = _relation_parts(raw)
        if relation is not None and self.warehouse is not None and not self._broken:
            listed = self._warehouse_columns(*relation)
            if listed is not None:
                if listed:
                    return Found({c: {"name": c, "type": t, "index": i} for i, (c, t) in enumerate(listed)},
                                 "warehouse", True)
                return Found({}, "yml", False)
        if entry:  # stale, but closer to the warehouse than yml
            return Found(_from_catalog(entry), "catalog", built)
        return Found({}, "yml", built)

    def _warehouse_columns(self, schema: str, name: str) -> list[tuple[str, str]] | None:
        """The relation's (column, type) list, [] when it does not exist, None when the lookup failed."""
        try:
            by_schema = getattr(self.warehouse, "schema_columns", None)
            if by_schema is None:
                return self.warehouse.columns(schema, name)
            key = schema.lower()
            if key not in self._schemas:
                listed = by_schema(schema)
                self._schemas[key] = {t.lower(): cols for t, cols in listed.items()}
            tables = self._schemas[key]
            return tables.get(name.lower(), [])
        except (DwmlError, Exception) as exc:  # columns must not take the catalog down: yml stands in
            self._broken = True
            message = exc.message if isinstance(exc, DwmlError) else str(exc)
            self.notes.append(f"could not list columns in the warehouse ({message.splitlines()[0][:200]}): "
                              "columns are the yml-documented ones.")
            return None


def _from_catalog(entry: dict) -> dict[str, dict]:
    columns = {c.get("name") or n: c for n, c in (entry.get("columns") or {}).items()}
    return dict(sorted(columns.items(), key=lambda kv: kv[1].get("index") or 0))


def _relation_parts(raw: dict) -> tuple[str, str] | None:
    if (raw.get("config") or {}).get("materialized") == "ephemeral":
        return None
    schema, name = raw.get("schema"), raw.get("identifier") or raw.get("alias") or raw.get("name")
    return (schema, name) if schema and name else None


def build_command(node) -> str:
    """The dbt command that puts a node's relation into the warehouse."""
    kind = node.resource_type
    if kind == "seed":
        return f"dbt seed --select {node.name}"
    if kind == "snapshot":
        return f"dbt snapshot --select {node.name}"
    return f"dbt run --select {node.name}"
