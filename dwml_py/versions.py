"""Versions of the packages a run or an artifact depends on, recorded for reproducibility."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata

# dwml's own version is dwml_py.__version__ (recorded as "dwml"; its distribution is dwml-dbt).
TRACKED_PACKAGES = ("dbt-core", "dbt-duckdb", "duckdb", "dbt-postgres", "psycopg2-binary", "dbt-spark", "pyspark",
                    "scikit-learn", "xgboost", "skops", "numpy", "pandas", "pyarrow", "sqlglot")


@lru_cache(maxsize=1)  # installed versions do not change within a process
def package_versions() -> dict[str, str | None]:
    """{package: installed version, or None when it is not installed}."""
    from dwml_py import __version__

    versions: dict[str, str | None] = {"dwml": __version__}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
