"""One overview of every model: `dwml status` (the get_ml_status tool).

Per model: its versions (count, latest), current aliases (with when and by whom they moved),
the last training run (status, gates, headline holdout metric; a run that only logged metrics
through create_experiment/log_metrics is not a training), the last drift check (dataset
drift, drifted features, score drift), the last predictions batch and the latest window of the
last evaluation. Each part is one query over all models (ranked with window functions in the
warehouse), so the cost does not grow with the number of models; a table dwml has not written
yet counts as empty, and nothing is created: the overview only reads.

>>> from dwml_py.warehouse.duckdb import DuckDBWarehouse
>>> ml_status(DuckDBWarehouse(":memory:"))["count"]
0
"""

from __future__ import annotations

from datetime import timedelta

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.defaults import HEADLINE_METRIC
from dwml_py.errors import NotFoundError, did_you_mean
from dwml_py.tables import DATASET_FEATURE, DWML_SCHEMA, PRIMARY_STATISTICS, SCORE_FEATURE
from dwml_py.rows import decode_row, utcnow
# The holdout metric shown for a run, by task; other tasks show the first one logged.
STALE_AFTER_HOURS = 24.0
EMPTY_MESSAGE = ("No models yet. Train one with `dwml train NAME` (a model declared in a feature model's "
                 "meta.dwml), or run the whole flow on the demo with `dwml demo run`.")

_RANK = "_dwml_rank"
RUN_COLUMNS = ["model_name", "run_id", "experiment", "status", "started_at", "finished_at", "task", "algorithm",
               "feature_model", "gates", "row_count", "error", "created_by"]


# -- query building ----------------------------------------------------------------------------

def _col(name: str) -> exp.Column:
    return sqlmod.column(name)


def _desc(name: str) -> exp.Ordered:
    # NULLS LAST everywhere: Postgres puts nulls first in a descending order by default
    return exp.Ordered(this=_col(name), desc=True, nulls_first=False)


def latest_per(source: exp.Expression, columns: list[str], partition: list[str], order: list[str],
               where: exp.Expression | None = None, extra: dict[str, exp.Expression] | None = None,
               dense: bool = False) -> exp.Select:
    """The newest row of `source` per `partition` (by `order`, descending), with `columns` and the
    `extra` computed columns; dense=True keeps every row tied with the newest.

    >>> sql = latest_per(sqlmod.table("dwml", "runs"), ["run_id"], ["model_name"], ["started_at"])
    >>> "ROW_NUMBER() OVER (PARTITION BY \\"model_name\\" ORDER BY \\"started_at\\" DESC" in sql.sql("duckdb")
    True
    """
    ranking = exp.Window(this=exp.Anonymous(this="DENSE_RANK") if dense else exp.RowNumber(),
                         partition_by=[_col(p) for p in partition],
                         order=exp.Order(expressions=[_desc(o) for o in order]))
    extra = extra or {}
    inner = exp.select(*[_col(c) for c in columns], *[exp.alias_(e, n, quoted=True) for n, e in extra.items()],
                       exp.alias_(ranking, _RANK, quoted=True)).from_(source)
    if where is not None:
        inner = inner.where(where)
    return exp.select(*[_col(n) for n in [*columns, *extra]]).from_(inner.subquery("ranked")).where(_col(_RANK).eq(1))


def _table(name: str) -> exp.Table:
    return sqlmod.table(DWML_SCHEMA, name)


def _model_filter(model: str | None) -> exp.Expression | None:
    return None if model is None else _col("model_name").eq(sqlmod.literal(model))


def _and(*conditions) -> exp.Expression | None:
    present = [c for c in conditions if c is not None]
    return exp.and_(*present) if present else None


def versions_query(model: str | None) -> exp.Select:
    """The latest version row per model, with the model's number of versions."""
    count = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[_col("model_name")])
    return latest_per(_table("model_versions"),
                      ["model_name", "version", "run_id", "status", "task", "algorithm", "feature_model", "metrics",
                       "created_at", "created_by"],
                      ["model_name"], ["version"], where=_model_filter(model), extra={"version_count": count})


def aliases_query(model: str | None) -> exp.Select:
    """The current row of every alias (its latest move)."""
    return latest_per(_table("model_aliases"),
                      ["model_name", "alias", "version", "previous_version", "reason", "set_at", "set_by"],
                      ["model_name", "alias"], ["set_at"], where=_model_filter(model))


def _is_training(with_versions: bool) -> exp.Expression:
    """1 for a run that trained: it records the algorithm it fitted (every `dwml train` run does, from
    its start, so a run a gate refused counts too), or its artifact was registered as a version (a
    model trained elsewhere and logged with create_experiment/log_metrics); else 0. A tracked run
    that only logged metrics or params is an experiment, not a training."""
    trained = exp.Not(this=exp.Is(this=_col("algorithm"), expression=exp.Null()))
    if with_versions:
        registered = (exp.select(_col("run_id")).from_(_table("model_versions"))
                      .where(exp.Not(this=exp.Is(this=_col("run_id"), expression=exp.Null()))))
        trained = exp.or_(trained, exp.In(this=_col("run_id"), query=exp.Subquery(this=registered)))
    return exp.Case(ifs=[exp.If(this=trained, true=exp.Literal.number(1))], default=exp.Literal.number(0))


def runs_query(model: str | None, with_versions: bool = True) -> exp.Select:
    """The latest training run per model (runs that name a model), or, for a model with none, its
    latest run, with `is_training` 0 (the model is still listed; it has no last training).
    `with_versions`: whether dwml.model_versions exists to tell registered runs by."""
    runs = exp.select(*[_col(c) for c in RUN_COLUMNS],
                      exp.alias_(_is_training(with_versions), "is_training", quoted=True)).from_(_table("runs"))
    return latest_per(runs.subquery("runs"), [*RUN_COLUMNS, "is_training"], ["model_name"],
                      ["is_training", "started_at", "run_id"],
                      where=_and(exp.Not(this=exp.Is(this=_col("model_name"), expression=exp.Null())),
                                 _model_filter(model)))


def holdout_metrics_query(run_ids: list[str]) -> exp.Select:
    return (exp.select(*[_col(c) for c in ("run_id", "metric", "value", "step", "logged_at")])
            .from_(_table("run_metrics"))
            .where(exp.and_(exp.In(this=_col("run_id"), expressions=[sqlmod.literal(r) for r in run_ids]),
                            _col("split").eq(sqlmod.literal("holdout"))))
            .order_by(_col("logged_at")))


def drift_query(model: str | None) -> exp.Select:
    """The rows that matter of each model's last drift check: its dataset verdict, the score's
    statistics and every statistic that drifted."""
    last_checks = latest_per(_table("drift_metrics"), ["drift_run_id"], ["model_name"],
                             ["computed_at", "drift_run_id"],
                             where=_and(_col("feature").eq(sqlmod.literal(DATASET_FEATURE)), _model_filter(model)))
    interesting = exp.or_(exp.In(this=_col("feature"), expressions=[sqlmod.literal(DATASET_FEATURE),
                                                                     sqlmod.literal(SCORE_FEATURE)]),
                          _col("is_drift").eq(exp.Boolean(this=True)))
    return (exp.select(*[_col(c) for c in ("drift_run_id", "model_name", "version", "feature", "statistic", "value",
                                           "threshold", "is_drift", "severity", "current_window", "computed_at")])
            .from_(_table("drift_metrics"))
            .where(exp.and_(exp.In(this=_col("drift_run_id"), query=exp.Subquery(this=last_checks)), interesting)))


def predictions_query(model: str | None) -> exp.Select:
    """The last scoring batch per model: when, how many rows, by which version and source."""
    batches = (exp.select(_col("model_name"), _col("batch_id"), _col("version"), _col("source"),
                          exp.alias_(exp.Max(this=_col("scored_at")), "scored_at", quoted=True),
                          exp.alias_(exp.Count(this=exp.Star()), "row_count", quoted=True))
               .from_(_table("predictions"))
               .group_by(_col("model_name"), _col("batch_id"), _col("version"), _col("source")))
    if model is not None:
        batches = batches.where(_model_filter(model))
    return latest_per(batches.subquery("batches"), ["model_name", "batch_id", "version", "source", "scored_at",
                                                   "row_count"], ["model_name"], ["scored_at", "batch_id"])


def performance_query(model: str | None) -> exp.Select:
    """Every metric row of the latest window of each model's last evaluation, with the latest
    window of that evaluation that degraded (a monitor alerts on any of them)."""
    evaluation = [_col("model_name"), _col("evaluation_id")]

    def last_degraded(column: str) -> exp.Expression:
        when_degraded = exp.Case(ifs=[exp.If(this=_col("is_degraded").eq(exp.Boolean(this=True)), true=_col(column))])
        return exp.Window(this=exp.Max(this=when_degraded), partition_by=evaluation)

    return latest_per(_table("performance_metrics"),
                      ["model_name", "evaluation_id", "version", "window_start", "window_end", "metric", "value",
                       "baseline", "is_degraded", "row_count", "computed_at"],
                      ["model_name"], ["computed_at", "evaluation_id", "window_end"], where=_model_filter(model),
                      extra={"degraded_start": last_degraded("window_start"),
                             "degraded_end": last_degraded("window_end")},
                      dense=True)


# -- reading -----------------------------------------------------------------------------------

class _Reader:
    """Runs the queries, treating a table dwml has not written yet as empty; counts the queries."""

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self.queries = 0
        self._exists: dict[str, bool] = {}

    def exists(self, table: str) -> bool:
        if table not in self._exists:
            self._exists[table] = self.warehouse.table_exists(DWML_SCHEMA, table)
        return self._exists[table]

    def rows(self, table: str, query: exp.Expression) -> list[dict]:
        if not self.exists(table):
            return []
        self.queries += 1
        return [decode_row(table, r) for r in self.warehouse.fetch_rows(query)]


def _grouped(rows: list[dict], key: str = "model_name") -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def _gates(recorded) -> dict:
    """{gate: decision} from a run's `gates` (a dict of gate summaries, or of decisions)."""
    if not isinstance(recorded, dict):
        return {}
    return {g: (v.get("decision") if isinstance(v, dict) else v) for g, v in recorded.items()}


def _headline(task: str | None, metrics: dict) -> dict | None:
    if not metrics:
        return None
    # a run without a task (e.g. logged by an agent) still shows AUC or RMSE when it has one
    preferred = [HEADLINE_METRIC[task]] if task in HEADLINE_METRIC else list(HEADLINE_METRIC.values())
    name = next((m for m in preferred if m in metrics), sorted(metrics)[0])
    return {"name": name, "value": metrics[name]}


def _training(run: dict | None, metric_rows: list[dict], latest_version: dict | None) -> dict | None:
    if run is None:
        return None
    metrics: dict[str, float] = {}
    for m in sorted(metric_rows, key=lambda m: (m.get("step") if m.get("step") is not None else -1,
                                                m.get("logged_at") or "")):
        metrics[m["metric"]] = m["value"]  # the highest step / latest value wins
    stale_before = (utcnow() - timedelta(hours=STALE_AFTER_HOURS)).isoformat()
    registered = latest_version["version"] if latest_version and latest_version.get("run_id") == run["run_id"] else None
    return {"run_id": run["run_id"], "experiment": run["experiment"], "status": run["status"],
            "stale": run["status"] == "running" and (run["started_at"] or "") < stale_before,
            "started_at": run["started_at"], "finished_at": run["finished_at"], "algorithm": run["algorithm"],
            "feature_model": run["feature_model"], "row_count": run["row_count"], "gates": _gates(run["gates"]),
            "holdout_metric": _headline(run["task"], metrics), "holdout_metrics": dict(sorted(metrics.items())),
            "registered_version": registered, "error": run["error"], "created_by": run["created_by"]}


def _drift(rows: list[dict]) -> dict | None:
    dataset = next((r for r in rows if r["feature"] == DATASET_FEATURE), None)
    if dataset is None:
        return None
    crossed: dict[str, list[str]] = {}
    for r in rows:
        if r["is_drift"] and r["feature"] != DATASET_FEATURE:
            crossed.setdefault(r["feature"], []).append(r["statistic"])
    # as dwml.drift judges: a feature (or the score) drifts when a primary statistic crosses its
    # threshold; KS or a missing-rate change alone are recorded but do not make it drift
    drifted = sorted(f for f, names in crossed.items() if f != SCORE_FEATURE and set(names) & set(PRIMARY_STATISTICS))
    score = [r for r in rows if r["feature"] == SCORE_FEATURE]
    return {"drift_run_id": dataset["drift_run_id"], "version": dataset["version"],
            "computed_at": dataset["computed_at"], "dataset_drift": bool(dataset["is_drift"]),
            "drift_share": dataset["value"], "drift_share_threshold": dataset["threshold"],
            "drifted_features": drifted,
            "crossed_thresholds": {f: sorted(names) for f, names in sorted(crossed.items())},
            "score_drift": (any(r["is_drift"] and r["statistic"] in PRIMARY_STATISTICS for r in score)
                            if score else None),
            "current_window": dataset["current_window"]}


def _performance(rows: list[dict]) -> dict | None:
    if not rows:
        return None
    first = rows[0]
    metrics = {r["metric"]: {"value": r["value"], "baseline": r["baseline"], "is_degraded": bool(r["is_degraded"])}
               for r in sorted(rows, key=lambda r: r["metric"])}
    return {"evaluation_id": first["evaluation_id"], "version": first["version"], "computed_at": first["computed_at"],
            "window_start": first["window_start"], "window_end": first["window_end"], "row_count": first["row_count"],
            "metrics": metrics, "degraded": any(m["is_degraded"] for m in metrics.values()),
            "degraded_metrics": [name for name, m in metrics.items() if m["is_degraded"]],
            "last_degraded_window": None if first["degraded_end"] is None and first["degraded_start"] is None else {
                "window_start": first["degraded_start"], "window_end": first["degraded_end"]}}


def _attention(entry: dict) -> list[str]:
    """What a person should look at, in words."""
    out = []
    training, drift, performance = entry["last_training"], entry["last_drift"], entry["last_performance"]
    if training and training["status"] == "failed":
        out.append(f"last training run failed: {training['error'] or 'no error recorded'}")
    if training and training["stale"]:
        out.append(f"training run {training['run_id'][:8]} has been running for more than "
                   f"{STALE_AFTER_HOURS:g} hours (its process was likely killed)")
    if drift and drift["dataset_drift"]:
        shown = ", ".join(drift["drifted_features"][:5]) + (", ..." if len(drift["drifted_features"]) > 5 else "")
        out.append(f"dataset drift in the last check (v{drift['version']}, {drift['drift_share']:.0%} of features"
                   + (f": {shown}" if shown else "") + ")")
    if drift and drift["score_drift"]:
        out.append(f"the score distribution drifted in the last check (v{drift['version']})")
    if performance and performance["degraded"]:
        out.append(f"performance degraded in the latest window (v{performance['version']}: "
                   f"{', '.join(performance['degraded_metrics'])} below the allowed floor)")
    elif performance and performance["last_degraded_window"]:
        start = str(performance["last_degraded_window"]["window_start"] or "?")[:10]
        out.append(f"performance degraded in an earlier window of the last evaluation (v{performance['version']}, "
                   f"window from {start}); the latest window is within bounds")
    return out


def ml_status(warehouse, model: str | None = None) -> dict:
    """The overview of every model (or of `model`); see the module doc. Only reads."""
    reader = _Reader(warehouse)
    versions = {r["model_name"]: r for r in reader.rows("model_versions", versions_query(model))}
    aliases = _grouped(reader.rows("model_aliases", aliases_query(model)))
    listed = reader.rows("runs", runs_query(model, reader.exists("model_versions")))
    runs = {r["model_name"]: r for r in listed if r["is_training"]}
    run_ids = sorted(r["run_id"] for r in runs.values())
    holdout = _grouped(reader.rows("run_metrics", holdout_metrics_query(run_ids)) if run_ids else [], "run_id")
    drift = _grouped(reader.rows("drift_metrics", drift_query(model)))
    predictions = {r["model_name"]: r for r in reader.rows("predictions", predictions_query(model))}
    performance = _grouped(reader.rows("performance_metrics", performance_query(model)))

    names = sorted(set(versions) | {r["model_name"] for r in listed})
    if model is not None and not names:
        known = [r["model_name"] for table, query in (("model_versions", versions_query(None)),
                                                       ("runs", runs_query(None, reader.exists("model_versions"))))
                 for r in reader.rows(table, query)]
        raise NotFoundError(f"No model named {model!r}: it has no versions and no runs.",
                            hint=did_you_mean(model, known) + " (`dwml status` lists every model).")
    models = []
    for name in names:
        latest = versions.get(name)
        entry = {
            "model_name": name,
            "versions": None if latest is None else {
                "count": latest["version_count"], "latest": latest["version"], "task": latest["task"],
                "algorithm": latest["algorithm"], "feature_model": latest["feature_model"],
                "created_at": latest["created_at"], "created_by": latest["created_by"], "metrics": latest["metrics"]},
            "aliases": {a["alias"]: {"version": a["version"], "previous_version": a["previous_version"],
                                     "set_at": a["set_at"], "set_by": a["set_by"], "reason": a["reason"]}
                        for a in sorted(aliases.get(name, []), key=lambda a: a["alias"])},
            "last_training": _training(runs.get(name), holdout.get(runs[name]["run_id"], []) if name in runs else [],
                                       latest),
            "last_drift": _drift(drift.get(name, [])),
            "last_predictions": None if name not in predictions else {
                k: predictions[name][k] for k in ("batch_id", "version", "source", "scored_at", "row_count")},
            "last_performance": _performance(performance.get(name, [])),
        }
        entry["attention"] = _attention(entry)
        models.append(entry)
    result = {"count": len(models), "models": models, "attention": sum(len(m["attention"]) for m in models),
              "checked_at": utcnow().isoformat(), "queries": reader.queries}
    if not models:
        result["message"] = EMPTY_MESSAGE
    return result

