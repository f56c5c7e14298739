"""dwml.predictions.entity_key: the text of a row's entity key, built column-wise with pyarrow.

One key column: the value as text (pyarrow's cast to string). Several: JSON text exactly as
`json.dumps(dict(zip(columns, row)), default=str)` writes it, e.g.
`{"customer_id": 42, "snapshot_date": "2024-03-05"}`. That text must not change: the SQL
post-hook macro `dwml_prediction_key` (macros/scoring/dwml_prediction_key.sql) writes the same
text for SQL scores, and users' dwml.predictions hold rows json.dumps wrote.

json.dumps of a dict is the join of the JSON text of its keys and values, so the key is built as
one vectorised join of a JSON fragment per column. A fragment is computed by pyarrow compute for
the types whose pyarrow text equals Python's (integers, booleans, printable-ASCII strings, dates,
timestamps without a zone in us or coarser, decimals); the rows and types where it would differ
(floats, other strings, zoned or nanosecond timestamps, times, binary, nested ...) are written by
Python's json encoder, for that column or those rows only.

>>> import pyarrow as pa
>>> entity_keys(pa.table({"id": [42, None], "shop": ['a"b', "c"]}), ["id", "shop"]).to_pylist()
['{"id": 42, "shop": "a\\\\"b"}', '{"id": null, "shop": "c"}']
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii

import pyarrow as pa
import pyarrow.compute as pc

# json.dumps(..., default=str) of one value; one encoder, not one per call as json.dumps makes.
_ENCODE = json.JSONEncoder(default=str).encode
# Python's date/datetime hold years 1..9999; outside them to_pylist raises, and so do the keys.
_FIRST_DAY, _LAST_DAY = -719162, 2932896  # 0001-01-01 and 9999-12-31 in days since 1970-01-01
_FIRST_US, _LAST_US = _FIRST_DAY * 86_400_000_000, (_LAST_DAY + 1) * 86_400_000_000 - 1
_PLAIN_ASCII = r"^[ -~]*$"  # characters json.dumps writes as they are (it escapes \x7f and above)


def entity_keys(batch: pa.Table, columns: list[str]) -> pa.Array:
    """The entity key of each row as text: the value for one column, JSON text for several."""
    if len(columns) == 1:
        column = batch.column(columns[0])
        try:
            return pc.cast(column, pa.string()).combine_chunks() if isinstance(column, pa.ChunkedArray) \
                else pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.array([None if v is None else str(v) for v in column.to_pylist()], type=pa.string())
    parts: list = []
    for i, name in enumerate(dict.fromkeys(columns)):  # a repeated name is one dict key, as in json.dumps
        parts.append(("{" if i == 0 else ", ") + json.dumps(name) + ": ")
        parts.append(json_fragments(batch.column(name)))
    parts.append("}")
    # A NULL fragment is a NULL value: JSON null.
    return pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="null")


def json_fragments(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each value's JSON text as json.dumps(value, default=str) writes it (NULL for a NULL value)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind = column.type
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return pc.cast(column, pa.string())  # str(int); True/False as true/false
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _strings(pc.cast(column, pa.string()))
    if pa.types.is_date64(kind):
        try:  # to_pylist floors a date64 that is not a whole day, pyarrow's text truncates it
            column = pc.cast(column, pa.date32())
        except pa.ArrowInvalid:
            return _python(column)
        kind = column.type
    if pa.types.is_date32(kind):
        days = pc.cast(column, pa.int32())
        return _quoted(pc.cast(column, pa.string()), column, _outside(days, _FIRST_DAY, _LAST_DAY))
    if pa.types.is_timestamp(kind) and kind.tz is None and kind.unit in ("s", "ms", "us"):
        return _timestamps(pc.cast(column, pa.timestamp("us")))
    if pa.types.is_decimal(kind):
        text = pc.cast(column, pa.string())
        # A scale a decimal32/64 cannot format gives '<scale out of range ...>' (and to_pylist raises).
        return _quoted(text, column, pc.starts_with(text, "<"))
    if pa.types.is_floating(kind) and kind.bit_width in (32, 64):
        values = column.to_pylist()
        # The C encoder writes a list of floats at once; no float's repr holds ", ".
        return pa.array(json.dumps(values)[1:-1].split(", ") if values else [], type=pa.string())
    return _python(column)


def _python(column: pa.Array) -> pa.Array:
    return pa.array([_ENCODE(v) for v in column.to_pylist()], type=pa.string())


def _outside(values: pa.Array, low: int, high: int) -> pa.Array:
    return pc.or_(pc.less(values, low), pc.greater(values, high))


def _quoted(text: pa.Array, column: pa.Array, by_python: pa.Array) -> pa.Array:
    """`text` as a JSON string (it holds no character JSON escapes); the rows in `by_python` are
    written by Python from `column` instead."""
    return _patched(pc.binary_join_element_wise('"', text, '"', ""), column, by_python, _ENCODE)


def _strings(column: pa.Array) -> pa.Array:
    """Printable ASCII with `\\` and `"` escaped; the rest (control characters, \\x7f and non-ASCII,
    which json.dumps writes as \\n, \\uXXXX ...) by Python's own JSON string encoder."""
    escaped = pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')
    by_python = pc.invert(pc.match_substring_regex(column, _PLAIN_ASCII))
    return _patched(pc.binary_join_element_wise('"', escaped, '"', ""), column, by_python, encode_basestring_ascii)


def _patched(fragments: pa.Array, column: pa.Array, by_python: pa.Array, encode) -> pa.Array:
    """`fragments` with the rows in `by_python` replaced by `encode` of their values in `column`."""
    by_python = pc.fill_null(by_python, False)
    if not pc.any(by_python).as_py():
        return fragments
    rows = pc.filter(column, by_python).to_pylist()
    return pc.replace_with_mask(fragments, by_python, pa.array([encode(v) for v in rows], type=pa.string()))


def _timestamps(column: pa.Array) -> pa.Array:
    """Python's str(datetime): 'YYYY-MM-DD HH:MM:SS', with '.ffffff' only when it is not zero."""
    text = pc.cast(column, pa.string())  # always '.ffffff' for microseconds
    text = pc.if_else(pc.ends_with(text, ".000000"), pc.utf8_slice_codeunits(text, 0, 19), text)
    micros = pc.cast(column, pa.int64())
    return _quoted(text, column, _outside(micros, _FIRST_US, _LAST_US))
