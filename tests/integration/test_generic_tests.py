"""dwml's generic tests in a real `dbt build`: for each test a passing case, a failing case, and
cases that only warn (warn tier) or error (error tier) through dbt's severity/warn_if/error_if.

One throw-away project installs dwml as a local package; one `dbt deps` and one `dbt build`
run every case, and one `dbt parse` checks the argument errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = """
name: gate_consumer
version: "0.1.0"
config-version: 2
profile: gate_consumer
model-paths: ["models"]
"""

PROFILES = """
gate_consumer:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('GATE_DUCKDB_PATH') }}"
      threads: 2
"""

# Ten rows: one NULL email (10%), one score outside [0, 100], three bad_scores outside it,
# a timestamp two hours old and one a hundred hours old.
QUALITY = """
select id, email, score, bad_score,
  cast({{ dbt.dateadd('hour', -2, dbt.current_timestamp()) }} as timestamp) as fresh_at,
  cast({{ dbt.dateadd('hour', -100, dbt.current_timestamp()) }} as timestamp) as stale_at
from (
  select 1 as id, 'a@x' as email, 1.0 as score, 1.0 as bad_score union all
  select 2, 'b@x', 2.0, 2.0 union all
  select 3, null, 3.0, 300.0 union all
  select 4, 'd@x', 4.0, 400.0 union all
  select 5, 'e@x', 5.0, -5.0 union all
  select 6, 'f@x', 6.0, 6.0 union all
  select 7, 'g@x', 7.0, 7.0 union all
  select 8, 'h@x', 8.0, 8.0 union all
  select 9, 'i@x', 9.0, 9.0 union all
  select 10, 'j@x', 500.0, 10.0
) as rows_
"""

EMPTY = "select cast(null as timestamp) as loaded_at, 1 as id where 1 = 0"

# (name, test, arguments, config, column or None) -> expected (status, failures)
CASES = {
    # null_rate_below: 10% NULL emails
    "nulls_pass": ("null_rate_below", {"max_rate": 0.2}, {}, "email", ("pass", 0)),
    "nulls_fail": ("null_rate_below", {"max_rate": 0.05}, {}, "email", ("fail", 1)),
    "nulls_warn": ("null_rate_below", {"max_rate": 0.05}, {"severity": "warn"}, "email", ("warn", 1)),
    "nulls_edge_pass": ("null_rate_below", {"max_rate": 0.1}, {}, "email", ("pass", 0)),
    # row_count_between: 10 rows
    "rows_pass": ("row_count_between", {"min_rows": 5, "max_rows": 20}, {}, None, ("pass", 0)),
    "rows_fail": ("row_count_between", {"min_rows": 11}, {}, None, ("fail", 1)),
    "rows_warn": ("row_count_between", {"max_rows": 9}, {"severity": "warn"}, None, ("warn", 1)),
    # freshness_within: 2 h and 100 h old
    "fresh_pass": ("freshness_within", {"max_age_hours": 24}, {}, "fresh_at", ("pass", 0)),
    "fresh_fail": ("freshness_within", {"max_age_hours": 24}, {}, "stale_at", ("fail", 1)),
    "fresh_warn": ("freshness_within", {"max_age_hours": 24}, {"severity": "warn"}, "stale_at", ("warn", 1)),
    # values_within_range: score has 1 value outside [0, 100], bad_score 3
    "range_pass": ("values_within_range", {"min_value": 0, "max_value": 100, "max_share_outside": 0.2}, {},
                   "score", ("pass", 0)),
    "range_fail": ("values_within_range", {"min_value": 0, "max_value": 100}, {}, "score", ("fail", 1)),
    "range_warn_tier": ("values_within_range", {"min_value": 0, "max_value": 100},
                        {"warn_if": ">0", "error_if": ">2"}, "score", ("warn", 1)),
    "range_error_tier": ("values_within_range", {"min_value": 0, "max_value": 100},
                         {"warn_if": ">0", "error_if": ">2"}, "bad_score", ("fail", 3)),
    "range_open_upper": ("values_within_range", {"min_value": -10}, {}, "bad_score", ("pass", 0)),
    # dwml_drift_below: latest churn run has f1=0.3, f2=0.25, f3=0.05 (an older run drifted more)
    "drift_pass": ("dwml_drift_below", {"model_name": "stable", "max_value": 0.2}, {}, None, ("pass", 0)),
    "drift_fail": ("dwml_drift_below", {"model_name": "churn", "max_value": 0.2}, {}, None, ("fail", 2)),
    "drift_stored_threshold": ("dwml_drift_below", {"model_name": "churn"}, {}, None, ("fail", 1)),
    "drift_warn_tier": ("dwml_drift_below", {"model_name": "churn", "max_value": 0.2},
                        {"warn_if": ">0", "error_if": ">2"}, None, ("warn", 2)),
    "drift_error_tier": ("dwml_drift_below", {"model_name": "churn", "max_value": 0.01},
                         {"warn_if": ">0", "error_if": ">2"}, None, ("fail", 3)),
    "drift_no_runs": ("dwml_drift_below", {"model_name": "never_monitored", "max_value": 0.2}, {}, None,
                      ("pass", 0)),
    # dwml_performance_above: churn v1 latest window 0.60 (older 0.90), v2 latest 0.80; good v1 0.85
    "perf_pass": ("dwml_performance_above", {"model_name": "good", "metric": "roc_auc", "min_value": 0.7}, {},
                  None, ("pass", 0)),
    "perf_fail": ("dwml_performance_above", {"model_name": "churn", "metric": "roc_auc", "min_value": 0.7}, {},
                  None, ("fail", 1)),
    "perf_warn": ("dwml_performance_above", {"model_name": "churn", "metric": "roc_auc", "min_value": 0.7},
                  {"severity": "warn"}, None, ("warn", 1)),
    "perf_error_tier": ("dwml_performance_above", {"model_name": "churn", "metric": "roc_auc", "min_value": 0.85},
                        {"warn_if": ">0", "error_if": ">1"}, None, ("fail", 2)),
}


def _yaml(cases: dict) -> str:
    """models/quality.yml with every case as a named test (JSON is valid YAML)."""
    model_tests, column_tests = [], {}
    for name, (test, arguments, config, column, _) in cases.items():
        entry = {f"dwml.{test}": {"name": name, "arguments": arguments, "config": config}}
        (column_tests.setdefault(column, []) if column else model_tests).append(entry)
    models = [
        {"name": "quality", "data_tests": model_tests,
         "columns": [{"name": c, "data_tests": t} for c, t in column_tests.items()]},
        {"name": "empty_model", "data_tests": [
            {"dwml.row_count_between": {"name": "empty_rows", "arguments": {"min_rows": 1}}},
        ], "columns": [{"name": "loaded_at", "data_tests": [
            {"dwml.freshness_within": {"name": "empty_fresh", "arguments": {"max_age_hours": 24}}},
            {"dwml.null_rate_below": {"name": "empty_nulls", "arguments": {"max_rate": 0}}},
        ]}]},
    ]
    return json.dumps({"version": 2, "models": models}, indent=1)


EXTRA = {"empty_rows": ("fail", 1), "empty_fresh": ("fail", 1), "empty_nulls": ("pass", 0)}


def _monitoring_rows(path: Path) -> None:
    """What `dwml drift` / `dwml evaluate` will write later, inserted by hand."""
    from dwml_py.tables import TABLES, ensure_tables
    from dwml_py.warehouse.duckdb import DuckDBWarehouse

    now = dt.datetime(2025, 6, 1, 12)
    old, new = now - dt.timedelta(days=7), now
    drift = [
        ("r_old", "churn", 1, f, "psi", 0.9, 0.2, True, "major", old) for f in ("f1", "f2", "f3", "f4")
    ] + [
        ("r_new", "churn", 1, "f1", "psi", 0.30, 0.2, True, "major", new),
        ("r_new", "churn", 1, "f2", "psi", 0.25, 0.3, False, "none", new),
        ("r_new", "churn", 1, "f3", "psi", 0.05, 0.2, False, "none", new),
        ("r_new", "churn", 1, "f1", "ks", 0.99, 0.1, True, "major", new),
        ("r_stable", "stable", 3, "f1", "psi", 0.01, 0.2, False, "none", new),
    ]
    perf = [
        ("e1", "churn", 1, old - dt.timedelta(days=7), old, "roc_auc", 0.90, 0.9, False, 100, old),
        ("e2", "churn", 1, old, new, "roc_auc", 0.60, 0.9, True, 100, new),
        ("e2", "churn", 2, old, new, "roc_auc", 0.80, 0.9, False, 100, new),
        ("e2", "churn", 2, old, new, "log_loss", 0.10, 0.2, False, 100, new),
        ("e3", "good", 1, old, new, "roc_auc", 0.85, 0.9, False, 100, new),
    ]
    drift_columns = ["drift_run_id", "model_name", "version", "feature", "statistic", "value", "threshold",
                     "is_drift", "severity", "computed_at"]
    perf_columns = [c.name for c in TABLES["performance_metrics"].columns]
    with DuckDBWarehouse(str(path)) as warehouse:
        ensure_tables(warehouse)
        for table, names, rows in (("drift_metrics", drift_columns, drift), ("performance_metrics", perf_columns, perf)):
            assert set(names) <= set(TABLES[table].column_names()) and len(names) == len(rows[0])
            warehouse.write_arrow(pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}),
                                  "dwml", table, mode="append")


def _dbt(args, project: Path, env):
    dbt = Path(sys.executable).parent / "dbt"
    flags = ["--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run([str(dbt), *args, *flags], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)


def test_generic_tests_pass_fail_warn_error(repo_root, tmp_path):
    project = tmp_path / "gate_consumer"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(PROJECT)
    (project / "profiles.yml").write_text(PROFILES)
    (project / "packages.yml").write_text(f"packages:\n  - local: {repo_root}\n")
    (project / "models/quality.sql").write_text(QUALITY)
    (project / "models/empty_model.sql").write_text(EMPTY)
    (project / "models/quality.yml").write_text(_yaml(CASES))
    database = tmp_path / "gate.duckdb"
    _monitoring_rows(database)
    env = {**os.environ, "GATE_DUCKDB_PATH": str(database), "DBT_TARGET_PATH": str(project / "target"),
           "DBT_LOG_PATH": str(project / "logs")}

    deps = _dbt(["deps"], project, env)
    assert deps.returncode == 0, deps.stdout + deps.stderr
    build = _dbt(["build"], project, env)
    # failing cases make `dbt build` exit 1; what matters is each test's own outcome
    results = json.loads((project / "target/run_results.json").read_text())["results"]
    outcomes = {r["unique_id"].split(".")[2]: (r["status"], r["failures"])
                for r in results if r["unique_id"].startswith("test.gate_consumer.")}
    expected = {name: case[-1] for name, case in CASES.items()} | EXTRA
    errors = {k: v for k, v in outcomes.items() if v[0] == "error"}
    assert not errors, build.stdout[-4000:]
    assert outcomes == expected, build.stdout[-4000:]
    models = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("model.")}
    assert models["model.gate_consumer.quality"] == "success"
    assert models["model.dwml.dwml_drift_metrics"] == "success"

    # Bad arguments stop the parse with a message naming the test, the argument and the value.
    (project / "models/quality.yml").write_text(_yaml({
        "bad": ("null_rate_below", {"max_rate": "0.05"}, {}, "email", None)}))
    parsed = _dbt(["parse"], project, env)
    assert parsed.returncode != 0
    assert "null_rate_below: `max_rate` must be a number" in parsed.stdout and "'0.05'" in parsed.stdout
