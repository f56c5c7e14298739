"""`dwml deploy NAME --version N --scaffold`: a dbt model (SQL + yml) that scores in the warehouse.

The model is `select * from ({{ dwml.dwml_predict(NAME, ref(FEATURE_MODEL), alias=ALIAS) }}) as scored`,
materialised as a table and tagged `dwml_scoring`, so `dbt run` scores the feature model with
whatever version the alias points at (a rollback needs no new file). The tag lets a `dbt build`
on a fresh warehouse, where nothing is deployed yet, leave it out: `--exclude tag:dwml_scoring`.
Its post_hook `dwml.dwml_log_predictions(ENTITY, timestamp=TIMESTAMP)` copies the scores into
dwml.predictions (source 'sql'), in the model's transaction, so monitoring sees them
(macros/scoring/dwml_log_predictions.sql; the var dwml: scoring: log_predictions: false turns it off).

Its yml tests the key: not_null and unique on the entity column when it is unique on its own in
the scored relation, otherwise not_null on each key column and `dwml.unique_combination_of_columns`
over the entity and the timestamp; and, for classification, the score with
`dwml.values_within_range` in [0, 1].

The model is named `<ML model>_scores` unless the caller names it (`--scaffold-name`); a name that
another model already has, in the project or any package it installs (dbt needs unique names), is
refused before anything is written.

Both files carry feature_pipeline's checksum header: a file edited by hand, or not written by
dwml, is never overwritten without `force`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import InputError
from dwml_py.feature_pipeline import model_folder, with_header, write_files
from dwml_py.defaults import SCAFFOLD_DIRECTORY

DEFAULT_DIRECTORY = SCAFFOLD_DIRECTORY
TAG = "dwml_scoring"


@dataclass
class Scaffold:
    name: str
    files: dict[Path, str]
    keys: list[str]
    what: str

    def write(self, force: bool, dry_run: bool = False) -> dict:
        """Write both files (or none: a hand-edited one refuses without `force`)."""
        written, overwritten = write_files(self.files, force, dry_run=dry_run)
        paths = list(self.files)
        return {"model": self.name, "sql_path": str(paths[0]), "yml_path": str(paths[1]), "written": written,
                "overwritten": overwritten, "keys": self.keys, "next": f"dbt run --select {self.name}"}


DBT_MODEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def model_name_for(ml_model: str) -> str:
    """The dbt model name of an ML model's scores: churn -> churn_scores."""
    return re.sub(r"[^A-Za-z0-9_]", "_", ml_model) + "_scores"


def plan(project, warehouse, ml_model: str, version_row: dict, spec: dict, task: str, alias: str = "production",
         directory: str = DEFAULT_DIRECTORY, name: str | None = None) -> Scaffold:
    """The files to write for `ml_model`, scoring the feature model its version was trained on.

    `spec` is the version's training spec (entity, timestamp, feature_schema/feature_table);
    `name` the dbt model's name (default `<ml_model>_scores`)."""
    if name is not None and not DBT_MODEL_NAME.match(name):
        raise InputError(f"{name!r} is not a dbt model name (letters, digits and _, not starting with a digit).",
                         hint="pass --scaffold-name with a name such as churn_model_scores.")
    name = name or model_name_for(ml_model)
    folder = model_folder(project, directory)
    _check_name_free(project, name, folder / f"{name}.sql")
    feature_model, ref = _feature_ref(project, version_row, spec)
    entity = spec.get("entity") or []
    entity = [entity] if isinstance(entity, str) else list(entity)
    timestamp = spec.get("timestamp")
    keys = _key_columns(warehouse, spec, entity, timestamp)
    sql_body = model_sql(ml_model, feature_model, ref, alias, entity, timestamp)
    what = f"dwml deploy {ml_model} --scaffold"
    yml_body = _yml(name, ml_model, feature_model, alias, entity, timestamp, keys, task)
    return Scaffold(name=name, keys=keys, what=what,
                    files={folder / f"{name}.sql": with_header(sql_body, "--", what),
                           folder / f"{name}.yml": with_header(yml_body, "#", what)})


def model_sql(ml_model: str, feature_model: str, ref: str, alias: str, entity: list[str], timestamp: str | None) -> str:
    """The scoring model's SQL (without the checksum header): dwml_predict over the feature model,
    with the post_hook dwml_log_predictions that copies its rows into dwml.predictions.

    >>> print(model_sql("churn", "feats", "ref('feats')", "production", ["id"], "day").splitlines()[1])
              post_hook="{{ dwml.dwml_log_predictions(['id'], timestamp='day') }}") }}
    """
    hook = "{{ dwml.dwml_log_predictions(" + repr(list(entity)) + (f", timestamp={timestamp!r}" if timestamp else "") \
        + ") }}"
    return (
        f"{{{{ config(materialized='table', tags=[{TAG!r}],\n"
        f"          post_hook={hook!r}) }}}}\n\n"
        f"-- Scores {feature_model} in the warehouse with the version of the ML model {ml_model!r} that the alias\n"
        f"-- {alias!r} points at when dbt runs (dwml deploy compiles it to SQL; a rollback needs no new file).\n"
        "-- The post_hook copies the scores into dwml.predictions (source 'sql'), where monitoring reads them\n"
        "-- (the var dwml: scoring: log_predictions: false turns that off).\n"
        "select * from (\n"
        f"  {{{{ dwml.dwml_predict({ml_model!r}, {ref}, alias={alias!r}) }}}}\n"
        ") as scored\n")


def _check_name_free(project, name: str, path: Path) -> None:
    """dbt needs unique model names across the project and its packages: refuse when the manifest
    (disabled models included: dbt registers their yml too) or another folder of the project already
    holds a model of that name."""
    taken = _manifest_model_file(project, name)
    # a model whose file is gone since the last parse no longer holds the name
    if taken is not None and taken[1].is_file() and taken != (project.name, path.resolve()):
        package, file = taken
        where = str(file.relative_to(project.project_dir)) if file.is_relative_to(project.project_dir) else str(file)
        raise InputError(f"A dbt model named {name!r} already exists in {'package ' if package != project.name else ''}"
                         f"{package!r}: {where}.",
                         hint="dbt needs unique model names: pass --scaffold-name with another name "
                              f"(e.g. {name}_dwml), or rename that model.")
    for model_path in project.config.get("model-paths", ["models"]):
        for found in sorted((project.project_dir / model_path).rglob(f"{name}.sql")):
            if found.resolve() != path.resolve():
                where = found.relative_to(project.project_dir).parent
                raise InputError(f"A dbt model named {name!r} already exists: {found.relative_to(project.project_dir)}.",
                                 hint=f"dbt needs unique model names: update that one with --scaffold-dir {where}, "
                                 "or remove it first.")


def _manifest_model_file(project, name: str) -> tuple[str, Path] | None:
    """(package, file) of the model named `name` in target/manifest.json, or None (no such model, or
    no manifest: the project's files are checked then)."""
    try:
        manifest = json.loads(project.manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    disabled = [n for group in (manifest.get("disabled") or {}).values() if isinstance(group, list) for n in group]
    for node in [*(manifest.get("nodes") or {}).values(), *disabled]:
        if isinstance(node, dict) and node.get("resource_type") == "model" and node.get("name") == name:
            package = str(node.get("package_name"))
            root = project.project_dir if package == project.name else \
                project.project_dir / "dbt_packages" / package
            return package, (root / str(node.get("original_file_path", ""))).resolve()
    return None


def _feature_ref(project, version_row: dict, spec: dict) -> tuple[str, str]:
    """(model name, its ref() call) of the feature model the version was trained on: from the
    spec's unique_id (model.PACKAGE.NAME), with the package named when it is not this project."""
    parts = str(spec.get("feature_model") or "").split(".")
    if len(parts) >= 3 and parts[0] == "model":
        package, name = parts[1], parts[2]
    else:
        package, name = None, str(version_row.get("feature_model") or spec.get("feature_table"))
    if package is None or package == project.name:
        return name, f"ref({name!r})"
    return name, f"ref({package!r}, {name!r})"


def _key_columns(warehouse, spec: dict, entity: list[str], timestamp: str | None) -> list[str]:
    """The entity alone when it is unique in the scored relation, else entity + timestamp."""
    if not timestamp:
        return entity
    schema, table = spec.get("feature_schema"), spec.get("feature_table")
    if len(entity) == 1 and schema and table and warehouse.table_exists(schema, table):
        query = exp.select(exp.func("count", exp.Star()).eq(
            exp.Count(this=exp.Distinct(expressions=[sqlmod.column(entity[0])])))).from_(sqlmod.table(schema, table))
        if warehouse.fetch_scalar(query):
            return entity
    return entity + [timestamp]


def _yml(name, ml_model, feature_model, alias, entity, timestamp, keys, task) -> str:
    columns = []
    for column in dict.fromkeys(entity + ([timestamp] if timestamp else [])):
        tests = ["not_null"] + (["unique"] if keys == [column] else [])
        role = "Entity key" if column in entity else "Snapshot the features describe"
        columns.append({"name": column, "description": f"{role} (from {feature_model}).", "data_tests": tests})
    described = ("P(positive class) at scoring time; for a multiclass model the highest class probability."
                 if task == "classification" else "The predicted value.")
    score = {"name": "score", "description": described, "data_tests": ["not_null"]}
    if task == "classification":
        score["data_tests"].append({"dwml.values_within_range": {"arguments": {"min_value": 0, "max_value": 1}}})
    columns += [
        score,
        {"name": "predicted_label", "description": "Predicted class: at the version's threshold (binary), the most "
         "probable class (multiclass), NULL for regression."},
        {"name": "model_name", "description": "The ML model.", "data_tests": ["not_null"]},
        {"name": "version", "description": f"The version the alias {alias!r} pointed at when dbt ran.",
         "data_tests": ["not_null"]},
    ]
    model = {
        "name": name,
        "description": (f"Scores of {feature_model} by the ML model {ml_model!r} (alias {alias!r}), computed in the "
                        "warehouse by dwml_predict on `dbt run`. Generated by `dwml deploy --scaffold`."),
        "config": {"tags": [TAG], "meta": {"owner": "dwml", "classification": "internal"}},
        "columns": columns,
    }
    if len(keys) > 1:
        model["data_tests"] = [{"dwml.unique_combination_of_columns": {"arguments": {"combination_of_columns": keys}}}]
        model = {k: model[k] for k in ("name", "description", "config", "data_tests", "columns")}
    return yaml.safe_dump({"version": 2, "models": [model]}, sort_keys=False, width=110, allow_unicode=True)
