"""The warehouse layer: one class per engine behind one interface, Arrow in and out.

`connect(project)` opens the warehouse that the dbt profile/target points at.

dwml never holds a DuckDB connection while dbt runs in its process: `release_for_dbt()`, called by
the dbt runner, closes them, and each reopens on its next statement.
"""

import sys

from dwml_py.warehouse.base import Warehouse
from dwml_py.warehouse.connect import SUPPORTED_ADAPTERS, connect, given_or_connected

__all__ = ["Warehouse", "connect", "given_or_connected", "SUPPORTED_ADAPTERS", "release_for_dbt"]


def release_for_dbt() -> None:
    """Close this process's DuckDB connections before dbt runs in it (they reopen when used next).

    Two connections of one process to one DuckDB file must have the same settings, so a read-only
    dwml connection makes dbt-duckdb fail ("Can't open a connection to same database file with a
    different configuration"). PostgreSQL connections need nothing; Spark shares its session
    with dbt on purpose."""
    duckdb_module = sys.modules.get("dwml_py.warehouse.duckdb")  # not imported: no connection to close
    if duckdb_module is not None:
        duckdb_module.release_connections()
