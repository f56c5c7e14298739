"""The shape of the parts of dbt's JSON artifacts that dwml reads, checked once when one is loaded.

dwml reads manifest.json, catalog.json and run_results.json as plain JSON (never through
dbt-core's classes). A file that parses but is not shaped like dbt's (a JSON array, a node set to
null, `columns` as a list, a name that is a number) would otherwise fail deep inside the catalog
with an AttributeError; here it is refused with one line naming the file, the place and what was
expected. Only what dwml reads is checked, so dbt may add fields freely.

>>> check_shape({"nodes": {"model.p.a": None}}, "manifest", "target/manifest.json")
Traceback (most recent call last):
...
dwml_py.errors.ConfigError: target/manifest.json is not a dbt manifest.json dwml can read: nodes['model.p.a'] is null, not an object.
Hint: the file was damaged or written by another tool; rerun `dbt parse` (or the dbt command that writes it) to rewrite it.
"""

from __future__ import annotations

from typing import Any

from dwml_py.errors import ConfigError

TEXT, OBJECT, LIST = "text", "object", "list"
_PYTHON = {TEXT: str, OBJECT: dict, LIST: list}

# Fields of a node (model, source, seed, test, ...) that dwml reads, and what each must be.
NODE_FIELDS = {
    "unique_id": TEXT, "name": TEXT, "resource_type": TEXT, "package_name": TEXT, "database": TEXT,
    "schema": TEXT, "alias": TEXT, "identifier": TEXT, "relation_name": TEXT, "description": TEXT,
    "source_description": TEXT, "compiled_code": TEXT, "compiled_sql": TEXT, "raw_code": TEXT, "raw_sql": TEXT,
    "source_name": TEXT, "original_file_path": TEXT, "column_name": TEXT, "attached_node": TEXT, "group": TEXT,
    "columns": OBJECT, "depends_on": OBJECT, "config": OBJECT, "meta": OBJECT, "tags": LIST, "checksum": OBJECT,
    "test_metadata": OBJECT,
}
COLUMN_FIELDS = {"name": TEXT, "description": TEXT, "data_type": TEXT, "type": TEXT, "meta": OBJECT,
                 "config": OBJECT, "tags": LIST}
CONFIG_FIELDS = {"materialized": TEXT, "severity": TEXT, "group": TEXT, "meta": OBJECT, "tags": LIST}
SECTIONS = {"manifest": ("nodes", "sources", "groups", "exposures", "macros"), "catalog": ("nodes", "sources"),
            "run_results": ()}


class _Refused(Exception):
    def __init__(self, where: str, value: Any, expected: str):
        super().__init__(where)
        self.where, self.value, self.expected = where, value, expected


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a text", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _expect(value: Any, kind: str, where: str) -> None:
    if value is not None and not isinstance(value, _PYTHON[kind]):
        raise _Refused(where, value, {TEXT: "a text", OBJECT: "an object", LIST: "a list"}[kind])


def _fields(obj: dict, fields: dict[str, str], where: str) -> None:
    for key, kind in fields.items():
        if key in obj:
            _expect(obj[key], kind, f"{where}.{key}")
    for key in ("tags",):
        for i, tag in enumerate(obj.get(key) or []):
            _expect(tag, TEXT, f"{where}.{key}[{i}]")


def _node(node: Any, where: str) -> None:
    if not isinstance(node, dict):
        raise _Refused(where, node, "an object")
    _fields(node, NODE_FIELDS, where)
    _fields(node.get("config") or {}, CONFIG_FIELDS, f"{where}.config")
    depends = (node.get("depends_on") or {}).get("nodes")
    _expect(depends, LIST, f"{where}.depends_on.nodes")
    for i, parent in enumerate(depends or []):
        _expect(parent, TEXT, f"{where}.depends_on.nodes[{i}]")
    kwargs = (node.get("test_metadata") or {}).get("kwargs")
    _expect(kwargs, OBJECT, f"{where}.test_metadata.kwargs")
    _expect((node.get("test_metadata") or {}).get("name"), TEXT, f"{where}.test_metadata.name")
    _expect((node.get("checksum") or {}).get("checksum"), TEXT, f"{where}.checksum.checksum")
    for name, column in (node.get("columns") or {}).items():
        column_where = f"{where}.columns[{name!r}]"
        if not isinstance(column, dict):
            raise _Refused(column_where, column, "an object")
        _fields(column, COLUMN_FIELDS, column_where)
        _fields(column.get("config") or {}, CONFIG_FIELDS, f"{column_where}.config")
        index = column.get("index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise _Refused(column_where + ".index", index, "a whole number")


def check_shape(document: Any, kind: str, where: str) -> dict:
    """`document` when it is shaped like a dbt `kind`.json where dwml reads it; ConfigError naming the
    first place that is not. `kind`: manifest, catalog or run_results."""
    try:
        if not isinstance(document, dict):
            raise _Refused("the top level", document, "an object")
        _expect(document.get("metadata"), OBJECT, "metadata")
        for section in SECTIONS[kind]:
            value = document.get(section)
            _expect(value, OBJECT, section)
            for uid, node in (value or {}).items():
                _node(node, f"{section}[{uid!r}]")
        if kind == "run_results":
            results = document.get("results")
            _expect(results, LIST, "results")
            for i, result in enumerate(results or []):
                if not isinstance(result, dict):
                    raise _Refused(f"results[{i}]", result, "an object")
                _expect(result.get("unique_id"), TEXT, f"results[{i}].unique_id")
                _expect(result.get("status"), TEXT, f"results[{i}].status")
    except _Refused as refused:
        place = refused.where if len(refused.where) <= 160 else refused.where[:157] + "..."
        raise ConfigError(f"{where} is not a dbt {kind}.json dwml can read: {place} is {_kind(refused.value)}, "
                          f"not {refused.expected}.",
                          hint="the file was damaged or written by another tool; rerun `dbt parse` (or the dbt "
                          "command that writes it) to rewrite it.") from None
    return document
