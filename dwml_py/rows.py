"""Rows in and out of dwml's own tables (dwml_py.tables): Arrow tables to append, decoded rows
to read, UPDATE statements, and the one-time table check per warehouse. Shared by every module
that writes or reads dwml's tables."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.tables import DWML_SCHEMA, TABLES, ensure_tables

if TYPE_CHECKING:
    import pyarrow as pa

# dwml's column types as Arrow type names (pa.<name>(), with arguments where needed)
_ARROW_TYPES = {"string": ("string",), "json": ("string",), "integer": ("int64",), "double": ("float64",),
                "boolean": ("bool_",), "timestamp": ("timestamp", "us"), "date": ("date32",)}


def utcnow() -> datetime:
    """Now in UTC, without a time zone: how dwml's timestamp columns hold time."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=_json_default, sort_keys=True)


def _json_default(value):
    # numpy scalars/arrays and paths show up in params all the time; anything else is kept as text
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def table_rows(table: str, rows: list[dict]) -> pa.Table:
    """Rows (dicts of Python values; JSON columns already as text) as an Arrow table of `table`'s columns."""
    spec = TABLES[table]
    import pyarrow as pa  # only writers need it; readers of dwml's tables do not pay its import

    def arrow_type(kind: str):
        name, *arguments = _ARROW_TYPES[kind]
        return getattr(pa, name)(*arguments)

    arrays = {c.name: pa.array([r.get(c.name) for r in rows], type=arrow_type(c.type)) for c in spec.columns}
    return pa.table(arrays)


def decode_row(table: str, row: dict) -> dict:
    """A row read from a dwml table, JSON-ready: JSON columns parsed, timestamps as ISO text."""
    types = {c.name: c.type for c in TABLES[table].columns}
    out = {}
    for key, value in row.items():
        kind = types.get(key)
        if kind == "json" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass  # written by something else: show it as it is
        elif isinstance(value, (datetime, date)):
            value = value.isoformat()
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def select_rows(warehouse, table: str, where: exp.Expression | None = None, order_by: list | None = None,
                limit: int | None = None) -> list[dict]:
    """Decoded rows of one of dwml's tables; [] when the table does not exist yet."""
    if not warehouse.table_exists(DWML_SCHEMA, table):
        return []
    query = exp.select(*[sqlmod.column(c) for c in TABLES[table].column_names()]).from_(
        sqlmod.table(DWML_SCHEMA, table))
    if where is not None:
        query = query.where(where)
    if order_by:
        query = query.order_by(*order_by)
    if limit is not None:
        query = query.limit(int(limit))
    return [decode_row(table, r) for r in warehouse.fetch_rows(query)]


def timestamp_literal(value: datetime) -> exp.Expression:
    return exp.cast(sqlmod.literal(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)


def update_statement(table: str, values: dict, where: exp.Expression) -> exp.Update:
    types = {c.name: c.type for c in TABLES[table].columns}
    assignments = []
    for name, value in values.items():
        if types[name] == "timestamp" and value is not None:
            value_expr = timestamp_literal(value)
        elif types[name] == "json":
            value_expr = sqlmod.literal(to_json(value))
        else:
            value_expr = sqlmod.literal(value)
        assignments.append(exp.EQ(this=sqlmod.column(name), expression=value_expr))
    return exp.Update(this=sqlmod.table(DWML_SCHEMA, table), expressions=assignments, where=exp.Where(this=where))


def ensure_once(warehouse) -> None:
    # ensure_tables costs a metadata query per table: once per warehouse object is enough
    if not getattr(warehouse, "_dwml_tables_ready", False):
        ensure_tables(warehouse)
        with contextlib.suppress(AttributeError):
            warehouse._dwml_tables_ready = True
