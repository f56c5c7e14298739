"""Target 5: training overhead. `dwml train` with its gates' time taken out, against bare
`xgboost.train` on the same matrix (<= 1.15x); the gates' own time reported separately.

`dwml train` needs a dbt feature model whose tests have run, so this writes a small dbt project
into the work folder (`bench_project`): one table model over the first rows of `reference` (all
of them, up to MAX_ROWS), declared in its yml as the ML model `bench_train` (entity `id`, label `label`) with
not_null/unique tests on the key. `dbt build` runs before the timing. Then one real
`training_run.train` (catalog, gates, point-in-time training set with its fingerprint, split,
preprocessing, fit, holdout evaluation, artifact, reference profile, registry) is timed; the
gates are a step of their own in it (`durations.gates`: quality = `dbt test` on the model and
its parents + profile thresholds, governance = `dbt compile` + PII checks; no cost budget is
set, so the cost gate does not calibrate), so "gates off" is the run's wall time minus that step.

The baseline rebuilds the run's training split (same query, seed and split), turns it into
the model matrix with the registered version's own preprocessing, and times
`xgboost.train(params, QuantileDMatrix(matrix, label), num_boost_round)` with the version's XGBoost
parameters: the library call a hand-written script would make (QuantileDMatrix, as XGBoost's
scikit-learn wrapper uses for hist, is the faster input). Both sides run after a warm-up fit. The dwml fit alone against it
is reported too (`fit_vs_bare_xgboost`), and the breakdown of the run (`extra.durations`).
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from benchmarks import data
from benchmarks.common import Figure

ML_MODEL = "bench_train"
# The run trains on the whole generated table up to this many rows: at 1M rows (800k to fit) the
# fit takes most of a minute on one thread, and the run's fixed costs (catalog, registry) fall to
# what they are on real data; more rows only lengthen the benchmark.
MAX_ROWS = 1_000_000
FEATURE_MODEL = "bench_features"


def write_project(work_dir: Path, rows: int) -> Path:
    """A dbt project with one feature model over the first `rows` rows of `reference`."""
    root = Path(work_dir) / "bench_project"
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(yaml.safe_dump({
        "name": "bench_project", "version": "1.0.0", "config-version": 2, "profile": "bench_project",
        "model-paths": ["models"], "models": {"bench_project": {"+materialized": "table"}}}, sort_keys=False))
    (root / "profiles.yml").write_text(yaml.safe_dump({"bench_project": {"target": "dev", "outputs": {"dev": {
        "type": "duckdb", "path": "{{ env_var('DWML_DUCKDB_PATH') }}", "threads": 1}}}}, sort_keys=False))
    columns = [data.ENTITY, *data.FEATURES, data.LABEL]
    (root / "models" / f"{FEATURE_MODEL}.sql").write_text(
        "select " + ", ".join(columns) + f"\nfrom main.reference\nwhere {data.ENTITY} < {int(rows)}\n")
    (root / "models" / f"{FEATURE_MODEL}.yml").write_text(yaml.safe_dump({"version": 2, "models": [{
        "name": FEATURE_MODEL, "description": "Benchmark features: the first rows of the generated reference table.",
        "config": {"meta": {"owner": "benchmarks", "dwml": {"entity": data.ENTITY, "models": {
            ML_MODEL: {"task": "classification", "label": data.LABEL}}}}},
        "columns": [{"name": data.ENTITY, "data_tests": ["not_null", "unique"]},
                    {"name": data.LABEL, "data_tests": ["not_null"]}]}]}, sort_keys=False))
    return root


def _bare_matrix(project, result: dict):
    """The run's training split as the registered version's model matrix, and its 0/1 labels."""
    from dwml_py import model_registry as registry
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.catalog import Catalog
    from dwml_py.training import TrainedModel
    from dwml_py.training_set import build_training_query, fetch_training_table, resolve_spec, split
    from dwml_py.warehouse import connect

    with connect(project) as warehouse:
        spec = resolve_spec(Catalog.load(project, warehouse=warehouse), ML_MODEL)  # columns from the warehouse
        row = registry.get_version(warehouse, ML_MODEL, version=result["version"])
        table = fetch_training_table(warehouse, build_training_query(spec, warehouse.dialect))
    model = TrainedModel.from_bytes(registry.load_model_bytes(ArtifactStore.for_project(project), row))
    train, _, info = split(table, spec, method=result["split"]["method"], seed=0)
    assert info["train_rows"] == result["split"]["train_rows"], "the baseline must fit the run's training rows"
    labels = (train.column(model.label).to_numpy(zero_copy_only=False) == model.classes[1]).astype("float32")
    return model, model.transform(train), labels


def bare_xgboost_train(model, matrix, labels) -> float:
    """Seconds of xgboost.train with the version's parameters (as dwml recorded them: a loaded
    scikit-learn wrapper keeps only the booster) on the prepared matrix."""
    import xgboost as xgb

    params = dict(model.params)
    rounds = int(params.pop("n_estimators", 100))
    threads = params.pop("n_jobs", None) or -1
    params.update(objective="binary:logistic", nthread=threads, seed=model.seed)
    started = time.perf_counter()
    # QuantileDMatrix, as XGBoost's own scikit-learn wrapper builds for hist: the faster of the two
    dtrain = xgb.QuantileDMatrix(matrix, label=labels, missing=float("nan"), nthread=threads,
                                 max_bin=params.get("max_bin", 256))
    xgb.train(params, dtrain, num_boost_round=rounds)
    return time.perf_counter() - started


def warm_up() -> None:
    """The first XGBoost fit in a process pays seconds of one-off start-up (measured 2.7 s of a
    0.2 s fit); neither side of the comparison should carry it."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    xgb.train({"tree_method": "hist", "max_depth": 2}, xgb.QuantileDMatrix(rng.normal(size=(500, 4)),
                                                                             label=rng.random(500)), 5)


def run(ctx) -> list[Figure]:
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.project import Project
    from dwml_py.training_run import train

    rows = min(ctx.rows, MAX_ROWS)
    warm_up()
    root = write_project(ctx.work_dir, rows)
    project = Project.locate(root, profiles_dir=root)
    built = run_dbt(project, ["build"])
    if not built.success:
        raise RuntimeError(f"dbt build of the benchmark project failed: {built.to_dict()['failed']}")
    params = dict(ctx.train_params)  # --trees, --threads; otherwise dwml's defaults
    started = time.perf_counter()
    result = train(project, ML_MODEL, params=params, seed=0)
    total_s = time.perf_counter() - started
    durations = result["durations"]
    gates_s = durations["gates"]
    model, matrix, labels = _bare_matrix(project, result)
    bare_s = min(bare_xgboost_train(model, matrix, labels) for _ in range(max(1, ctx.repeat - 1)))
    train_rows = result["split"]["train_rows"]
    what = f"{train_rows:,} training rows, {matrix.shape[1]} model inputs, {model.params.get('n_estimators')} trees"
    baseline = "xgboost.train on the same matrix"
    extra = {"durations": durations, "total_s": round(total_s, 3), "gates": {
        g: v.get("decision") for g, v in result["gates"].items()}, "train_rows": train_rows,
        "metrics": {k: result["metrics"].get(k) for k in ("roc_auc", "log_loss")}}
    return [
        Figure("training", "train_without_gates_vs_bare", train_rows, f"dwml train minus its gates, {what}",
               total_s - gates_s, baseline, bare_s, target=1.15,
               notes="the run's wall time minus durations.gates", extra=extra),
        Figure("training", "gates_vs_bare", train_rows, "the gates of that run (quality, governance; no cost budget)",
               gates_s, baseline, bare_s, notes="reported: dbt test + dbt compile dominate, independent of rows"),
        Figure("training", "fit_vs_bare_xgboost", train_rows, "the run's fit step (preprocessing + XGBoost fit)",
               durations["fit"], baseline, bare_s),
    ]
