"""dbt artifacts that parse as JSON but are not shaped as dbt writes them are refused in one line,
naming the place, instead of failing deep inside the catalog. A property test mutates a valid
manifest at random places and checks that loading and using the catalog raises nothing else."""

import copy
import doctest

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwml_py import dbt_artifact_shapes
from dwml_py.catalog import _EXAMPLE_MANIFEST, Catalog
from dwml_py.errors import ConfigError, DwmlError

MANIFEST = copy.deepcopy(_EXAMPLE_MANIFEST)
MANIFEST["nodes"]["model.p.orders"].update({
    "schema": "main", "alias": "orders", "tags": ["pii"], "config": {"materialized": "table", "meta": {"owner": "ana"}},
    "depends_on": {"nodes": ["source.p.raw.orders"]}, "description": "Orders.", "checksum": {"checksum": "abc"}})
MANIFEST["nodes"]["test.p.not_null_orders_email"] = {
    "unique_id": "test.p.not_null_orders_email", "name": "not_null_orders_email", "resource_type": "test",
    "column_name": "email", "attached_node": "model.p.orders", "test_metadata": {"name": "not_null", "kwargs": {}},
    "depends_on": {"nodes": ["model.p.orders"]}, "config": {"severity": "ERROR"}}
MANIFEST["sources"] = {"source.p.raw.orders": {
    "unique_id": "source.p.raw.orders", "name": "orders", "source_name": "raw", "resource_type": "source",
    "schema": "raw", "identifier": "orders", "columns": {"id": {"name": "id", "data_type": "integer"}}}}


def use(manifest) -> None:
    catalog = Catalog.from_dicts(manifest)
    catalog.search("orders")
    catalog.search("email")
    for uid in catalog.unique_ids():
        catalog.node(uid).to_dict()
    catalog.show("orders")


def test_doctests():
    assert doctest.testmod(dbt_artifact_shapes).failed == 0


def test_the_valid_manifest_loads():
    use(MANIFEST)


@pytest.mark.parametrize("break_it, place", [
    (lambda m: [m], "the top level is a list"),
    (lambda m: {**m, "nodes": {**m["nodes"], "model.p.orders": None}}, "nodes['model.p.orders'] is null"),
    (lambda m: {**m, "nodes": {"model.p.orders": {**m["nodes"]["model.p.orders"], "columns": ["email"]}}},
     "nodes['model.p.orders'].columns is a list, not an object"),
    (lambda m: {**m, "nodes": {"model.p.orders": {**m["nodes"]["model.p.orders"], "name": 7}}},
     "nodes['model.p.orders'].name is a number, not a text"),
])
def test_misshapen_manifests_are_named(break_it, place):
    with pytest.raises(ConfigError) as refused:
        Catalog.from_dicts(break_it(copy.deepcopy(MANIFEST)))
    assert place in refused.value.message and "rerun `dbt parse`" in refused.value.hint


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, prefix + (i,))


PATHS = [p for p in _paths(MANIFEST) if p]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=JSON)
def test_any_value_anywhere_is_used_or_refused_in_one_line(path, value):
    manifest = copy.deepcopy(MANIFEST)
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        use(manifest)
    except DwmlError as exc:  # refused, saying where: fine; anything else fails the test
        assert "\n" not in exc.message
