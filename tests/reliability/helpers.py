"""Helpers of the reliability suite: the CLI in-process and plain DuckDB reads/writes."""

from __future__ import annotations

import json

from tests.conftest import duckdb_execute, duckdb_rows

FAST_XGBOOST = ["--param", "n_estimators=20"]


def invoke(*args: str):
    """Run the CLI in-process; an unhandled exception fails the test (never a traceback to users)."""
    from typer.testing import CliRunner

    from dwml_py.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def ok(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sql_rows(path, query: str, read_only: bool = True):
    return duckdb_rows(path, query, read_only=read_only)


sql_exec = duckdb_execute
