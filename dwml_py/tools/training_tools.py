"""Tools around training: select_model (`dwml select MODEL`), estimate_training_cost
(`dwml estimate MODEL`) and explain_model (`dwml explain NAME`).

Thin layers over dwml_py.model_selection, dwml_py.cost_estimate and dwml_py.explain: they
resolve the ML model's spec from the dbt catalog (or a registered version from the registry),
open the warehouse and return JSON-serialisable dicts. All three only read.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from dwml_py.progress import SILENT, Progress
from dwml_py.tools.registry import FRACTION, SEED, TOOLS, VERSION, Param


@contextlib.contextmanager
def _spec_and_warehouse(project, model: str):
    from dwml_py.catalog import Catalog
    from dwml_py.training_set import resolve_spec
    from dwml_py.warehouse import connect

    with connect(project) as warehouse:  # first: the catalog reads the columns from it
        yield resolve_spec(Catalog.load(project, warehouse=warehouse), model), warehouse


@TOOLS.tool("select_model", cli=("select",))
def select_model(
    project,
    model: Annotated[str, Param("the ML model name declared in meta.dwml.models (e.g. churn)", positional=True)],
    bake_off: Annotated[bool, Param("also run a quick cross-validated comparison on a sample")] = False,
    time_budget_seconds: Annotated[float, Param("time budget of the bake-off; algorithms that do not fit "
                                                "are listed as skipped", minimum=0.1, maximum=86_400)] = 60.0,
    folds: Annotated[int, Param("cross-validation folds of the bake-off", minimum=2, maximum=50)] = 5,
    sample_rows: Annotated[int, Param("rows sampled (in the warehouse) for the bake-off", minimum=1,
                                      maximum=10_000_000)] = 20_000,
    seed: Annotated[int, Param("seed of the sample, the folds and the fits", **SEED)] = 0,
    progress: Progress = SILENT,
) -> dict:
    """Recommends algorithms from the training set's characteristics, with an optional bake-off.

    Rows, types, cardinality, missingness and class balance are counted in the warehouse; the
    ranking's rules and reasons are in dwml_py.model_selection. --bake-off cross-validates
    every algorithm on a sample (time-series folds by snapshot when the model has a timestamp,
    stratified k-fold otherwise) and reports the metric's mean +- std per algorithm.
    """
    from dwml_py import model_selection

    with _spec_and_warehouse(project, model) as (spec, warehouse):
        return model_selection.select_model(warehouse, spec, run_bake_off=bake_off,
                                            time_budget_seconds=time_budget_seconds, folds=folds,
                                            sample_rows=sample_rows, seed=seed, progress=progress)


@TOOLS.tool("estimate_training_cost", cli=("estimate",))
def estimate_training_cost(
    project,
    model: Annotated[str, Param("the ML model name declared in meta.dwml.models (e.g. churn)", positional=True)],
    algorithm: Annotated[str, Param("algorithm to estimate: xgboost, random_forest, logistic or linear")] = "xgboost",
    holdout_fraction: Annotated[float, Param("share of rows the split holds out (the rest is fitted)",
                                             **FRACTION)] = 0.2,
    budget_seconds: Annotated[float | None, Param("time budget to check against (default: vars: dwml: cost: "
                                                  "max_seconds)", minimum=0, maximum=10**7)] = None,
    budget_mb: Annotated[float | None, Param("memory budget in MB (default: vars: dwml: cost: max_memory_mb)",
                                             minimum=0, maximum=10**8)] = None,
    seed: Annotated[int, Param("seed of the calibration sample", **SEED)] = 0,
    progress: Progress = SILENT,
) -> dict:
    """Predicted wall time and peak memory of a training run, before it starts.

    Times small fits on a warehouse-side sample of the real training data at three sizes and
    extrapolates each algorithm's power law to the rows the run would fit; `gate` says whether
    the estimate fits the cost budget (train_model refuses a run over budget unless overridden).
    """
    from dwml_py import cost_estimate

    with _spec_and_warehouse(project, model) as (spec, warehouse):
        result = cost_estimate.estimate_training_cost(warehouse, spec, algorithm, holdout_fraction=holdout_fraction,
                                                      seed=seed, progress=progress)
    # Nested, not top-level `passed`: an estimate over budget is information, not a refusal (exit 0).
    result["gate"] = cost_estimate.cost_gate(result, budget_seconds, budget_mb, project_config=project.config)
    return result


@TOOLS.tool("explain_model", cli=("explain",))
def explain_model(
    project,
    name: Annotated[str, Param("registered model name", positional=True)],
    version: Annotated[int | None, Param("version number (default: the latest)", **VERSION)] = None,
    alias: Annotated[str | None, Param("an alias instead of a version, e.g. production")] = None,
    relation: Annotated[str | None, Param("table or dbt model to explain on (default: a sample of the model's "
                                          "training set, latest snapshots first)")] = None,
    rows: Annotated[int, Param("rows to give per-row contributions for", minimum=1, maximum=1_000)] = 5,
    sample_rows: Annotated[int, Param("rows used for permutation importance", minimum=1, maximum=1_000_000)] = 5_000,
    repeats: Annotated[int, Param("shuffles per feature for permutation importance", minimum=1, maximum=100)] = 5,
    seed: Annotated[int, Param("seed of the sample and the shuffles", **SEED)] = 0,
    progress: Progress = SILENT,
) -> dict:
    """Global importance (gain/impurity/|coefficient| and permutation) and per-row contributions of a model version.

    Importance and contributions are per original feature (one-hot columns summed back). The
    version's artifact is verified against its sha256 before it is loaded.
    """
    from dwml_py import explain, model_registry, tracking
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.warehouse import connect

    if sample_rows < 1:
        from dwml_py.errors import InputError

        raise InputError(f"sample_rows must be at least 1, got {sample_rows!r}.", hint="e.g. --sample-rows 5000.")
    warehouse = connect(project)
    try:
        tracking.ensure_once(warehouse)
        row = model_registry.get_version(warehouse, name, version=version, alias=alias)
        with progress.step(f"Loading {name} version {row['version']}"):
            model = model_registry.load_version_model(ArtifactStore.for_project(project), row)
        with progress.step("Fetching the rows to explain") as step:
            table, source = _explain_table(project, warehouse, model, relation, max(sample_rows, rows), seed)
            step.summary = f"{table.num_rows:,} rows from {source}"
    finally:
        warehouse.close()
    spec = model.spec or {}
    keys = list(spec.get("entity") or []) + ([spec["timestamp"]] if spec.get("timestamp") else [])
    with progress.step("Computing importance and contributions"):
        result = explain.explain(model, table, rows=rows, sample_rows=sample_rows, repeats=repeats, seed=seed,
                                 keys=keys)
    return {"model": name, "version": row["version"], "aliases": row.get("aliases", []), "source": source, **result}


def _explain_table(project, warehouse, model, relation: str | None, limit: int, seed: int):
    """(Arrow table, description of where it came from)."""
    from sqlglot import exp

    from dwml_py import sql as sqlmod
    from dwml_py.model_selection import sample_query, training_relation
    from dwml_py.relations import resolve_relation
    from dwml_py.training_set import TrainingSpec

    if relation is not None:
        schema, table = resolve_relation(project, warehouse, relation)
        query = sqlmod.select_all(sqlmod.table(schema, table)).limit(limit)
        return warehouse.fetch_arrow(query), f"{schema}.{table} (first {limit:,} rows)"
    if not model.spec:
        from dwml_py.errors import InputError

        raise InputError("This model version records no training spec, so its training set cannot be rebuilt.",
                         hint="pass --relation with a table holding its features (and label, for permutation "
                         "importance).")
    spec = TrainingSpec.from_dict(model.spec)
    if spec.timestamp:
        # The latest snapshots: the side a time split holds out, so importance is not measured
        # only on rows the model was fitted on.
        keys = [spec.timestamp] + list(spec.entity)
        query = (exp.select(*[sqlmod.column(c, "t") for c in spec.output_columns])
                 .from_(training_relation(warehouse, spec))
                 .order_by(*[exp.Ordered(this=sqlmod.column(k, "t"), desc=i == 0) for i, k in enumerate(keys)])
                 .limit(limit))
        return warehouse.fetch_arrow(query), f"training set of {spec.model_name} (latest {limit:,} rows)"
    return (warehouse.fetch_arrow(sample_query(warehouse, spec, limit, seed)),
            f"training set of {spec.model_name} (sample of {limit:,} rows, which includes fitted rows)")
