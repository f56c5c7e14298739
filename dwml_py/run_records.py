"""Reading runs back from dwml.runs and dwml.run_metrics: resolve an id, one run with its
metrics, lists, and marking abandoned runs failed."""

from __future__ import annotations

from datetime import timedelta

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError, NotFoundError, did_you_mean
from dwml_py.rows import ensure_once, select_rows, timestamp_literal, update_statement, utcnow

RUN_STATUSES = ("running", "finished", "failed")
TASKS = ("classification", "regression")


def resolve_run_id(warehouse, given: str) -> str:
    """The full run id for `given`: an exact id, or a unique prefix of at least 4 characters (as git)."""
    if not isinstance(given, str) or not given.strip():
        raise InputError(f"A run id is needed, got {given!r}.", hint="list runs with `dwml runs list`.")
    given = given.strip()
    exact = select_rows(warehouse, "runs", sqlmod.column("run_id").eq(sqlmod.literal(given)))
    if exact:
        return given
    matches = []
    if len(given) >= 4 and all(ch in "0123456789abcdef" for ch in given):  # hex only: nothing to escape in LIKE
        prefix = exp.Like(this=sqlmod.column("run_id"), expression=sqlmod.literal(given + "%"))
        matches = [r["run_id"] for r in select_rows(warehouse, "runs", prefix, limit=3)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InputError(f"Run id prefix {given!r} matches several runs ({', '.join(matches)}, ...).",
                         hint="give more characters of the run id.")
    recent = [r["run_id"] for r in select_rows(warehouse, "runs", order_by=[exp.Ordered(
        this=sqlmod.column("started_at"), desc=True)], limit=50)]
    raise NotFoundError(f"No run with id {given!r}.",
                        hint=did_you_mean(given, recent) + " (`dwml runs list` shows the runs).")


def get_run(warehouse, run_id: str) -> dict:
    """A run's row (JSON-ready) with its metrics; NotFoundError for an unknown id."""
    run_id = resolve_run_id(warehouse, run_id)
    row = select_rows(warehouse, "runs", sqlmod.column("run_id").eq(sqlmod.literal(run_id)))[0]
    row["metrics"] = [{k: m[k] for k in ("metric", "value", "split", "step", "logged_at")}
                      for m in select_rows(warehouse, "run_metrics",
                                           sqlmod.column("run_id").eq(sqlmod.literal(run_id)),
                                           order_by=[sqlmod.column("logged_at"), sqlmod.column("metric")])]
    return row


def latest_metrics(metric_rows: list[dict]) -> dict[str, float]:
    """{'split.metric' (or 'metric' without a split): value}, keeping the highest step / latest value."""
    best: dict[str, tuple] = {}
    for m in metric_rows:
        key = f"{m['split']}.{m['metric']}" if m.get("split") else m["metric"]
        rank = (m.get("step") if m.get("step") is not None else -1, m.get("logged_at") or "")
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, m["value"])
    return {k: v for k, (_, v) in sorted(best.items())}


def list_runs(warehouse, experiment: str | None = None, model_name: str | None = None, status: str | None = None,
              limit: int = 50, stale_after_hours: float = 24.0) -> list[dict]:
    """Runs, newest first, each with its latest metrics and `stale` (still running after
    `stale_after_hours`: its process was likely killed)."""
    if status is not None and status not in RUN_STATUSES:
        raise InputError(f"status must be one of {list(RUN_STATUSES)}, got {status!r}.",
                         hint=did_you_mean(status, RUN_STATUSES))
    if not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a positive integer, got {limit!r}.", hint="e.g. --limit 20.")
    conditions = [sqlmod.column(col).eq(sqlmod.literal(value))
                  for col, value in (("experiment", experiment), ("model_name", model_name), ("status", status))
                  if value is not None]
    where = exp.and_(*conditions) if conditions else None
    runs = select_rows(warehouse, "runs", where, order_by=[exp.Ordered(this=sqlmod.column("started_at"), desc=True)],
                       limit=limit)
    metrics: dict[str, list[dict]] = {}
    if runs:
        ids = exp.In(this=sqlmod.column("run_id"), expressions=[sqlmod.literal(r["run_id"]) for r in runs])
        for m in select_rows(warehouse, "run_metrics", ids):
            metrics.setdefault(m["run_id"], []).append(m)
    cutoff = (utcnow() - timedelta(hours=stale_after_hours)).isoformat()
    for run in runs:
        run["metrics"] = latest_metrics(metrics.get(run["run_id"], []))
        run["stale"] = run["status"] == "running" and run["started_at"] < cutoff
    return runs


def mark_stale_runs(warehouse, older_than_hours: float = 24) -> list[str]:
    """Mark runs still `running` that started more than `older_than_hours` ago as failed (their
    process was killed or lost); returns their ids."""
    if not isinstance(older_than_hours, (int, float)) or older_than_hours < 0:
        raise InputError(f"older_than_hours must be a number >= 0, got {older_than_hours!r}.",
                         hint="e.g. 24: runs without a finish a day after they started.")
    ensure_once(warehouse)
    cutoff = utcnow() - timedelta(hours=older_than_hours)
    where = exp.and_(sqlmod.column("status").eq(sqlmod.literal("running")),
                     exp.LT(this=sqlmod.column("started_at"), expression=timestamp_literal(cutoff)))
    stale = [r["run_id"] for r in select_rows(warehouse, "runs", where)]
    if stale:
        error = (f"abandoned: still running {older_than_hours:g} hours after it started, with no finish recorded "
                 "(its process was likely killed)")
        with warehouse.transaction():
            warehouse.execute(update_statement("runs", {"status": "failed", "finished_at": utcnow(), "error": error},
                                      exp.and_(where, exp.In(this=sqlmod.column("run_id"),
                                                             expressions=[sqlmod.literal(r) for r in stale]))))
    return stale
