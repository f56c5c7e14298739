"""Faults injected into real processes (issue 12, point 2): a training process killed with
SIGKILL, a DuckDB file locked by another writer, an artifact store that cannot be written, and
two scoring runs at once. Nothing may be half-registered or duplicated."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.reliability.helpers import FAST_XGBOOST, invoke, ok, sql_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DWML = str(Path(sys.executable).parent / "dwml")
SLOW_FIT = ["--param", "n_estimators=4000", "--param", "max_depth=8", "--param", "learning_rate=0.01"]


def registry_is_consistent(path) -> list[tuple]:
    """Every registered version points at an artifact whose bytes match its sha256 and comes from a
    finished run. Returns the (version, run status) rows."""
    rows = sql_rows(path, "select v.version, v.artifact_uri, v.artifact_sha256, r.status from dwml.model_versions v "
                          "left join dwml.runs r using (run_id) order by v.version")
    for version, uri, sha, status in rows:
        data = Path(urlparse(uri).path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha, f"version {version}: artifact does not match its sha256"
        assert status == "finished", f"version {version} registered by a run in status {status}"
    return [(v, s) for v, _, _, s in rows]


def start_training(*extra: str) -> subprocess.Popen:
    return subprocess.Popen([DWML, "train", "churn", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())


def kill_when(process: subprocess.Popen, marker: str, timeout: float = 120) -> list[str]:
    """SIGKILL the process as soon as a progress line containing `marker` appears on its stderr."""
    seen, deadline = [], time.monotonic() + timeout
    for line in process.stderr:
        seen.append(line.rstrip())
        if marker in line:
            process.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "\n".join(seen)
    process.wait(timeout=30)
    return seen


# Killed while fitting (a slow fit, so the kill lands inside it), and while the artifact and the
# registry rows are being written (a quick fit, so the test does not wait for a long one).
@pytest.mark.parametrize("marker, params", [("[7] Fitting", SLOW_FIT), ("[9] Storing the artifact", FAST_XGBOOST)])
def test_training_killed_mid_run_leaves_no_half_registered_version(demo, marker, params):
    path = demo["DWML_DUCKDB_PATH"]
    process = start_training(*params)
    seen = kill_when(process, marker)
    assert process.returncode == -signal.SIGKILL, seen
    # Either the kill came before the finishing transaction (no version 2) or after it (a whole
    # version 2); never a version without its artifact or with an unfinished run.
    registered = registry_is_consistent(path)
    assert registered[0] == (1, "finished")
    killed = sql_rows(path, "select status from dwml.runs order by started_at desc limit 1")[0][0]
    assert killed in ("running", "finished")
    if killed == "running":
        assert [v for v, _ in registered] == [1]
    # The next run works and registers the next number.
    result = ok("train", "churn", *FAST_XGBOOST)
    assert result["version"] == max(v for v, _ in registered) + 1
    registry_is_consistent(path)


def hold_write_lock(path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
                               f"print('held', flush=True); time.sleep({seconds}); c.close()"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_locked_duckdb_file_gives_a_clear_error_and_writes_nothing(demo, monkeypatch):
    path = demo["DWML_DUCKDB_PATH"]
    monkeypatch.setenv("DWML_LOCK_WAIT_SECONDS", "0.5")
    holder = hold_write_lock(path, 60)
    try:
        result = invoke("predict", "churn")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is locked by PID" in result.output and "one writing process" in result.output
    assert sql_rows(path, "select count(*) from dwml.predictions") == [(0,)]


def test_a_briefly_locked_file_is_waited_for(demo, monkeypatch):
    monkeypatch.setenv("DWML_LOCK_WAIT_SECONDS", "60")
    holder = hold_write_lock(demo["DWML_DUCKDB_PATH"], 2)
    try:
        started = time.monotonic()
        assert ok("predict", "churn")["rows"] > 0
        assert time.monotonic() - started >= 1.0  # it did wait for the holder
    finally:
        holder.wait(timeout=30)


def test_unwritable_artifact_store_marks_the_run_failed(demo, monkeypatch, tmp_path):
    blocker = tmp_path / "a_file_not_a_folder"
    blocker.write_text("the artifact store should be a folder")
    monkeypatch.setenv("DWML_ARTIFACT_DIR", str(blocker / "artifacts"))
    result = invoke("train", "churn", *FAST_XGBOOST)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error:" in result.output and "Hint:" in result.output
    path = demo["DWML_DUCKDB_PATH"]
    assert registry_is_consistent(path) == [(1, "finished")]
    status, error = sql_rows(path, "select status, error from dwml.runs order by started_at desc limit 1")[0]
    assert status == "failed" and error


def test_two_predict_runs_at_once_leave_no_duplicates(demo, monkeypatch):
    path = demo["DWML_DUCKDB_PATH"]
    env = {**os.environ, "DWML_LOCK_WAIT_SECONDS": "120"}
    runs = [subprocess.Popen([DWML, "predict", "churn"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    features = sql_rows(path, "select count(*) from main.customer_features")[0][0]
    total, distinct = sql_rows(path, "select count(*), count(distinct (entity_key, snapshot_at)) from dwml.predictions "
                                     "where batch_id = 'churn-v1-main.customer_features'")[0]
    assert total == distinct == features
