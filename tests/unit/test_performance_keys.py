"""The evaluation's join of dwml.predictions.entity_key to label rows, for every common key type
(dwml_py.performance._key_match): keys as batch scoring writes them (batch_scoring.entity_keys)
and as the engine casts them to text (what SQL scoring's key macro writes where its text differs
from pyarrow's) both find their label row, one version scored each way compares row for row,
and the join stays an equality (a hash join on DuckDB).

`check_every_key_type` runs on any warehouse: tests/postgres/test_postgres_key_match.py runs it
on PostgreSQL."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from sqlglot import exp

from dwml_py import performance as perf
from dwml_py import sql as sqlmod
from dwml_py.batch_scoring import entity_keys
from dwml_py.tables import DWML_SCHEMA, ensure_tables
from dwml_py.tracking import table_rows
from dwml_py.warehouse.duckdb import DuckDBWarehouse

ROWS = 40
TABLE = "key_rows"
BASE = datetime(2024, 3, 5, 10, 0, 0)
FRACTIONS = [0, 500_000, 1, 123_456]  # microseconds: none, '.5', '.000001', six digits
CASES = {  # ML model name -> entity columns
    "int": ["n"], "text": ["code"], "timestamp": ["ts"], "timestamp_fraction": ["ts_frac"], "double": ["x"],
    "real": ["r"], "decimal": ["dec"], "timestamptz": ["tz"], "date": ["d_day"],
    "bool_int": ["flag", "grp"], "date_timestamp": ["d", "t"],
    "every_type": ["n", "code", "ts_frac", "x", "r", "dec", "flag", "d", "tz"],
}


def key_rows() -> pa.Table:
    """ROWS rows, each key column (or pair) unique; label y, made up."""
    n = list(range(ROWS))
    frac = [BASE + timedelta(seconds=i, microseconds=FRACTIONS[i % 4]) for i in n]
    x = [i / 2 for i in n]  # 0.0, 0.5, 1.0: integral doubles are where '2' and '2.0' differ
    x[-1] = 1e20
    return pa.table({
        "n": pa.array(n, pa.int64()),
        "code": [f"c'{i}\" \\ é" for i in n],
        "ts": pa.array([BASE + timedelta(seconds=i) for i in n], pa.timestamp("us")),
        "ts_frac": pa.array(frac, pa.timestamp("us")),
        "x": pa.array(x, pa.float64()),
        "r": pa.array([i / 10 for i in n], pa.float32()),  # 0.1 is not a float32: read back as float32
        "dec": pa.array([Decimal(i) / 4 for i in n], pa.decimal128(10, 2)),
        "tz": pa.array(frac, pa.timestamp("us", tz="UTC")),
        "d_day": pa.array([date(2024, 1, 1) + timedelta(days=i) for i in n], pa.date32()),
        "flag": [i % 2 == 0 for i in n],
        "grp": pa.array([i // 2 for i in n], pa.int32()),
        "d": pa.array([date(2024, 1, 1) + timedelta(days=i // 4) for i in n], pa.date32()),
        "t": pa.array(frac, pa.timestamp("us")),
        "y": pa.array([int(i % 3 == 0) for i in n], pa.int64()),
    })


def spec(schema: str, name: str) -> dict:
    """Labels in the feature table itself ('same' join), no snapshot column."""
    return {"model_name": name, "task": "classification", "feature_model": "model.p.k", "feature_schema": schema,
            "feature_table": TABLE, "entity": CASES[name], "timestamp": None, "label_model": "model.p.k",
            "label_schema": schema, "label_table": TABLE, "label_column": "y", "features": ["x"]}


def engine_text(entity: list[str], types: dict) -> exp.Expression | None:
    """The key as the engine casts it to text: the value for one column; for several the JSON
    dwml_prediction_key builds around those texts (numbers and booleans bare, others quoted).
    None when a key column is text (its JSON string would need escaping: the macro's own test)."""
    def text(name):
        return exp.cast(sqlmod.column(name), exp.DataType.Type.VARCHAR)

    if len(entity) == 1:
        return text(entity[0])
    parts = []
    for i, name in enumerate(entity):
        t = types[name]
        if pa.types.is_string(t):
            return None
        bare = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
        parts += [sqlmod.literal(("{" if i == 0 else ", ") + f'"{name}": '),
                  *([text(name)] if bare else [sqlmod.literal('"'), text(name), sqlmod.literal('"')])]
    return exp.Concat(expressions=[*parts, sqlmod.literal("}")])


def load(wh, schema: str) -> pa.Table:
    """The key table, and per case version 1 scored with batch keys, version 2 with engine texts
    (score = n / 1000 + version, so each pair names its row)."""
    ensure_tables(wh)
    wh.create_schema(schema)
    wh.write_arrow(key_rows(), schema, TABLE, mode="replace")
    stored = wh.fetch_arrow(exp.select("*").from_(sqlmod.table(schema, TABLE)).order_by(sqlmod.column("n")))
    scored_at = datetime(2025, 1, 1)
    for name, entity in CASES.items():
        keys = entity_keys(stored, entity)
        wh.write_arrow(table_rows("predictions", [
            {"model_name": name, "version": 1, "entity_key": keys[i].as_py(), "snapshot_at": None,
             "score": stored.column("n")[i].as_py() / 1000 + 1, "batch_id": "batch", "source": "batch",
             "scored_at": scored_at} for i in range(stored.num_rows)]), DWML_SCHEMA, "predictions")
        text = engine_text(entity, perf.key_types(wh, spec(schema, name)))
        if text is None:
            continue
        rows = exp.select(sqlmod.literal(name), sqlmod.literal(2), text, exp.cast(exp.Null(), "TIMESTAMP"),
                          sqlmod.column("n") / 1000 + 2, sqlmod.literal("sql"), sqlmod.literal("sql"),
                          exp.cast(sqlmod.literal(scored_at.isoformat(sep=" ")), "TIMESTAMP")
                          ).from_(sqlmod.table(schema, TABLE))
        columns = ["model_name", "version", "entity_key", "snapshot_at", "score", "batch_id", "source", "scored_at"]
        wh.execute(exp.insert(rows, sqlmod.table(DWML_SCHEMA, "predictions"), columns=columns))
    return stored


def pairs(wh, schema: str, name: str, versions: list[int], typed: bool = True) -> list[tuple]:
    """(row n, label, score of each version) of the evaluation's join, sorted."""
    s = spec(schema, name)
    types = perf.key_types(wh, s) if typed else None
    got = wh.fetch_arrow(perf.predictions_query(name, versions, s, wh.dialect, wh.capabilities.asof_join, "month",
                                                [], types)).to_pydict()
    scores = [got[perf.score_column(k)] for k in range(len(versions))]
    return sorted((round((s0 - versions[0]) * 1000), label, *[round(s[i], 6) for s in scores])
                  for i, (s0, label) in enumerate(zip(scores[0], got[perf.LABEL_COLUMN])))


def check_every_key_type(wh, schema: str) -> None:
    stored = load(wh, schema)
    labels = stored.column("y").to_pylist()
    for name, entity in CASES.items():
        sql_scored = engine_text(entity, perf.key_types(wh, spec(schema, name))) is not None
        for versions in ([1], [2], [1, 2]) if sql_scored else ([1],):
            expected = [(i, labels[i], *[round(i / 1000 + v, 6) for v in versions]) for i in range(ROWS)]
            assert pairs(wh, schema, name, versions) == expected, (name, versions)


@pytest.fixture(scope="module")
def duck():
    wh = DuckDBWarehouse(":memory:")
    check_every_key_type(wh, "main")
    yield wh
    wh.close()


def test_every_key_type_finds_its_label_row_from_batch_and_engine_texts(duck):
    # the checks ran in the fixture; the texts really differ where it matters
    texts = duck.fetch_rows("select model_name, version, entity_key from dwml.predictions "
                            "where round((score - version) * 1000) = 4")  # row n = 4
    by = {(r["model_name"], r["version"]): r["entity_key"] for r in texts}
    assert by[("timestamp", 1)] == "2024-03-05 10:00:04.000000" and by[("timestamp", 2)] == "2024-03-05 10:00:04"
    assert by[("double", 1)] == "2" and by[("double", 2)] == "2.0"
    assert by[("bool_int", 1)] == '{"flag": true, "grp": 2}' and by[("bool_int", 2)] == '{"flag": true, "grp": 2}'
    assert by[("date_timestamp", 1)] == '{"d": "2024-01-02", "t": "2024-03-05 10:00:04"}'  # str(datetime)
    assert by[("date_timestamp", 2)] == '{"d": "2024-01-02", "t": "2024-03-05 10:00:04"}'
    assert by[("timestamp_fraction", 1)] == "2024-03-05 10:00:04.000000"
    assert by[("timestamptz", 1)] == "2024-03-05 10:00:04.000000+0000"
    assert by[("timestamptz", 2)] == "2024-03-05 10:00:04+00"
    fraction = duck.fetch_rows("select version, entity_key from dwml.predictions where model_name = "
                               "'timestamp_fraction' and round((score - version) * 1000) = 1 order by version")
    assert [r["entity_key"] for r in fraction] == ["2024-03-05 10:00:01.500000", "2024-03-05 10:00:01.5"]


def test_text_comparison_missed_them(duck):
    """The defect this fixes: comparing texts finds no timestamp row and loses integral doubles."""
    assert pairs(duck, "main", "timestamp", [1], typed=False) == []
    assert len(pairs(duck, "main", "double", [1], typed=False)) == ROWS // 2  # 0.5 agrees, 2 and 2.0 do not
    assert len(pairs(duck, "main", "int", [1], typed=False)) == ROWS  # texts that agree still do


def test_the_join_stays_an_equality_and_a_hash_join(duck):
    s = spec("main", "every_type")
    types = perf.key_types(duck, s)
    assert {c: str(t) for c, t in types.items()} == {
        "n": "int64", "code": "string", "ts_frac": "timestamp[us]", "x": "double", "r": "float", "dec":
        "decimal128(10, 2)", "flag": "bool", "d": "date32[day]", "tz": "timestamp[us, tz=Etc/UTC]"}
    rendered = {}
    for dialect in ("duckdb", "postgres", "spark"):
        on = perf._key_match(s["entity"], "p0", types, dialect)
        assert isinstance(on, exp.And) and all(isinstance(e, exp.EQ) for e in on.flatten())
        rendered[dialect] = on.sql(dialect)
    assert "TRY_CAST(\"p0\".\"entity_key\" ->> '$.ts_frac' AS TIMESTAMP) = \"l\".\"ts_frac\"" in rendered["duckdb"]
    assert "TRY_CAST(GET_JSON_OBJECT(`p0`.`entity_key`, '$.r') AS FLOAT) = `l`.`r`" in rendered["spark"]
    assert "CAST(JSON_EXTRACT_PATH_TEXT(CAST(\"p0\".\"entity_key\" AS JSON), 'dec') AS DECIMAL(10, 2)) = " \
           "\"l\".\"dec\"" in rendered["postgres"]
    assert "TRY_CAST" not in rendered["postgres"]  # no TRY_CAST there (see performance.py)
    for sql in rendered.values():
        assert " OR " not in sql.upper() and " LIKE " not in sql.upper()
    query = perf.predictions_query("every_type", [1], s, "duckdb", True, "month", [], types)
    plan = "\n".join(r[1] for r in duck.con.sql("EXPLAIN " + query.sql("duckdb")).fetchall())
    joins = [title for title in re.findall(r"╭─ ([^─]+?) ─", plan) if "Join" in title]
    assert joins == ["Hash Join"], plan  # not a nested-loop or blockwise join


def test_a_key_that_does_not_parse_matches_nothing_on_duckdb(duck):
    duck.write_arrow(table_rows("predictions", [
        {"model_name": "timestamp", "version": 3, "entity_key": key, "snapshot_at": None, "score": 0.5,
         "batch_id": "bad", "source": "batch", "scored_at": datetime(2025, 1, 1)}
        for key in ("not a time", "2024-03-05 10:00:01")]), DWML_SCHEMA, "predictions")
    assert pairs(duck, "main", "timestamp", [3]) == [(-2500, 0, 0.5)]  # the parseable one (row 1, label 0)


@pytest.mark.parametrize(("arrow_type", "sql"), [
    (pa.string(), None), (pa.int32(), None), (pa.uint64(), None), (pa.dictionary(pa.int8(), pa.string()), None),
    (pa.bool_(), "BOOLEAN"), (pa.float64(), "DOUBLE"), (pa.float32(), "REAL"), (pa.decimal128(38, 4),
                                                                               "DECIMAL(38, 4)"),
    (pa.decimal256(50, 2), None), (pa.date32(), "DATE"), (pa.timestamp("s"), "TIMESTAMP"),
    (pa.timestamp("ns"), "TIMESTAMP_NS"), (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"), (pa.time64("us"), "TIME"),
    (pa.list_(pa.int64()), None), (None, None)])
def test_key_sql_type(arrow_type, sql):
    got = perf.key_sql_type(arrow_type)
    assert (got.sql("duckdb") if got is not None else None) == sql


def test_the_latest_score_is_per_key_value_not_per_key_text(duck):
    """A batch score ('2') and a later SQL score ('2.0') of one row: the later one counts, once."""
    stored = duck.fetch_arrow("select x, cast(x as varchar) as engine_text from main.key_rows order by n")
    batch, sql = entity_keys(stored, ["x"]), stored.column("engine_text")  # '2' and '2.0'
    rows = []
    for keys, score, at in ((batch, 0.25, datetime(2025, 1, 1)), (sql, 0.75, datetime(2025, 1, 2))):
        rows += [{"model_name": "double", "version": 5, "entity_key": k, "snapshot_at": None, "score": score,
                  "batch_id": str(at), "source": "batch", "scored_at": at} for k in keys.to_pylist()]
    duck.write_arrow(table_rows("predictions", rows), DWML_SCHEMA, "predictions")
    s = spec("main", "double")
    got = duck.fetch_arrow(perf.predictions_query("double", [5], s, "duckdb", True, "month", [],
                                                  perf.key_types(duck, s))).to_pydict()
    assert got[perf.score_column(0)] == [0.75] * ROWS
