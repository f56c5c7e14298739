"""Helpers of the reliability suite: the CLI in-process and plain DuckDB reads/writes."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def served(app):
    """`app` served by uvicorn in a thread on a free loopback port, as `dwml serve` runs it; yields
    an httpx client. Leaving the block shuts the server down."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # log_config=None: uvicorn's own records reach the root logger, where a test can count them
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="on", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
