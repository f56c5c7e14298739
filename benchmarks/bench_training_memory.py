"""Training from a table larger than memory: peak RSS of the in-memory path against out-of-core.

Each mode trains on the whole `reference` table (every size's rows: 24 features, a random 80/20
split, dwml's XGBoost) in a process of its own, so that its peak resident set (VmHWM) is its own:

* `in_memory`: what `dwml train` does by default: fetch_training_table -> split -> fit ->
  evaluate -> reference profile on at most 200k training rows (a systematic sample, as dwml train takes);
* `out_of_core`: what `dwml train --out-of-core` does (dwml_py.out_of_core): the split from the
  label column, one statistics pass, the training rows streamed in Arrow batches into XGBoost's
  ExtMemQuantileDMatrix (quantised pages cached on disk), the holdout scored in batches, the
  profile on a sample.

Both use the same training query and the same DuckDB `memory_limit` (`DUCKDB_MEMORY_LIMIT`),
so that DuckDB's share of the process (its buffer pool, which caches the table's blocks, and the
sort behind the ordered query, spilled beyond the limit) is bounded alike and the difference is
dwml's. The limit is below what DuckDB takes for the smallest size (with 1 GB the 1M-row table's
sort fitted under it and the 5M one's filled it, so the out-of-core growth measured DuckDB
filling its limit, not dwml). Figures:

* `peak_rss_out_of_core_vs_in_memory` (per size): out-of-core peak / in-memory peak, reported,
  with both runs' holdout ROC AUC (they must agree);
* `out_of_core_peak_rss` (across sizes, from run.py): the out-of-core peak at the largest size
  over that at the smallest; target <= 1.3 (bounded by the batch and DuckDB's limit, not the
  table);
* `out_of_core_peak_growth` / `in_memory_peak_growth` (across sizes): the same above the
  process's base (imports, DuckDB open), next to the table's growth; reported.

    python -m benchmarks --only training_memory --rows 1000000 5000000
    python -m benchmarks.bench_training_memory MODE DB_PATH TREES BATCH_ROWS THREADS   # one child run
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks.common import Figure, status_mb

DUCKDB_MEMORY_LIMIT = "256MB"  # see the module doc
DEFAULT_TREES = 20  # the peak does not depend on the number of trees; the time does
PEAK_GROWTH_TARGET = 1.3  # out-of-core peak RSS at the largest size / at the smallest
MODES = ("in_memory", "out_of_core")


def _spec():
    from benchmarks import data
    from dwml_py.training_set import TrainingSpec

    return TrainingSpec(model_name="bench_memory", task="classification", feature_model="model.bench.reference",
                        feature_schema="main", feature_table="reference", entity=[data.ENTITY], timestamp=None,
                        label_model="model.bench.reference", label_schema="main", label_table="reference",
                        label_column=data.LABEL, features=list(data.FEATURES))


def child(mode: str, db_path: str, trees: int, batch_rows: int, threads: int | None) -> dict:
    """One training run of `mode`; returns seconds, peak/base RSS and the holdout metrics."""
    from dwml_py import out_of_core as ooc
    from dwml_py.reference_profile import profile_sample, reference_profile
    from dwml_py.training import evaluate, fit
    from dwml_py.training_set import build_training_query, fetch_training_table, split
    from dwml_py.warehouse.duckdb import DuckDBWarehouse

    params = {"n_estimators": trees, **({"n_jobs": threads} if threads else {})}
    spec = _spec()
    warehouse = DuckDBWarehouse(db_path, read_only=True, settings={"memory_limit": DUCKDB_MEMORY_LIMIT})
    query = build_training_query(spec, "duckdb")
    base = status_mb("VmRSS")
    started = time.perf_counter()
    extra: dict = {}
    if mode == "in_memory":
        table = fetch_training_table(warehouse, query, batch_size=batch_rows)
        extra["table_mb"] = round(table.nbytes / 2**20, 1)
        train, holdout, _ = split(table, spec, method="random", seed=0)
        del table
        model = fit(train, spec, "xgboost", params, seed=0)
        evaluation = evaluate(model, holdout)
        profile_rows = profile_sample(train)  # as dwml train does above 200k training rows
    elif mode == "out_of_core":
        data = ooc.StreamedTrainingSet.plan(warehouse, query, spec, method="random", seed=0, batch_rows=batch_rows)
        model, profile_rows = ooc.fit_streamed(data, spec, "xgboost", params, seed=0)
        evaluation = ooc.evaluate_streamed(model, data)
        extra.update(passes=data.passes, largest_batch_rows=data.largest_batch_rows)
    else:
        raise SystemExit(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    reference_profile(profile_rows, model, model.predict_score(profile_rows))
    seconds = time.perf_counter() - started
    warehouse.close()
    return {"mode": mode, "seconds": seconds, "train_rows": model.fit_info["train_rows"],
            "peak_rss_mb": round(status_mb("VmHWM"), 1), "base_rss_mb": round(base, 1),
            "roc_auc": evaluation["metrics"]["roc_auc"], "log_loss": evaluation["metrics"]["log_loss"],
            "profile_rows": profile_rows.num_rows, **extra}


def _run_child(ctx, mode: str) -> dict:
    from benchmarks.model_setup import REPO_ROOT
    from dwml_py.out_of_core import DEFAULT_BATCH_ROWS

    trees = ctx.train_params.get("n_estimators", DEFAULT_TREES)
    threads = ctx.train_params.get("n_jobs", 0)
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_training_memory", mode, str(ctx.db_path),
                           str(trees), str(DEFAULT_BATCH_ROWS), str(threads)],
                          cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"bench_training_memory {mode} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(ctx) -> list[Figure]:
    runs = {mode: _run_child(ctx, mode) for mode in MODES}
    ours, theirs = runs["out_of_core"], runs["in_memory"]
    return [Figure("training_memory", "peak_rss_out_of_core_vs_in_memory", ctx.rows,
                   f"out-of-core training peak RSS ({ours['peak_rss_mb']:,.0f} MB, {ours['seconds']:.1f} s)", None,
                   f"in-memory training peak RSS ({theirs['peak_rss_mb']:,.0f} MB, {theirs['seconds']:.1f} s)", None,
                   ratio=ours["peak_rss_mb"] / theirs["peak_rss_mb"],
                   notes=f"DuckDB memory_limit {DUCKDB_MEMORY_LIMIT} in both; ratio of peak resident set sizes",
                   extra={"in_memory": theirs, "out_of_core": ours,
                          "roc_auc_diff": abs(ours["roc_auc"] - theirs["roc_auc"])})]


def growth_figures(figures: list[Figure]) -> list[Figure]:
    """The out-of-core peak RSS at the largest size over that at the smallest (with a target), and
    per mode the same above the process's base (run.py calls it)."""
    runs = sorted((f for f in figures if f.name == "peak_rss_out_of_core_vs_in_memory"), key=lambda f: f.rows)
    if len(runs) < 2:
        return []
    small, large = runs[0], runs[-1]
    peaks = [r.extra["out_of_core"]["peak_rss_mb"] for r in (small, large)]
    out = [Figure("training_memory", "out_of_core_peak_rss", large.rows,
                  f"out-of-core training peak RSS at {large.rows:,} rows ({peaks[1]:,.0f} MB)", None,
                  f"the same at {small.rows:,} rows ({peaks[0]:,.0f} MB)", None, ratio=peaks[1] / peaks[0],
                  target=PEAK_GROWTH_TARGET,
                  notes=f"the table grew {large.rows / small.rows:g}x; DuckDB memory_limit {DUCKDB_MEMORY_LIMIT}")]
    for mode in ("out_of_core", "in_memory"):
        grown = [r.extra[mode]["peak_rss_mb"] - r.extra[mode]["base_rss_mb"] for r in (small, large)]
        out.append(Figure("training_memory", f"{mode}_peak_growth", large.rows,
                          f"{mode} peak RSS above base at {large.rows:,} rows ({grown[1]:,.0f} MB)", None,
                          f"the same at {small.rows:,} rows ({grown[0]:,.0f} MB)", None, ratio=grown[1] / grown[0],
                          notes=f"the table grew {large.rows / small.rows:g}x"))
    return out


if __name__ == "__main__":
    mode, db_path, trees, batch_rows, threads = sys.argv[1:6]
    print(json.dumps(child(mode, db_path, int(trees), int(batch_rows), int(threads) or None)))
