"""`dwml serve` over real HTTP on loopback: health, models, versions, predictions equal to
TrainedModel.predict_score, 422s naming row and field, the API key, the body limit, a generic 500,
503 while the DuckDB file is locked, champion/challenger routing, and served predictions written
to dwml.predictions in batches (on size, on time, at shutdown, and after the warehouse refused).

One small demo is built, trained (v1 XGBoost at `production`, v2 logistic at `staging`) and
deployed once for the module; each test starts uvicorn in a thread on a free port."""

import contextlib
import datetime as dt
import decimal
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from dwml_py.dbt_runner import run_dbt
from dwml_py.demo import DemoConfig, generate_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
KEY = "s3cret-Key_with-enough-length"


# -- the module's demo warehouse --------------------------------------------------------------------

class Demo:
    def __init__(self, env, project):
        from dwml_py import model_registry as registry
        from dwml_py.artifacts import ArtifactStore
        from dwml_py.training import TrainedModel
        from dwml_py.warehouse import connect

        self.env, self.project = env, project
        self.models, self.rows = {}, {}
        with connect(project) as warehouse:
            for version in (1, 2):
                row = registry.get_version(warehouse, "churn", version=version)
                self.rows[version] = row
                self.models[version] = TrainedModel.from_bytes(
                    registry.load_model_bytes(ArtifactStore.for_project(project), row))
            spec = self.models[1].spec
            self.entity, self.timestamp = spec["entity"][0], spec["timestamp"]
            # the latest snapshot: one row per customer, so entity keys are distinct
            self.table = warehouse.fetch_arrow(
                f'select * from "{spec["feature_schema"]}"."{spec["feature_table"]}" '
                f'where "{self.timestamp}" = (select max("{self.timestamp}") from '
                f'"{spec["feature_schema"]}"."{spec["feature_table"]}") order by "{self.entity}"')

    def json_rows(self, table=None, version: int = 1) -> list[dict]:
        """Rows as a client sends them: the features, the entity key and the timestamp, JSON types."""
        table = self.table if table is None else table
        keep = [f["name"] for f in self.models[version].features] + [self.entity, self.timestamp]
        out = []
        for row in table.select(keep).to_pylist():
            out.append({k: float(v) if isinstance(v, decimal.Decimal) else
                        v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for k, v in row.items()})
        return out

    def query(self, sql: str) -> list[tuple]:
        from dwml_py.warehouse import connect

        with connect(self.project) as warehouse:
            return [tuple(r.values()) for r in warehouse.fetch_rows(sql)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from dwml_py.deployment import deploy
    from dwml_py.project import Project
    from dwml_py.training_run import train

    root = tmp_path_factory.mktemp("serve")
    env = {"DWML_DUCKDB_PATH": str(root / "warehouse.duckdb"), "DBT_TARGET_PATH": str(root / "dbt_target"),
           "DBT_LOG_PATH": str(root / "dbt_logs"), "DWML_ARTIFACT_DIR": str(root / "artifacts"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "DBT_TARGET"):
            mp.delenv(name, raising=False)
        mp.chdir(DEMO_DIR)
        project = Project.locate(DEMO_DIR)
        generate_demo(project, DemoConfig(customers=1500, seed=7))
        assert run_dbt(project, ["build"]).success
        assert train(project, "churn", params={"n_estimators": 40})["version"] == 1
        assert train(project, "churn", algorithm="logistic")["version"] == 2
        assert deploy(project, "churn", 1)["passed"] is True
        assert deploy(project, "churn", 2, alias="staging")["passed"] is True
        yield Demo(env, project)


@pytest.fixture(autouse=True)
def _demo_env(demo, monkeypatch):
    # conftest points every test at a fresh warehouse; these tests share the module's one
    for name, value in demo.env.items():
        monkeypatch.setenv(name, value)


@contextlib.contextmanager
def running(app):
    """Serve `app` with uvicorn in a thread on a free loopback port; yields an httpx client.
    Leaving the block shuts the server down, running the app's shutdown (the final flush)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def make_app(demo, **settings):
    from dwml_py.serving import create_app

    settings.setdefault("log_predictions", False)
    return create_app(demo.project, ["churn"], **settings)


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- reading ----------------------------------------------------------------------------------------

def test_health_models_and_versions(demo):
    with running(make_app(demo)) as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "ok", "models": 1, "predictions": None}

        models = client.get("/models").json()["models"]
        assert [m["model_name"] for m in models] == ["churn"]
        churn = models[0]
        assert churn["champion"] == {"alias": "production", "version": 1} and churn["challenger"] is None
        assert churn["aliases"] == {"production": 1, "staging": 2}
        assert churn["algorithm"] == "xgboost" and churn["task"] == "classification"
        assert [f["name"] for f in churn["features"]] == demo.models[1].feature_names

        versions = client.get("/models/churn/versions").json()
        assert [(v["version"], v["aliases"]) for v in versions["versions"]] == [(1, ["production"]), (2, ["staging"])]
        assert versions["versions"][0]["artifact_sha256"] == demo.rows[1]["artifact_sha256"]

        missing = client.get("/models/chrun/versions")
        assert missing.status_code == 404 and "did you mean 'churn'" in missing.json()["hint"]
        assert client.post("/models/chrun/predict", json={"rows": [{}]}).status_code == 404


# -- predicting -------------------------------------------------------------------------------------

def test_predictions_equal_python_scores(demo):
    table = demo.table.slice(0, 300)
    with running(make_app(demo)) as client:
        for request, version in (({}, 1), ({"alias": "staging"}, 2), ({"version": 2}, 2), ({"version": 1}, 1)):
            response = client.post("/models/churn/predict", json={"rows": demo.json_rows(table, version), **request})
            assert response.status_code == 200, response.text
            body = response.json()
            model = demo.models[version]
            expected = model.predict_score(table).tolist()
            labels = [str(v) for v in model.predict(table).tolist()]
            got = body["predictions"]
            assert body["versions"] == [version] and len(got) == table.num_rows
            assert max(abs(p["score"] - e) for p, e in zip(got, expected)) < 1e-9
            assert [p["label"] for p in got] == labels
            assert [p["entity_key"] for p in got] == [str(v) for v in table.column(demo.entity).to_pylist()]
            assert {p["version"] for p in got} == {version}
            assert {p["role"] for p in got} == ({"champion"} if not request else {"requested"})
        # the two algorithms give different scores: the version asked for is the one that scored
        assert demo.models[1].algorithm == "xgboost" and demo.models[2].algorithm == "logistic"


def test_validation_errors_name_row_and_field(demo):
    model = demo.models[1]
    numeric = next(f["name"] for f in model.features if f["kind"] == "numeric")
    categorical = next(f for f in model.features if f["kind"] == "categorical")
    rows = demo.json_rows(demo.table.slice(0, 3))
    with running(make_app(demo, log_predictions=True)) as client:
        def predict(rows, **extra):
            return client.post("/models/churn/predict", json={"rows": rows, **extra})

        wrong_type = [dict(r) for r in rows]
        wrong_type[1][numeric] = "twelve"
        response = predict(wrong_type)
        assert response.status_code == 422
        body = response.json()
        assert body["errors"] == [{"row": 1, "field": numeric, "type": "float_type",
                                   "message": "Input should be a valid number, got 'twelve'"}]
        assert body["message"].startswith(f"Row 1, field {numeric!r}: Input should be a valid number")
        assert "Traceback" not in response.text

        misspelt = [dict(r) for r in rows]
        misspelt[2][numeric + "x"] = misspelt[2].pop(numeric)
        body = predict(misspelt).json()
        assert {(e["row"], e["field"], e["type"]) for e in body["errors"]} == {
            (2, numeric + "x", "extra_forbidden"), (2, numeric, "missing")}
        assert f"did you mean {numeric!r}" in body["hint"]

        no_key = [dict(r) for r in rows]
        del no_key[0][demo.entity]
        no_key[0][categorical["name"]] = 42  # a number is not a category: no coercion
        body = predict(no_key).json()
        errors = {e["field"]: e for e in body["errors"]}
        assert {(e["row"], f) for f, e in errors.items()} == {(0, categorical["name"]), (0, demo.entity)}
        assert errors[categorical["name"]]["message"] == "Input should be a valid string, got 42"
        assert "entity key is required" in errors[demo.entity]["message"]

        body = predict(rows, version=1, alias="production").json()
        assert body["error"] == "InputError" and "not both" in body["message"]
        assert predict([]).status_code == 422
        bad_version = client.post("/models/churn/predict", json={"rows": rows, "version": "1"})
        assert bad_version.status_code == 422 and bad_version.json()["errors"][0]["field"] == "version"
        assert predict(rows, alias="canary").status_code == 404

        # an unseen category and a missing value are no errors: scored as batch scoring would
        odd = [dict(r) for r in rows]
        odd[0][categorical["name"]] = "never-seen-" + categorical["categories"][0]
        odd[1][numeric] = None
        response = predict(odd)
        assert response.status_code == 200, response.text
        import pyarrow as pa

        expected_table = demo.table.slice(0, 3)
        column = expected_table.column(categorical["name"]).to_pylist()
        column[0] = odd[0][categorical["name"]]
        expected_table = expected_table.set_column(expected_table.schema.get_field_index(categorical["name"]),
                                                   categorical["name"], pa.array(column, type=pa.string()))
        values = expected_table.column(numeric).to_pylist()
        values[1] = None
        expected_table = expected_table.set_column(expected_table.schema.get_field_index(numeric), numeric,
                                                   pa.array(values, type=expected_table.schema.field(numeric).type))
        expected = model.predict_score(expected_table).tolist()
        got = [p["score"] for p in response.json()["predictions"]]
        assert max(abs(g - e) for g, e in zip(got, expected)) < 1e-9


def test_api_key_body_limit_and_errors(demo):
    rows = demo.json_rows(demo.table.slice(0, 2))
    with running(make_app(demo, api_key=KEY, max_body_bytes=20_000)) as client:
        assert client.get("/health").status_code == 200  # a load balancer needs no key
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": f"Bearer {KEY[:-1]}"},
                        {"Authorization": f"Basic {KEY}"}):
            for response in (client.get("/models", headers=headers),
                             client.post("/models/churn/predict", json={"rows": rows}, headers=headers)):
                assert response.status_code == 401, (headers, response.text)
                assert response.json() == {"error": "Unauthorized", "message": "A valid API key is required."}
                assert KEY[:6] not in response.text and response.headers["www-authenticate"] == "Bearer"
        assert client.get("/docs").status_code == 404  # no open schema when a key is required
        assert client.get("/models", headers={"X-API-Key": KEY}).status_code == 200
        auth = {"Authorization": f"Bearer {KEY}"}
        assert client.post("/models/churn/predict", json={"rows": rows}, headers=auth).status_code == 200

        big = {"rows": rows * 100}
        too_large = client.post("/models/churn/predict", json=big, headers=auth)
        assert too_large.status_code == 413 and too_large.json()["error"] == "PayloadTooLarge"
        import json

        payload = json.dumps(big).encode()
        chunked = client.post("/models/churn/predict", headers={**auth, "Content-Type": "application/json"},
                              content=(payload[i:i + 4096] for i in range(0, len(payload), 4096)))
        assert chunked.status_code == 413  # no Content-Length: counted while it streams

        # a failure the client did not cause: a generic 500 with an error id, no detail, no traceback
        path = Path(demo.rows[2]["artifact_uri"].removeprefix("file://"))
        original = path.read_bytes()
        try:
            path.write_bytes(original[:-10] + b"0123456789")
            response = client.post("/models/churn/predict", json={"rows": rows, "version": 2}, headers=auth)
        finally:
            path.write_bytes(original)
        assert response.status_code == 500
        body = response.json()
        assert set(body) == {"error", "message", "error_id"} and len(body["error_id"]) == 12
        assert "sha256" not in response.text and str(path.parent) not in response.text


def test_locked_warehouse_is_a_503_and_scoring_goes_on(demo):
    rows = demo.json_rows(demo.table.slice(0, 2))
    with running(make_app(demo)) as client, holding_lock(demo):
        locked = client.get("/models/churn/versions")
        assert locked.status_code == 503 and locked.headers["retry-after"] == "5"
        assert set(locked.json()) == {"error", "message", "error_id"}
        assert demo.env["DWML_DUCKDB_PATH"] not in locked.text
        assert client.post("/reload").status_code == 503  # the models it has stay loaded
        # loaded models need no warehouse
        assert client.post("/models/churn/predict", json={"rows": rows}).status_code == 200


# -- champion / challenger --------------------------------------------------------------------------

def test_challenger_share_by_entity_key(demo):
    from dwml_py.serving import Router

    rows = demo.json_rows(demo.table)
    n, share = len(rows), 0.3
    assert n >= 300
    with running(make_app(demo, challenger="staging", challenger_share=share)) as client:
        assert client.get("/models").json()["models"][0]["challenger"] == {"version": 2}
        first = client.post("/models/churn/predict", json={"rows": rows}).json()
        again = client.post("/models/churn/predict", json={"rows": rows[::-1]}).json()
    got = first["predictions"]
    assert first["versions"] == [1, 2]
    assert all((p["version"], p["role"]) in {(1, "champion"), (2, "challenger")} for p in got)
    challenged = sum(p["role"] == "challenger" for p in got)
    assert abs(challenged - n * share) < 4 * math.sqrt(n * share * (1 - share)), (challenged, n)
    # deterministic: the same entity gets the same version, whatever the order and the request
    assert [p["version"] for p in again["predictions"][::-1]] == [p["version"] for p in got]
    router = Router(share)
    assert [p["role"] for p in got] == ["challenger" if router.bucket("churn", p["entity_key"]) < share else "champion"
                                        for p in got]
    # each row is scored by the version it names
    for version in (1, 2):
        expected = demo.models[version].predict_score(demo.table).tolist()
        mine = [(p["score"], e) for p, e in zip(got, expected) if p["version"] == version]
        assert mine and max(abs(s - e) for s, e in mine) < 1e-9


def test_challenger_share_without_keys_is_seeded_random(demo):
    from dwml_py.serving import Router

    row = demo.json_rows(demo.table.slice(0, 1))[0]
    del row[demo.entity]
    share, n, seed = 0.25, 160, 5
    roles = []
    with running(make_app(demo, challenger="2", challenger_share=share, seed=seed)) as client:
        for _ in range(n):
            body = client.post("/models/churn/predict", json={"rows": [row, row]}).json()
            first, second = body["predictions"]
            assert first["entity_key"] is None and body["logged"] is False
            assert first["role"] == second["role"]  # keyless rows of one request share one draw
            roles.append((first["role"], first["version"]))
    assert set(roles) == {("champion", 1), ("challenger", 2)}
    challenged = sum(r == "challenger" for r, _ in roles)
    assert abs(challenged - n * share) < 4 * math.sqrt(n * share * (1 - share)), challenged
    router = Router(share, seed)  # the seed fixes the draws
    assert [r for r, _ in roles] == ["challenger" if router.draw() < share else "champion" for _ in range(n)]


# -- served predictions in dwml.predictions ---------------------------------------------------------

def served_rows(demo, since):
    return demo.query("select model_name, version, entity_key, cast(snapshot_at as date)::varchar, score, "
                      "predicted_label, batch_id, source from dwml.predictions "
                      f"where source = 'rest' and scored_at >= '{since.isoformat(sep=' ')}'")


def test_predictions_written_in_batches(demo):
    from dwml_py.tracking import utcnow

    since = utcnow()
    table = demo.table.slice(0, 120)
    rows = demo.json_rows(table)
    app = make_app(demo, log_predictions=True, flush_rows=50, flush_seconds=0.3)
    responses = []
    with running(app) as client:
        for start in range(0, 120, 40):
            body = client.post("/models/churn/predict", json={"rows": rows[start:start + 40]}).json()
            assert body["logged"] is True
            responses += body["predictions"]
        wait_for(lambda: client.get("/health").json()["predictions"]["pending_rows"] == 0)
        stats = client.get("/health").json()["predictions"]
        assert stats["written_rows"] == 120 and stats["failed_flushes"] == 0 and stats["dropped_rows"] == 0
        written = served_rows(demo, since)
    assert len(written) == 120 == len({(r[2], r[3]) for r in written})  # no duplicates
    assert len({r[6] for r in written}) == stats["written_batches"] >= 2
    snapshot = str(table.column(demo.timestamp)[0].as_py())[:10]
    by_key = {r[2]: r for r in written}
    for p in responses:
        stored = by_key[p["entity_key"]]
        assert stored[:2] == ("churn", 1) and stored[3] == snapshot and stored[7] == "rest"
        assert abs(stored[4] - p["score"]) < 1e-12 and stored[5] == p["label"]

    # nothing reaches the size or the time limit: the rows are written at shutdown
    since = utcnow()
    quiet = make_app(demo, log_predictions=True, flush_rows=10_000, flush_seconds=3600)
    with running(quiet) as client:
        assert client.post("/models/churn/predict", json={"rows": rows[:30]}).status_code == 200
        assert client.get("/health").json()["predictions"]["pending_rows"] == 30
    assert len(served_rows(demo, since)) == 30


@contextlib.contextmanager
def holding_lock(demo):
    """Another process holds the DuckDB file's write lock (as a running `dbt run` would)."""
    script = textwrap.dedent("""
        import sys, time, duckdb
        con = duckdb.connect(sys.argv[1])
        print("locked", flush=True)
        time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script, demo.env["DWML_DUCKDB_PATH"]],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()


def test_refused_flush_is_kept_and_retried(demo):
    from dwml_py.tracking import utcnow

    since = utcnow()
    rows = demo.json_rows(demo.table.slice(200, 60))
    app = make_app(demo, log_predictions=True, flush_rows=20, flush_seconds=0.2)
    with running(app) as client:
        health = lambda: client.get("/health").json()["predictions"]  # noqa: E731
        with holding_lock(demo):
            assert client.post("/models/churn/predict", json={"rows": rows}).status_code == 200
            wait_for(lambda: health()["failed_flushes"] >= 2)
            assert health()["pending_rows"] == 60 and health()["written_rows"] == 0
        wait_for(lambda: health()["pending_rows"] == 0)
        assert health()["written_rows"] == 60 and health()["dropped_rows"] == 0
    written = served_rows(demo, since)
    assert len(written) == 60 == len({r[2] for r in written}) and len({r[6] for r in written}) == 1


def test_unwritable_at_shutdown_is_saved_as_parquet(demo, caplog):
    import pyarrow.parquet as pq

    from dwml_py.tracking import utcnow

    since = utcnow()
    rows = demo.json_rows(demo.table.slice(100, 7))
    app = make_app(demo, log_predictions=True, flush_rows=10_000, flush_seconds=3600)
    with holding_lock(demo), caplog.at_level("ERROR", logger="dwml.serving"):
        with running(app) as client:
            scored = client.post("/models/churn/predict", json={"rows": rows}).json()["predictions"]
        # the server stopped while the warehouse was locked: the rows went to a Parquet file
    saved = list((Path(demo.env["DWML_ARTIFACT_DIR"]) / "unflushed_predictions").glob("rest-*.parquet"))
    assert len(saved) == 1 and str(saved[0]) in caplog.text and "INSERT INTO dwml.predictions" in caplog.text
    table = pq.read_table(saved[0])
    assert table.column("score").to_pylist() == [p["score"] for p in scored]
    assert set(table.column("source").to_pylist()) == {"rest"} and app.state.prediction_log.dropped_rows == 0
    assert served_rows(demo, since) == []
    saved[0].unlink()


def test_reload_follows_a_deploy(demo):
    from dwml_py.deployment import deploy

    rows = demo.json_rows(demo.table.slice(0, 4))
    with running(make_app(demo)) as client:
        assert client.post("/models/churn/predict", json={"rows": rows}).json()["versions"] == [1]
        try:
            assert deploy(demo.project, "churn", 2)["passed"] is True  # while the server runs
            # aliases are read at start and on reload, not per request
            assert client.post("/models/churn/predict", json={"rows": rows}).json()["versions"] == [1]
            assert client.post("/reload").json() == {
                "models": {"churn": {"champion": 2, "challenger": None, "previous_champion": 1}}}
            body = client.post("/models/churn/predict", json={"rows": rows}).json()
            assert body["versions"] == [2]
            expected = demo.models[2].predict_score(demo.table.slice(0, 4)).tolist()
            assert max(abs(p["score"] - e) for p, e in zip(body["predictions"], expected)) < 1e-9
        finally:
            deploy(demo.project, "churn", 1)  # the rollback leaves the module's aliases as they were
        assert client.post("/reload").json()["models"]["churn"]["champion"] == 1


# -- the command ------------------------------------------------------------------------------------

def test_serve_command(demo):
    from dwml_py.tracking import utcnow

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    since = utcnow()
    env = {**os.environ, **demo.env, "SERVE_KEY": KEY}
    server = subprocess.Popen([str(Path(sys.executable).parent / "dwml"), "serve", "churn", "--port", str(port),
                               "--api-key-env", "SERVE_KEY", "--flush-seconds", "3600"], env=env, cwd=DEMO_DIR,
                              stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, server.stderr.read()
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/health").status_code == 200:
                        break
                assert time.monotonic() < deadline
                time.sleep(0.2)
            rows = demo.json_rows(demo.table.slice(0, 5))
            response = client.post("/models/churn/predict", json={"rows": rows}, headers={"X-API-Key": KEY})
            assert response.status_code == 200, response.text
        server.send_signal(signal.SIGINT)  # Ctrl-C: the buffer is flushed on the way out
        assert server.wait(30) == 0
        log = server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
    assert "serving churn v1 (production)" in log, log
    assert len(served_rows(demo, since)) == 5, log


def test_serve_command_errors(demo, monkeypatch):
    from typer.testing import CliRunner

    from dwml_py.cli import app

    result = CliRunner().invoke(app, ["serve", "churn", "--api-key-env", "NO_SUCH_VARIABLE_SET"])
    assert result.exit_code == 1 and "NO_SUCH_VARIABLE_SET, which is not set" in result.output
    result = CliRunner().invoke(app, ["serve", "churn", "--challenger-share", "0.2"])
    assert result.exit_code == 1 and "no challenger is named" in result.output
    result = CliRunner().invoke(app, ["serve", "chrun"])
    assert result.exit_code == 1 and "did you mean 'churn'" in result.output
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the extra were not installed
    result = CliRunner().invoke(app, ["serve", "churn"])
    assert result.exit_code == 1 and 'pip install "dwml-dbt[serve]"' in result.output
