"""Benchmark: warehouse-side profiling against one full scan of the same table (DuckDB).

    python benchmarks/profile_bench.py [--rows 1000000] [--repeat 3] [--threads N]

Generates a table of 20 numeric columns (2% nulls, a few NaN) and 4 categorical columns
(cardinality 5, 50, 200, 1000), then times, best of --repeat:

* scan_sum       SUM of every numeric column: the cheapest real scan (count/min/max are no
                 baseline: DuckDB answers them from stored statistics, see FIELD-NOTES);
* scan_hash      SUM(HASH(all 24 columns)): one scan that reads every column, strings included;
* profile        profile_relation(..., entity_key=["id"]): every statistic, exact quantiles,
                 approximate distinct counts (3 queries);
* profile_exact  the same with exact COUNT(DISTINCT);
* per_column     the naive way: one query per column and statistic group, for contrast.

Prints a table and one JSON line (prefix BENCH_JSON) with the timings and the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlglot import exp  # noqa: E402

from dwml_py import sql as sqlmod  # noqa: E402
from dwml_py.profiling import profile_relation  # noqa: E402
from dwml_py.warehouse.duckdb import DuckDBWarehouse  # noqa: E402

NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = {"cat_5": 5, "cat_50": 50, "cat_200": 200, "cat_1000": 1000}


def generate(warehouse: DuckDBWarehouse, rows: int) -> None:
    # Generated in SQL (no Python data), deterministic: values come from hashes of the row number.
    numeric = [
        f"CASE WHEN hash(range, {i}) % 50 = 0 THEN NULL "
        f"WHEN hash(range, {i}) % 9973 = 1 THEN 'nan'::DOUBLE "
        f"ELSE (hash(range, {i}) % 1000000) / 1000.0 * {i + 1} END AS {name}"
        for i, name in enumerate(NUMERIC)
    ]
    categorical = [f"'v' || (hash(range, 'c{card}') % {card})::VARCHAR AS {name}" for name, card in CATEGORICAL.items()]
    warehouse.execute(f"CREATE OR REPLACE TABLE bench AS SELECT range AS id, {', '.join(numeric + categorical)} "
                      f"FROM range({int(rows)})")


def best_of(repeat: int, func) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def per_column(warehouse: DuckDBWarehouse) -> None:
    """One query per column: what a profiler that loops over columns does."""
    table = sqlmod.table("main", "bench")
    for name in NUMERIC:
        c = sqlmod.column(name)
        warehouse.fetch_rows(exp.select(exp.Count(this=c), exp.ApproxDistinct(this=c.copy()), exp.Avg(this=c.copy()),
                                        exp.StddevSamp(this=c.copy()),
                                        exp.PercentileCont(this=c.copy(), expression=exp.Array(
                                            expressions=[exp.Literal.number(q) for q in (0.01, 0.5, 0.99)])))
                             .from_(table))
    for name in CATEGORICAL:
        c = sqlmod.column(name)
        warehouse.fetch_rows(exp.select(c, exp.Count(this=exp.Star())).from_(table).group_by(c.copy())
                             .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True)).limit(10))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    args = parser.parse_args(argv)

    warehouse = DuckDBWarehouse(":memory:", settings={"threads": args.threads} if args.threads else None)
    start = time.perf_counter()
    generate(warehouse, args.rows)
    generate_s = time.perf_counter() - start
    table = sqlmod.table("main", "bench")

    scan_sum = exp.select(*[exp.Sum(this=sqlmod.column(n)) for n in NUMERIC]).from_(table)
    scan_hash = exp.select(exp.Sum(this=exp.func("hash", *[sqlmod.column(n) for n in ["id", *NUMERIC, *CATEGORICAL]]))
                           ).from_(table)
    timings = {
        "scan_sum": best_of(args.repeat, lambda: warehouse.fetch_rows(scan_sum)),
        "scan_hash": best_of(args.repeat, lambda: warehouse.fetch_rows(scan_hash)),
        "profile": best_of(args.repeat, lambda: profile_relation(warehouse, "main", "bench", entity_key=["id"])),
        "profile_exact": best_of(args.repeat, lambda: profile_relation(warehouse, "main", "bench", entity_key=["id"],
                                                                       exact=True)),
        "per_column": best_of(args.repeat, lambda: per_column(warehouse)),
    }
    profile = profile_relation(warehouse, "main", "bench", entity_key=["id"])
    threads = warehouse.fetch_scalar("SELECT current_setting('threads')")
    result = {
        "rows": args.rows, "columns": 1 + len(NUMERIC) + len(CATEGORICAL), "threads": threads,
        "generate_s": round(generate_s, 3), "queries_per_profile": profile.queries,
        **{f"{k}_s": round(v, 4) for k, v in timings.items()},
        "ratio_profile_vs_scan_sum": round(timings["profile"] / timings["scan_sum"], 2),
        "ratio_profile_vs_scan_hash": round(timings["profile"] / timings["scan_hash"], 2),
        "ratio_per_column_vs_profile": round(timings["per_column"] / timings["profile"], 2),
    }
    print(f"{args.rows:,} rows x {result['columns']} columns, DuckDB threads={threads}, best of {args.repeat}")
    print(f"{'step':<16}{'seconds':>10}{'x scan_sum':>12}{'x scan_hash':>13}")
    for name, seconds in timings.items():
        print(f"{name:<16}{seconds:>10.3f}{seconds / timings['scan_sum']:>12.2f}{seconds / timings['scan_hash']:>13.2f}")
    print("BENCH_JSON " + json.dumps(result))
    warehouse.close()
    return result


if __name__ == "__main__":
    main()
