"""Feature pipelines: a dbt model (SQL + yml) that puts chosen columns onto the target's grain.

The model starts from the target model's (entity, timestamp) rows and joins every chosen column
point-in-time correct: snapshot-grain tables on equal entity and timestamp, tables with an event
time through "the latest row strictly before the snapshot" (the demo's convention: a feature
never sees the snapshot day itself), one-row-per-entity tables without a time on the entity.
Tables are named with `ref()` / `source()`, identifiers are quoted for the target's dialect.

Its yml carries the column descriptions (and PII meta/tags) over from the sources, tests the
keys (not_null, `dwml.unique_combination_of_columns`) and holds the `meta.dwml` spec (entity,
timestamp, label), so `dwml train` finds it.

Both files start with a checksum of their generated content. A file whose content no longer
matches (edited by hand), or that dwml did not write, is never overwritten without `force`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError, NotFoundError
# edited_by_hand and write_files are used by callers of this module (scoring_scaffold, feature_tools, tests)
from dwml_py.file_output import confined, edited_by_hand, stamp, write_files  # noqa: F401
from dwml_py.feature_suggestions import (DEFAULT_SAMPLE_SIZE, JoinPlan, TargetSpec, declared_labels, find_joinable,
                                         lineage_leakage, lineage_scope, measure_grain, pii_reasons, relation_of,
                                         resolve_target, split_column_ref, suggest)
from dwml_py.defaults import FEATURE_PIPELINE_DIRECTORY

DEFAULT_DIRECTORY = FEATURE_PIPELINE_DIRECTORY
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RN = "__dwml_rn"


@dataclass
class Chosen:
    plan: JoinPlan
    column: str  # in the source node
    output: str  # in the generated model


# -- choosing the columns -----------------------------------------------------------------------

def _choose(catalog, warehouse, spec: TargetSpec, columns: list[str], suggestion: dict | None) -> list[Chosen]:
    wanted: list[tuple[str, str]] = []
    for ref in columns:
        model, column = split_column_ref(ref, "column")
        node = catalog.show(model)
        wanted.append((node.unique_id, node.column(column).name))
    for cand in (suggestion or {}).get("selected", []):
        wanted.append((cand["node"], cand["column"]))
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        raise InputError("No columns to put into the pipeline.",
                         hint="pass --columns model.column ... or --from-suggestion (or both).")
    plans = {p.node_id: p for p in find_joinable(catalog, spec)}
    keys = {spec.entity.lower(), (spec.timestamp or "").lower()}
    chosen: list[Chosen] = []
    measured: set[str] = set()
    for node_id, column in wanted:
        name = f"{catalog.node(node_id).display_name}.{column}"
        if column.lower() in keys:
            continue  # the keys come from the spine
        if node_id == spec.node_id and column.lower() == spec.column.lower():
            raise InputError(f"{name} is the target itself.", hint="leave it out of --columns.")
        plan = plans.get(node_id)
        if plan is None:
            raise InputError(f"{catalog.node(node_id).display_name} cannot be joined to the target on {spec.entity!r}: "
                             "no column of that name and type, no relationships test to it, no meta.dwml.join_keys.",
                             hint=f"declare the join in its yml: meta: dwml: join_keys: {{{spec.entity}: <its column>}}.")
        if node_id not in measured:
            measure_grain(warehouse, catalog, plan, spec)
            measured.add(node_id)
        if plan.skipped or plan.kind is None:
            raise InputError(f"{name} cannot be joined point-in-time: {catalog.node(node_id).display_name} "
                             f"{plan.skipped or 'has no usable grain'}", hint="choose another column.")
        chosen.append(Chosen(plan, column, column))
    # Names must be unique in the model: a clash gets the source node's name as prefix.
    counts: dict[str, int] = {}
    for c in chosen:
        counts[c.column.lower()] = counts.get(c.column.lower(), 0) + 1
    for c in chosen:
        if counts[c.column.lower()] > 1 or c.column.lower() in keys:
            c.output = f"{re.sub(r'[^A-Za-z0-9_]', '_', catalog.node(c.plan.node_id).display_name)}__{c.column}"
    return chosen


# -- SQL ----------------------------------------------------------------------------------------------

def _placeholder(i: int) -> str:
    return f"__dwml_relation_{i}__"


def _jinja_relation(catalog, node_id: str) -> str:
    node = catalog.node(node_id)
    if node.resource_type == "source":
        return "{{ source(" + repr(node.source_name) + ", " + repr(node.name) + ") }}"
    if catalog.project_name and node.package_name and node.package_name != catalog.project_name:
        return "{{ ref(" + repr(node.package_name) + ", " + repr(node.name) + ") }}"
    return "{{ ref(" + repr(node.name) + ") }}"


def build_sql(catalog, spec: TargetSpec, chosen: list[Chosen], dialect: str) -> str:
    """The model's SELECT, rendered for `dialect`, with ref()/source() in place of relations."""
    relations = list(dict.fromkeys([spec.node_id, *(c.plan.node_id for c in chosen)]))
    ph = {uid: exp.Table(this=sqlmod.ident(_placeholder(i))) for i, uid in enumerate(relations)}

    def rel(uid: str, alias: str) -> exp.Table:
        table = ph[uid].copy()
        table.set("alias", exp.TableAlias(this=sqlmod.ident(alias)))
        return table

    keys = [spec.entity] + ([spec.timestamp] if spec.timestamp else [])
    spine = exp.select(*(sqlmod.column(k, "t") for k in keys)).distinct().from_(rel(spec.node_id, "t"))
    final = exp.select(*(sqlmod.column(k, "spine") for k in keys)).from_(
        exp.Table(this=sqlmod.ident("spine")))
    aliases: dict[str, str] = {}
    ctes: list[tuple[str, exp.Expression]] = [("spine", spine)]
    by_node: dict[str, list[Chosen]] = {}
    for c in chosen:
        by_node.setdefault(c.plan.node_id, []).append(c)
    for i, (uid, items) in enumerate(by_node.items()):
        plan = items[0].plan
        alias = f"j{i}"
        on = sqlmod.column(plan.entity_column, alias).eq(sqlmod.column(spec.entity, "spine"))
        if plan.kind == "as_of":
            # The latest row strictly before the snapshot, per entity and snapshot.
            cte = f"{re.sub(r'[^A-Za-z0-9_]', '_', catalog.node(uid).name)}_as_of_{i}"
            order = [exp.Ordered(this=sqlmod.column(plan.time_column, "c"), desc=True)]
            order += [exp.Ordered(this=sqlmod.column(c.column, "c")) for c in items]
            rank = exp.Window(this=exp.RowNumber(), partition_by=[sqlmod.column(k, "s") for k in keys],
                              order=exp.Order(expressions=order))
            body = (exp.select(*(sqlmod.column(k, "s") for k in keys),
                               *(sqlmod.column(c.column, "c") for c in items), rank.as_(sqlmod.ident(_RN)))
                    .from_(exp.Table(this=sqlmod.ident("spine"), alias=exp.TableAlias(this=sqlmod.ident("s"))))
                    .join(rel(uid, "c"), join_type="inner",
                          on=sqlmod.column(plan.entity_column, "c").eq(sqlmod.column(spec.entity, "s"))
                          .and_(sqlmod.column(plan.time_column, "c") < sqlmod.column(spec.timestamp, "s"))))
            ctes.append((cte, body))
            on = sqlmod.column(spec.entity, alias).eq(sqlmod.column(spec.entity, "spine"))
            on = on.and_(sqlmod.column(spec.timestamp, alias).eq(sqlmod.column(spec.timestamp, "spine")))
            on = on.and_(sqlmod.column(_RN, alias).eq(exp.Literal.number(1)))
            target = exp.Table(this=sqlmod.ident(cte), alias=exp.TableAlias(this=sqlmod.ident(alias)))
        else:
            if plan.kind == "snapshot":
                on = on.and_(sqlmod.column(plan.time_column, alias).eq(sqlmod.column(spec.timestamp, "spine")))
            target = rel(uid, alias)
        final = final.join(target, join_type="left", on=on)
        aliases[uid] = alias
    # columns in the order they were chosen (the yml lists them in the same order)
    final = final.select(*(sqlmod.column(c.column, aliases[c.plan.node_id]).as_(sqlmod.ident(c.output))
                           for c in chosen))
    for name, body in ctes:
        final = final.with_(sqlmod.ident(name), as_=body)
    text = final.sql(dialect=dialect, pretty=True)
    for uid, table in ph.items():
        text = text.replace(table.sql(dialect=dialect), _jinja_relation(catalog, uid))
    return text + "\n"


# -- yml -------------------------------------------------------------------------------------------------

def build_yml(catalog, spec: TargetSpec, chosen: list[Chosen], name: str, task: str | None) -> str:
    target = catalog.node(spec.node_id)
    keys = [spec.entity] + ([spec.timestamp] if spec.timestamp else [])
    model_key, label = spec.column, {"model": target.display_name, "column": spec.column}
    for label_id, column, model_spec, feature_id in declared_labels(catalog):
        if label_id == spec.node_id and column.lower() == spec.column.lower():
            declared = model_spec.get("label") or {}
            # `label: column` names a column of the feature model itself; the new model names the target's
            label = {**({"column": declared} if isinstance(declared, str) else declared), **label}
            task = task or model_spec.get("task")
            key = next((k for k, v in (catalog.node(feature_id).meta["dwml"].get("models") or {}).items()
                        if v is model_spec), None)
            model_key = key or model_key
            break
    dwml_spec = {"entity": spec.entity}
    if spec.timestamp:
        dwml_spec["timestamp"] = spec.timestamp
    dwml_spec["models"] = {model_key: {**({"task": task} if task else {}), "label": label}}
    columns = []
    for k in keys:
        columns.append({"name": k, "description": target.column(k).description or
                        f"{'Entity key' if k == spec.entity else 'Snapshot time'} (from {target.display_name}).",
                        "data_tests": ["not_null"]})
    for c in chosen:
        node = catalog.node(c.plan.node_id)
        source = node.columns[c.column]
        where = {"snapshot": f"{node.display_name}, same {spec.entity} and {spec.timestamp}",
                 "as_of": f"{node.display_name}, its latest row with {c.plan.time_column} before {spec.timestamp}",
                 "entity": f"{node.display_name}, by {spec.entity}"}[c.plan.kind]
        entry = {"name": c.output,
                 "description": f"{(source.description or 'Undocumented in the source').rstrip('.')}. (From {where}.)"}
        config = {k: v for k, v in (("meta", source.meta), ("tags", source.tags)) if v}
        if config:
            entry["config"] = config
        columns.append(entry)
    model = {
        "name": name,
        "description": (f"Features for {target.display_name}.{spec.column}, one row per "
                        f"{' and '.join(keys)} of {target.display_name}, joined point-in-time "
                        "(only rows dated before the snapshot). Generated by `dwml features pipeline`."),
        "config": {"meta": {"dwml": dwml_spec}},
        "data_tests": [{"dwml.unique_combination_of_columns": {"arguments": {"combination_of_columns": keys}}}]
        if len(keys) > 1 else [],
        "columns": columns,
    }
    if len(keys) == 1:
        columns[0]["data_tests"] = ["not_null", "unique"]
        del model["data_tests"]
    return yaml.safe_dump({"version": 2, "models": [model]}, sort_keys=False, width=110, allow_unicode=True)


# -- files with a checksum -----------------------------------------------------------------------------

def with_header(body: str, comment: str, what: str) -> str:
    """Prefix generated content with a header holding the checksum of `body` (dwml_py.file_output)."""
    return stamp(body, comment, what)


# -- the tool's work -------------------------------------------------------------------------------------

def create_pipeline(project, catalog, warehouse, name: str, target: str, columns: list[str] | None = None,
                    from_suggestion: bool = False, top: int = 10, directory: str = DEFAULT_DIRECTORY,
                    entity: str | None = None, timestamp: str | None = None, force: bool = False,
                    sample_size: int = DEFAULT_SAMPLE_SIZE, seed: int = 0) -> dict:
    """Write models/<directory>/<name>.sql and .yml; see the module doc. Returns what was written."""
    if not _NAME.match(name or ""):
        raise InputError(f"The pipeline name {name!r} is not a valid dbt model name.",
                         hint="use letters, digits and underscores, starting with a letter, e.g. churn_features.")
    if top < 1:
        raise InputError(f"top must be at least 1, got {top}.", hint="e.g. --top 10.")
    folder = model_folder(project, directory)
    sql_path, yml_path = folder / f"{name}.sql", folder / f"{name}.yml"
    _check_name_free(catalog, name, sql_path, project)
    spec = resolve_target(catalog, target, entity, timestamp)
    suggestion = None
    if from_suggestion:
        result = suggest(catalog, warehouse, target, spec.entity, spec.timestamp, sample_size=sample_size, seed=seed,
                         limit=0)
        suggestion = {"selected": result["candidates"][:top], "sample": result["sample"],
                      "task": result["target"]["task"]}
        if not suggestion["selected"]:
            raise InputError(f"The suggestion for {target} has no unflagged candidate.",
                             hint="look at `dwml features suggest` and pass --columns explicitly.")
    chosen = _choose(catalog, warehouse, spec, list(columns or []), suggestion)
    task = spec.task or (suggestion or {}).get("task") or _task_from_data(warehouse, catalog, spec)
    sql_text = build_sql(catalog, spec, chosen, warehouse.dialect)
    sql_body = "{{ config(materialized='table') }}\n\n" + sql_text
    yml_body = build_yml(catalog, spec, chosen, name, task)
    what = f"dwml features pipeline {name} --target-column {catalog.node(spec.node_id).display_name}.{spec.column}"
    written, overwritten = write_files({sql_path: with_header(sql_body, "--", what),
                                        yml_path: with_header(yml_body, "#", what)}, force)
    return {
        "name": name, "sql_path": str(sql_path), "yml_path": str(yml_path), "written": written,
        "overwritten": overwritten,
        "target": {"model": catalog.node(spec.node_id).display_name, "column": spec.column, "task": task},
        "entity": spec.entity, "timestamp": spec.timestamp,
        "columns": [{"name": c.output, "source": f"{catalog.node(c.plan.node_id).display_name}.{c.column}",
                     "join": c.plan.kind, "time_column": c.plan.time_column if c.plan.kind == "as_of" else None}
                    for c in chosen],
        "sources": [p.to_dict() for p in {c.plan.node_id: c.plan for c in chosen}.values()],
        "warnings": _warnings(catalog, spec, chosen) if columns else [],
        "suggestion": None if suggestion is None else {"sample": suggestion["sample"],
                                                       "selected": [c["ref"] for c in suggestion["selected"]]},
        "next": f"dbt build --select {name}",
    }


def model_folder(project, directory: str) -> Path:
    """The absolute folder for `directory`, which must lie under one of the project's model-paths."""
    folder = Path(directory)
    if folder.is_absolute() or ".." in folder.parts:
        raise InputError(f"The directory {directory!r} must be a relative path inside the dbt project.",
                         hint="e.g. models/features.")
    model_paths = [str(p).strip("/") for p in project.config.get("model-paths", ["models"])]
    if not any(folder.parts[:len(Path(m).parts)] == Path(m).parts for m in model_paths):
        raise InputError(f"The directory {directory!r} is not under the project's model-paths ({', '.join(model_paths)}), "
                         "so dbt would not build the model.", hint=f"use e.g. {model_paths[0]}/features.")
    # a symlinked folder could still lead out of the project: confined() follows links
    confined(project, project.project_dir / folder, "a dbt model")
    return project.project_dir / folder


def _check_name_free(catalog, name: str, sql_path: Path, project) -> None:
    try:
        uid = catalog.resolve(name)
    except NotFoundError:
        return
    node = catalog.node(uid)
    mine = node.path and (project.project_dir / node.path).resolve() == sql_path.resolve()
    if not mine:
        raise InputError(f"A {node.resource_type} named {name!r} already exists ({node.path or uid}).",
                         hint=f"dbt needs unique model names: choose another NAME, e.g. {name}_v2.")


def _task_from_data(warehouse, catalog, spec: TargetSpec) -> str:
    from dwml_py.feature_suggestions import _infer_task, _target_values

    column = sqlmod.column(spec.column)
    query = (exp.select(column).distinct().from_(relation_of(catalog.node(spec.node_id)))
             .where(exp.Not(this=exp.Is(this=column, expression=exp.Null()))).limit(11))
    data = warehouse.fetch_arrow(query)
    return _infer_task(_target_values(data.column(0)) if data.num_rows else None)


def _warnings(catalog, spec: TargetSpec, chosen: list[Chosen]) -> list[str]:
    """Catalog-level checks of explicitly chosen columns (no sampling): leakage through lineage, PII."""
    from dwml_py.feature_suggestions import pii_name_match

    nodes = {c.plan.node_id for c in chosen}
    scope = lineage_scope(catalog, spec, [c.plan for c in chosen])
    catalog.ensure_compiled(scope)  # only the target's and the chosen columns' models and ancestors
    derived, ancestors, _ = lineage_leakage(catalog, spec, within=scope)
    pii = pii_reasons(catalog, nodes)
    out = []
    for c in chosen:
        key = (c.plan.node_id, c.column.lower())
        ref = f"{catalog.node(c.plan.node_id).display_name}.{c.column}"
        named = "the column name looks like a direct identifier" if pii_name_match(c.column) else None
        for kind, found in (("LEAKAGE", derived.get(key) or ancestors.get(key)), ("PII", pii.get(key) or named)):
            if found:
                out.append(f"{kind}: {ref}: {found}")
    return out
