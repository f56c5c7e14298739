"""Versions of the packages a run or an artifact depends on, recorded for reproducibility."""

from __future__ import annotations

from functools import lru_cache

# dwml's own version (recorded as "dwml"; its distribution is dwml-dbt), also dwml_py.__version__.
# It lives here, not in the package's __init__, so that modules below need not import the package
# root (whose lazy attributes import the run API). A test keeps dbt_project.yml's `version:` equal.
__version__ = "0.1.0"
TRACKED_PACKAGES = ("dbt-core", "dbt-duckdb", "duckdb", "dbt-postgres", "psycopg2-binary", "dbt-spark", "pyspark",
                    "scikit-learn", "xgboost", "skops", "numpy", "pandas", "pyarrow", "sqlglot")


@lru_cache(maxsize=1)  # installed versions do not change within a process
def package_versions() -> dict[str, str | None]:
    """{package: installed version, or None when it is not installed}."""
    from importlib import metadata  # about 0.1 s to import: only when versions are recorded

    versions: dict[str, str | None] = {"dwml": __version__}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
