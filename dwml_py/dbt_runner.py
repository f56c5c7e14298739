"""Run dbt commands in-process through dbt's programmatic runner (dbtRunner).

The runner's events are turned into a small, stable result (`DbtRun`) and into progress
callbacks, so callers never touch dbt-core internals beyond this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from dwml_py.errors import DbtCommandError

# Statuses of a finished node that mean "something is wrong".
FAILING_STATUSES = {"error", "fail", "runtime error"}


@dataclass
class NodeResult:
    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str | None = None
    failures: int | None = None
    seconds: float = 0.0
    compiled_code: str | None = field(default=None, repr=False)  # models and tests dbt compiled

    @property
    def failed(self) -> bool:
        return self.status in FAILING_STATUSES


@dataclass
class DbtRun:
    command: list[str]
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # dbt's own message when the command failed as a whole

    @property
    def failed_nodes(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.failed]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.status] = out.get(n.status, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {"command": self.command, "success": self.success, "seconds": round(self.seconds, 2),
                "counts": self.counts(),
                "failed": [{k: v for k, v in asdict(n).items() if k != "compiled_code"} for n in self.failed_nodes]}


def run_dbt(project, args: list[str], on_node: Callable[[NodeResult], None] | None = None,
            target_path=None) -> DbtRun:
    """Run `dbt <args>` against the project's profile/target; report each finished node.

    `target_path` sends dbt's artifacts to another folder (the gates use project.gate_target_dir):
    a selective `dbt test`/`dbt compile` would otherwise replace target/manifest.json with one that
    has compiled SQL only for its selection, and lineage (the leakage and PII checks) would lose
    every other model. Each node's compiled SQL is also in its `compiled_code`.

    Raises DbtCommandError when dbt could not run at all (bad project, bad profile, adapter
    missing). Failing models or tests are not an exception: look at `DbtRun.success`.
    """
    from dwml_py.call_context import refuse_write

    # every dbt command writes (target/, logs/, and the warehouse for run/build/test)
    refuse_write(f"`dbt {' '.join(args[:1])}` writes dbt's target and log folders")
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:  # pragma: no cover - dbt-core is a hard dependency
        raise DbtCommandError("dbt-core is not installed.",
                              hint="pip install dwml-dbt (it brings dbt-core and dbt-duckdb).") from exc

    def callback(event) -> None:
        # dbt calls this on its worker threads; an exception here would break the dbt run.
        try:
            if event.info.name != "NodeFinished" or on_node is None:
                return
            node = _node_from_event(event.data)
            if node.resource_type != "operation":
                on_node(node)
        except Exception:
            pass

    # dbt's own console output stays off (even --quiet prints failures and, for compile, SQL):
    # stdout belongs to dwml's result, which may be JSON. dbt still writes logs/dbt.log.
    command = [*args, "--log-level", "none", *project.dbt_flags()]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    from dwml_py.warehouse import release_for_dbt

    release_for_dbt()
    started = time.perf_counter()
    try:
        outcome = dbtRunner(callbacks=[callback]).invoke(command)
    finally:
        _release_duckdb()
    seconds = time.perf_counter() - started
    if outcome.exception is not None:
        raise DbtCommandError(
            f"`dbt {' '.join(args)}` could not run: {one_line(outcome.exception)}",
            hint="fix what dbt names; `dwml doctor` checks the project, its packages and the profile, "
                 "and `dbt debug` shows dbt's view.",
        )
    nodes = [_node_from_result(r) for r in _results(outcome.result)]
    return DbtRun(command=["dbt", *args], success=bool(outcome.success), nodes=nodes, seconds=seconds)


def one_line(error) -> str:
    """dbt's multi-line error text on one line (dwml prints one line per error)."""
    return " ".join(str(error).split())


def _release_duckdb() -> None:
    """dbt-duckdb keeps its database open in a class attribute after an in-process run; close it,
    or this process keeps the file locked and cannot reopen it with other settings."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if env is not None:
        try:
            env.close()
        except Exception:
            pass


def _results(result) -> list:
    """The node results of a run; `dbt run-operation` answers one result without a node."""
    return [r for r in (getattr(result, "results", None) or []) if getattr(r, "node", None) is not None]


def _node_from_result(r) -> NodeResult:
    node = r.node
    status = getattr(r.status, "value", str(r.status))
    return NodeResult(unique_id=node.unique_id, name=node.name, resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
                      status=str(status), message=r.message, failures=r.failures, seconds=float(r.execution_time or 0.0),
                      compiled_code=getattr(node, "compiled_code", None))


def _node_from_event(data) -> NodeResult:
    info = data.node_info
    unique_id = info.unique_id
    return NodeResult(unique_id=unique_id, name=info.node_name, resource_type=unique_id.split(".", 1)[0],
                      status=str(data.run_result.status), message=data.run_result.message or None,
                      seconds=float(data.run_result.execution_time or 0.0))
