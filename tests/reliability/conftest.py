"""One small trained and deployed demo warehouse for the whole reliability suite, copied per test.

Building it (generate, `dbt build`, train, deploy) takes ~15 s, so it is built once per session
into its own folder; each test gets a private copy of the DuckDB file, the dbt target folder and
the artifacts, pointed at by the test's isolated environment (tests/conftest.py), so a test can
break things without disturbing the next one. Artifact URIs are absolute, so the copied registry
rows are re-pointed at the copied artifacts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import DEMO_DIR, isolated_paths, shared_env
from tests.reliability.helpers import FAST_XGBOOST, ok, sql_exec

CUSTOMERS = 500


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory):
    """(folder, duckdb file, dbt target, artifacts) of a demo with churn v1 trained and deployed."""
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.demo import DemoConfig, generate_demo
    from dwml_py.project import Project

    paths = isolated_paths(tmp_path_factory.mktemp("reliability_demo"))
    with shared_env(paths):
        project = Project.locate(DEMO_DIR)
        generate_demo(project, DemoConfig(customers=CUSTOMERS, seed=11))
        assert run_dbt(project, ["build"]).success
        ok("train", "churn", *FAST_XGBOOST)
        ok("deploy", "churn", "--version", "1")
    return {name: Path(value) for name, value in paths.items()}


@pytest.fixture
def demo(built_demo, tmp_path) -> dict:
    """A private copy of the built demo at the paths the test's environment points to."""
    mine = {name: Path(os.environ[name]) for name in built_demo}
    shutil.copyfile(built_demo["DWML_DUCKDB_PATH"], mine["DWML_DUCKDB_PATH"])
    shutil.copytree(built_demo["DBT_TARGET_PATH"], mine["DBT_TARGET_PATH"])
    shutil.copytree(built_demo["DWML_ARTIFACT_DIR"], mine["DWML_ARTIFACT_DIR"])
    old, new = built_demo["DWML_ARTIFACT_DIR"].as_uri(), mine["DWML_ARTIFACT_DIR"].as_uri()
    sql_exec(mine["DWML_DUCKDB_PATH"],
             f"update dwml.model_versions set artifact_uri = replace(artifact_uri, '{old}', '{new}')")
    return mine


@pytest.fixture
def project_copy(demo, tmp_path, monkeypatch):
    """The demo's dbt project copied to a folder of its own (the working folder, too), pointed at the
    test's copy of the demo: tests that write into the project, or check it stays byte-identical,
    never touch the checkout."""
    from dwml_py.project import Project, copy_project

    folder = copy_project(DEMO_DIR, tmp_path / "project")
    monkeypatch.chdir(folder)
    return Project.locate(folder)
