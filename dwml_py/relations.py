"""Which warehouse table a name means: a dbt model/source/seed name (through
target/manifest.json), `schema.table`, or a bare table name in the target's schema.

Shared by every command that takes a model or relation name (profile, governance, predict,
explain), so they all resolve names the same way.
"""

from __future__ import annotations

from sqlglot import exp

from dwml_py.errors import DwmlError, NotFoundError, did_you_mean


def list_relations(warehouse) -> list[tuple[str, str]]:
    """(schema, name) of every table and view the warehouse shows in information_schema."""
    query = exp.select("table_schema", "table_name").from_("information_schema.tables")
    try:
        return [(r["table_schema"], r["table_name"]) for r in warehouse.fetch_rows(query)]
    except Exception:  # an engine without information_schema: the error then lists no names
        return []


def resolve_relation(project, warehouse, model: str) -> tuple[str, str]:
    """(schema, table) for `model`: a dbt model/source/seed name through target/manifest.json when
    there is one, else "schema.table" as given, or a bare name in the target's schema."""
    relation = _relation_from_manifest(project, model)
    if relation is not None and warehouse.table_exists(*relation):
        return relation
    if "." in model:
        schema, _, name = model.rpartition(".")
    else:
        schema, name = project.profile.settings.get("schema", "main"), model
    if warehouse.table_exists(schema, name):
        return schema, name
    known = list_relations(warehouse)
    # DuckDB and most warehouses fold unquoted names: accept a name that differs only in case
    folded = [(s, n) for s, n in known if s.lower() == schema.lower() and n.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    choices = [n for s, n in known if s == schema] + [f"{s}.{n}" for s, n in known]
    raise NotFoundError(
        f"No table or view {model!r} in the warehouse (looked for {schema}.{name}).",
        hint=did_you_mean(model, choices) + " Build it first with `dbt run -s MODEL` if it is a dbt model.",
    )


def _relation_from_manifest(project, model: str) -> tuple[str, str] | None:
    if not project.manifest_path.is_file():
        return None
    from dwml_py.catalog import Catalog
    from dwml_py.manifest_state import check_project_name

    try:
        catalog = Catalog.from_files(project.manifest_path)
        check_project_name(project, {"metadata": catalog.metadata}, project.manifest_path)  # not another project's
        node = catalog.node(catalog.resolve(model))
    except DwmlError:  # not a dbt name: fall back to warehouse names
        return None
    return (node.schema, node.alias) if node.schema and node.alias else None
