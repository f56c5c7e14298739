"""Deploying a model version: `dwml deploy NAME --version N [--alias A]`.

A deployment re-runs the governance gate on the version's features (policies may have changed
since training), checks that the version's monitoring baseline (its reference profile, written
to dwml.reference_profiles by the training run) exists, moves the alias (`production` unless
told otherwise) with model_registry.set_alias, which keeps every move in dwml.model_aliases, and
appends a `deploy` event to the audit log.

A refused governance gate moves nothing: the result has `passed: false` (the CLI exits 2) and
the refusal is recorded in the audit log. A rollback is deploying an earlier version; its reason
defaults to 'rollback' when the version is older than the one the alias points at.

SQL scoring: before the alias moves, the version's preprocessing and model are compiled to SQL
for the target's dialect (dwml_py.sql_scoring) and stored in dwml.scoring_sql, so the dbt macro
dwml_predict never finds the alias on a version without its SQL. A version that cannot be
compiled (too many tree nodes, an estimator it does not know, ...) is still deployed: the
result's `sql_scoring` says `available: false` and why, and batch scoring (`dwml predict`) serves it.

`scaffold_dir` also writes a dbt model scoring with dwml_predict (dwml_py.scoring_scaffold); a
hand-edited file there refuses the deploy before anything moves, unless `force`.
"""

from __future__ import annotations

from sqlglot import exp

from dwml_py import model_registry as registry
from dwml_py import sql as sqlmod
from dwml_py.errors import NotFoundError
from dwml_py.tables import DWML_SCHEMA

AUDIT_ACTION = "deploy"
ROLLBACK_REASON = "rollback"


def version_feature_names(version_row: dict) -> list[str]:
    """The feature names a version was trained on (its `features` JSON: a list of {name, ...})."""
    features = version_row.get("features") or []
    return [f["name"] if isinstance(f, dict) else str(f) for f in features]


def reference_row_count(warehouse, model_name: str, version: int) -> int:
    """Rows of dwml.reference_profiles for one version (0 when the table does not exist)."""
    if not warehouse.table_exists(DWML_SCHEMA, "reference_profiles"):
        return 0
    query = (exp.select(exp.func("count", exp.Star())).from_(sqlmod.table(DWML_SCHEMA, "reference_profiles"))
             .where(sqlmod.column("model_name").eq(sqlmod.literal(model_name)))
             .where(sqlmod.column("version").eq(sqlmod.literal(int(version)))))
    return int(warehouse.fetch_scalar(query) or 0)


def deploy(project, model_name: str, version: int, alias: str = "production", reason: str | None = None,
           actor: str | None = None, warehouse=None, scaffold_dir: str | None = None, force: bool = False,
           scaffold_name: str | None = None) -> dict:
    """Deploy `version` of `model_name` under `alias`; see the module doc."""
    from dwml_py.audit import current_actor, record_event
    from dwml_py.governance import governance_gate
    from dwml_py.rows import ensure_once
    from dwml_py.warehouse import given_or_connected

    registry.check_name(alias, "Alias")
    actor = actor or current_actor()
    with given_or_connected(project, warehouse) as warehouse:
        ensure_once(warehouse)
        row = registry.get_version(warehouse, model_name, version=version)
        features = version_feature_names(row)
        current = registry.current_aliases(warehouse, model_name).get(alias)
        previous_version = current["version"] if current else None

        gate = governance_gate(project, row["feature_model"], columns=features or None, warehouse=warehouse)
        governance = {"decision": gate["decision"], "violations": gate["violations"],
                      "audit_event_id": gate.get("audit_event_id")}
        result = {"model_name": model_name, "version": version, "alias": alias,
                  "previous_version": previous_version, "passed": bool(gate["passed"]), "changed": False,
                  "reason": reason, "governance": governance, "reference_rows": None, "sql_scoring": None,
                  "audit_event_id": None}
        if not gate["passed"]:
            result["audit_event_id"] = record_event(
                warehouse, AUDIT_ACTION, "refused", object_type="model", object_name=model_name, actor=actor,
                reasons=[{"rule": v["rule"], "column": v.get("column"), "detail": v["detail"]}
                         for v in gate["violations"]],
                details={"version": version, "alias": alias, "current_version": previous_version,
                         "governance_event_id": governance["audit_event_id"]})
            return result

        reference_rows = reference_row_count(warehouse, model_name, version)
        if reference_rows == 0:
            raise NotFoundError(
                f"Version {version} of {model_name!r} has no reference profile in {DWML_SCHEMA}.reference_profiles: "
                "without it the deployment would have no monitoring baseline.",
                hint="versions trained with `dwml train` store one; retrain the model to get a version with a "
                "baseline.")
        result["reference_rows"] = reference_rows

        model = _load_model(project, row)
        scaffold = None
        if scaffold_dir is not None:  # checked before anything moves: a refusal leaves the deployment as it was
            from dwml_py import scoring_scaffold

            scaffold = scoring_scaffold.plan(project, warehouse, model_name, row, model.spec or {}, model.task,
                                             alias=alias, directory=scaffold_dir, name=scaffold_name)
            scaffold.write(force, dry_run=True)
        result["sql_scoring"] = store_scoring_sql(warehouse, model_name, version, model)

        if reason is None and previous_version is not None and version < previous_version:
            reason = ROLLBACK_REASON
        moved = registry.set_alias(warehouse, model_name, alias, version, reason=reason, actor=actor)
        result.update(reason=reason, changed=bool(moved["changed"]))
        result["audit_event_id"] = record_event(
            warehouse, AUDIT_ACTION, "done", object_type="model", object_name=model_name, actor=actor,
            reasons=[reason] if reason else [],
            details={"version": version, "alias": alias, "previous_version": previous_version,
                     "changed": result["changed"], "reference_rows": reference_rows,
                     "features": features, "governance_event_id": governance["audit_event_id"],
                     "sql_scoring": result["sql_scoring"]})
        if scaffold is not None:
            result["scaffold"] = scaffold.write(force)
        return result


def _load_model(project, version_row: dict):
    from dwml_py.artifacts import ArtifactStore

    return registry.load_version_model(ArtifactStore.for_project(project), version_row)


def store_scoring_sql(warehouse, model_name: str, version: int, model) -> dict:
    """Compile the version for the warehouse's dialect and store it in dwml.scoring_sql; returns
    {available, dialect, reason, sql_chars, tree_nodes}. Never raises for a model that cannot be compiled."""
    from dwml_py.batch_scoring import scoring_columns
    from dwml_py.errors import InputError
    from dwml_py.sql_scoring import storage_row, store, unavailable_row

    try:
        entity, timestamp, _ = scoring_columns(model)
        row = storage_row(model, model_name, version, warehouse.dialect, entity + ([timestamp] if timestamp else []))
    except InputError as exc:  # e.g. no entity key recorded: the scores could not be joined back to anything
        row = unavailable_row(model, model_name, version, warehouse.dialect, exc.message)
    store(warehouse, row)
    return {"available": row["status"] == "ready", "dialect": row["dialect"], "reason": row["error"],
            "sql_chars": row["sql_chars"], "tree_nodes": row["tree_nodes"]}
