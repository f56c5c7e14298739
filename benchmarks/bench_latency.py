"""Command latency (issue 21): what a `dwml` command costs in CPU seconds (user + sys of the process
and its children, which other load inflates less than wall time), on the demo of the chosen size.

The baseline is the floor any command pays: a bare `python -c` that imports DuckDB, opens the demo
warehouse and runs one query. Each command is run as a user runs it (the installed `dwml` entry
point, in the demo project) and its best of `repeat` runs is compared with the floor's best. The
targets are the issue's goals in CPU seconds divided by the floor measured when it was filed
(0.37 s): --version 0.3 s, listing commands 0.8 s, `check` with current dbt test results 1.5 s,
`drift` 2.5 s.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.common import Figure

FLOOR_WHEN_FILED = 0.37  # CPU s of the bare DuckDB query on the machine the goals were set on
GOALS = {  # command -> goal in CPU seconds (issue 21)
    "--version": 0.3,
    "status": 0.8,
    "models list": 0.8,
    "runs list": 0.8,
    "catalog search email": 0.8,
    "check customer_features": 1.5,
    "drift churn": 2.5,
}
FLOOR = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
         "con.sql('select count(*) from information_schema.tables').fetchall()")


def cpu_seconds(argv: list[str], cwd: Path, env: dict) -> float:
    """User + sys CPU seconds of one run of `argv` and everything it starts; a failure stops the bench."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 2):  # 2: a gate refused or an alert fired, a normal answer
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(argv: list[str], cwd: Path, env: dict, repeat: int) -> tuple[float, list[float]]:
    runs = [cpu_seconds(argv, cwd, env) for _ in range(max(1, repeat))]
    return min(runs), runs


def _tool(name: str) -> str:
    """The console script next to this interpreter (the venv's dwml / dbt), else the one on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def demo_project(work: Path, customers: int, env: dict) -> Path:
    """The demo, run end to end once (train, deploy, score), then its feature model's dbt tests
    run so that `dwml check` finds current results, as after a user's `dbt build`."""
    project = work / "latency-demo"
    print(f"   demo run with {customers:,} customers in {project}", file=sys.stderr)
    subprocess.run([_tool("dwml"), "demo", "run", "--customers", str(customers), "--dir", str(project)],
                   cwd=work, env=env, check=True, capture_output=True)
    subprocess.run([_tool("dbt"), "test", "--select", "+customer_features"], cwd=project, env=env, check=True,
                   capture_output=True)
    return project


def run(ctx) -> list[Figure]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    for name in ("DBT_PROJECT_DIR", "DBT_PROFILES_DIR", "DBT_TARGET", "DWML_DUCKDB_PATH"):
        env.pop(name, None)
    project = demo_project(Path(ctx.work_dir), ctx.latency_customers, env)
    warehouse = project / "warehouse.duckdb"
    floor, floor_runs = best([sys.executable, "-c", FLOOR, str(warehouse)], project, env, ctx.repeat)
    figures = [Figure("latency", "floor: python + duckdb + one query", None, "bare DuckDB query", floor,
                      extra={"runs": floor_runs})]
    for command, goal in GOALS.items():
        seconds, runs = best([_tool("dwml"), *command.split()], project, env, ctx.repeat)
        figures.append(Figure("latency", f"dwml {command}", None, f"CPU s of `dwml {command}` on the demo",
                              seconds, baseline="bare DuckDB query", baseline_seconds=floor,
                              target=round(goal / FLOOR_WHEN_FILED, 2),
                              notes=f"goal {goal:g} CPU s ({goal / FLOOR_WHEN_FILED:.2f}x the floor when filed)",
                              extra={"runs": runs, "goal_cpu_seconds": goal}))
    return figures
