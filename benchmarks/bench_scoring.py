"""Targets 3 and 4: batch scoring in Python, and scoring compiled to SQL.

* `predict_vs_bare`: `dwml predict` (batch_scoring.predict: stream Arrow batches, preprocess,
  predict, write dwml.predictions) rows/s >= 0.8x an Arrow fetch of the same rows + the bare
  booster's inplace_predict (bare_scoring.py; it writes nothing back). Each runs in a process of
  its own (scoring_child.py), which also gives its peak RSS; the two alternate `--repeat` times
  and the best time of each is compared (the highest peak RSS is reported);
* `predict_peak_rss` (computed across sizes by run.py): peak RSS at the largest size <= 1.3x that
  at the smallest;
* `sql_vs_python`: the model compiled to SQL by dwml_py.sql_scoring and run in DuckDB as
  CREATE TABLE AS (no data leaves the warehouse) vs `dwml predict`, target within 2x. This runs
  the compiled SELECT directly, not through a dbt model: dbt would add its own start-up and the
  same SELECT. The statement is rendered before the timing.

Before timing, the bare scorer's and the SQL's scores are checked against TrainedModel.predict_score
on the first rows (`max_abs_diff`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from sqlglot import exp

from benchmarks import data
from benchmarks.bare_scoring import BareScorer
from benchmarks.common import Figure, timed
from benchmarks.model_setup import REPO_ROOT, project_env
from dwml_py import sql as sqlmod

CHECK_ROWS = 20_000


def child(ctx, mode: str) -> dict:
    env = {**os.environ, **project_env(ctx.db_path, ctx.work_dir)}
    threads = ctx.train_params.get("n_jobs")
    if threads:  # --threads: a loaded artifact forgets n_jobs, so XGBoost would predict on every core
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-m", "benchmarks.scoring_child", mode, str(ctx.batch_size)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"scoring_child {mode} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _first_rows(warehouse, model, rows: int):
    columns = [data.ENTITY, *model.feature_names]
    return warehouse.fetch_arrow(exp.select(*[sqlmod.column(c) for c in columns]).from_(sqlmod.table("main", "current"))
                                 .where(exp.LT(this=sqlmod.column(data.ENTITY), expression=exp.Literal.number(rows)))
                                 .order_by(sqlmod.column(data.ENTITY)))


def sql_scoring(ctx, model, warehouse) -> dict:
    try:
        from dwml_py.sql_scoring import compile_model
    except ImportError as exc:
        return {"skipped": f"dwml_py.sql_scoring is not importable ({exc})"}
    compiled = compile_model(model)
    query = compiled.query(sqlmod.table("main", "current"), keep=[data.ENTITY])
    target = sqlmod.table("main", "bench_sql_scores")

    # rendered once, as `dwml deploy` stores it for dbt: the timing is the engine's, not sqlglot's
    # (rendering these ~350 KB takes 0.6-1 s)
    statement = warehouse.render(exp.Create(this=target.copy(), kind="TABLE", replace=True, expression=query.copy()))

    def create():
        warehouse.execute(statement)

    seconds, _, _ = timed(create, max(1, ctx.repeat - 1))
    check = warehouse.fetch_arrow(exp.select(sqlmod.column(data.ENTITY), sqlmod.column("score")).from_(target.copy())
                                  .where(exp.LT(this=sqlmod.column(data.ENTITY), expression=exp.Literal.number(CHECK_ROWS)))
                                  .order_by(sqlmod.column(data.ENTITY)))
    expected = model.predict_score(_first_rows(warehouse, model, CHECK_ROWS))
    diff = float(np.max(np.abs(check.column("score").to_numpy() - expected)))
    sql_text = query.sql("duckdb")
    warehouse.execute(sqlmod.drop("TABLE", target))
    return {"seconds": seconds, "max_abs_diff": diff, "sql_kb": round(len(sql_text) / 1024, 1),
            "tree_nodes": compiled.tree_nodes}


def run(ctx) -> list[Figure]:
    from dwml_py.warehouse import connect

    rows = ctx.rows
    model = ctx.model()["model"]
    with connect(ctx.project) as warehouse:
        sample = _first_rows(warehouse, model, CHECK_ROWS)
        bare_diff = float(np.max(np.abs(BareScorer(model).predict(sample) - model.predict_score(sample))))
    runs = {"dwml": [], "bare": []}
    for _ in range(max(1, ctx.repeat)):  # alternating, so both see the same spells of load
        for mode in runs:
            runs[mode].append(child(ctx, mode))
    ours, bare = (min(runs[m], key=lambda r: r["seconds"]) for m in ("dwml", "bare"))
    ours = {**ours, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs["dwml"])}
    bare = {**bare, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs["bare"])}
    figures = [
        Figure("scoring", "predict_vs_bare", rows, f"dwml predict, batches of {ctx.batch_size:,}, writes predictions",
               ours["seconds"], "Arrow fetch + bare inplace_predict", bare["seconds"],
               ratio=bare["seconds"] / ours["seconds"], target=0.8, target_op=">=",
               notes="ratio = dwml rows/s / bare rows/s",
               extra={"dwml_rows_per_s": round(ours["rows"] / ours["seconds"]),
                      "bare_rows_per_s": round(bare["rows"] / bare["seconds"]),
                      "dwml_peak_rss_mb": ours["peak_rss_mb"], "dwml_base_rss_mb": ours["base_rss_mb"],
                      "bare_peak_rss_mb": bare["peak_rss_mb"], "bare_max_abs_diff": bare_diff,
                      "dwml_all_s": [round(r["seconds"], 3) for r in runs["dwml"]],
                      "bare_all_s": [round(r["seconds"], 3) for r in runs["bare"]]}),
    ]
    if ctx.with_sql:
        with connect(ctx.project) as warehouse:
            found = sql_scoring(ctx, model, warehouse)
        if "skipped" in found:
            figures.append(Figure("scoring", "sql_vs_python", rows, "SQL scoring", None, notes=found["skipped"]))
        else:
            figures.append(Figure("scoring", "sql_vs_python", rows,
                                  "compiled SQL (sql_scoring) as CREATE TABLE AS in DuckDB", found["seconds"],
                                  "dwml predict (Python)", ours["seconds"], target=2.0,
                                  extra={k: v for k, v in found.items() if k != "seconds"}))
    return figures


def peak_memory_figure(figures: list[Figure]) -> Figure | None:
    """Peak RSS of `dwml predict` at the largest size against the smallest (run.py calls it)."""
    runs = sorted((f for f in figures if f.name == "predict_vs_bare"), key=lambda f: f.rows)
    if len(runs) < 2:
        return None
    small, large = runs[0], runs[-1]
    ratio = large.extra["dwml_peak_rss_mb"] / small.extra["dwml_peak_rss_mb"]
    return Figure("scoring", "predict_peak_rss", large.rows,
                  f"peak RSS of dwml predict at {large.rows:,} rows ({large.extra['dwml_peak_rss_mb']} MB)", None,
                  f"the same at {small.rows:,} rows ({small.extra['dwml_peak_rss_mb']} MB)", None, ratio=ratio,
                  target=1.3, notes="ratio of peak resident set sizes")
