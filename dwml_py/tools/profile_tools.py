"""The get_feature_stats tool: a warehouse-side profile of a table (`dwml profile MODEL`)."""

from __future__ import annotations

from typing import Annotated

from dwml_py.tools.registry import TOOLS, Param


@TOOLS.tool("get_feature_stats", cli=("profile",), read_only=False)
def get_feature_stats(
    project,
    model: Annotated[str, Param("table to profile: a model name in the target schema, or schema.table",
                                positional=True)],
    entity_key: Annotated[list[str] | None, Param("entity key columns, to count duplicated keys",
                                                  flag="--entity")] = None,
    store: Annotated[bool, Param("append the profile to dwml.table_profiles")] = True,
) -> dict:
    """Profile a feature table inside the warehouse: nulls, distinct values, ranges, quantiles, top values, freshness.

    Returns the profile as a dict (see TableProfile.to_dict) plus `stored_rows`.
    """
    from dwml_py.profiling import profile_relation, store_profile
    from dwml_py.relations import resolve_relation

    from dwml_py.warehouse import connect

    warehouse = connect(project, read_only=not store)
    try:
        schema, name = resolve_relation(project, warehouse, model)
        profile = profile_relation(warehouse, schema, name, entity_key=entity_key)
        stored = store_profile(warehouse, profile) if store else 0
    finally:
        warehouse.close()
    result = profile.to_dict()
    result["stored_rows"] = stored
    return result
