"""The model registry: numbered versions of each model, aliases with their history, run comparison.

Everything lives in the warehouse: `dwml.model_versions` (one row per model and version) and
`dwml.model_aliases` (one row per move of an alias; the latest row per model and alias is the
current one, so every rollback stays on record). Only a finished run can give a version: a
failed, running or killed run never does.

Rows come back JSON-ready (JSON columns parsed, timestamps as ISO text), the same objects the
CLI prints with --json.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.artifacts import ArtifactRef, ArtifactStore
from dwml_py.errors import InputError, NotFoundError, did_you_mean
from dwml_py.tables import DWML_SCHEMA
from dwml_py.rows import ensure_once, select_rows, table_rows, to_json, utcnow
from dwml_py.run_records import get_run, latest_metrics, resolve_run_id, TASKS
from dwml_py.audit import current_actor

# Model and alias names end up in CLI arguments, file names and SQL identifiers of scoring
# models; keeping them plain avoids surprises in all three.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

RUN_FIELDS_COMPARED = ("experiment", "model_name", "status", "feature_model", "label", "task", "algorithm",
                       "data_fingerprint", "row_count", "manifest_checksum", "dbt_invocation_id", "git_sha", "seed")
FINGERPRINT_FIELDS = ("data_fingerprint", "row_count", "manifest_checksum", "dbt_invocation_id", "git_sha", "seed")


def check_name(value, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InputError(f"{what} {value!r} is not a valid name.",
                         hint="use letters, digits, '_', '.' and '-' (at most 128), starting with a letter, "
                         "digit or '_', e.g. 'churn' or 'production'.")
    return value


def _eq(column: str, value) -> exp.Expression:
    return sqlmod.column(column).eq(sqlmod.literal(value))


def _desc(column: str) -> exp.Ordered:
    return exp.Ordered(this=sqlmod.column(column), desc=True)


# -- versions ------------------------------------------------------------------------------------

def register_model(warehouse, run_id: str, model_name: str, artifact: ArtifactRef, *, task: str | None,
                   algorithm: str | None, feature_model: str | None, features: list[dict] | None,
                   metrics: dict | None, artifact_format: str | None, description: str | None = None,
                   actor: str | None = None) -> dict:
    """Register `artifact`, produced by the finished run `run_id`, as the next version of `model_name`.

    The version is max(version) + 1 for the model, chosen and inserted in one transaction.
    Refuses runs that do not exist or did not finish.
    """
    ensure_once(warehouse)
    with warehouse.transaction():
        return insert_version(warehouse, run_id, model_name, artifact, task=task, algorithm=algorithm,
                              feature_model=feature_model, features=features, metrics=metrics,
                              artifact_format=artifact_format, description=description, actor=actor)


def insert_version(warehouse, run_id: str, model_name: str, artifact: ArtifactRef, *, task, algorithm,
                   feature_model, features, metrics, artifact_format, description=None, actor=None,
                   spec: dict | None = None) -> dict:
    """register_model without its own transaction: for callers that already hold one (a run that
    registers itself as it finishes)."""
    check_name(model_name, "Model name")
    if not isinstance(artifact, ArtifactRef):
        raise InputError(f"artifact must be an ArtifactRef (from ArtifactStore.put or run.log_artifact), got "
                         f"{type(artifact).__name__}.", hint="log the artifact with run.log_artifact(...) first.")
    if not _SHA256.match(artifact.sha256 or ""):
        raise InputError(f"Artifact {artifact.uri!r} has no valid sha256 ({artifact.sha256!r}).",
                         hint="store artifacts through ArtifactStore.put, which records the hash.")
    if task is not None and task not in TASKS:
        raise InputError(f"task must be one of {list(TASKS)}, got {task!r}.", hint=did_you_mean(str(task), TASKS))
    if features is not None and (not isinstance(features, list) or not all(isinstance(f, dict) for f in features)):
        raise InputError("features must be a list of dicts (name, type, role of each feature).",
                         hint='e.g. [{"name": "tenure_months", "type": "numeric"}].')
    run = _require_finished(get_run(warehouse, run_id))
    warehouse.lock_table(DWML_SCHEMA, "model_versions")  # two registrations must not both take max + 1
    latest = warehouse.fetch_scalar(exp.select(exp.func("max", sqlmod.column("version")))
                                    .from_(sqlmod.table(DWML_SCHEMA, "model_versions"))
                                    .where(_eq("model_name", model_name)))
    row = {
        "model_name": model_name, "version": int(latest or 0) + 1, "run_id": run["run_id"],
        "status": "registered", "task": task, "algorithm": algorithm, "feature_model": feature_model,
        "features": to_json(features), "spec": to_json(spec), "artifact_uri": artifact.uri, "artifact_sha256": artifact.sha256,
        "artifact_format": artifact_format, "metrics": to_json(metrics), "description": description,
        "created_at": utcnow(), "created_by": actor or current_actor(),
    }
    warehouse.write_arrow(table_rows("model_versions", [row]), DWML_SCHEMA, "model_versions")
    return get_version(warehouse, model_name, version=row["version"])


def _require_finished(run: dict) -> dict:
    if run["status"] != "finished":
        why = f" (error: {run['error']})" if run.get("error") else ""
        raise InputError(
            f"Run {run['run_id']} is {run['status']}{why}; only a finished run can be registered as a model version.",
            hint="wait for the run to finish; if its process is gone, `dwml runs list --mark-stale` marks it "
            "failed." if run["status"] == "running" else "fix the cause of the failure and run it again; register "
            "the new, finished run.")
    return run


def version_arguments(run: dict, model_name: str | None = None, artifact_name: str | None = None) -> dict:
    """register_model's arguments taken from a run's row: its artifact (the one named `artifact_name`,
    else the one named like 'model', else its only one), task, algorithm, features and metrics
    (holdout metrics when the run logged any)."""
    artifacts = run.get("artifacts") or []
    names = [a["name"] for a in artifacts]
    if artifact_name is not None:
        chosen = [a for a in artifacts if a["name"] == artifact_name]
        if not chosen:
            raise NotFoundError(f"Run {run['run_id']} logged no artifact named {artifact_name!r}.",
                                hint=did_you_mean(artifact_name, names))
    else:
        chosen = [a for a in artifacts if a["name"] == "model" or a["name"].split(".")[0] == "model"]
        if len(chosen) != 1:
            chosen = artifacts if len(artifacts) == 1 else []
        if not chosen:
            raise InputError(
                f"Run {run['run_id']} logged {len(artifacts)} artifacts ({', '.join(names) or 'none'}); cannot tell "
                "which one is the model.",
                hint="name it with --artifact NAME, or log the model as run.log_artifact(..., name='model.ubj')."
                if artifacts else "log the model with run.log_artifact(...) in the run, then register it.")
    artifact = chosen[0]
    metrics = latest_metrics(run.get("metrics") or [])
    holdout = {k.split(".", 1)[1]: v for k, v in metrics.items() if k.startswith("holdout.")}
    name = model_name or run.get("model_name")
    if not name:
        raise InputError(f"Run {run['run_id']} names no model; the version needs a model name.",
                         hint="pass --name NAME (or start the run with model_name=...).")
    return {"run_id": run["run_id"], "model_name": name,
            "artifact": ArtifactRef(artifact["uri"], artifact["sha256"], int(artifact["size"])),
            "task": run.get("task"), "algorithm": run.get("algorithm"), "feature_model": run.get("feature_model"),
            "features": run.get("features"), "metrics": holdout or metrics or None,
            "artifact_format": artifact.get("format")}


def register_run(warehouse, run_id: str, model_name: str | None = None, artifact_name: str | None = None,
                 description: str | None = None, actor: str | None = None) -> dict:
    """Register the model artifact a finished run logged, with the run's task, features and metrics."""
    ensure_once(warehouse)
    arguments = version_arguments(_require_finished(get_run(warehouse, run_id)), model_name, artifact_name)
    return register_model(warehouse, description=description, actor=actor, **arguments)


def _model_names(warehouse) -> list[str]:
    return sorted({r["model_name"] for r in select_rows(warehouse, "model_versions")})


def _versions(warehouse, model_name: str) -> list[dict]:
    rows = select_rows(warehouse, "model_versions", _eq("model_name", model_name),
                       order_by=[sqlmod.column("version")])
    if not rows:
        raise NotFoundError(f"No registered model named {model_name!r}.",
                            hint=did_you_mean(model_name, _model_names(warehouse))
                            + " (`dwml models list` shows the models).")
    return rows


def current_aliases(warehouse, model_name: str) -> dict[str, dict]:
    """{alias: its latest row} for a model."""
    current: dict[str, dict] = {}
    for row in alias_history(warehouse, model_name):  # oldest first: later rows win
        current[row["alias"]] = row
    return current


def get_model_versions(warehouse, model_name: str) -> list[dict]:
    """Every version of a model, oldest first, each with the aliases that point at it now."""
    versions = _versions(warehouse, model_name)
    by_version: dict[int, list[str]] = {}
    for alias, row in sorted(current_aliases(warehouse, model_name).items()):
        by_version.setdefault(row["version"], []).append(alias)
    for v in versions:
        v["aliases"] = by_version.get(v["version"], [])
    return versions


def list_models(warehouse) -> list[dict]:
    """One entry per model: its latest version, how many versions it has, and its current aliases."""
    rows = select_rows(warehouse, "model_versions", order_by=[sqlmod.column("model_name"), sqlmod.column("version")])
    aliases = select_rows(warehouse, "model_aliases", order_by=[sqlmod.column("set_at")])
    current: dict[str, dict[str, int]] = {}
    for a in aliases:
        current.setdefault(a["model_name"], {})[a["alias"]] = a["version"]
    models: dict[str, dict] = {}
    for r in rows:  # ordered by version: the last one seen is the latest
        entry = models.setdefault(r["model_name"], {"model_name": r["model_name"], "versions": 0})
        entry.update(versions=entry["versions"] + 1, latest_version=r["version"], task=r["task"],
                     algorithm=r["algorithm"], feature_model=r["feature_model"], latest_created_at=r["created_at"],
                     latest_metrics=r["metrics"])
    for name, entry in models.items():
        entry["aliases"] = dict(sorted(current.get(name, {}).items()))
    return list(models.values())


def get_version(warehouse, model_name: str, version: int | None = None, alias: str | None = None) -> dict:
    """One version row: by number, by alias, or the latest one. NotFoundError names what exists."""
    if version is not None and alias is not None:
        raise InputError(f"Give a version or an alias of {model_name!r}, not both (got {version!r} and {alias!r}).",
                         hint="e.g. --version 3, or --alias production.")
    versions = _versions(warehouse, model_name)
    if alias is not None:
        current = current_aliases(warehouse, model_name)
        if alias not in current:
            raise NotFoundError(f"Model {model_name!r} has no alias {alias!r}.",
                                hint=did_you_mean(alias, current) + " (deploy a version to set an alias).")
        version = current[alias]["version"]
    if version is None:
        row = versions[-1]
    else:
        if isinstance(version, bool) or not isinstance(version, int):
            raise InputError(f"version must be an integer, got {version!r}.", hint="e.g. --version 3.")
        found = [v for v in versions if v["version"] == version]
        if not found:
            known = ", ".join(str(v["version"]) for v in versions)
            raise NotFoundError(f"Model {model_name!r} has no version {version}.",
                                hint=f"its versions are {known} (`dwml models versions {model_name}`).")
        row = found[0]
    current = current_aliases(warehouse, model_name)
    row["aliases"] = sorted(a for a, r in current.items() if r["version"] == row["version"])
    return row


def load_version_model(store: ArtifactStore, version_row: dict):
    """A version's TrainedModel from its artifact in `store`, verified against the row's sha256."""
    from dwml_py.training import TrainedModel

    return TrainedModel.from_bytes(load_model_bytes(store, version_row))


def version_spec(store: ArtifactStore, version_row: dict) -> dict:
    """The ML spec a version was trained with (entity, timestamp, feature table, ...): from its row,
    else (a version registered before rows kept it) from its verified artifact, which costs a load."""
    if version_row.get("spec") is not None:
        return version_row["spec"]
    return load_version_model(store, version_row).spec or {}


def load_model_bytes(store: ArtifactStore, version_row: dict) -> bytes:
    """The artifact bytes of a version, verified against the sha256 recorded at registration."""
    return store.get(version_row["artifact_uri"], version_row["artifact_sha256"])


# -- aliases -------------------------------------------------------------------------------------

def set_alias(warehouse, model_name: str, alias: str, version: int, reason: str | None = None,
              actor: str | None = None) -> dict:
    """Point `alias` of a model at `version` (e.g. production; an earlier version is a rollback).

    Appends a row to dwml.model_aliases with the version it pointed at before; nothing is
    overwritten. Setting an alias to the version it already has changes nothing (`changed: false`).
    """
    check_name(alias, "Alias")
    ensure_once(warehouse)
    with warehouse.transaction():
        warehouse.lock_table(DWML_SCHEMA, "model_aliases")  # the previous version read below stays current
        target = get_version(warehouse, model_name, version=version)
        if target["status"] != "registered":
            raise InputError(f"Version {version} of {model_name!r} is {target['status']}; an alias can only point "
                             "at a registered version.", hint="choose another version (`dwml models versions`).")
        previous = current_aliases(warehouse, model_name).get(alias)
        if previous is not None and previous["version"] == version:
            return {**previous, "changed": False}
        set_at = utcnow()
        if previous is not None:
            # the current alias is the latest row: never let a coarse clock tie or reorder two moves
            last = datetime.fromisoformat(previous["set_at"])
            set_at = max(set_at, last + timedelta(microseconds=1))
        row = {"model_name": model_name, "alias": alias, "version": version,
               "previous_version": previous["version"] if previous else None, "reason": reason,
               "set_at": set_at, "set_by": actor or current_actor()}
        warehouse.write_arrow(table_rows("model_aliases", [row]), DWML_SCHEMA, "model_aliases")
    return {**row, "set_at": set_at.isoformat(), "changed": True}


def alias_history(warehouse, model_name: str) -> list[dict]:
    """Every move of every alias of a model, oldest first."""
    return select_rows(warehouse, "model_aliases", _eq("model_name", model_name),
                       order_by=[sqlmod.column("set_at"), sqlmod.column("alias")])


# -- comparing runs ------------------------------------------------------------------------------

def compare_runs(warehouse, run_ids: list[str]) -> dict:
    """Runs side by side: fields, params, latest metrics and fingerprints, plus `differs`, the keys
    whose values are not the same in every run (e.g. 'params.max_depth', 'metrics.holdout.roc_auc',
    'data_fingerprint')."""
    if isinstance(run_ids, str) or not run_ids or len(run_ids) < 2:
        raise InputError(f"compare_runs needs at least two run ids, got {run_ids!r}.",
                         hint="e.g. `dwml runs compare RUN_A RUN_B` (ids from `dwml runs list`).")
    resolved: list[str] = []
    for given in run_ids:
        run_id = resolve_run_id(warehouse, given)
        if run_id not in resolved:
            resolved.append(run_id)
    if len(resolved) < 2:
        raise InputError(f"The run ids {run_ids!r} name only one run.", hint="compare two different runs.")
    runs = [get_run(warehouse, r) for r in resolved]

    def side_by_side(values: list[dict]) -> dict[str, list]:
        keys = sorted({k for v in values for k in v})
        return {k: [v.get(k) for v in values] for k in keys}

    fields = {f: [r.get(f) for r in runs] for f in RUN_FIELDS_COMPARED}
    params = side_by_side([r.get("params") or {} for r in runs])
    metrics = side_by_side([latest_metrics(r["metrics"]) for r in runs])
    differs = [f for f, vals in fields.items() if _differ(vals)]
    differs += [f"params.{k}" for k, vals in params.items() if _differ(vals)]
    differs += [f"metrics.{k}" for k, vals in metrics.items() if _differ(vals)]
    return {
        "run_ids": resolved,
        "runs": [{k: r.get(k) for k in ("run_id", "experiment", "model_name", "status", "started_at", "finished_at",
                                        "created_by", "error")} for r in runs],
        "fields": fields,
        "params": params,
        "metrics": metrics,
        "fingerprints": {f: fields[f] for f in FINGERPRINT_FIELDS},
        "same_data": not _differ(fields["data_fingerprint"]) and fields["data_fingerprint"][0] is not None,
        "differs": differs,
    }


def _differ(values: list) -> bool:
    first = to_json(values[0])
    return any(to_json(v) != first for v in values[1:])
