"""A PostgreSQL server for the tests marked `postgres`.

In order: the server the environment names (DWML_PG_HOST and friends, as .ci/run exports
them); else a throwaway cluster started here with the local PostgreSQL binaries (see
pg_server.py), stopped at the end of the session; else every test here skips, saying why.
Each test module gets its own database, so modules never see each other's tables.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # rootdir-relative imports: no package here
import pg_server  # noqa: E402

PG_VARS = ("DWML_PG_HOST", "DWML_PG_PORT", "DWML_PG_USER", "DWML_PG_PASSWORD", "DWML_PG_DBNAME")


def _admin(settings: dict, sql: str) -> None:
    import psycopg2

    con = psycopg2.connect(host=settings["DWML_PG_HOST"], port=int(settings["DWML_PG_PORT"]),
                           user=settings["DWML_PG_USER"], password=settings["DWML_PG_PASSWORD"] or None,
                           dbname="postgres", connect_timeout=5)
    try:
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute(sql)
    finally:
        con.close()


@pytest.fixture(scope="session")
def pg_server_settings():
    """DWML_PG_* of a running server, or a skip with the reason."""
    for module in ("psycopg2", "dbt.adapters.postgres"):
        if importlib.util.find_spec(module.split(".")[0]) is None or (
                "." in module and importlib.util.find_spec(module) is None):
            pytest.skip(f"{module} is not installed: pip install -e '.[postgres]'")
    if os.environ.get("DWML_PG_HOST"):
        settings = {"DWML_PG_HOST": os.environ["DWML_PG_HOST"], "DWML_PG_PORT": os.environ.get("DWML_PG_PORT", "5432"),
                    "DWML_PG_USER": os.environ.get("DWML_PG_USER", "postgres"),
                    "DWML_PG_PASSWORD": os.environ.get("DWML_PG_PASSWORD", ""),
                    "DWML_PG_DBNAME": os.environ.get("DWML_PG_DBNAME", "dwml")}
        try:
            _admin(settings, "select 1")
        except Exception as exc:  # the message names host and port, never the password
            pytest.skip(f"DWML_PG_HOST is set but the server does not answer: {str(exc).strip()[:300]}")
        yield settings
        return
    if pg_server.find_bindir() is None:
        pytest.skip("no PostgreSQL server: set DWML_PG_HOST (and DWML_PG_PORT/USER/PASSWORD) or install the "
                    "postgresql package (initdb, pg_ctl), as .ci/run does")
    # Not below pytest's tmp folder: as root the cluster runs as `nobody`, which cannot enter it.
    base = Path(tempfile.mkdtemp(prefix="dwml-pg-"))
    try:
        settings = pg_server.start(base)
    except RuntimeError as exc:
        pg_server.stop(base)
        pytest.skip(f"could not start a throwaway PostgreSQL cluster: {exc}")
    try:
        yield settings
    finally:
        pg_server.stop(base)


@pytest.fixture(scope="module")
def pg_database(pg_server_settings):
    """A fresh database for one test module, dropped afterwards."""
    name = f"dwml_test_{uuid.uuid4().hex[:12]}"
    _admin(pg_server_settings, f'create database "{name}"')
    yield {**pg_server_settings, "DWML_PG_DBNAME": name}
    _admin(pg_server_settings, f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def pg_module_warehouse(pg_database):
    """A PostgresWarehouse on this module's database, shared by the module's tests."""
    from dwml_py.warehouse.postgres import PostgresWarehouse

    warehouse = PostgresWarehouse(host=pg_database["DWML_PG_HOST"], port=int(pg_database["DWML_PG_PORT"]),
                                  user=pg_database["DWML_PG_USER"], password=pg_database["DWML_PG_PASSWORD"],
                                  dbname=pg_database["DWML_PG_DBNAME"])
    yield warehouse
    warehouse.close()


@pytest.fixture
def pg_env(pg_database, monkeypatch) -> dict:
    """The `postgres` target of the project's profiles.yml, pointed at this module's database."""
    for key, value in pg_database.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBT_TARGET", "postgres")
    return pg_database


@pytest.fixture
def pg_project(pg_env):
    from dwml_py.project import Project

    return Project.locate(DEMO_DIR)


@pytest.fixture
def pg_warehouse(pg_project):
    from dwml_py.warehouse import connect

    warehouse = connect(pg_project)
    yield warehouse
    warehouse.close()
