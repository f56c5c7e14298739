"""DuckDB connections and dbt in one process: dwml releases its connections before dbt runs and
reopens them after; a refused query that reads a missing relation says how to build it."""

from __future__ import annotations

import duckdb
import pytest

from dwml_py.errors import WarehouseError
from dwml_py.warehouse import release_for_dbt
from dwml_py.warehouse.duckdb import DuckDBWarehouse


def test_a_released_connection_lets_another_configuration_open_the_file_and_then_reopens(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with DuckDBWarehouse(path) as setup:
        setup.execute("create table main.t as select 1 as x")
    warehouse = DuckDBWarehouse(path, read_only=True)
    assert warehouse.fetch_scalar("select count(*) from main.t") == 1
    with pytest.raises(duckdb.ConnectionException, match="different configuration"):
        duckdb.connect(path).close()  # what dbt-duckdb met while dwml held a read-only connection
    release_for_dbt()
    dbt_like = duckdb.connect(path)  # read-write, as dbt opens it
    dbt_like.execute("insert into main.t values (2)")
    dbt_like.close()
    assert warehouse.fetch_scalar("select count(*) from main.t") == 2  # reopened, read-only as before
    with pytest.raises(WarehouseError):
        warehouse.execute("insert into main.t values (3)")
    warehouse.close()


def test_dbt_may_not_start_inside_a_transaction(tmp_path):
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    with warehouse.transaction():
        with pytest.raises(RuntimeError, match="dwml bug"):
            release_for_dbt()
    release_for_dbt()  # after it: fine
    warehouse.close()


def test_a_closed_warehouse_is_not_reopened(tmp_path):
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.close()
    with pytest.raises(WarehouseError, match="closed"):
        warehouse.fetch_scalar("select 1")


def test_a_query_of_a_missing_relation_names_dbt_run(tmp_path):
    with DuckDBWarehouse(str(tmp_path / "w.duckdb")) as warehouse:
        with pytest.raises(WarehouseError) as err:
            warehouse.fetch_rows("select * from main.customer_features")
    assert "dbt run --select" in err.value.hint and "dwml bug" not in err.value.hint
    with DuckDBWarehouse(":memory:") as warehouse, pytest.raises(WarehouseError) as err:
        warehouse.fetch_rows("select nonsense(")
    assert "dwml bug" in err.value.hint
