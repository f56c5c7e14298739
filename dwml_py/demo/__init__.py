"""The demo: generate the demo warehouse, build it with dbt, run the ML flow on it.

The demo is its own dbt project (demo/ in a checkout; see dwml_py.demo.project_folder for where
it runs). `generate_demo` writes the raw tables (schema `raw`) of a deterministic subscription
business (see dwml_py.demo.generator); `run_demo` is the main job: generate, then `dbt build` the
demo models and their tests, then every later step of the flow that exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.dbt_runner import DbtRun, run_dbt
from dwml_py.demo.generator import RAW_TABLES, DemoConfig, generate, validate_config
from dwml_py.demo.project_folder import packages_installed, project_lock
from dwml_py.errors import DbtCommandError, GateRefused, InputError
from dwml_py.progress import SILENT, Progress
from dwml_py.scoring_scaffold import TAG as SCORING_TAG
from dwml_py.tables import ensure_tables
from dwml_py.warehouse import connect

RAW_SCHEMA = "raw"
DEMO_MODEL = "churn"  # declared in the demo project's models/features/customer_features.yml
# The demo's scoring model (models/scoring/churn_scores.*): what `dwml deploy --scaffold` writes there.
SCORING_DIR = "models/scoring"


@dataclass
class DemoResult:
    config: dict
    project_dir: str
    rows: dict[str, int] = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"config": self.config, "project_dir": self.project_dir, "rows": self.rows, "steps": self.steps}


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
    warehouse.execute(sqlmod.drop("SCHEMA", sqlmod.table(None, RAW_SCHEMA), cascade=True))
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
    result = DemoResult(config=_config_dict(config), project_dir=str(project.project_dir))
    with connect(project) as warehouse:
        result.rows = load_raw(warehouse, config, progress)
        ensure_tables(warehouse)
    result.steps.append({"step": "generate", "ok": True, "rows": sum(result.rows.values())})
    return result


def install_packages(project, progress: Progress = SILENT) -> bool:
    """`dbt deps` when dwml's dbt package is not installed in the demo project yet; whether it ran."""
    if packages_installed(project.project_dir):
        return False
    with project_lock(project.project_dir):
        if packages_installed(project.project_dir):  # another process installed it while we waited
            return False
        with progress.step("Installing dwml's dbt package into the demo project (dbt deps)") as step:
            run = run_dbt(project, ["deps"])
            if not run.success:
                raise DbtCommandError("`dbt deps` of the demo project failed.",
                                      hint=f"run `dbt deps --project-dir {project.project_dir}` to see why.")
            step.summary = f"done in {run.seconds:.1f} s"
    return True


def build_demo(project, progress: Progress = SILENT) -> DbtRun:
    """`dbt build` of the whole demo project, reporting each model and test as it finishes."""
    with progress.step("Building and testing the demo models with dbt (dbt build)") as step:
        done = {"n": 0}

        def on_node(node):
            done["n"] += 1
            step.update(f"{done['n']} nodes done; last: {node.resource_type} {node.name} {node.status}")

        # monitoring alerts (tag dwml_monitoring) judge earlier monitor runs, not this build: run them
        # after `dwml monitor` (dbt test --select tag:dwml_monitoring). The scoring model (tag
        # dwml_scoring) needs a deployed version: it runs at the end, after the deploy.
        run = run_dbt(project, ["build", "--exclude", "tag:dwml_monitoring", f"tag:{SCORING_TAG}"], on_node=on_node)
        counts = run.counts()
        step.summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" in {run.seconds:.1f} s"
    return run


def run_demo(project, config: DemoConfig, progress: Progress = SILENT) -> DemoResult:
    """`dwml demo run`, the main job: generate, build and test, then the ML flow as far as it exists."""
    result = generate_demo(project, config, progress)
    install_packages(project, progress)
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
    """Deploy the new version as production (scaffolding the demo's scoring model), score the
    feature table in batches, then in the warehouse with `dbt run` of the scoring model."""
    from dwml_py.batch_scoring import predict
    from dwml_py.deployment import deploy

    with progress.step(f"Deploying {DEMO_MODEL} version {version} as production") as step:
        deployed = deploy(project, DEMO_MODEL, version, alias="production", reason="demo run",
                          scaffold_dir=SCORING_DIR)
        sql = deployed["sql_scoring"]
        step.summary = (f"governance {deployed['governance']['decision']}, {deployed['reference_rows']} reference rows, "
                        + (f"SQL scoring compiled ({sql['sql_chars']:,} characters)" if sql["available"]
                           else f"no SQL scoring: {sql['reason']}"))
    scored = predict(project, DEMO_MODEL, alias="production", progress=progress)
    progress.info(f"Scored {scored['rows']:,} rows into dwml.predictions (batch {scored['batch_id']}).")
    steps = [{"step": "deploy", "ok": bool(deployed["passed"]), "alias": "production", "version": version,
              "sql_scoring": sql, "scaffold": deployed["scaffold"]},
             {"step": "predict", "ok": True, "rows": scored["rows"], "batch_id": scored["batch_id"],
              "seconds": scored["seconds"]}]
    if sql["available"]:
        steps.append(_dbt_scoring_step(project, deployed["scaffold"]["model"], scored["batch_id"], progress))
    return steps


def _dbt_scoring_step(project, model: str, batch_id: str, progress: Progress) -> dict:
    """`dbt run` of the scoring model, and how far its scores are from the batch ones."""
    from dwml_py.relations import resolve_relation

    with progress.step(f"Scoring in the warehouse with dbt (dbt run --select {model})") as step:
        run = run_dbt(project, ["run", "--select", model])
        if not run.success:
            failed = run.failed_nodes[0] if run.failed_nodes else None
            raise DbtCommandError(f"`dbt run --select {model}` failed: {failed.message if failed else 'no node ran'}",
                                  hint="see target/run_results.json and logs/dbt.log.")
        with connect(project) as warehouse:
            schema, table = resolve_relation(project, warehouse, model)
            rows, diff = _compare_with_batch(warehouse, schema, table, batch_id)
        step.summary = (f"{rows:,} rows in {schema}.{table} in {run.seconds:.1f} s; "
                        f"max |SQL - batch score| {diff:.1e}" if diff is not None else f"{rows:,} rows")
    return {"step": "dbt scoring", "ok": True, "model": model, "relation": f"{schema}.{table}", "rows": rows,
            "seconds": round(run.seconds, 2), "max_abs_diff_vs_batch": diff}


def _compare_with_batch(warehouse, schema: str, table: str, batch_id: str) -> tuple[int, float | None]:
    """(rows of the dbt-built scores, max |score - batch score| over the rows of both)."""
    scores = sqlmod.table(schema, table, alias="s")
    batch = sqlmod.table("dwml", "predictions", alias="p")
    key = exp.cast(sqlmod.column("customer_id", "s"), exp.DataType.Type.TEXT)
    on = exp.and_(sqlmod.column("entity_key", "p").eq(key),
                  sqlmod.column("snapshot_at", "p").eq(exp.cast(sqlmod.column("snapshot_date", "s"),
                                                               exp.DataType.Type.TIMESTAMP)),
                  sqlmod.column("batch_id", "p").eq(sqlmod.literal(batch_id)))
    query = exp.select(
        exp.select(exp.func("count", exp.Star())).from_(sqlmod.table(schema, table)).subquery(),
        exp.func("max", exp.Abs(this=sqlmod.column("score", "s") - sqlmod.column("score", "p")))).from_(
        scores).join(batch, on=on, join_type="inner")
    rows, diff = warehouse.fetch_arrow(query).to_pylist()[0].values()
    return int(rows), diff


def _train_step(project, progress: Progress) -> dict:
    """Train the demo's churn model through every gate, as `dwml train churn` would."""
    from dwml_py.training_run import train

    trained = train(project, DEMO_MODEL, algorithm="xgboost", seed=0, progress=progress)
    return {"step": "train", "ok": True, "model_name": trained["model_name"], "version": trained["version"],
            "run_id": trained["run_id"], "metrics": trained["metrics"], "gates": trained["gates"],
            "durations": trained["durations"]}
