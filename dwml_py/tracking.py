"""Experiment tracking for any Python code, notebooks included: runs, params, metrics, artifacts.

    with dwml_py.start_run(experiment="churn") as run:
        run.log_params({"max_depth": 4})
        ...fit...
        run.log_metrics({"roc_auc": 0.81}, split="holdout")
        run.log_artifact(dump_xgboost(model), name="model.ubj")

A run is a row of `dwml.runs`. It is written as `running` when it starts, and everything logged
afterwards is kept in memory until the run ends, when it is written **in one transaction**: a
run never looks finished with half of its metrics. A run that raises (KeyboardInterrupt
included) is recorded `failed` with the error, and its metrics are not written. A process
killed outright leaves a `running` row; `mark_stale_runs` marks such rows failed later.

A run can also outlive its process: `resume_run(run_id)` reopens a `running` run (another
process, a notebook restarted, a stateless agent tool call), and `run.flush()` writes what was
logged so far without ending it.

When the run opens the warehouse itself it holds the connection only while writing, so a
long training or notebook session does not lock an embedded (DuckDB) warehouse against dbt.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.audit import current_actor  # noqa: F401 - one definition of who acts, re-exported
from dwml_py.artifacts import ArtifactRef, ArtifactStore, check_artifact_name, guess_format
from dwml_py.errors import InputError, did_you_mean
# rows and run_records hold what the rest of dwml shares; re-exported here for the run API's users
from dwml_py.rows import decode_row, ensure_once, select_rows, table_rows, timestamp_literal  # noqa: F401
from dwml_py.rows import to_json, update_statement, utcnow  # noqa: F401
from dwml_py.run_records import RUN_STATUSES, TASKS, get_run, latest_metrics, list_runs  # noqa: F401
from dwml_py.run_records import mark_stale_runs, resolve_run_id  # noqa: F401
from dwml_py.tables import DWML_SCHEMA, ensure_tables
from dwml_py.versions import package_versions

_MAX_ERROR_CHARS = 4000

# Fields of `dwml.runs` that run.set() may fill, with the Python types each accepts.
SETTABLE_FIELDS: dict[str, tuple[type, ...]] = {
    "model_name": (str,), "feature_model": (str,), "label": (str,), "task": (str,), "algorithm": (str,),
    "data_fingerprint": (str,), "row_count": (int,), "manifest_checksum": (str,), "dbt_invocation_id": (str,),
    "seed": (int,), "gates": (dict, list), "durations": (dict,), "features": (list,),
}


# -- who, what, where ----------------------------------------------------------------------------

def git_sha(directory: str | Path | None) -> str | None:
    """HEAD of the git repository holding `directory`, or None (not a repo, no git)."""
    if directory is None:
        return None
    try:
        done = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None


# -- runs --------------------------------------------------------------------------------------

class Run:
    """One tracked run. Create it with `start_run`; use it as a context manager, or call
    `finish()` / `fail(error)` yourself (e.g. across notebook cells)."""

    def __init__(self, *, experiment: str, model_name: str | None, project=None, warehouse=None,
                 store: ArtifactStore | None = None, params: dict | None = None, tags: dict | None = None):
        self.run_id = uuid.uuid4().hex
        self.experiment = experiment
        self.model_name = model_name
        self.status = "new"
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.error: str | None = None
        self._project = project
        self._warehouse = warehouse
        self._store = store
        self._tags = dict(tags or {})
        self._params: dict = {}
        self._metrics: list[dict] = []
        self._artifacts: list[dict] = []
        self._fields: dict = {}
        self._registration: dict | None = None
        self._finish_writes: list = []
        self._metrics_written = 0  # metrics already in dwml.run_metrics (see flush)
        self.version: dict | None = None  # the model version registered as the run finished, if any
        if params:
            self.log_params(params)

    def __repr__(self) -> str:
        return f"Run(run_id={self.run_id!r}, experiment={self.experiment!r}, status={self.status!r})"

    # -- what has been logged ----------------------------------------------------------------
    @property
    def params(self) -> dict:
        return dict(self._params)

    @property
    def metrics(self) -> list[dict]:
        return [dict(m) for m in self._metrics]

    @property
    def artifacts(self) -> list[dict]:
        return [dict(a) for a in self._artifacts]

    @property
    def fields(self) -> dict:
        return dict(self._fields)

    # -- logging -----------------------------------------------------------------------------
    def log_params(self, params: dict) -> None:
        """Record parameters (merged into what was logged before; JSON-serialisable values)."""
        self._check_open()
        if not isinstance(params, dict):
            raise InputError(f"log_params expects a dict, got {type(params).__name__}.",
                             hint='e.g. run.log_params({"max_depth": 4}).')
        for key in params:
            if not isinstance(key, str) or not key:
                raise InputError(f"Parameter names must be non-empty strings, got {key!r}.",
                                 hint='e.g. run.log_params({"max_depth": 4}).')
        self._params.update(json.loads(to_json(params)))

    def log_param(self, name: str, value) -> None:
        self.log_params({name: value})

    def log_metrics(self, metrics: dict, split: str | None = None, step: int | None = None) -> None:
        """Record metric values (finite numbers) on a split (train, holdout, cv) at an optional step."""
        self._check_open()
        if not isinstance(metrics, dict):
            raise InputError(f"log_metrics expects a dict of name -> number, got {type(metrics).__name__}.",
                             hint='e.g. run.log_metrics({"roc_auc": 0.81}, split="holdout").')
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise InputError(f"step must be an integer, got {step!r}.", hint="e.g. step=10 (an iteration).")
        if split is not None and (not isinstance(split, str) or not split):
            raise InputError(f"split must be a non-empty string, got {split!r}.", hint="e.g. split='holdout'.")
        rows = []
        for name, value in metrics.items():
            if not isinstance(name, str) or not name:
                raise InputError(f"Metric names must be non-empty strings, got {name!r}.", hint="e.g. 'roc_auc'.")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(f"Metric {name!r} must be a number, got {type(value).__name__} {value!r}.",
                                 hint="log numbers only; put other values in params.") from None
            if isinstance(value, bool) or not math.isfinite(number):
                raise InputError(f"Metric {name!r} must be a finite number, got {value!r}.",
                                 hint="leave a metric that cannot be computed out (e.g. ROC AUC on one class), "
                                 "or fix the data it is computed on.")
            rows.append({"metric": name, "value": number, "split": split, "step": step, "logged_at": utcnow()})
        self._metrics.extend(rows)

    def log_metric(self, name: str, value, split: str | None = None, step: int | None = None) -> None:
        self.log_metrics({name: value}, split=split, step=step)

    def log_artifact(self, source: bytes | str | Path, name: str | None = None,
                     artifact_format: str | None = None) -> ArtifactRef:
        """Store a file or bytes in the artifact directory now (content-addressed, sha256 recorded)
        and attach it to the run under `name` (a file's own name by default)."""
        self._check_open()
        if isinstance(source, (bytes, bytearray, memoryview)):
            if name is None:
                raise InputError("log_artifact of bytes needs a name.",
                                 hint="e.g. run.log_artifact(data, name='model.ubj').")
            data = bytes(source)
        elif isinstance(source, (str, Path)):
            path = Path(source).expanduser()
            if not path.is_file():
                raise InputError(f"log_artifact: no file at {str(path)!r}.",
                                 hint="pass the path of an existing file, or the bytes themselves with a name.")
            data = path.read_bytes()
            name = name or path.name
        else:
            raise InputError(f"log_artifact expects bytes or a file path, got {type(source).__name__}.",
                             hint="serialise objects first: dwml_py.artifacts.dump_xgboost / dump_sklearn.")
        check_artifact_name(name)
        if any(a["name"] == name for a in self._artifacts):
            raise InputError(f"The run already logged an artifact named {name!r}.",
                             hint="give each artifact of a run its own name.")
        ref = self.store.put(data, name)
        self._artifacts.append({"name": name, "uri": ref.uri, "sha256": ref.sha256, "size": ref.size,
                                "format": artifact_format or guess_format(name)})
        return ref

    def set(self, **fields) -> None:
        """Fill run fields: data_fingerprint, row_count, feature_model, label, task, algorithm,
        manifest_checksum, dbt_invocation_id, seed, gates, durations, features, model_name."""
        self._check_open()
        for key, value in fields.items():
            if key not in SETTABLE_FIELDS:
                raise InputError(f"Run field {key!r} cannot be set.", hint=did_you_mean(key, SETTABLE_FIELDS))
            allowed = SETTABLE_FIELDS[key]
            if value is not None:
                if int in allowed and hasattr(value, "item") and not isinstance(value, (bool, int)):
                    value = value.item()  # a numpy integer
                if isinstance(value, bool) or not isinstance(value, allowed):
                    raise InputError(f"Run field {key!r} must be {' or '.join(t.__name__ for t in allowed)}, got "
                                     f"{type(value).__name__} {value!r}.", hint=f"e.g. run.set({key}=...)")
            if key == "task" and value is not None and value not in TASKS:
                raise InputError(f"task must be one of {list(TASKS)}, got {value!r}.", hint=did_you_mean(value, TASKS))
            if key == "model_name":
                self.model_name = value
            self._fields[key] = json.loads(to_json(value)) if isinstance(value, (dict, list)) else value

    def register(self, model_name: str | None = None, artifact: str | None = None,
                 description: str | None = None, spec: dict | None = None) -> None:
        """Register the run's model artifact as a new model version when the run finishes, in the
        same transaction as the finish: the run is finished with its version, or failed without one.

        `artifact` names the logged artifact (default: the one named 'model'/'model.*', or the only
        one); task, algorithm, features and holdout metrics come from the run; `spec` (the ML spec
        the model was trained with) is kept with the version for drift to read. The version row is
        then `run.version`.
        """
        self._check_open()
        from dwml_py.model_registry import check_name

        name = model_name or self.model_name
        if not name:
            raise InputError("run.register() needs a model name: the run has none.",
                             hint="pass run.register(model_name=...) or start_run(..., model_name=...).")
        check_name(name, "Model name")
        self._registration = {"model_name": name, "artifact_name": artifact, "description": description, "spec": spec}

    def on_finish(self, write) -> None:
        """Have `write(warehouse, version_row_or_None)` run inside the finishing transaction, so
        rows that belong to the run's result (e.g. the version's reference profile) land with it
        or not at all."""
        self._check_open()
        self._finish_writes.append(write)

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Add the seconds the block takes to durations[step] (recorded even when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            durations = dict(self._fields.get("durations") or {})
            durations[step] = round(durations.get(step, 0.0) + time.perf_counter() - started, 6)
            self._fields["durations"] = durations

    # -- lifetime ----------------------------------------------------------------------------
    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = ArtifactStore.for_project(self._require_project())
        return self._store

    def start(self) -> "Run":
        if self.status != "new":
            raise InputError(f"Run {self.run_id} was already started.", hint="start a new run with start_run().")
        self.started_at = utcnow()
        project_dir = getattr(self._project, "project_dir", None)
        row = {
            "run_id": self.run_id, "experiment": self.experiment, "model_name": self.model_name,
            "status": "running", "started_at": self.started_at, "git_sha": git_sha(project_dir),
            "package_versions": to_json(package_versions()), "params": to_json(self._params or None),
            "tags": to_json(self._tags or None), "created_by": current_actor(),
        }
        with self._connection() as warehouse:
            warehouse.write_arrow(table_rows("runs", [row]), DWML_SCHEMA, "runs")
        self.status = "running"
        return self

    def finish(self) -> None:
        """Record the run finished: its fields and all its metrics, in one transaction."""
        self._check_open()
        finished_at = utcnow()
        values = self._final_values("finished", finished_at, None)
        with self._connection() as warehouse, warehouse.transaction():
            warehouse.execute(update_statement("runs", values, self._where()))
            self._write_metrics(warehouse)
            if self._registration is not None:
                from dwml_py.model_registry import insert_version, version_arguments

                wanted = dict(self._registration)
                arguments = version_arguments(get_run(warehouse, self.run_id), wanted.pop("model_name"),
                                              wanted.pop("artifact_name"))
                version = insert_version(warehouse, **wanted, **arguments)
            for write in self._finish_writes:
                write(warehouse, version if self._registration is not None else None)
        self.status, self.finished_at, self._metrics_written = "finished", finished_at, len(self._metrics)
        if self._registration is not None:
            self.version = version

    def flush(self) -> None:
        """Write what was logged so far (params, fields, artifacts, metrics) and keep the run
        `running`: for a run that lives across processes or stateless tool calls (see
        `resume_run`), where nothing may wait in memory for the finish."""
        self._check_open()
        if self.status != "running":
            raise InputError(f"Run {self.run_id} has not started; nothing to write.", hint="call run.start() first.")
        with self._connection() as warehouse, warehouse.transaction():
            warehouse.execute(update_statement("runs", self._state_values(), self._where()))
            self._write_metrics(warehouse)
        self._metrics_written = len(self._metrics)  # only once the transaction committed

    def fail(self, error: BaseException | str) -> None:
        """Record the run failed with `error`; metrics logged since the last `flush()` are not written."""
        if self.status not in ("running",):
            return
        if isinstance(error, BaseException):
            text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        else:
            text = str(error)
        text = text[:_MAX_ERROR_CHARS]
        finished_at = utcnow()
        with self._connection() as warehouse, warehouse.transaction():
            warehouse.execute(update_statement("runs", self._final_values("failed", finished_at, text), self._where()))
        self.status, self.finished_at, self.error = "failed", finished_at, text

    def __enter__(self) -> "Run":
        if self.status == "new":
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.status != "running":
            return False
        if exc is None:
            try:
                self.finish()
            except BaseException as finish_error:
                # the results could not be written: the run must not stay `running`
                self._fail_quietly(finish_error, prefix="could not record the run's results: ")
                raise
            return False
        self._fail_quietly(exc)
        return False  # re-raise the original exception

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "experiment": self.experiment, "model_name": self.model_name,
                "status": self.status, "started_at": self.started_at.isoformat() if self.started_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "params": self.params,
                "metrics": [{**m, "logged_at": m["logged_at"].isoformat()} for m in self._metrics],
                "artifacts": self.artifacts, "error": self.error, **self.fields}

    # -- internals ---------------------------------------------------------------------------
    def _fail_quietly(self, exc: BaseException, prefix: str = "") -> None:
        try:
            self.fail(f"{prefix}{type(exc).__name__}: {exc}" if str(exc) else f"{prefix}{type(exc).__name__}")
        except Exception as record_error:  # never hide the original error behind this one
            warnings.warn(f"dwml could not record run {self.run_id} as failed: {record_error}; "
                          "`dwml runs list --mark-stale` marks it failed later.", stacklevel=3)

    def _final_values(self, status: str, finished_at: datetime, error: str | None) -> dict:
        return {"status": status, "finished_at": finished_at, "error": error, **self._state_values()}

    def _state_values(self) -> dict:
        values = {"params": self._params or None, "artifacts": self._artifacts or None, "model_name": self.model_name}
        values.update({k: v for k, v in self._fields.items() if k != "model_name"})
        return values

    def _write_metrics(self, warehouse) -> None:
        pending = self._metrics[self._metrics_written:]
        if pending:
            rows = [{"run_id": self.run_id, **m} for m in pending]
            warehouse.write_arrow(table_rows("run_metrics", rows), DWML_SCHEMA, "run_metrics")

    def _where(self) -> exp.Expression:
        return sqlmod.column("run_id").eq(sqlmod.literal(self.run_id))

    def _check_open(self) -> None:
        if self.status in ("finished", "failed"):
            raise InputError(f"Run {self.run_id} is already {self.status}; nothing more can be logged to it.",
                             hint="start a new run with dwml_py.start_run(...).")

    def _require_project(self):
        if self._project is None:
            from dwml_py.project import Project

            self._project = Project.locate()
        return self._project

    @contextlib.contextmanager
    def _connection(self):
        if self._warehouse is not None:
            ensure_once(self._warehouse)
            yield self._warehouse
            return
        from dwml_py.warehouse import connect

        warehouse = connect(self._require_project())
        try:
            ensure_tables(warehouse)
            yield warehouse
        finally:
            warehouse.close()


def _project_for(project, warehouse, store, project_dir, profiles_dir, target):
    """The dbt project a run needs: given, or located, unless a warehouse and a store make it unnecessary."""
    if project is None and (warehouse is None or store is None or project_dir or profiles_dir or target):
        from dwml_py.project import Project

        project = Project.locate(project_dir, profiles_dir, target)
    return project


def start_run(experiment: str | None = None, model_name: str | None = None, *, project_dir: str | Path | None = None,
              profiles_dir: str | Path | None = None, target: str | None = None, params: dict | None = None,
              tags: dict | None = None, project=None, warehouse=None, store: ArtifactStore | None = None) -> Run:
    """Start a tracked run (its `running` row is written now) and return it.

    Use it as a context manager so that it ends as `finished` or `failed`:

        with start_run(experiment="churn") as run:
            run.log_metrics({"roc_auc": 0.81}, split="holdout")

    The warehouse is the dbt project's (found from `project_dir`, DBT_PROJECT_DIR or the working
    folder, with `profiles_dir`/`target` as for dbt), unless `project`/`warehouse` are given;
    artifacts go to the project's artifact directory unless `store` is given.
    """
    experiment = experiment or model_name
    if not experiment or not isinstance(experiment, str):
        raise InputError("start_run needs an experiment name (or a model_name to use as one).",
                         hint='e.g. dwml_py.start_run(experiment="churn").')
    if tags is not None and not isinstance(tags, dict):
        raise InputError(f"tags must be a dict, got {type(tags).__name__}.", hint='e.g. tags={"owner": "ana"}.')
    project = _project_for(project, warehouse, store, project_dir, profiles_dir, target)
    run = Run(experiment=experiment, model_name=model_name, project=project, warehouse=warehouse, store=store,
              params=params, tags=tags)
    return run.start()


def resume_run(run_id: str, *, project_dir: str | Path | None = None, profiles_dir: str | Path | None = None,
               target: str | None = None, project=None, warehouse=None, store: ArtifactStore | None = None) -> Run:
    """Reopen a `running` run by id (or a unique prefix), e.g. in another process or a later
    stateless tool call, to log more to it and finish or fail it.

    The resumed run starts from what is in dwml.runs (params, fields, artifacts); metrics written
    before stay written, and `flush()` writes what is logged after, or `finish()` / `fail()` do.
    A finished or failed run cannot be resumed (InputError); an unknown id is a NotFoundError.
    """
    project = _project_for(project, warehouse, store, project_dir, profiles_dir, target)
    run = Run(experiment="", model_name=None, project=project, warehouse=warehouse, store=store)
    with run._connection() as connection:
        row = get_run(connection, run_id)
    if row["status"] != "running":
        raise InputError(f"Run {row['run_id']} is already {row['status']}; nothing more can be logged to it.",
                         hint="start a new run (create_experiment, or dwml_py.start_run(...)).")
    run.run_id, run.experiment, run.model_name = row["run_id"], row["experiment"], row["model_name"]
    run.started_at = datetime.fromisoformat(row["started_at"])
    run._params = dict(row.get("params") or {})
    run._tags = dict(row.get("tags") or {})
    run._artifacts = [dict(a) for a in row.get("artifacts") or []]
    run._fields = {k: row[k] for k in SETTABLE_FIELDS if k != "model_name" and row.get(k) is not None}
    run.status = "running"
    return run
