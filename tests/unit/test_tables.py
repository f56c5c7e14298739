"""dwml's own tables: one definition, idempotent creation, migration that keeps rows,
and a dbt side generated from the same definition."""

import pyarrow as pa
import pytest

from dwml_py import tables_dbt
from dwml_py.tables import DWML_SCHEMA, TABLES, create_table_statement, ensure_tables
from dwml_py.warehouse.duckdb import DuckDBWarehouse

DESIGN_NAMES = {"runs", "run_metrics", "model_versions", "model_aliases", "reference_profiles", "table_profiles",
                "predictions", "drift_metrics", "performance_metrics", "ab_tests", "audit_log"}


@pytest.fixture
def warehouse():
    with DuckDBWarehouse(":memory:") as w:
        yield w


def test_every_table_of_the_design_is_defined():
    assert DESIGN_NAMES <= set(TABLES)


def test_every_column_is_documented():
    for spec in TABLES.values():
        assert spec.description
        for col in spec.columns:
            assert col.description, f"{spec.name}.{col.name} has no description"


def test_creation_is_idempotent(warehouse):
    first = ensure_tables(warehouse)
    assert set(first) == set(TABLES)
    assert ensure_tables(warehouse) == {}
    for spec in TABLES.values():
        assert [c for c, _ in warehouse.columns(DWML_SCHEMA, spec.name)] == spec.column_names()


def test_adding_a_column_later_migrates_without_losing_rows(warehouse):
    # An older dwml created `runs` with fewer columns and wrote a row.
    warehouse.create_schema(DWML_SCHEMA)
    warehouse.execute('create table dwml.runs (run_id varchar, status varchar, started_at timestamp)')
    warehouse.execute("insert into dwml.runs values ('r1', 'finished', timestamp '2026-01-01 10:00:00')")
    changes = ensure_tables(warehouse)
    assert "experiment" in changes["runs"] and "git_sha" in changes["runs"]
    rows = warehouse.fetch_rows("select run_id, status, git_sha from dwml.runs")
    assert rows == [{"run_id": "r1", "status": "finished", "git_sha": None}]


def test_four_byte_float_doubles_are_widened_in_place(warehouse):
    # dbt-duckdb's dbt.type_float() is FLOAT (4 bytes): an earlier on-run-start declared scores so
    warehouse.create_schema(DWML_SCHEMA)
    columns = ", ".join(f'"{c.name}" {"float" if c.type == "double" else "varchar"}'
                        for c in TABLES["drift_metrics"].columns)
    warehouse.execute(f"create table dwml.drift_metrics ({columns})")
    warehouse.execute("insert into dwml.drift_metrics (drift_run_id, value, threshold) values ('d1', 0.125, 0.2)")
    changes = ensure_tables(warehouse)
    assert changes["drift_metrics"] == ["value (widened to double)", "threshold (widened to double)"]
    types = dict(warehouse.columns(DWML_SCHEMA, "drift_metrics"))
    assert types["value"].upper() == "DOUBLE" and types["threshold"].upper() == "DOUBLE"
    assert types["feature"].upper() == "VARCHAR"  # other columns untouched
    # the stored float32 value is kept exactly, and a new score keeps all its digits
    assert warehouse.fetch_rows("select value from dwml.drift_metrics") == [{"value": 0.125}]
    warehouse.execute("update dwml.drift_metrics set value = 0.8807970779778823")
    assert warehouse.fetch_scalar("select value from dwml.drift_metrics") == 0.8807970779778823
    assert ensure_tables(warehouse) == {}


def test_write_arrow_appends_by_name(warehouse):
    ensure_tables(warehouse)
    batch = pa.table({"status": ["running"], "run_id": ["r9"], "started_at": pa.array([None], pa.timestamp("us"))})
    warehouse.write_arrow(batch, DWML_SCHEMA, "runs")
    warehouse.write_arrow(batch, DWML_SCHEMA, "runs")
    assert warehouse.fetch_scalar("select count(*) from dwml.runs where run_id = 'r9'") == 2


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "snowflake", "bigquery"])
def test_ddl_renders_for_every_dialect(dialect):
    sql = create_table_statement(TABLES["audit_log"]).sql(dialect=dialect)
    assert sql.upper().startswith("CREATE TABLE IF NOT EXISTS")
    assert "event_id" in sql and "occurred_at" in sql


def test_dbt_files_are_generated_from_the_definition():
    stale = tables_dbt.stale_files()
    assert not stale, f"run `python -m dwml_py.tables_dbt`; out of date: {[str(p) for p in stale]}"


def test_unknown_logical_type_is_refused():
    from dwml_py.tables import Column

    with pytest.raises(ValueError, match="type must be one of"):
        Column("x", "varchar2", "doc")
