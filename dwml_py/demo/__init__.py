"""The demo: generate the demo warehouse, build it with dbt, run the ML flow on it.

`generate_demo` writes the raw tables (schema `raw`) of a deterministic subscription business
(see dwml_py.demo.generator); `run_demo` is the main job: generate, then `dbt build` the demo
models and their tests, then every later step of the flow that exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.dbt_runner import DbtRun, run_dbt
from dwml_py.demo.generator import RAW_TABLES, DemoConfig, generate, validate_config
from dwml_py.errors import GateRefused, InputError
from dwml_py.progress import SILENT, Progress
from dwml_py.tables import ensure_tables
from dwml_py.warehouse import connect

RAW_SCHEMA = "raw"
DEMO_MODEL = "churn"  # declared in models/demo/features/customer_features.yml


@dataclass
class DemoResult:
    config: dict
    rows: dict[str, int] = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"config": self.config, "rows": self.rows, "steps": self.steps}


def _config_dict(config: DemoConfig) -> dict:
    return {"customers": config.customers, "seed": config.seed, "months": config.months,
            "start_date": config.start_date.isoformat(), "inject_defects": config.inject_defects}


def check_config(config: DemoConfig) -> None:
    try:
        validate_config(config)
    except ValueError as exc:
        raise InputError(f"Invalid demo settings: {exc}", hint="see `dwml demo generate --help` for the ranges.") from exc


def load_raw(warehouse, config: DemoConfig, progress: Progress = SILENT) -> dict[str, int]:
    """Replace schema `raw` with freshly generated demo data; returns rows per table."""
    check_config(config)
    warehouse.execute(exp.Drop(this=sqlmod.table(None, RAW_SCHEMA), kind="SCHEMA", exists=True, cascade=True))
    warehouse.create_schema(RAW_SCHEMA)
    rows = {name: 0 for name in RAW_TABLES}
    with progress.step(f"Generating the demo warehouse ({config.customers:,} customers, seed {config.seed})") as step:
        for name, chunk in generate(config):
            mode = "append" if rows[name] else "replace"
            rows[name] += warehouse.write_arrow(chunk, RAW_SCHEMA, name, mode=mode)
            step.update(f"{name}: {rows[name]:,} rows")
        step.summary = ", ".join(f"{name} {count:,}" for name, count in rows.items())
    return rows


def generate_demo(project, config: DemoConfig, progress: Progress = SILENT) -> DemoResult:
    """`dwml demo generate`: write the raw demo tables into the profile's warehouse."""
    check_config(config)
    result = DemoResult(config=_config_dict(config))
    with connect(project) as warehouse:
        result.rows = load_raw(warehouse, config, progress)
        ensure_tables(warehouse)
    result.steps.append({"step": "generate", "ok": True, "rows": sum(result.rows.values())})
    return result


def build_demo(project, progress: Progress = SILENT) -> DbtRun:
    """`dbt build` of the whole demo project, reporting each model and test as it finishes."""
    with progress.step("Building and testing the demo models with dbt (dbt build)") as step:
        done = {"n": 0}

        def on_node(node):
            done["n"] += 1
            step.update(f"{done['n']} nodes done; last: {node.resource_type} {node.name} {node.status}")

        run = run_dbt(project, ["build"], on_node=on_node)
        counts = run.counts()
        step.summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" in {run.seconds:.1f} s"
    return run


def run_demo(project, config: DemoConfig, progress: Progress = SILENT) -> DemoResult:
    """`dwml demo run`, the main job: generate, build and test, then the ML flow as far as it exists."""
    result = generate_demo(project, config, progress)
    run = build_demo(project, progress)
    result.steps.append({"step": "dbt build", "ok": run.success, **run.to_dict()})
    if not run.success:
        failed = run.failed_nodes
        names = ", ".join(f"{n.name} ({n.status})" for n in failed[:10]) + (" ..." if len(failed) > 10 else "")
        raise GateRefused(
            f"dbt build failed: {len(failed)} node(s) did not pass: {names}. Nothing trains on data whose tests fail.",
            hint="fix the data or the models (target/run_results.json has the details); "
            "with --inject-defects this is the expected outcome.",
        )
    trained = _train_step(project, progress)
    result.steps.append(trained)
    result.steps.extend(_deploy_and_score_steps(project, trained["version"], progress))
    return result


def _deploy_and_score_steps(project, version: int, progress: Progress) -> list[dict]:
    """Deploy the new version as production and score the feature table in batches."""
    from dwml_py.batch_scoring import predict
    from dwml_py.deployment import deploy

    with progress.step(f"Deploying {DEMO_MODEL} version {version} as production") as step:
        deployed = deploy(project, DEMO_MODEL, version, alias="production", reason="demo run")
        step.summary = f"governance {deployed['governance']['decision']}, {deployed['reference_rows']} reference rows"
    scored = predict(project, DEMO_MODEL, alias="production", progress=progress)
    progress.info(f"Scored {scored['rows']:,} rows into dwml.predictions (batch {scored['batch_id']}).")
    return [{"step": "deploy", "ok": bool(deployed["passed"]), "alias": "production", "version": version},
            {"step": "predict", "ok": True, "rows": scored["rows"], "batch_id": scored["batch_id"],
             "seconds": scored["seconds"]}]


def _train_step(project, progress: Progress) -> dict:
    """Train the demo's churn model through every gate, as `dwml train churn` would."""
    from dwml_py.training_run import train

    trained = train(project, DEMO_MODEL, algorithm="xgboost", seed=0, progress=progress)
    return {"step": "train", "ok": True, "model_name": trained["model_name"], "version": trained["version"],
            "run_id": trained["run_id"], "metrics": trained["metrics"], "gates": trained["gates"],
            "durations": trained["durations"]}
