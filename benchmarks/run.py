"""dwml benchmarks: speed and memory against the floor and against the tools users would pick instead.

    python -m benchmarks                        # 1M rows, every benchmark but latency
    python -m benchmarks --rows 1000000 5000000 # both sizes (peak memory is compared across sizes)
    python -m benchmarks --only drift,profile   # some of: profile, drift, scoring, training, training_memory, catalog, latency
    python -m benchmarks --only latency         # CPU seconds of dwml's commands on the demo (50,000 customers)
    python -m benchmarks --quick                # 100k rows, fewer trees and repeats: a smoke run
    python -m benchmarks --evidently-python /tmp/evidently-venv/bin/python   # with Evidently

Every figure is a ratio against a baseline measured in the same run (the machines are shared and
noisy), printed as a table and written as JSON (--json, default benchmarks/results/latest.json)
with the machine, the package versions and the date. Targets and what each figure measures are in
docs/benchmarks.md. Generated data is kept in --data-dir and reused.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import data  # noqa: E402
from benchmarks.common import Figure, machine, versions  # noqa: E402

BENCHES = ("profile", "drift", "scoring", "training", "training_memory", "catalog", "latency")
PER_SIZE = ("profile", "drift", "scoring", "training", "training_memory")
# Run only when named: it runs the demo end to end first (minutes) and times commands, not data sizes.
ON_REQUEST = ("latency",)


@dataclass
class Context:
    """What a benchmark gets: the data of one size, the project over it, and the run's options."""

    rows: int
    db_path: Path
    work_dir: Path
    repeat: int
    train_rows: int
    train_params: dict
    batch_size: int
    evidently_python: str | None
    evidently_rows: int
    evidently_timeout: int
    catalog_models: int
    with_sql: bool = True
    latency_customers: int = 50_000
    project: object = None
    _model: dict | None = field(default=None, repr=False)

    def model(self) -> dict:
        """The trained, registered model of this size (trained on first use, with fit_seconds)."""
        if self._model is None:
            from benchmarks.model_setup import train_and_register

            started = time.perf_counter()
            self._model = train_and_register(self.project, self.train_rows, self.train_params)
            self._model["fit_seconds"] = self._model["fit_info"]["prepare_seconds"] + \
                self._model["fit_info"]["fit_seconds"]
            self._model["setup_seconds"] = time.perf_counter() - started
        return self._model


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="table sizes (default 1000000)")
    parser.add_argument("--only", default=",".join(b for b in BENCHES if b not in ON_REQUEST),
                        help=f"comma-separated, of {', '.join(BENCHES)} (default: all but {', '.join(ON_REQUEST)})")
    parser.add_argument("--quick", action="store_true",
                        help="100k rows, 20k training rows, 50 trees, 1 repeat, Evidently on 5k rows")
    parser.add_argument("--repeat", type=int, default=None, help="timings are the best of this many (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-rows", type=int, default=None, help="rows the model is trained on (default 100000)")
    parser.add_argument("--trees", type=int, default=None, help="XGBoost trees (default: dwml's default, 300)")
    parser.add_argument("--threads", type=int, default=None, help="XGBoost threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=50_000, help="rows per scoring batch")
    parser.add_argument("--evidently-python", default=None,
                        help="python of a venv with evidently==0.7.23 and pandas<3; without it Evidently is skipped")
    parser.add_argument("--evidently-rows", type=int, default=None, help="rows of each table Evidently gets "
                        "(default 100000; it took 143 s on 1M x 24 here)")
    parser.add_argument("--catalog-models", type=int, default=5000)
    parser.add_argument("--latency-customers", type=int, default=None,
                        help="customers of the demo the latency bench runs on (default 50000, the demo's size)")
    parser.add_argument("--no-sql-scoring", action="store_true", help="skip the SQL scoring figure")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "dwml-bench",
                        help="where generated DuckDB files are kept and reused")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only.split(",")) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    quick = args.quick
    args.rows = args.rows or ([100_000] if quick else [1_000_000])
    args.repeat = args.repeat or (1 if quick else 3)
    args.train_rows = args.train_rows or (20_000 if quick else 100_000)
    args.trees = args.trees or (50 if quick else None)
    args.evidently_rows = args.evidently_rows or (5_000 if quick else 100_000)
    args.latency_customers = args.latency_customers or (5_000 if quick else 50_000)
    return args


def format_table(figures: list[Figure]) -> str:
    header = ("bench", "figure", "rows", "seconds", "baseline s", "ratio", "target", "met")
    lines = []
    for f in figures:
        target = "" if f.target is None else f"{f.target_op} {f.target:g}"
        met = {True: "yes", False: "NO", None: ""}[f.met]
        lines.append((f.bench, f.name, f"{f.rows:,}" if f.rows else "",
                      "" if f.seconds is None else f"{f.seconds:.3f}",
                      "" if f.baseline_seconds is None else f"{f.baseline_seconds:.3f}",
                      "" if f.ratio is None else f"{f.ratio:.2f}", target, met or ("skipped" if f.seconds is None
                                                                                  and f.ratio is None else "")))
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths))]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    chosen = [b for b in BENCHES if b in args.only.split(",")]
    started = time.perf_counter()
    result = {"machine": machine(), "versions": versions(), "options": {
        "rows": args.rows, "only": chosen, "quick": args.quick, "repeat": args.repeat, "seed": args.seed,
        "train_rows": args.train_rows, "trees": args.trees, "threads": args.threads, "batch_size": args.batch_size,
        "evidently_rows": args.evidently_rows, "catalog_models": args.catalog_models,
        "latency_customers": args.latency_customers}, "figures": []}
    figures: list[Figure] = []
    params = {k: v for k, v in (("n_estimators", args.trees), ("n_jobs", args.threads)) if v is not None}
    with tempfile.TemporaryDirectory(prefix="dwml-bench-work-") as work:
        for rows in args.rows if any(b in PER_SIZE for b in chosen) else []:
            print(f"-- {rows:,} rows: generating or reusing data in {args.data_dir}", file=sys.stderr)
            db_path = data.generate(args.data_dir, rows, args.seed)
            work_dir = Path(work) / str(rows)
            # every size gets a copy of the data, so the model registry and predictions start empty
            import shutil

            copy = work_dir / "warehouse.duckdb"
            work_dir.mkdir(parents=True)
            shutil.copyfile(db_path, copy)
            from benchmarks.model_setup import open_project

            ctx = Context(rows=rows, db_path=copy, work_dir=work_dir, repeat=args.repeat,
                          train_rows=min(args.train_rows, rows), train_params=params, batch_size=args.batch_size,
                          evidently_python=args.evidently_python, evidently_rows=args.evidently_rows,
                          evidently_timeout=1800, catalog_models=args.catalog_models,
                          with_sql=not args.no_sql_scoring)
            ctx.project = open_project(copy, work_dir)
            for name in chosen:
                if name not in PER_SIZE:
                    continue
                print(f"-- {rows:,} rows: {name}", file=sys.stderr)
                module = __import__(f"benchmarks.bench_{name}", fromlist=["run"])
                figures.extend(module.run(ctx))
        if "scoring" in chosen:
            from benchmarks.bench_scoring import peak_memory_figure

            memory = peak_memory_figure(figures)
            if memory is not None:
                figures.append(memory)
        if "training_memory" in chosen:
            from benchmarks.bench_training_memory import growth_figures

            figures.extend(growth_figures(figures))
        if "catalog" in chosen:
            print("-- catalog", file=sys.stderr)
            from benchmarks import bench_catalog

            ctx = Context(rows=0, db_path=Path(), work_dir=Path(work), repeat=args.repeat, train_rows=0,
                          train_params={}, batch_size=0, evidently_python=None, evidently_rows=0,
                          evidently_timeout=0, catalog_models=args.catalog_models)
            figures.extend(bench_catalog.run(ctx))
        if "latency" in chosen:
            print("-- latency", file=sys.stderr)
            from benchmarks import bench_latency

            ctx = Context(rows=0, db_path=Path(), work_dir=Path(work), repeat=args.repeat, train_rows=0,
                          train_params={}, batch_size=0, evidently_python=None, evidently_rows=0,
                          evidently_timeout=0, catalog_models=0, latency_customers=args.latency_customers)
            figures.extend(bench_latency.run(ctx))
    result["figures"] = [f.to_dict() for f in figures]
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(format_table(figures))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"JSON: {args.json}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
