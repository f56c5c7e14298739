"""SparkWarehouse on a local SparkSession: Arrow in and out with exact values, append by name,
batches streamed per partition in the query's order, DELETE/UPDATE rewritten through a staging
table, dwml's tables created and migrated (ALTER TABLE ... ADD COLUMNS), the `spark` target of
profiles.yml and the one session shared with dbt."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, WarehouseError
from dwml_py.tables import TABLES, ensure_tables
from dwml_py.warehouse import connect
from dwml_py.warehouse.spark import SparkWarehouse
from tests.engine_sql_checks import round_trip_sample

pytestmark = [pytest.mark.spark]

HOSTILE = 'we"ird; drop `table` x; --'  # a column name; Spark's metastore only takes \w+ table names


def _sample() -> pa.Table:
    return round_trip_sample(HOSTILE, code=pa.array(["a", "b", "a"]).dictionary_encode(), nothing=pa.nulls(3))


def _select(schema: str, name: str, order: str | None = None) -> exp.Select:
    query = sqlmod.select_all(sqlmod.table(schema, name))
    return query.order_by(sqlmod.column(order)) if order else query


def test_round_trip_keeps_types_nulls_and_exact_values(spark_warehouse):
    data = _sample()
    assert spark_warehouse.write_arrow(data, "wh_test", "round_trip", mode="replace") == 3
    back = spark_warehouse.fetch_arrow(_select("wh_test", "round_trip", "id"))
    assert back.schema.names == data.schema.names
    assert [back.schema.field(n).type for n in ("id", "small", "text", "x", "f32", "flag", "day", "at", "code")] == [
        pa.int64(), pa.int32(), pa.string(), pa.float64(), pa.float32(), pa.bool_(), pa.date32(), pa.timestamp("us"),
        pa.string()]
    rows = back.to_pylist()
    assert [r["text"] for r in rows] == ["plain", "", None]
    assert [r["tricky"] for r in rows] == data.column("tricky").to_pylist()
    assert rows[0]["x"] == 0.1 + 0.2 and rows[2]["x"] == 1 / 3 and math.isnan(rows[1]["x"])  # bit-exact doubles
    assert [r["small"] for r in rows] == [1, None, -7] and [r["flag"] for r in rows] == [True, False, None]
    assert rows[0]["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 678901) and rows[1]["day"] is None
    assert [r["code"] for r in rows] == ["a", "b", "a"] and [r["nothing"] for r in rows] == [None] * 3
    assert [r[HOSTILE] for r in rows] == ["a", "b", "c"]
    types = dict(spark_warehouse.columns("wh_test", "round_trip"))
    assert types["x"] == "double" and types["at"] == "timestamp" and types["nothing"] == "string"
    assert spark_warehouse.columns("wh_test", "no_such_table") == [] and spark_warehouse.columns("no_such_schema", "t") == []


def test_append_matches_columns_by_name_and_names_unknown_ones(spark_warehouse):
    wh = spark_warehouse
    wh.write_arrow(pa.table({"a": [1], "b": ["x"]}), "wh_test", "appended", mode="replace")
    wh.write_arrow(pa.table({"b": ["y"], "a": [2]}), "wh_test", "appended")  # other order
    wh.write_arrow(pa.table({"a": [3]}), "wh_test", "appended")  # b missing: NULL
    wh.write_arrow(pa.table({"a": pa.array([], pa.int64())}), "wh_test", "appended")  # nothing to add
    assert wh.fetch_rows(_select("wh_test", "appended", "a")) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"},
                                                                   {"a": 3, "b": None}]
    with pytest.raises(WarehouseError, match=r"no column\(s\) \['c'\]") as info:
        wh.write_arrow(pa.table({"a": [4], "c": [1.0]}), "wh_test", "appended")
    assert "mode='replace'" in info.value.hint
    assert wh.fetch_scalar("SELECT count(*) FROM wh_test.appended") == 3  # nothing half-written
    wh.write_arrow(pa.table({"z": [9.5]}), "wh_test", "appended", mode="replace")
    assert wh.columns("wh_test", "appended") == [("z", "double")]
    wh.write_arrow(pa.table({"e": pa.array([], pa.int64())}), "wh_test", "empty", mode="replace")
    assert wh.columns("wh_test", "empty") == [("e", "bigint")] and wh.fetch_scalar("SELECT count(*) FROM wh_test.empty") == 0


def test_fetch_batches_streams_partitions_in_order(spark_warehouse):
    # 4 partitions of 2,500 rows, sorted descending across them: batches come in the query's order
    query = ("SELECT id, CAST(id AS DOUBLE) / 3 AS v, CAST(id AS STRING) AS s, "
             "TIMESTAMP'2024-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id) AS at "
             "FROM range(0, 10000, 1, 4) ORDER BY id DESC")
    batches = list(spark_warehouse.fetch_batches(query, batch_size=1000))
    assert all(b.num_rows <= 1000 for b in batches) and len(batches) >= 10
    table = pa.Table.from_batches(batches)
    assert table.column("id").to_pylist() == list(range(9999, -1, -1))
    assert table.schema.field("at").type == pa.timestamp("us") and table.schema.field("v").type == pa.float64()
    assert table.column("at")[0].as_py() == dt.datetime(2024, 1, 1) + dt.timedelta(seconds=9999)
    assert table.column("v")[0].as_py() == 9999 / 3 and table.column("s")[1].as_py() == "9998"
    assert list(spark_warehouse.fetch_batches("SELECT 1 AS x WHERE false")) == []
    assert spark_warehouse.fetch_arrow(query).equals(table)


def test_delete_and_update_are_rewritten_through_a_staging_table(spark_warehouse):
    wh = spark_warehouse
    wh.write_arrow(pa.table({"k": [1, 2, 3, 4], "v": ["a", None, "c", "d"], "n": [1.0, 2.0, None, 4.0]}),
                   "wh_test", "rows", mode="replace")
    target = sqlmod.table("wh_test", "rows")
    wh.execute(exp.delete(target, where=sqlmod.column("v").eq(sqlmod.literal("c"))))
    # a NULL condition keeps the row, as DELETE does (v = 'x' is NULL where v is NULL)
    assert wh.fetch_rows(_select("wh_test", "rows", "k")) == [
        {"k": 1, "v": "a", "n": 1.0}, {"k": 2, "v": None, "n": 2.0}, {"k": 4, "v": "d", "n": 4.0}]
    wh.execute(exp.update(target, {"v": sqlmod.literal("z"), "n": exp.Mul(this=sqlmod.column("n"),
                                                                           expression=sqlmod.literal(10))},
                          where=sqlmod.column("k").neq(sqlmod.literal(4))))
    assert wh.fetch_rows(_select("wh_test", "rows", "k")) == [
        {"k": 1, "v": "z", "n": 10.0}, {"k": 2, "v": "z", "n": 20.0}, {"k": 4, "v": "d", "n": 4.0}]
    wh.execute("DELETE FROM wh_test.rows WHERE k > 1")  # text is parsed as Spark SQL and rewritten too
    assert wh.fetch_rows(_select("wh_test", "rows", "k")) == [{"k": 1, "v": "z", "n": 10.0}]
    wh.execute(exp.delete(target))
    assert wh.fetch_scalar("SELECT count(*) FROM wh_test.rows") == 0
    assert not [t for t in wh.fetch_rows("SHOW TABLES IN wh_test") if t["tableName"].startswith("_dwml_rewrite")]


def test_errors_name_the_sql_and_the_session_stays_usable(spark_warehouse):
    with pytest.raises(WarehouseError, match="Spark refused a query") as info:
        spark_warehouse.fetch_arrow("SELECT * FROM wh_test.no_such_table")
    assert "SQL: SELECT * FROM wh_test.no_such_table" in str(info.value) and "\tat " not in str(info.value)
    assert spark_warehouse.fetch_scalar("SELECT 1") == 1
    with spark_warehouse.transaction():  # no transactions: the block just runs
        spark_warehouse.write_arrow(pa.table({"v": [1]}), "wh_test", "tx", mode="replace")
    assert spark_warehouse.fetch_scalar("SELECT sum(v) FROM wh_test.tx") == 1


def test_dwml_tables_are_created_once_and_migrated(spark_warehouse):
    schema = "dwml_tables_test"
    first = ensure_tables(spark_warehouse, schema=schema)
    assert set(first) == set(TABLES) and all(v == ["(created)"] for v in first.values())
    assert ensure_tables(spark_warehouse, schema=schema) == {}
    types = dict(spark_warehouse.columns(schema, "runs"))
    assert types["started_at"] == "timestamp" and types["row_count"] == "bigint" and types["params"] == "string"
    assert dict(spark_warehouse.columns(schema, "drift_metrics"))["is_drift"] == "boolean"
    described = {r["col_name"]: r["data_type"] for r in spark_warehouse.fetch_rows(f"DESCRIBE TABLE EXTENDED {schema}.runs")}
    assert described["Provider"] == "parquet"  # not Hive text, where a newline in a JSON value would split a row
    # a table made by an older dwml, without a column the definition has now: the column is added
    spark_warehouse.execute(f"CREATE OR REPLACE TEMPORARY VIEW old AS SELECT * FROM {schema}.audit_log")
    spark_warehouse.drop_table(schema, "audit_log")
    columns = [c for c in TABLES["audit_log"].columns if c.name != "details"]
    spark_warehouse.execute("CREATE TABLE " + sqlmod.render(sqlmod.table(schema, "audit_log"), "spark") + " ("
                            + ", ".join(f"`{c.name}` STRING" if c.type in ("string", "json") else f"`{c.name}` TIMESTAMP"
                                        for c in columns) + ") USING parquet")
    assert ensure_tables(spark_warehouse, schema=schema) == {"audit_log": ["details"]}
    assert spark_warehouse.columns(schema, "audit_log")[-1] == ("details", "string")


def test_the_spark_target_of_profiles_yml_shares_one_session_with_dbt(spark_project, spark_session, spark_env):
    profile = spark_project.profile
    assert profile.adapter_type == "spark" and profile.target_name == "spark" and profile.settings["method"] == "session"
    params = profile.settings["server_side_parameters"]
    assert params["spark.sql.warehouse.dir"] == f"{spark_env}/warehouse"
    with connect(spark_project) as warehouse:
        assert isinstance(warehouse, SparkWarehouse) and warehouse.dialect == "spark"
        assert warehouse.spark is spark_session  # the process's one session
        assert warehouse.spark.conf.get("spark.sql.warehouse.dir").rstrip("/").endswith(f"{spark_env}/warehouse")
    # dbt-spark's session method asks the builder for a session, as dwml does: it gets the same one
    from dbt.adapters.spark.session import Connection

    cursor = Connection(server_side_parameters={str(k): str(v) for k, v in params.items()}).cursor()
    cursor.execute("SELECT current_schema() AS s")
    assert cursor._df.sparkSession is spark_session


def test_only_the_session_method_is_supported():
    with pytest.raises(ConfigError, match="method 'thrift'") as info:
        SparkWarehouse.from_settings({"type": "spark", "method": "thrift", "host": "spark.example.com"})
    assert "method: session" in info.value.hint


def test_a_read_only_warehouse_refuses_dwmls_writes(spark_session):
    """Spark has no read-only session, so a read-only call's warehouse refuses writes itself."""
    from dwml_py.errors import ReadOnlyError
    from dwml_py.warehouse.spark import SparkWarehouse

    warehouse = SparkWarehouse(spark_session, read_only=True)
    assert warehouse.fetch_scalar("SELECT 1") == 1
    assert ensure_tables(warehouse) == {}  # creates and migrates nothing
    for write in (lambda: warehouse.execute("CREATE SCHEMA IF NOT EXISTS ro_test"),
                  lambda: warehouse.write_arrow(pa.table({"v": [1]}), "ro_test", "t"),
                  lambda: warehouse.create_schema("ro_test")):
        with pytest.raises(ReadOnlyError):
            write()
