"""Example calls and results for the tool reference pages, taken from real runs on the demo.

    python -m dwml_py.tools.examples [--customers 2000] [--seed 42]
    python -m dwml_py.tools.docs        # then regenerate docs/tools/ from them

Builds the demo (`dwml demo run`: generate, dbt build, train, deploy with --scaffold, score) in a
temporary folder holding a copy of the dbt project, its own DuckDB file, dbt target, logs and
artifacts, so neither the checkout's warehouse.duckdb nor its files are touched (some tools write
into the project: deploy --scaffold, create_feature_pipeline, write_exposures, create_report).
Then it calls every registered tool through dwml_py.api with the arguments in PLAN, in an order
that gives each one something to work on, abridges each result (long lists and objects cut with
"...", long strings shortened, numbers to 4 significant digits; run ids and timestamps stay
real) and writes EXAMPLES_FILE, which dwml_py.tools.docs reads. The temporary folder appears in
the results as PROJECT_PLACEHOLDER.

A tool missing from PLAN keeps the entry it has in the file (written by hand from a real run) and
is named at the end; so is a tool whose call failed. Either makes the command exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dwml_py.project import copy_project
from dwml_py.tools.docs import EXAMPLES_FILE, load_examples

PROJECT_PLACEHOLDER = "/path/to/project"
ACTOR = "ana"  # DWML_ACTOR during the runs: the examples show a person, not the machine's user
ELLIPSIS = "..."

# What the generator copies into its temporary project: the dbt project itself, without the
# checkout's warehouse, target/, artifacts/ or the Python code (dwml_py comes from the install).


@dataclass(frozen=True)
class Ref:
    """An argument known only during the run: a value saved by an earlier step (e.g. a run id)."""

    key: str


@dataclass
class Step:
    """One example: the tool, its arguments, what to remember from its result, how much to keep."""

    tool: str
    args: dict = field(default_factory=dict)
    save: Callable[[dict, dict], dict] | None = None  # (result, saved so far) -> values to save
    items: int = 3  # list items kept
    keys: int = 16  # keys kept in an object below the top level
    text: int = 240  # characters kept of a string
    dbt_before: tuple[str, ...] = ()  # a dbt command to run before the step, e.g. ("docs", "generate")
    dbt_after: tuple[str, ...] = ()


def _short(run_id: str) -> str:
    return run_id[:8]  # tools accept an unambiguous prefix, as people type it


# The order matters: later steps use what earlier ones made (version 2, run ids, predictions of
# both versions), and the steps that write files into the project come last, as a new file makes
# the manifest stale for the tools that read it (hence `dbt parse` after the feature pipeline).
# The gates' `dbt test`/`dbt compile` rewrite the manifest without the compiled SQL of models
# outside their selection, so `dbt docs generate` runs again before the feature pipeline: without
# column lineage it cannot see the demo's planted leak (customer_engagement.retention_risk_flag).
# The arguments are the hand-chosen ones the pages had before they came from real runs, except
# that version 2 trains with another max_depth (so that it differs from version 1) and is deployed
# with its real holdout AUC as the reason.
PLAN: tuple[Step, ...] = (
    Step("search_catalog", {"term": "email", "limit": 3}),
    Step("show_catalog_node", {"node": "customer_features"}),
    Step("catalog_lineage", {"column": "customer_features.active_days_30d"}),
    Step("suggest_features", {"target_column": "customer_labels.churned_30d", "limit": 5}),
    Step("check_data_quality", {"model": "customer_features"}),
    Step("check_governance", {"model": "customer_features"}),
    Step("get_feature_stats", {"model": "customer_features", "entity_key": ["customer_id"], "store": False}),
    Step("estimate_training_cost", {"model": "churn"}),
    Step("select_model", {"model": "churn"}),
    Step("train_model", {"name": "churn", "param": ["max_depth=3"]}, save=lambda r, saved: {
        "train_run": _short(r["run_id"]), "holdout_start": str(r["split"]["cut"])[:10],
        "deploy_reason": f"holdout ROC AUC {r['metrics']['roc_auc']:.4f} (version 1: {saved['demo_auc']:.4f})"}),
    Step("list_runs", {"limit": 3}),
    Step("show_run", {"run": Ref("train_run")}),
    Step("compare_experiments", {"runs": [Ref("demo_run"), Ref("train_run")]}),
    Step("create_experiment", {"experiment": "churn-features", "model_name": "churn",
                               "params": ["max_depth=4", "learning_rate=0.1"], "tags": ["owner=ana"]},
         save=lambda r, saved: {"experiment_run": _short(r["run_id"])}),
    Step("log_metrics", {"run_id": Ref("experiment_run"), "metrics": ["roc_auc=0.812", "log_loss=0.377"],
                         "split": "holdout", "finish": True}),
    Step("register_model", {"run": Ref("train_run"), "description": "retrained on the November snapshot"}),
    Step("deploy_model", {"name": "churn", "version": 2, "reason": Ref("deploy_reason")}),
    Step("predict", {"name": "churn", "batch_size": 50000}),
    Step("explain_model", {"name": "churn", "rows": 2, "sample_rows": 1000, "repeats": 2}),
    Step("get_model_versions", {"name": "churn"}, items=2),
    Step("list_models", {}),
    Step("detect_model_drift", {"name": "churn", "after": Ref("shift_start")}),
    Step("evaluate_model", {"name": "churn"}),
    # on the rows neither version trained on (both split at the same time)
    Step("ab_test_models", {"name": "churn", "champion": 1, "challenger": 2, "after": Ref("holdout_start")}),
    Step("monitor_models", {}),
    Step("get_ml_status", {}),
    Step("create_report", {"name": "churn"}),
    Step("create_feature_pipeline", {"name": "churn_features_v2", "target_column": "customer_labels.churned_30d",
                                     "from_suggestion": True, "top": 5},
         dbt_before=("docs", "generate"), dbt_after=("parse",)),
    Step("write_exposures", {}),
)


# -- abridging ------------------------------------------------------------------------------

def _number(value: float) -> float:
    """4 significant digits, never rounding away the integer part (10815.3 stays 10815.0)."""
    if not math.isfinite(value) or value == 0:
        return value
    digits = max(0, 3 - math.floor(math.log10(abs(value))))
    return round(value, digits)


def abridge(value: Any, step: Step, depth: int = 0, replace: dict[str, str] | None = None) -> Any:
    """A shorter copy of a result for the docs: lists cut to `step.items` plus "...", objects below
    the top level to `step.keys` plus {"...": "..."}, strings to `step.text` characters."""
    replace = replace or {}
    if isinstance(value, dict):
        items = list(value.items())
        cut = depth > 0 and len(items) > step.keys
        out = {k: abridge(v, step, depth + 1, replace) for k, v in (items[:step.keys] if cut else items)}
        return {**out, ELLIPSIS: ELLIPSIS} if cut else out
    if isinstance(value, (list, tuple)):
        out = [abridge(v, step, depth + 1, replace) for v in value[:step.items]]
        return out + [ELLIPSIS] if len(value) > step.items else out
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        for old, new in replace.items():
            value = value.replace(old, new)
        return value if len(value) <= step.text else value[:step.text].rstrip() + " " + ELLIPSIS
    return value


# -- the run --------------------------------------------------------------------------------

def _resolve(args: dict, saved: dict) -> dict:
    def one(value):
        if isinstance(value, Ref):
            return saved[value.key]
        if isinstance(value, list):
            return [one(v) for v in value]
        return value

    return {name: one(value) for name, value in args.items()}


def _dbt(project, args: list[str]) -> None:
    from dwml_py.dbt_runner import run_dbt

    run = run_dbt(project, args)
    if not run.success:
        raise RuntimeError(f"`dbt {' '.join(args)}` failed in the example project: {run.failed_nodes[:3]}")


@contextlib.contextmanager
def _isolated(workdir: Path, project_dir: Path) -> Iterator[None]:
    """dbt and dwml pointed at the temporary project (its DuckDB file, target, logs, artifacts)."""
    env = {"DWML_DUCKDB_PATH": str(project_dir / "warehouse.duckdb"), "DBT_TARGET_PATH": str(project_dir / "target"),
           "DBT_LOG_PATH": str(workdir / "logs"), "DWML_ARTIFACT_DIR": str(project_dir / "artifacts"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DWML_ACTOR": ACTOR}
    cleared = ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "DBT_TARGET")
    before = {k: os.environ.get(k) for k in (*env, *cleared)}
    cwd = os.getcwd()
    try:
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(env)
        os.chdir(project_dir)
        yield
    finally:
        os.chdir(cwd)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def generate(source: Path, customers: int, seed: int, log=print) -> tuple[dict, list[str]]:
    """Run the demo and every step of PLAN in a temporary copy of `source`; (examples, failed tools)."""
    from dwml_py import api
    from dwml_py.demo import DemoConfig, run_demo
    from dwml_py.demo.generator import shift_start
    from dwml_py.project import Project

    config = DemoConfig(customers=customers, seed=seed)
    examples: dict[str, dict] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dwml-examples-") as tmp:
        workdir = Path(tmp)
        project_dir = copy_project(source, workdir / "project")
        with _isolated(workdir, project_dir):
            connection = {"project_dir": str(project_dir), "profiles_dir": str(project_dir)}
            started = time.perf_counter()
            project = Project.locate(**connection)
            demo = run_demo(project, config)
            # as a user would before browsing the catalog: column types and compiled SQL for lineage
            _dbt(project, ["docs", "generate"])
            train = next(s for s in demo.steps if s["step"] == "train")
            saved = {"demo_run": _short(train["run_id"]), "demo_auc": train["metrics"]["roc_auc"],
                     "shift_start": shift_start(config).isoformat()}
            log(f"demo run ({customers:,} customers, seed {seed}): {time.perf_counter() - started:.1f} s")
            replace = {str(project_dir.resolve()): PROJECT_PLACEHOLDER, str(project_dir): PROJECT_PLACEHOLDER}
            for step in PLAN:
                args = _resolve(step.args, saved)
                started = time.perf_counter()
                try:
                    if step.dbt_before:
                        _dbt(project, list(step.dbt_before))
                    result = api.call(step.tool, **connection, **args)
                    if step.dbt_after:
                        _dbt(project, list(step.dbt_after))
                except Exception as exc:  # report every failing tool, not only the first
                    failed.append(step.tool)
                    log(f"{step.tool}: FAILED: {type(exc).__name__}: {exc}")
                    continue
                if step.save:
                    saved.update(step.save(result, saved))
                examples[step.tool] = {"args": args, "result": abridge(result, step, replace=replace)}
                log(f"{step.tool}: {time.perf_counter() - started:.1f} s")
    return examples, failed


def write(examples: dict, customers: int, seed: int, path: Path = EXAMPLES_FILE) -> None:
    """The file dwml_py.tools.docs reads: {"generated_by", "demo", "examples": {tool: {args, result}}}."""
    content = {"generated_by": f"python -m dwml_py.tools.examples --customers {customers} --seed {seed}",
               "demo": {"customers": customers, "seed": seed},
               "examples": dict(sorted(examples.items()))}
    path.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from dwml_py.tools.registry import load_tools

    parser = argparse.ArgumentParser(prog="python -m dwml_py.tools.examples", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000, help="customers in the demo (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the demo data (default 42)")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="the demo project to copy (default: the one dwml ships, demo/ in a checkout)")
    parser.add_argument("--out", type=Path, default=EXAMPLES_FILE, help=f"file to write (default: {EXAMPLES_FILE})")
    options = parser.parse_args(argv)

    from dwml_py.package_files import demo_source_dir

    examples, failed = generate(options.project_dir or demo_source_dir(), options.customers, options.seed,
                                log=lambda m: print(m, file=sys.stderr, flush=True))
    previous, _ = load_examples(options.out)
    names = set(load_tools().names())
    kept = sorted(n for n in previous if n in names and n not in examples)
    examples.update({n: previous[n] for n in kept})
    write(examples, options.customers, options.seed, options.out)
    missing = sorted(names - set(examples))
    print(f"wrote {len(examples)} example(s) to {options.out}")
    if kept:
        print(f"kept from the file (not run here): {', '.join(kept)}")
    if failed or missing:
        print(f"failed: {', '.join(failed) or '-'}; no example: {', '.join(missing) or '-'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
