"""Experiment tracking as tools: `dwml runs create EXPERIMENT`, `dwml runs log RUN`.

A tool call is stateless, so a run lives in the warehouse between calls: create_experiment
writes a `running` run and returns its id; each log_metrics call reopens it
(tracking.resume_run), writes what it logs at once (run.flush) and can end it. Python code keeps
a Run object instead: `dwml_py.start_run(...)`. Starting and ending a run are audited with
the caller (DWML_ACTOR, `agent:mcp` under `dwml mcp`).
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

from dwml_py.errors import InputError
from dwml_py.tools.registry import PATH_MAX, TEXT_MAX, TOOLS, Param


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


def _pairs(pairs: list[str] | None, flag: str) -> dict:
    from dwml_py.tools.train_tools import parse_params

    try:
        return parse_params(pairs)
    except InputError as exc:  # parse_params names --param; say which flag it was
        raise InputError(exc.message.replace("--param", flag), hint=f"e.g. {flag} name=value") from None


def _audit(warehouse, action: str, decision: str, run, details: dict) -> str:
    from dwml_py.audit import record_event

    return record_event(warehouse, action, decision, object_type="run", object_name=run.run_id,
                        details={"experiment": run.experiment, "model_name": run.model_name, **details})


def _summary(warehouse, run_id: str) -> dict:
    """The run as stored now: what every call returns, so an agent sees the whole run so far."""
    from dwml_py import tracking

    row = tracking.get_run(warehouse, run_id)
    return {"run_id": row["run_id"], "experiment": row["experiment"], "model_name": row["model_name"],
            "status": row["status"], "started_at": row["started_at"], "finished_at": row["finished_at"],
            "params": row.get("params") or {}, "tags": row.get("tags") or {},
            "metrics": tracking.latest_metrics(row["metrics"]), "metric_rows": len(row["metrics"]),
            "artifacts": [{k: a.get(k) for k in ("name", "sha256", "size", "format")} for a in row.get("artifacts") or []],
            "error": row.get("error"), "created_by": row.get("created_by")}


@TOOLS.tool("create_experiment", cli=("runs", "create"), read_only=False)
def create_experiment(
    project,
    experiment: Annotated[str, Param("experiment the run belongs to (e.g. churn-features)", positional=True)],
    model_name: Annotated[str | None, Param("the ML model the run is about, if any", flag="--model")] = None,
    params: Annotated[list[str] | None, Param("parameter KEY=VALUE, JSON values (repeatable)", flag="--param",
                                              max_length=TEXT_MAX)] = None,
    tags: Annotated[list[str] | None, Param("tag KEY=VALUE (repeatable)", flag="--tag", max_length=TEXT_MAX)] = None,
) -> dict:
    """Start a tracked run (status running) in dwml.runs and return its run_id, for log_metrics to log to and finish.

    The run records git sha, package versions and the caller. From Python, `dwml_py.start_run(...)`
    does the same and keeps the run object. A run never finished is `stale` after a day
    (`dwml runs list --mark-stale` records it failed).
    """
    from dwml_py import tracking

    if not isinstance(experiment, str) or not experiment.strip():
        raise InputError(f"An experiment name is needed, got {experiment!r}.", hint="e.g. dwml runs create churn")
    if model_name is not None:
        from dwml_py.model_registry import check_name

        check_name(model_name, "Model name")
    with _warehouse(project) as warehouse:
        run = tracking.start_run(experiment=experiment.strip(), model_name=model_name, project=project,
                                 warehouse=warehouse, params=_pairs(params, "--param") or None,
                                 tags=_pairs(tags, "--tag") or None)
        event = _audit(warehouse, "run.create", "done", run, {})
        result = _summary(warehouse, run.run_id)
    return {**result, "audit_event_id": event}


@TOOLS.tool("log_metrics", cli=("runs", "log"), read_only=False)
def log_metrics(
    project,
    run_id: Annotated[str, Param("id of a running run (or a unique prefix of at least 4 characters)",
                                 positional=True)],
    metrics: Annotated[list[str] | None, Param("metric NAME=NUMBER (repeatable)", flag="--metric")] = None,
    params: Annotated[list[str] | None, Param("parameter KEY=VALUE, JSON values (repeatable)", flag="--param",
                                              max_length=TEXT_MAX)] = None,
    split: Annotated[str | None, Param("split the metrics were computed on (train, holdout, cv)")] = None,
    step: Annotated[int | None, Param("step or iteration of the metrics (for curves)", minimum=0,
                                      maximum=2**31 - 1)] = None,
    artifacts: Annotated[list[str] | None, Param("file to store with the run, content-addressed with its sha256 "
                                                 "(repeatable); over MCP, a file inside the project", flag="--artifact",
                                                 max_length=PATH_MAX, max_items=100)] = None,
    finish: Annotated[bool, Param("end the run after logging: finished, or failed with --status failed")] = False,
    status: Annotated[Literal["finished", "failed"] | None, Param("how the run ends (implies --finish)")] = None,
    error: Annotated[str | None, Param("what went wrong, for a run ending failed", text=True)] = None,
) -> dict:
    """Log metrics, params and artifacts to a running run, and optionally finish or fail it.

    Each call writes at once (a tool call keeps nothing in memory), so what it logs stays
    recorded even when the run later fails. A finished or failed run takes nothing more.
    Returns the run as stored: its latest metric per split, params, artifacts and status.
    """
    from dwml_py import tracking
    from dwml_py.file_output import confined_source

    parsed_metrics = _pairs(metrics, "--metric")
    parsed_params = _pairs(params, "--param")
    ends = finish or status is not None
    final = status or "finished"
    if error is not None and final != "failed":
        raise InputError("--error describes a failed run, but the run would end finished.",
                         hint="add --status failed, or leave --error out.")
    if not (parsed_metrics or parsed_params or artifacts or ends):
        raise InputError(f"Nothing to log to run {run_id!r}.",
                         hint="pass --metric NAME=NUMBER, --param KEY=VALUE, --artifact FILE, or --finish.")
    if (split is not None or step is not None) and not parsed_metrics:
        raise InputError("--split and --step describe metrics, but no --metric was given.",
                         hint="e.g. --metric roc_auc=0.81 --split holdout")
    sources = [confined_source(project, path, "the artifact") for path in artifacts or []]  # before any write
    with _warehouse(project) as warehouse:
        run = tracking.resume_run(run_id, project=project, warehouse=warehouse)
        if parsed_params:
            run.log_params(parsed_params)
        if parsed_metrics:
            run.log_metrics(parsed_metrics, split=split, step=step)
        known = len(run.artifacts)
        for path in sources:
            run.log_artifact(path)
        stored = [a["name"] for a in run.artifacts[known:]]
        event = None
        if ends and final == "finished":
            run.finish()  # writes this call's logging with the finish, in one transaction
            event = _audit(warehouse, "run.finish", "done", run, {})
        else:
            run.flush()  # a failing run keeps what this call logged: it was reported, not lost
            if ends:
                run.fail(error or "failed (reported by the caller)")
                event = _audit(warehouse, "run.fail", "done", run, {"error": run.error})
        result = _summary(warehouse, run.run_id)
    result["logged"] = {"metrics": sorted(parsed_metrics), "params": sorted(parsed_params), "artifacts": stored,
                        "split": split, "step": step}
    return {**result, "audit_event_id": event}
