"""Compiled SQL for column lineage: from the manifest when dbt wrote it, else compiled by dwml for
just the models a command needs, and kept so that the next command does not compile again.

`dbt parse`, `dbt test` and selective commands write a manifest without (all) compiled SQL. Lineage
(the catalog's, the leakage check of `features suggest`, the lineage route of the governance gate)
needs it for the models it walks: the asked-for column's ancestors, the joinable candidates'.
`compile_missing` compiles those that lack it with one `dbt compile --select ...` into
target/dwml_compile/ (a selective compile into target/ would replace the manifest with one
compiled only for its selection), and stores the result in target/dwml_compiled_sql.json keyed by
the checksum of target/manifest.json and the target: while dbt leaves the manifest as it is, the
next call finds every model it compiled, and a new manifest (any dbt command) starts the cache
afresh. Models dbt could not compile are kept too (as null), so they are not compiled again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

CACHE_FILE = "dwml_compiled_sql.json"
CACHE_VERSION = 1
SQL_RESOURCE_TYPES = ("model", "snapshot")
# Models dwml's default selector leaves out (selectors.yml): SQL scoring models need a deployed
# version and monitoring models judge dwml's own tables, so they are compiled only when selected.
DEFERRED_TAGS = frozenset({"dwml_scoring", "dwml_monitoring"})
# A long command line of names costs more than it saves: past this many, compile everything.
MAX_SELECTED = 200


def manifest_checksum(path: Path) -> str:
    """sha256 of the manifest file: changes whenever dbt writes it (a new invocation)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_path(project) -> Path:
    return project.target_dir / CACHE_FILE


def _cache_key(project, catalog) -> dict:
    return {"version": CACHE_VERSION, "manifest_checksum": manifest_checksum(catalog.manifest_path),
            "target": project.profile.target_name}


def read_cache(project, key: dict) -> dict[str, str | None]:
    """Compiled SQL by unique_id (None: dbt could not compile it) for this manifest and target."""
    path = cache_path(project)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in key.items()):
        return {}
    nodes = data.get("nodes")
    return nodes if isinstance(nodes, dict) else {}


def write_cache(project, key: dict, nodes: dict[str, str | None], adapter_type: str | None) -> None:
    """Add `nodes` to the cache of this manifest (replacing a cache of another), atomically: two
    dwml commands may finish at once."""
    merged = {**read_cache(project, key), **nodes}
    path = cache_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".dwml_compiled_sql.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({**key, "adapter_type": adapter_type, "nodes": merged}, out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def uncompiled(catalog, unique_ids: Iterable[str] | None = None) -> list[str]:
    """Models and snapshots among `unique_ids` (default: all) without compiled SQL, leaving out
    the deferred ones (DEFERRED_TAGS) and those dwml already failed to compile."""
    if unique_ids is None:
        unique_ids = catalog.unique_ids(list(SQL_RESOURCE_TYPES))
    return sorted(uid for uid in unique_ids
                  if uid in catalog and catalog.raw(uid).get("resource_type") in SQL_RESOURCE_TYPES
                  and catalog.raw(uid).get("compiled_code") is None
                  and (catalog.raw(uid).get("language") or "sql") == "sql"
                  and uid not in catalog.compile_failed
                  and not DEFERRED_TAGS & set(catalog.raw(uid).get("tags") or []))


def sql_ancestors(catalog, unique_ids: Iterable[str]) -> list[str]:
    """The nodes and their ancestors whose columns come from SQL (models and snapshots)."""
    return sorted(u for u in catalog.ancestors(unique_ids) if catalog.raw(u).get("resource_type") in SQL_RESOURCE_TYPES)


def compile_missing(project, catalog, unique_ids: Iterable[str]) -> str | None:
    """Give the models among `unique_ids` compiled SQL where the manifest lacks it: from the cache
    of this manifest, else one `dbt compile --select` of those still missing. Returns a note, or
    None when nothing had to be compiled."""
    wanted = uncompiled(catalog, unique_ids)
    if not wanted:
        return None
    key = _cache_key(project, catalog)
    cached = read_cache(project, key)
    adapter_type = project.profile.adapter_type
    # everything an earlier command compiled for this manifest: a child compiled then has lineage now
    catalog.add_compiled_code({uid: code for uid, code in cached.items()
                               if code and uid in catalog and catalog.raw(uid).get("compiled_code") is None},
                              adapter_type=adapter_type)
    catalog.compile_failed.update(uid for uid, code in cached.items() if code is None)
    missing = uncompiled(catalog, wanted)
    if not missing:
        return None

    from dwml_py.dbt_runner import run_dbt

    names = [catalog.raw(uid).get("name") or uid for uid in missing]
    select = ["--select", *names] if len(names) <= MAX_SELECTED else []
    run = run_dbt(project, ["compile", *select], target_path=project.compile_target_dir)
    compiled = {n.unique_id: n.compiled_code for n in run.nodes if n.compiled_code}
    catalog.add_compiled_code(compiled, adapter_type=adapter_type)
    failed = [uid for uid in missing if uid not in compiled]
    catalog.compile_failed.update(failed)
    write_cache(project, key, {**compiled, **{uid: None for uid in failed}}, adapter_type)
    what = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    if failed:
        shown = ", ".join(catalog.raw(uid).get("name") or uid for uid in failed[:5])
        return (f"`dbt compile` of {what} failed for {shown}, so column lineage is unknown there "
                "(`dbt compile --select` shows dbt's error).")
    return f"compiled {what} (`dbt compile`) for column lineage: the manifest had no compiled SQL for them."
