"""Target 1: drift of every feature against the stored reference.

* `drift_features` (the target): dwml_py.drift's counting over the current table (in DuckDB one
  scan: cumulative COUNT_IF per cut and a HISTOGRAM of category codes) plus the statistics,
  <= 1.5x one full-scan aggregate of the same table;
* `detect_drift` end to end (registry, artifact, thresholds, writing dwml.drift_metrics, and the
  score's drift when predictions exist), reported;
* a pandas/numpy implementation of the same bins after fetching the table as Arrow, reported (its
  counts must equal the warehouse's: checked, `counts_equal`);
* Evidently's DataDriftPreset (optional, in its own virtual environment: see evidently_child.py)
  on a sample of both tables, per row, >= 50x slower than dwml per row.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks import data
from benchmarks.common import Figure, floor_query, spread, timed
from benchmarks.model_setup import MODEL_NAME
from dwml_py import drift
from dwml_py import sql as sqlmod
from dwml_py.reference_profile import OTHER_CATEGORY, SCORE_FEATURE

TABLE = "current"


def drift_features(warehouse, features: list[dict]) -> dict:
    """What dwml computes for every feature: counts in the warehouse, then the statistics."""
    source = sqlmod.table("main", TABLE)
    numeric = [(r["feature"], list(r["bin_edges"] or [])) for r in features if r["kind"] != "categorical"]
    categorical = [(r["feature"], list(r["categories"] or [])) for r in features if r["kind"] == "categorical"]
    total, counts = drift.count_features(warehouse, source, numeric, categorical)
    return {"total": total, "counts": counts, "statistics": _statistics(features, counts, total)}


def _statistics(features: list[dict], counts: dict, total: int) -> dict:
    out = {}
    for ref in features:
        current = counts[ref["feature"]]
        out[ref["feature"]] = (drift.categorical_statistics(ref, current, total) if ref["kind"] == "categorical"
                               else drift.numeric_statistics(ref, current, total))
    return out


def numpy_drift(warehouse, features: list[dict]) -> dict:
    """The same bins and statistics with pandas/numpy, after fetching the features as Arrow."""
    from sqlglot import exp

    table = warehouse.fetch_arrow(exp.select(*[sqlmod.column(r["feature"]) for r in features])
                                  .from_(sqlmod.table("main", TABLE)))
    counts = {}
    for ref in features:
        column = table.column(ref["feature"])
        if ref["kind"] == "categorical":
            counts[ref["feature"]] = _category_counts(column, list(ref["categories"] or []))
        else:
            values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            missing = np.isnan(values)
            present = values[~missing]
            cuts = np.asarray(ref["bin_edges"] or [], dtype=np.float64)
            binned = np.bincount(np.searchsorted(cuts, present, side="left"), minlength=len(cuts) + 1)
            counts[ref["feature"]] = {"counts": binned.astype(int).tolist(), "missing": int(missing.sum())}
    total = table.num_rows
    return {"total": total, "counts": counts, "statistics": _statistics(features, counts, total)}


def _category_counts(column, categories: list[str]) -> dict:
    import pandas as pd

    series = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    found = series.value_counts(dropna=True)
    folded = bool(categories) and categories[-1] == OTHER_CATEGORY
    named = categories[:-1] if folded else categories
    index = {c: i for i, c in enumerate(named)}
    out = [0] * len(categories)
    unseen = 0
    for value, n in found.items():
        if value in index:
            out[index[value]] += int(n)
        elif folded:
            out[-1] += int(n)
        else:
            unseen += int(n)
    return {"counts": out, "missing": int(series.isna().sum()), "unseen": unseen}


def evidently(ctx, sample: int) -> dict:
    """Evidently's DataDriftPreset on `sample` rows of reference and current, in its own venv."""
    python = ctx.evidently_python
    if not python:
        return {"skipped": "no --evidently-python given (Evidently needs its own venv with pandas<3: see docs)"}
    if not Path(python).exists():
        return {"skipped": f"{python} does not exist"}
    import duckdb
    from sqlglot import exp

    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(ctx.db_path), read_only=True)
        try:
            for table in data.TABLES:
                first = exp.LT(this=sqlmod.column(data.ENTITY), expression=exp.Literal.number(int(sample)))
                query = exp.select(*[sqlmod.column(c) for c in data.FEATURES]).from_(
                    sqlmod.table("main", table)).where(first)  # ids are 0..rows-1 in a random order of values
                con.sql(query.sql("duckdb")).write_parquet(str(Path(tmp) / f"{table}.parquet"))
        finally:
            con.close()
        done = subprocess.run([python, str(Path(__file__).with_name("evidently_child.py")), tmp],
                              capture_output=True, text=True, timeout=ctx.evidently_timeout)
    if done.returncode != 0:
        return {"skipped": "Evidently failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(ctx) -> list[Figure]:
    from dwml_py.warehouse import connect

    rows, repeat = ctx.rows, ctx.repeat
    version = ctx.model()["version"]
    with connect(ctx.project) as warehouse:
        reference = drift.load_reference(warehouse, MODEL_NAME, version)
        features = [r for r in reference if r["feature"] != SCORE_FEATURE]
        floor_s, _, _ = timed(lambda: warehouse.fetch_rows(
            floor_query(sqlmod.table("main", TABLE), data.NUMERIC, list(data.CATEGORICAL))), repeat)
        dwml_s, ours, dwml_runs = timed(lambda: drift_features(warehouse, features), repeat)
        numpy_s, theirs, _ = timed(lambda: numpy_drift(warehouse, features), max(1, repeat - 1))
        end_s, result, _ = timed(lambda: drift.detect_drift(ctx.project, MODEL_NAME, version=version,
                                                            relation=f"main.{TABLE}", warehouse=warehouse),
                                 max(1, repeat - 1))
    equal = ours["counts"] == theirs["counts"] and ours["total"] == theirs["total"]
    drifting = sorted(f["feature"] for f in result["features"] if f["drifted"])
    floor = "one full-scan aggregate of the current table"
    figures = [
        Figure("drift", "drift_vs_floor", rows, f"drift counts + statistics, {len(features)} features", dwml_s,
               floor, floor_s, target=1.5, extra={"noise": round(spread(dwml_runs), 3), "drifting": drifting}),
        Figure("drift", "detect_drift_vs_floor", rows, "detect_drift end to end (registry, writes, score drift)",
               end_s, floor, floor_s),
        Figure("drift", "numpy_vs_dwml", rows, "pandas/numpy after an Arrow fetch, same bins", numpy_s,
               "dwml drift counts + statistics", dwml_s, target_op=">=",
               notes="ratio > 1: dwml is faster", extra={"counts_equal": equal}),
    ]
    sample = min(rows, ctx.evidently_rows)
    found = evidently(ctx, sample)
    if "skipped" in found:
        figures.append(Figure("drift", "evidently_per_row_vs_dwml", rows, "Evidently DataDriftPreset", None,
                              notes="skipped: " + found["skipped"]))
    else:
        per_row_theirs = found["seconds"] / sample
        per_row_ours = dwml_s / rows
        figures.append(Figure(
            "drift", "evidently_per_row_vs_dwml", rows,
            f"Evidently {found.get('version')} DataDriftPreset, {sample:,} vs {sample:,} rows", found["seconds"],
            "dwml drift counts + statistics (per row of the current table)", dwml_s,
            ratio=per_row_theirs / per_row_ours, target=50, target_op=">=",
            notes="ratio = Evidently seconds per row / dwml seconds per row",
            extra={"evidently_rows": sample, "evidently_drifted_columns": found.get("drifted_columns")}))
    return figures
