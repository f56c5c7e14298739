"""Open the warehouse named by the dbt profile/target. Drivers are imported only when used."""

from __future__ import annotations

from dwml_py.errors import ConfigError

SUPPORTED_ADAPTERS = ("duckdb",)


def connect(project, read_only: bool = False):
    """A Warehouse for the project's profile/target."""
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
    raise ConfigError(
        f"Target {profile.target_name!r} uses the dbt adapter {profile.adapter_type!r}, which dwml "
        f"does not support yet.",
        hint=f"supported adapters: {', '.join(SUPPORTED_ADAPTERS)}; choose another target with --target.",
    )
