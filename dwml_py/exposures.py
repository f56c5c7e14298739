"""Deployed ML models as dbt exposures, so dbt docs show the ML lineage.

`write_exposures(project)` writes one exposure (type `ml`) per model that has an alias
(production, staging, ...) into a generated yml file in the project's first model path
(`models/exposures/dwml_exposures.yml`). Each depends on the models its aliased versions were
trained from (feature model and label model), on the dbt model that scores it in SQL when
there is one (`<model>_scores`, written by `dwml deploy --scaffold`) and on dwml's views over the
registry, predictions and monitoring tables, so `dbt docs generate` draws

    raw sources -> staging -> customer_features -> churn_scores -> [exposure ml_churn]
    dwml's tables -> dwml_predictions, dwml_model_versions, ... -------------^

An exposure is a leaf of dbt's DAG: predictions are upstream of it in the graph, which is how
dbt shows what a consumer reads. Every reference is checked against the manifest (refreshed
with `dbt parse` when stale) before it is written, because an unknown ref would make the whole
project fail to parse. The file starts with a checksum of its content: once edited by hand it is
not overwritten without `force` (the same header as the files `dwml features pipeline` writes),
and `output` must lie inside the project (dwml_py.file_output).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import yaml

from dwml_py import model_registry as registry
from dwml_py.errors import DwmlError, InputError
from dwml_py.feature_pipeline import with_header
from dwml_py.file_output import check_replaceable, confined, write_files

EXPOSURE_TYPE = "ml"
DEFAULT_FILE = Path("exposures") / "dwml_exposures.yml"
# dwml's tables a deployed model reads and writes, as the views dwml's dbt package builds over them
DWML_TABLES = ("model_versions", "predictions", "drift_metrics", "performance_metrics")
HEADLINE_METRICS = ("roc_auc", "pr_auc", "f1", "rmse", "mae", "r2")
_REFERABLE = ("model", "seed", "snapshot")
_PLAIN = re.compile(r"^[A-Za-z0-9_.-]+$")  # names that need no quoting inside ref('...')


# -- the manifest ------------------------------------------------------------------------------------

def load_manifest(project) -> dict:
    """manifest.json, after `dbt parse` when it is missing or older than the project's files."""
    from dwml_py.dbt_artifacts import read_artifact
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.errors import DbtCommandError
    from dwml_py.manifest_state import manifest_state

    state = manifest_state(project)
    if not state.exists or state.stale:
        run = run_dbt(project, ["parse"])
        if not run.success:
            raise DbtCommandError(f"`dbt parse` failed in {str(project.project_dir)!r}, so the exposures' references "
                                  "cannot be checked.",
                                  hint="run `dbt parse` to see dbt's error; if it names the exposures file, delete "
                                  "that file and run `dwml docs exposures` again.")
    return read_artifact(project.manifest_path, "manifest")


class _Refs:
    """dbt references (ref()/source()) of manifest nodes, as a yml `depends_on` entry needs them."""

    def __init__(self, manifest: dict):
        self.project = (manifest.get("metadata") or {}).get("project_name")
        self.nodes = {uid: n for uid, n in (manifest.get("nodes") or {}).items()
                      if n.get("resource_type") in _REFERABLE}
        self.sources = manifest.get("sources") or {}

    def node_id(self, given: str | None) -> str | None:
        """The unique_id of a unique_id or a model name (the root project's node first)."""
        if not given:
            return None
        if given in self.nodes:
            return given
        named = [uid for uid, n in self.nodes.items() if n.get("name") == given]
        root = [uid for uid in named if self.nodes[uid].get("package_name") == self.project]
        return (root or named or [None])[0]

    def ref(self, unique_id: str | None) -> str | None:
        node = self.nodes.get(unique_id or "")
        if node is None or not _PLAIN.match(node.get("name", "")) or not _PLAIN.match(node.get("package_name", "")):
            return None
        if node.get("package_name") == self.project:
            return f"ref('{node['name']}')"
        return f"ref('{node['package_name']}', '{node['name']}')"

    def dwml_table(self, table: str) -> str | None:
        """dwml's view over `table` (dwml_<table>), else the source dwml.<table>."""
        view = self.ref(self.node_id(f"dwml_{table}"))
        if view:
            return view
        for source in self.sources.values():
            if source.get("source_name") == "dwml" and source.get("name") == table:
                return f"source('dwml', '{table}')"
        return None

    def scoring_model(self, ml_model: str) -> str | None:
        """The ref of the dbt model that scores `ml_model` in SQL (`dwml deploy --scaffold`), if any."""
        from dwml_py.scoring_scaffold import TAG, model_name_for

        uid = self.node_id(model_name_for(ml_model))
        node = self.nodes.get(uid or "") or {}
        tags = set(node.get("tags") or []) | set((node.get("config") or {}).get("tags") or [])
        return self.ref(uid) if TAG in tags else None

    def owner(self, unique_id: str | None) -> str | None:
        node = self.nodes.get(unique_id or "") or {}
        meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
        owner = meta.get("owner")
        return str(owner) if isinstance(owner, (str, int)) and str(owner).strip() else None


# -- the exposures -----------------------------------------------------------------------------------

def exposure_name(model_name: str, taken: set[str]) -> str:
    """A dbt exposure name (letters, digits, underscores) for an ML model name, unique in `taken`."""
    base = "ml_" + re.sub(r"[^0-9A-Za-z_]", "_", model_name)
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _label_model(store, version_row: dict) -> str | None:
    """The label model's unique_id from the artifact's meta.json (read without loading the model)."""
    try:
        data = registry.load_model_bytes(store, version_row)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return (json.loads(archive.read("meta.json")).get("spec") or {}).get("label_model")
    except (DwmlError, zipfile.BadZipFile, KeyError, ValueError):
        return None  # not a dwml model zip (registered by hand): the feature model still shows the lineage


def _description(name: str, aliased: dict[str, dict], feature: str | None) -> str:
    lines = [f"ML model **{name}**, registered and deployed by dwml."]
    for alias, row in aliased.items():
        metrics = row.get("metrics") or {}
        shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in HEADLINE_METRICS if isinstance(metrics.get(k), (int, float)))
        lines.append(f"- `{alias}`: version {row['version']} ({row.get('algorithm') or 'unknown algorithm'}, "
                     f"{row.get('task') or 'unknown task'}" + (f"; holdout {shown}" if shown else "") + ")")
    if feature:
        lines.append(f"\nFeatures from `{feature}`. Scores land in `dwml.predictions`; drift and performance "
                     "in `dwml.drift_metrics` and `dwml.performance_metrics`.")
    lines.append(f"\n`dwml report {name}` writes its model card; `dwml models versions {name}` lists its versions.")
    return "\n".join(lines)


def build_exposures(warehouse, store, manifest: dict) -> tuple[list[dict], list[str]]:
    """(exposures, notes): one exposure per model with at least one alias."""
    refs = _Refs(manifest)
    exposures, notes, taken = [], [], set()
    for model in registry.list_models(warehouse):
        name = model["model_name"]
        current = registry.current_aliases(warehouse, name)
        if not current:
            continue
        aliased = {alias: registry.get_version(warehouse, name, version=move["version"])
                   for alias, move in sorted(current.items(), key=lambda kv: (kv[0] != "production", kv[0]))}
        depends, missing = [], []
        feature_ids = []
        for row in aliased.values():
            for wanted in (row.get("feature_model"), _label_model(store, row)):
                uid = refs.node_id(wanted)
                ref = refs.ref(uid)
                if ref is None:
                    if wanted:
                        missing.append(str(wanted))
                    continue
                if uid not in feature_ids and wanted == row.get("feature_model"):
                    feature_ids.append(uid)
                if ref not in depends:
                    depends.append(ref)
        scores = refs.scoring_model(name)  # features -> scores in SQL -> the model, in dbt's graph
        if scores and scores not in depends:
            depends.append(scores)
        for table in DWML_TABLES:
            ref = refs.dwml_table(table)
            if ref and ref not in depends:
                depends.append(ref)
        for gone in sorted(set(missing)):
            notes.append(f"{name}: {gone!r} is not a model in the manifest; left out of its exposure's depends_on.")
        first = next(iter(aliased.values()))
        owner = refs.owner(feature_ids[0] if feature_ids else None) or next(iter(current.values())).get("set_by")
        feature = refs.nodes[feature_ids[0]]["name"] if feature_ids else None
        exposures.append({
            "name": exposure_name(name, taken),
            "label": f"{name} (ML model)",
            "type": EXPOSURE_TYPE,
            "maturity": "high" if "production" in aliased else "medium",
            "owner": {"name": str(owner or "dwml")},
            "description": _description(name, aliased, feature),
            "depends_on": depends,
            "config": {"tags": ["dwml", "ml"],
                       "meta": {"dwml": {"model_name": name, "task": first.get("task"),
                                         "aliases": {a: r["version"] for a, r in aliased.items()},
                                         "algorithm": first.get("algorithm"), "run_id": first.get("run_id")}}},
        })
    return exposures, notes


def default_path(project) -> Path:
    paths = project.config.get("model-paths") or ["models"]
    return project.project_dir / str(paths[0]) / DEFAULT_FILE


def _read_text(path: Path) -> str | None:
    """The file's text, or None when it cannot be read as text."""
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the descriptions) as literal blocks, readable in the yml as in dbt docs."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def render(exposures: list[dict]) -> str:
    body = yaml.dump({"version": 2, "exposures": exposures}, Dumper=_Dumper, sort_keys=False, width=110,
                     allow_unicode=True)
    return with_header(body, "#", "the dbt exposures of the deployed ML models (`dwml docs exposures`); "
                                  "regenerate after a deploy")


def write_exposures(project, output: str | Path | None = None, force: bool = False, warehouse=None,
                    manifest: dict | None = None, allow_outside: bool = False) -> dict:
    """Write the exposures file; see the module doc. Unchanged content is not rewritten.
    `manifest`: the parsed manifest.json (default: the project's, refreshed when stale)."""
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.rows import ensure_once
    from dwml_py.warehouse import given_or_connected

    path = Path(str(output)) if output else default_path(project)
    if path.suffix not in (".yml", ".yaml"):
        raise InputError(f"The exposures file must be a .yml file, got {str(path)[:200]!r}.",
                         hint="e.g. --output models/exposures/dwml_exposures.yml")
    path = confined(project, path, "the exposures file", allow_outside=allow_outside)
    hint = "pass --force to replace it (its edits are lost), or --output another file."
    check_replaceable(path, force, hint)
    manifest = manifest if manifest is not None else load_manifest(project)
    with given_or_connected(project, warehouse) as warehouse:
        ensure_once(warehouse)
        exposures, notes = build_exposures(warehouse, ArtifactStore.for_project(project), manifest)
    text = render(exposures)
    unchanged = path.is_file() and _read_text(path) == text
    if not unchanged:
        write_files({path: text}, force, hint=hint)
    model_dirs = [(project.project_dir / p).resolve() for p in (project.config.get("model-paths") or ["models"])]
    if not any(path.resolve().is_relative_to(d) for d in model_dirs):
        notes.append(f"{path} is outside the project's model paths: dbt will not read it.")
    return {"path": str(path.resolve()), "written": not unchanged, "exposures": [e["name"] for e in exposures],
            "models": [e["config"]["meta"]["dwml"]["model_name"] for e in exposures],
            "depends_on": {e["name"]: e["depends_on"] for e in exposures}, "notes": notes,
            "next": "run `dbt docs generate` (then `dbt docs serve`) to see the lineage."}
