"""Shared fixtures. Every test gets its own DuckDB file and dbt target/log folders, so tests
never touch the checkout's warehouse.duckdb or target/ and can run in parallel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    monkeypatch.chdir(REPO_ROOT)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def duckdb_path() -> Path:
    return Path(os.environ["DWML_DUCKDB_PATH"])


@pytest.fixture
def project():
    from dwml_py.project import Project

    return Project.locate(REPO_ROOT)
