"""dwml_py.entity_keys: composite keys built column-wise equal, byte for byte, the text
json.dumps(dict(zip(columns, row)), default=str) writes (what earlier versions stored, and what
the dwml_prediction_key macro writes for SQL scores), for every key type and its edge cases."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from dwml_py import batch_scoring
from dwml_py.entity_keys import entity_keys, json_fragments


def reference(batch: pa.Table, columns: list[str]) -> list[str]:
    """The row-by-row text entity_keys must equal."""
    values = [batch.column(c).to_pylist() for c in columns]
    return [json.dumps(dict(zip(columns, row)), default=str) for row in zip(*values)]


def check(values, kind=None, other=None) -> list[str]:
    """Keys of (id, v) and (v, id) pairs equal the reference; returns the (id, v) keys."""
    v = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=kind)
    ids = pa.array(other if other is not None else range(len(v)), type=pa.int64())
    batch = pa.table({"id": ids, "v": v})
    for columns in (["id", "v"], ["v", "id"]):
        keys = entity_keys(batch, columns)
        assert keys.type == pa.string()
        assert keys.to_pylist() == reference(batch, columns)
    return entity_keys(batch, ["id", "v"]).to_pylist()


INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]


@pytest.mark.parametrize("kind", INT_TYPES, ids=str)
def test_integers_at_their_limits(kind):
    info = (0, 2 ** kind.bit_width - 1) if pa.types.is_unsigned_integer(kind) else \
        (-(2 ** (kind.bit_width - 1)), 2 ** (kind.bit_width - 1) - 1)
    check([info[0], info[1], 0, 1, None, info[0] + 1], kind)


def test_written_as_json_values():
    assert check([-42, None], pa.int64()) == ['{"id": 0, "v": -42}', '{"id": 1, "v": null}']
    assert check([True, False, None]) == ['{"id": 0, "v": true}', '{"id": 1, "v": false}', '{"id": 2, "v": null}']
    assert check([date(2024, 3, 5)]) == ['{"id": 0, "v": "2024-03-05"}']
    assert check(["a\"b\\c"]) == ['{"id": 0, "v": "a\\"b\\\\c"}']
    assert check([Decimal("-1.50")], pa.decimal128(5, 2)) == ['{"id": 0, "v": "-1.50"}']


def test_nulls_in_every_column_and_null_typed_columns():
    batch = pa.table({"a": pa.array([1, None, None, 4]), "b": pa.array(["x", None, "y", None]),
                      "c": pa.nulls(4), "d": pa.array([None, date(2024, 1, 1), None, None])})
    for columns in (["a", "b"], ["b", "c"], ["c", "a", "d"], ["a", "b", "c", "d"]):
        assert entity_keys(batch, columns).to_pylist() == reference(batch, columns)
    assert entity_keys(batch, ["c", "b"]).to_pylist()[1] == '{"c": null, "b": null}'


STRINGS = ["", " ", "plain", 'quote"d', "back\\slash", '\\"', '""', "\\\\", "tab\there", "new\nline", "cr\r",
           "\x00", "\x1f", "\x7f", "~", "café", "日本", "emoji 😀", "\u2028", "\ud7ff", "mixed é\n\"\\", None]


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.string_view()], ids=str)
def test_strings_escaped_as_json_does(kind):
    check(STRINGS, kind)


def test_strings_all_plain_and_all_escaped():
    check(["a", "b\\", None, '"'])
    check(["é", "\n", None])


def test_dates():
    days = [date(1, 1, 1), date(999, 12, 31), date(1969, 12, 31), date(1970, 1, 1), date(2024, 2, 29),
            date(9999, 12, 31), None]
    check(days, pa.date32())
    check(days, pa.date64())
    check(pa.array([-1, 86_400_000, None], pa.date64()))  # not a whole day: written by Python (floored)


def test_dates_outside_python_raise_as_before():
    with pytest.raises(OverflowError):
        entity_keys(pa.table({"a": [1], "d": pa.array([-800_000], pa.date32())}), ["a", "d"])


MOMENTS = [datetime(2024, 3, 5, 10, 0, 0), datetime(2024, 3, 5, 10, 0, 0, 500_000), datetime(2024, 3, 5, 0, 0, 0, 1),
           datetime(1969, 12, 31, 23, 59, 59, 999_999), datetime(1, 1, 1), datetime(999, 1, 2, 3, 4, 5, 6),
           datetime(9999, 12, 31, 23, 59, 59, 999_999), datetime(1970, 1, 1), None]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamps_in_every_unit(unit):
    if unit == "ns":  # ns holds 1677..2262; Python writes them (to_pylist gives pandas Timestamps)
        values = pa.array([0, 1, 1_000, 1_500_000_000_123_456_789, -1, None], pa.timestamp("ns"))
    else:
        moments = [m for m in MOMENTS if m is None or unit == "us" or m.microsecond % 1000 == 0]
        if unit == "s":
            moments = [m if m is None else m.replace(microsecond=0) for m in moments]
        values = pa.array(moments, pa.timestamp(unit))
    keys = check(values)
    if unit != "ns":
        assert keys[0] == '{"id": 0, "v": "2024-03-05 10:00:00"}'


def test_timestamps_with_a_time_zone():
    check(pa.array(MOMENTS[:4] + [None], pa.timestamp("us", tz="UTC")))
    check(pa.array([datetime(2024, 3, 5, 10, tzinfo=timezone.utc)], pa.timestamp("ms", tz="Europe/Paris")))


def _decimal(unscaled: int, scale: int) -> Decimal:
    return Decimal(f"{unscaled}E{-scale}")  # exact (Decimal arithmetic would round to 28 digits)


def test_decimals_of_every_scale_and_width():
    for kind in (pa.decimal128(10, 0), pa.decimal128(38, 0), pa.decimal128(12, 2), pa.decimal128(38, 10),
                 pa.decimal256(60, 20), pa.decimal64(18, 4), pa.decimal32(9, 3)):
        largest, scale = 10 ** kind.precision - 1, kind.scale
        check([_decimal(u, scale) for u in (0, -1, 15, largest, -largest, -7 * 10 ** scale)] + [None], kind)
    # exponent forms: a small value at a large scale, and a negative scale
    check([Decimal("0E-10"), Decimal("1E-10"), Decimal("-1.2E-7"), Decimal("0.000001")], pa.decimal128(20, 10))
    unscaled = pa.array([12, -3, 0, None], pa.int64()).cast(pa.decimal128(20, 0))
    negative_scale = pa.Array.from_buffers(pa.decimal128(20, -2), 4, unscaled.buffers(), null_count=1)
    assert check(negative_scale)[0] == '{"id": 0, "v": "1.2E+3"}'


def test_decimals_pyarrow_cannot_format_raise_as_before():
    # a decimal32 of scale 10 holds values pyarrow writes as '<scale out of range ...>'
    values = pa.array([Decimal("1E-10")], pa.decimal32(1, 10))
    with pytest.raises(ArithmeticError):
        entity_keys(pa.table({"a": [1], "d": values}), ["a", "d"])


def test_decimals_pyarrow_text_equals_python_text_on_random_values():
    rng = random.Random(3)
    for scale in range(-8, 39):
        unscaled = [rng.randint(0, 10 ** rng.randint(1, 18)) * rng.choice((1, -1)) for _ in range(60)] + [0]
        ints = pa.array(unscaled, pa.int64()).cast(pa.decimal128(38, 0))
        check(pa.Array.from_buffers(pa.decimal128(38, scale), len(unscaled), ints.buffers()))


def test_floats_and_other_types_written_by_python():
    check([0.1, -2.0, 1e300, 5e-324, float("nan"), float("inf"), float("-inf"), -0.0, None], pa.float64())
    check([0.1, 3.0, None], pa.float32())
    check(pa.array([1.5, None], pa.float16()))
    check([time(1, 2, 3), time(0, 0, 0, 5), None])
    check([timedelta(days=1, seconds=3), None])
    check([b"\x00ab", None])
    check([[1, 2], None, []])
    check([{"x": 1, "y": "é"}, None])
    check(pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())))


def test_chunked_and_dictionary_columns():
    chunked = pa.chunked_array([pa.array(["a", "é"]), pa.array([], pa.string()), pa.array([None, '"'])])
    check(chunked)
    check(pa.chunked_array([pa.array([1, 2], pa.int32()), pa.array([None, -4], pa.int32())]))
    check(pa.chunked_array([], pa.int64()), other=[])
    check(pa.array(["x", "y", "x", None, "é"]).dictionary_encode())
    check(pa.chunked_array([pa.array(["x", None]).dictionary_encode(), pa.array(["y", "x"]).dictionary_encode()]))
    check(pa.array([date(2024, 1, 1), date(2024, 1, 1), None]).dictionary_encode())


def test_zero_rows():
    batch = pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.float64()), "c": pa.array([], pa.string())})
    keys = entity_keys(batch, ["a", "b", "c"])
    assert keys.type == pa.string() and len(keys) == 0


def test_column_names_are_json_strings_and_repeats_collapse():
    batch = pa.table({'we"ird\\': [1, 2], "naïve": ["x", None], "b": [True, False]})
    for columns in (['we"ird\\', "naïve"], ["b", "naïve", "b"], ["naïve", 'we"ird\\', "naïve", "b"]):
        assert entity_keys(batch, columns).to_pylist() == reference(batch, columns)


def test_common_key_types_never_reach_python(monkeypatch):
    from dwml_py import entity_keys as module

    def python(value):
        raise AssertionError(f"{value!r} written by Python")

    for name in ("_python", "_ENCODE", "encode_basestring_ascii"):
        monkeypatch.setattr(module, name, python)
    batch = pa.table({"i": pa.array([1, None], pa.int32()), "b": [True, None], "s": ["a\\\"", None],
                      "d": [date(2024, 1, 1), None], "t": pa.array([datetime(2024, 1, 1), None], pa.timestamp("ms")),
                      "m": pa.array([Decimal("1.25"), None], pa.decimal128(9, 2)), "n": pa.nulls(2)})
    assert entity_keys(batch, batch.column_names).to_pylist() == reference(batch, batch.column_names)


def test_fragments_are_json_dumps_of_each_value():
    values = pa.array(["a", None, "ü\n"])
    assert json_fragments(values).to_pylist() == ['"a"', None, '"\\u00fc\\n"']


def test_single_column_keys_stay_the_values_text():
    batch = pa.table({"ts": pa.array([datetime(2024, 1, 1)], pa.timestamp("us")), "x": [2.0], "s": ["é"]})
    assert entity_keys(batch, ["ts"]).to_pylist() == ["2024-01-01 00:00:00.000000"]
    assert entity_keys(batch, ["x"]).to_pylist() == ["2"]
    assert entity_keys(batch, ["s"]).to_pylist() == ["é"]
    assert batch_scoring.entity_keys is entity_keys  # existing imports keep working


def _random_value(rng: random.Random, kind: str):
    if rng.random() < 0.1:
        return None
    if kind == "int":
        return rng.choice([rng.randint(-10, 10), rng.randint(-2 ** 63, 2 ** 63 - 1)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "text":
        alphabet = 'ab Z09"\\\n\t\x01\x7fé日😀~{}:,'
        plain = rng.random() < 0.7  # most rows plain ASCII, the rest anything
        chars = alphabet[:8] if plain else alphabet
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
    if kind == "date":
        return date(1, 1, 1) + timedelta(days=rng.randint(0, 3_652_058))
    if kind == "ts":
        moment = datetime(1, 1, 1) + timedelta(seconds=rng.randint(0, 315_537_897_599))
        return moment.replace(microsecond=rng.choice([0, 0, rng.randint(0, 999_999)]))
    if kind == "ts_ms":
        return datetime(1970, 1, 1) + timedelta(milliseconds=rng.randint(-10 ** 13, 10 ** 13))
    if kind == "dec":
        return Decimal(rng.randint(-10 ** rng.randint(1, 20), 10 ** 20)).scaleb(-6)
    return rng.choice([rng.uniform(-1e6, 1e6), float(rng.randint(-5, 5)), rng.random() * 1e-300])


def test_random_mixed_types_equal_json_dumps():
    rng = random.Random(18)
    kinds = {"int": pa.int64(), "bool": pa.bool_(), "text": pa.string(), "date": pa.date32(),
             "ts": pa.timestamp("us"), "ts_ms": pa.timestamp("ms"), "dec": pa.decimal128(38, 6), "x": pa.float64()}
    rows = 3000
    batch = pa.table({name: pa.array([_random_value(rng, name) for _ in range(rows)], type=kind)
                      for name, kind in kinds.items()})
    names = list(kinds)
    for _ in range(12):
        columns = rng.sample(names, rng.randint(2, len(names)))
        assert entity_keys(batch, columns).to_pylist() == reference(batch, columns), columns
    assert entity_keys(batch, names).to_pylist() == reference(batch, names)
