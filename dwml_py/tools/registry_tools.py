"""Run and model registry tools: `dwml runs list/show/compare`, `dwml models list/versions/register`.

Thin layers over dwml_py.tracking and dwml_py.model_registry; each returns a JSON-serialisable
dict (timestamps as ISO text).
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

from dwml_py.tools.registry import TOOLS, Param

# The columns `runs list` shows per run; `runs show` has everything.
_RUN_SUMMARY = ("run_id", "experiment", "model_name", "status", "stale", "started_at", "finished_at", "algorithm",
                "task", "feature_model", "row_count", "data_fingerprint", "metrics", "error", "created_by")


@contextlib.contextmanager
def _warehouse(project):
    from dwml_py import tracking

    from dwml_py.warehouse import connect

    warehouse = connect(project)
    try:
        tracking.ensure_once(warehouse)
        yield warehouse
    finally:
        warehouse.close()


@TOOLS.tool("list_runs", cli=("runs", "list"))
def list_runs(
    project,
    experiment: Annotated[str | None, Param("only runs of this experiment")] = None,
    model: Annotated[str | None, Param("only runs of this model name")] = None,
    status: Annotated[Literal["running", "finished", "failed"] | None, Param("only runs with this status")] = None,
    limit: Annotated[int, Param("at most this many runs, newest first", minimum=1, maximum=10_000)] = 50,
    mark_stale: Annotated[bool, Param("first mark runs still 'running' after --stale-hours as failed "
                                      "(their process was killed)", writes=True)] = False,
    stale_hours: Annotated[float, Param("hours after which a run still 'running' counts as stale", minimum=0,
                                        maximum=87_600)] = 24.0,
) -> dict:
    """Tracked runs, newest first, with their status, latest metrics and data fingerprint.

    A run still `running` long after it started (its process was killed) is flagged `stale`;
    --mark-stale records such runs as failed (the only write this tool makes, and only when asked).
    """
    from dwml_py import tracking

    with _warehouse(project) as warehouse:
        marked = tracking.mark_stale_runs(warehouse, stale_hours) if mark_stale else []
        runs = tracking.list_runs(warehouse, experiment=experiment, model_name=model, status=status, limit=limit,
                                  stale_after_hours=stale_hours)
    return {"filters": {"experiment": experiment, "model": model, "status": status, "limit": limit},
            "count": len(runs), "runs": [{k: r.get(k) for k in _RUN_SUMMARY} for r in runs],
            "marked_stale": marked}


@TOOLS.tool("show_run", cli=("runs", "show"))
def show_run(
    project,
    run: Annotated[str, Param("run id (or a unique prefix of at least 4 characters)", positional=True)],
) -> dict:
    """Everything recorded about one run: params, metrics, fingerprints, versions, artifacts, error."""
    from dwml_py import sql as sqlmod, tracking

    with _warehouse(project) as warehouse:
        found = tracking.get_run(warehouse, run)
        versions = tracking.select_rows(warehouse, "model_versions",
                                        sqlmod.column("run_id").eq(sqlmod.literal(found["run_id"])),
                                        order_by=[sqlmod.column("model_name"), sqlmod.column("version")])
    found["latest_metrics"] = tracking.latest_metrics(found["metrics"])
    found["model_versions"] = [{"model_name": v["model_name"], "version": v["version"]} for v in versions]
    return found


@TOOLS.tool("compare_experiments", cli=("runs", "compare"))
def compare_experiments(
    project,
    runs: Annotated[list[str], Param("two or more run ids (or unique prefixes)", positional=True, max_items=100)],
) -> dict:
    """Runs side by side: params, metrics and data fingerprints, with `differs` naming what is not the same."""
    from dwml_py import model_registry as registry

    with _warehouse(project) as warehouse:
        return registry.compare_runs(warehouse, runs)


@TOOLS.tool("list_models", cli=("models", "list"))
def list_models(project) -> dict:
    """Registered models: latest version, number of versions, current aliases (production, ...)."""
    from dwml_py import model_registry as registry

    with _warehouse(project) as warehouse:
        models = registry.list_models(warehouse)
    return {"count": len(models), "models": models}


@TOOLS.tool("get_model_versions", cli=("models", "versions"))
def get_model_versions(
    project,
    name: Annotated[str, Param("model name", positional=True)],
) -> dict:
    """Registry history of a model: every version with its run, metrics and artifact hash, the
    current aliases, and every move of an alias."""
    from dwml_py import model_registry as registry

    with _warehouse(project) as warehouse:
        versions = registry.get_model_versions(warehouse, name)
        history = registry.alias_history(warehouse, name)
    aliases = {}
    for row in history:
        aliases[row["alias"]] = row["version"]
    return {"model_name": name, "count": len(versions), "aliases": dict(sorted(aliases.items())),
            "versions": versions, "alias_history": history}


@TOOLS.tool("register_model", cli=("models", "register"), read_only=False)
def register_model(
    project,
    run: Annotated[str, Param("id of a finished run that logged the model artifact", positional=True)],
    name: Annotated[str | None, Param("model name (default: the run's model name)")] = None,
    artifact: Annotated[str | None, Param("name of the run's artifact to register (default: the one named "
                                          "'model' or 'model.*', or the run's only artifact)")] = None,
    description: Annotated[str | None, Param("free text kept with the version", text=True)] = None,
) -> dict:
    """Register an artifact a finished run logged as the next version of a model.

    Task, algorithm, feature model, features and holdout metrics come from the run.
    """
    from dwml_py import model_registry as registry

    with _warehouse(project) as warehouse:
        version = registry.register_run(warehouse, run, model_name=name, artifact_name=artifact,
                                        description=description)
    return {"registered": True, **version}

