"""PostgresWarehouse on a real server: Arrow in and out with exact values, COPY writes, batches,
transactions, connection errors without secrets, the `postgres` target of profiles.yml,
dwml's tables, and version numbers that two concurrent registrations cannot duplicate."""

from __future__ import annotations

import datetime as dt
import math
import threading

import pyarrow as pa
import pytest

import dwml_py
from dwml_py import model_registry as registry
from dwml_py import tracking
from dwml_py.errors import WarehouseError
from dwml_py.tables import DWML_SCHEMA, TABLES, ensure_tables
from dwml_py.warehouse import connect
from dwml_py.warehouse.postgres import PostgresWarehouse
from tests.engine_sql_checks import round_trip_sample

pytestmark = [pytest.mark.postgres]

HOSTILE = 'we"ird; drop table x; --'


def _sample() -> pa.Table:
    return round_trip_sample(HOSTILE)


def test_round_trip_keeps_types_nulls_and_exact_values(pg_warehouse):
    data = _sample()
    assert pg_warehouse.write_arrow(data, "wh test", HOSTILE, mode="replace") == 3
    back = pg_warehouse.fetch_arrow(f'SELECT * FROM "wh test"."{HOSTILE.replace(chr(34), chr(34) * 2)}" ORDER BY id')
    assert back.schema.names == data.schema.names
    assert [back.schema.field(n).type for n in ("id", "small", "text", "x", "f32", "flag", "day", "at")] == [
        pa.int64(), pa.int32(), pa.string(), pa.float64(), pa.float32(), pa.bool_(), pa.date32(), pa.timestamp("us")]
    rows = back.to_pylist()
    assert [r["text"] for r in rows] == ["plain", "", None]  # '' and NULL stay apart through CSV COPY
    assert [r["tricky"] for r in rows] == data.column("tricky").to_pylist()
    assert rows[0]["x"] == 0.1 + 0.2 and rows[2]["x"] == 1 / 3 and math.isnan(rows[1]["x"])  # bit-exact doubles
    assert [r["small"] for r in rows] == [1, None, -7] and [r["flag"] for r in rows] == [True, False, None]
    assert rows[0]["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 678901) and rows[1]["day"] is None
    types = dict(pg_warehouse.columns("wh test", HOSTILE))
    assert types["x"] == "double precision" and types["at"] == "timestamp without time zone"


def test_append_matches_columns_by_name_and_names_unknown_ones(pg_warehouse):
    pg_warehouse.write_arrow(pa.table({"a": [1], "b": ["x"]}), "wh_test", "appended", mode="replace")
    pg_warehouse.write_arrow(pa.table({"b": ["y"], "a": [2]}), "wh_test", "appended")  # other order
    pg_warehouse.write_arrow(pa.table({"a": [3]}), "wh_test", "appended")  # b missing: NULL
    assert pg_warehouse.fetch_rows('SELECT a, b FROM wh_test.appended ORDER BY a') == [
        {"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": None}]
    with pytest.raises(WarehouseError, match=r"no column\(s\) \['c'\]") as info:
        pg_warehouse.write_arrow(pa.table({"a": [4], "c": [1.0]}), "wh_test", "appended")
    assert "mode='replace'" in info.value.hint
    assert pg_warehouse.fetch_scalar("SELECT count(*) FROM wh_test.appended") == 3  # nothing half-written
    pg_warehouse.write_arrow(pa.table({"z": [9.5]}), "wh_test", "appended", mode="replace")
    assert pg_warehouse.columns("wh_test", "appended") == [("z", "double precision")]


def test_numeric_json_and_aggregate_types(pg_warehouse):
    row = pg_warehouse.fetch_arrow(
        "SELECT count(*) AS n, sum(CAST(g AS bigint)) AS s, avg(g) AS mean, CAST(18446744073709551615 AS numeric(20, 0)) AS big, "
        "CAST(1.25 AS numeric(5, 2)) AS price, CAST('{\"a\": [1, 2]}' AS jsonb) AS doc FROM generate_series(1, 4) AS g")
    assert row.schema.field("n").type == pa.int64()
    assert row.schema.field("s").type == pa.float64() and row.schema.field("mean").type == pa.float64()
    assert row.schema.field("big").type == pa.decimal128(20, 0) and row.schema.field("price").type == pa.decimal128(5, 2)
    values = row.to_pylist()[0]
    assert (values["n"], values["s"], values["mean"]) == (4, 10.0, 2.5)
    assert int(values["big"]) == 2 ** 64 - 1 and str(values["price"]) == "1.25"
    assert values["doc"] == '{"a": [1, 2]}'  # JSON as text, as from every engine


def test_fetch_batches_streams_in_and_out_of_transactions(pg_warehouse):
    query = "SELECT g FROM generate_series(1, 25) AS g ORDER BY g"
    batches = list(pg_warehouse.fetch_batches(query, batch_size=10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert pa.Table.from_batches(batches).column("g").to_pylist() == list(range(1, 26))
    with pg_warehouse.transaction():
        assert sum(b.num_rows for b in pg_warehouse.fetch_batches(query, batch_size=7)) == 25
    assert sum(b.num_rows for b in pg_warehouse.fetch_batches("SELECT 1 AS x WHERE false")) == 0


def test_transactions_commit_or_roll_back_everything(pg_warehouse):
    pg_warehouse.write_arrow(pa.table({"v": [1]}), "wh_test", "tx", mode="replace")
    with pytest.raises(RuntimeError):
        with pg_warehouse.transaction():
            pg_warehouse.write_arrow(pa.table({"v": [2]}), "wh_test", "tx")
            pg_warehouse.write_arrow(pa.table({"v": [3]}), "wh_test", "tx_new")
            raise RuntimeError("boom")
    assert pg_warehouse.fetch_scalar("SELECT count(*) FROM wh_test.tx") == 1
    assert not pg_warehouse.table_exists("wh_test", "tx_new")
    with pg_warehouse.transaction():
        pg_warehouse.write_arrow(pa.table({"v": [2]}), "wh_test", "tx")
        with pg_warehouse.transaction():  # nested: joins the outer one
            pg_warehouse.write_arrow(pa.table({"v": [3]}), "wh_test", "tx")
    assert pg_warehouse.fetch_scalar("SELECT sum(v) FROM wh_test.tx") == 6
    with pytest.raises(WarehouseError, match="PostgreSQL refused a query") as info:
        pg_warehouse.fetch_arrow("SELECT * FROM wh_test.no_such_table")
    assert "SQL: SELECT * FROM wh_test.no_such_table" in str(info.value)
    assert pg_warehouse.fetch_scalar("SELECT 1") == 1  # the connection is usable after an error


def test_the_postgres_target_of_profiles_yml(pg_project, pg_env):
    profile = pg_project.profile
    assert profile.adapter_type == "postgres" and profile.target_name == "postgres"
    assert profile.settings["dbname"] == pg_env["DWML_PG_DBNAME"] and profile.settings["port"] == int(pg_env["DWML_PG_PORT"])
    assert profile.redacted()["password"] == "****"
    with connect(pg_project) as warehouse:
        assert isinstance(warehouse, PostgresWarehouse) and warehouse.dialect == "postgres"
        assert warehouse.fetch_scalar("SELECT current_database()") == pg_env["DWML_PG_DBNAME"]


def test_a_read_only_call_opens_a_read_only_session(pg_project, pg_warehouse):
    """Read-only calls (dwml mcp --read-only) get a session whose every transaction refuses writes, so
    a write a tool forgot to declare is refused by the server itself."""
    from dwml_py.call_context import CallContext, calling

    pg_warehouse.execute("CREATE SCHEMA IF NOT EXISTS ro_test")
    pg_warehouse.execute("CREATE TABLE IF NOT EXISTS ro_test.t (v int)")
    with calling(CallContext(read_only=True)), connect(pg_project) as warehouse:
        assert warehouse.read_only and warehouse.fetch_scalar("SELECT count(*) FROM ro_test.t") == 0
        with pytest.raises(WarehouseError, match="read-only transaction"):
            warehouse.execute("INSERT INTO ro_test.t VALUES (1)")
    assert pg_warehouse.fetch_scalar("SELECT count(*) FROM ro_test.t") == 0


def test_a_wrong_password_is_named_but_never_shown(pg_project, pg_env, monkeypatch):
    wrong = "not-the-password-4711"
    monkeypatch.setenv("DWML_PG_PASSWORD", wrong)
    pg_project._profile = None
    try:
        connect(pg_project).close()
    except WarehouseError as exc:
        text = str(exc)
        assert "password authentication failed" in text and "DWML_PG_PASSWORD" in exc.hint
        assert wrong not in text and (not pg_env["DWML_PG_PASSWORD"] or pg_env["DWML_PG_PASSWORD"] not in text)
    else:
        pytest.skip("this server trusts the connection without a password, so there is no refusal to check")


def test_connection_errors_say_what_to_fix_without_secrets(pg_env):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WarehouseError, match="Connection refused") as info:
        PostgresWarehouse(host="127.0.0.1", port=port, user="dwml", password="s3cret-value", dbname="dwml")
    assert f"127.0.0.1:{port}" in info.value.hint and "s3cret-value" not in str(info.value)
    with pytest.raises(WarehouseError, match='database "nope_db" does not exist') as info:
        PostgresWarehouse(host=pg_env["DWML_PG_HOST"], port=int(pg_env["DWML_PG_PORT"]), user=pg_env["DWML_PG_USER"],
                          password=pg_env["DWML_PG_PASSWORD"], dbname="nope_db")
    assert "dbname" in info.value.hint


def test_dwml_tables_are_created_once_and_migrated(pg_warehouse):
    first = ensure_tables(pg_warehouse)
    assert set(first) == set(TABLES) and all(v == ["(created)"] for v in first.values())
    assert ensure_tables(pg_warehouse) == {}
    types = dict(pg_warehouse.columns(DWML_SCHEMA, "runs"))
    assert types["started_at"] == "timestamp without time zone" and types["row_count"] == "bigint"
    assert types["params"] == "text" and dict(pg_warehouse.columns(DWML_SCHEMA, "drift_metrics"))["is_drift"] == "boolean"
    pg_warehouse.execute('ALTER TABLE dwml.audit_log DROP COLUMN "details"')
    assert ensure_tables(pg_warehouse) == {"audit_log": ["details"]}


def test_concurrent_registrations_get_distinct_versions(pg_project, tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    with connect(pg_project) as warehouse:
        tracking.ensure_once(warehouse)
        with dwml_py.start_run(experiment="race", model_name="race", project=pg_project, warehouse=warehouse) as run:
            run.set(task="classification", algorithm="xgboost")
            ref = run.log_artifact(b"model", name="model.ubj")
    results, errors = [], []
    start = threading.Barrier(4)

    def register():
        try:
            with connect(pg_project) as warehouse:
                start.wait()
                for _ in range(3):
                    results.append(registry.register_model(
                        warehouse, run.run_id, "race", ref, task="classification", algorithm="xgboost",
                        feature_model=None, features=None, metrics=None, artifact_format="xgboost-ubj")["version"])
        except Exception as exc:  # surfaced below with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(results) == list(range(1, 13))
