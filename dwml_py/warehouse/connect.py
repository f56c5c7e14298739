"""Open the warehouse named by the dbt profile/target. Drivers are imported only when used."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dwml_py.errors import ConfigError

SUPPORTED_ADAPTERS = ("duckdb", "postgres", "spark")


def connect(project, read_only: bool = False):
    """A Warehouse for the project's profile/target; read-only when asked, or whenever the current
    tool call is (dwml_py.call_context), so the engine itself refuses what a read-only call must not do."""
    from dwml_py.call_context import current

    read_only = read_only or current().read_only
    profile = project.profile
    if profile.adapter_type == "duckdb":
        from dwml_py.warehouse.duckdb import DuckDBWarehouse

        settings = dict(profile.settings)
        warehouse = DuckDBWarehouse(
            path=str(settings.get("path", ":memory:")),
            read_only=read_only,
            settings=settings.get("settings"),
            extensions=settings.get("extensions"),
        )
        return warehouse
    if profile.adapter_type == "postgres":
        from dwml_py.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse.from_settings(dict(profile.settings), read_only=read_only)
    if profile.adapter_type == "spark":
        from dwml_py.warehouse.spark import SparkWarehouse

        # dbt-spark's session method: the SparkSession of this process, shared with in-process dbt.
        # Spark has no read-only session: the warehouse object refuses dwml's writes itself.
        return SparkWarehouse.from_settings(dict(profile.settings), read_only=read_only)
    raise ConfigError(
        f"Target {profile.target_name!r} uses the dbt adapter {profile.adapter_type!r}, which dwml "
        f"does not support yet.",
        hint=f"supported adapters: {', '.join(SUPPORTED_ADAPTERS)}; choose another target with --target.",
    )


@contextlib.contextmanager
def given_or_connected(project, warehouse=None) -> Iterator:
    """`warehouse` when the caller passes one (it stays open: the caller owns it), else a new
    connection to the project's warehouse, closed at the end of the block."""
    if warehouse is not None:
        yield warehouse
        return
    opened = connect(project)
    try:
        yield opened
    finally:
        opened.close()
