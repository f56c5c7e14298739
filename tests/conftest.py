"""Shared fixtures. Every test gets its own DuckDB file and dbt target/log folders, so tests
never touch the checkout's warehouse.duckdb or target/ and can run in parallel."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout: dwml's dbt package and Python package
DEMO_DIR = REPO_ROOT / "demo"  # the demo dbt project, which installs the package by local path


def pytest_configure(config):
    """Under pytest-xdist every worker is one process of several sharing the cores: each keeps its
    thread pools (XGBoost's and scikit-learn's OpenMP, BLAS) to a fair share of them. A pool of
    all cores in each worker spends its time in barriers waiting for cores the other workers hold;
    that made a few fitting tests take minutes. Set before any of those libraries is imported,
    and inherited by the dwml and dbt processes tests start."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and workers.isdigit() and int(workers) > 1:
        share = str(max(1, (os.cpu_count() or 1) // int(workers)))
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, share)


@pytest.fixture(scope="session", autouse=True)
def _demo_packages_installed(tmp_path_factory):
    """`dbt deps` of the demo project once per test session (a lock keeps parallel workers to one
    install), as `dwml demo run` does on first use."""
    from dwml_py.demo import install_packages
    from dwml_py.project import Project

    logs = tmp_path_factory.mktemp("dbt_deps")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        mp.setenv("DBT_TARGET_PATH", str(logs / "target"))
        mp.setenv("DBT_LOG_PATH", str(logs / "logs"))
        mp.chdir(DEMO_DIR)
        install_packages(Project.locate(DEMO_DIR))


@pytest.fixture(autouse=True)
def _isolated_dbt_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DWML_DUCKDB_PATH", str(tmp_path / "test_warehouse.duckdb"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt_target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt_logs"))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    monkeypatch.setenv("DWML_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    # Tests that hold a lock on purpose should not wait the default 15 s for it.
    monkeypatch.setenv("DWML_LOCK_WAIT_SECONDS", "1")
    for name in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "DBT_TARGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(DEMO_DIR)
    yield
    # secrets a test's profile registered (dwml_py.redaction) must not mask the next test's output
    from dwml_py.redaction import clear

    clear()


# The variables the autouse fixture below sets per test; module- and session-scoped demos set
# them once for their own folder with `shared_env`.
ISOLATED = ("DWML_DUCKDB_PATH", "DBT_TARGET_PATH", "DBT_LOG_PATH", "DWML_ARTIFACT_DIR")


def isolated_paths(base: Path) -> dict[str, str]:
    """A warehouse file, dbt target and log folders and an artifact folder under `base`."""
    return {"DWML_DUCKDB_PATH": str(base / "warehouse.duckdb"), "DBT_TARGET_PATH": str(base / "dbt_target"),
            "DBT_LOG_PATH": str(base / "dbt_logs"), "DWML_ARTIFACT_DIR": str(base / "artifacts")}


@contextlib.contextmanager
def shared_env(env: dict[str, str]):
    """dwml and dbt pointed at `env`'s files from the demo project, for fixtures wider than one test
    (the autouse isolation below is per test, so it cannot serve them)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        mp.chdir(DEMO_DIR)
        yield mp


def duckdb_rows(path, sql: str, read_only: bool = False) -> list[tuple]:
    """The rows of `sql` on the DuckDB file at `path`; the connection is closed at once, so that
    dwml or dbt can open the file next."""
    import duckdb

    con = duckdb.connect(str(path), read_only=read_only)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def duckdb_execute(path, sql: str) -> None:
    """Run one statement on the DuckDB file at `path` and close the connection."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()


def use_shared_env(monkeypatch, env: dict[str, str]) -> None:
    """Point one test's isolated environment at a module's shared files."""
    for key in ISOLATED:
        monkeypatch.setenv(key, env[key])


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def demo_dir() -> Path:
    return DEMO_DIR


@pytest.fixture
def duckdb_path() -> Path:
    return Path(os.environ["DWML_DUCKDB_PATH"])


@pytest.fixture
def project():
    from dwml_py.project import Project

    return Project.locate(DEMO_DIR)
