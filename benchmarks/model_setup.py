"""A dwml project over the benchmark data, and one trained, registered model version in it.

The project is the checkout's (its dbt_project.yml and profiles.yml), pointed at the benchmark's
DuckDB file with DWML_DUCKDB_PATH, with artifacts and dbt's target folder in the work folder, as
the tests isolate them. The version is registered the way `dwml train` registers one (a tracked
run, the artifact with its sha256, the reference profile in the finishing transaction), minus the
gates and the dbt-built training set, which need a dbt feature model (see bench_training).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from benchmarks import data
from dwml_py import sql as sqlmod

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "demo"  # the demo dbt project, whose profile the benchmarks point at their own files
MODEL_NAME = "bench_churn"


def project_env(db_path: Path, work_dir: Path) -> dict:
    """The environment variables that point the demo project at the benchmark files."""
    return {"DWML_DUCKDB_PATH": str(db_path), "DWML_ARTIFACT_DIR": str(Path(work_dir) / "artifacts"),
            "DBT_TARGET_PATH": str(Path(work_dir) / "dbt_target"), "DBT_LOG_PATH": str(Path(work_dir) / "dbt_logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def open_project(db_path: Path, work_dir: Path):
    from dwml_py.project import Project

    os.environ.update(project_env(db_path, work_dir))
    for name in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "DBT_TARGET"):
        os.environ.pop(name, None)
    return Project.locate(DEMO_DIR)


def spec() -> dict:
    """The training spec a dbt feature model's meta.dwml would give, as fit() takes it."""
    return {"label_column": data.LABEL, "task": "classification", "features": list(data.FEATURES),
            "entity": [data.ENTITY], "timestamp": None, "feature_schema": "main", "feature_table": "current",
            "model_name": MODEL_NAME}


def training_table(warehouse, rows: int) -> pa.Table:
    """The first `rows` rows of `reference` (the ids are a random order of nothing: rows are i.i.d.)."""
    query = (exp.select(*[sqlmod.column(c) for c in [data.ENTITY, *data.FEATURES, data.LABEL]])
             .from_(sqlmod.table("main", "reference"))
             .where(exp.LT(this=sqlmod.column(data.ENTITY), expression=exp.Literal.number(int(rows)))))
    return warehouse.fetch_arrow(query)


def train_and_register(project, train_rows: int, params: dict | None = None, seed: int = 0) -> dict:
    """Fit the model on `train_rows` reference rows and register it as a new version of MODEL_NAME
    with its reference profile. Returns {version, model, train (the table), fit_info}."""
    from dwml_py.reference_profile import reference_profile
    from dwml_py.tables import ensure_tables
    from dwml_py.tracking import start_run
    from dwml_py.training import fit
    from dwml_py.training_run import MODEL_ARTIFACT, MODEL_FORMAT, _reference_writer
    from dwml_py.warehouse import connect

    with connect(project) as warehouse:
        ensure_tables(warehouse)
        train = training_table(warehouse, train_rows)
        model = fit(train, spec(), "xgboost", params, seed=seed)
        run = start_run(experiment=MODEL_NAME, model_name=MODEL_NAME, project=project, warehouse=warehouse,
                        params={"algorithm": "xgboost", "seed": seed, **(params or {})})
        with run:
            run.set(task="classification", algorithm="xgboost", features=model.feature_schema())
            run.log_artifact(model.to_bytes(), name=MODEL_ARTIFACT, artifact_format=MODEL_FORMAT)
            rows = reference_profile(train, model, model.predict_score(train))
            run.on_finish(_reference_writer(MODEL_NAME, rows))
            run.register(MODEL_NAME, artifact=MODEL_ARTIFACT, description="benchmark model")
        version = int(run.version["version"])
    return {"version": version, "model": model, "train": train, "fit_info": model.fit_info}
