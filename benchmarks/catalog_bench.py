"""Benchmark: load and search a synthetic 5,000-model (~15 MB) dbt manifest, and trace lineage in it.

    python benchmarks/catalog_bench.py [--models 5000] [--repeat 3]

Writes a v12 manifest.json + catalog.json shaped like dbt 1.11's into a temporary folder,
then times Catalog.from_files, search (first call builds the index), show, column lineage of a
deep model, and PII propagation. Prints a table and one JSON line (for CI to keep).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dwml_py.catalog import Catalog  # noqa: E402
from dwml_py.lineage import column_lineage, propagate_tags  # noqa: E402

WORDS = ("customer order payment invoice session product plan region revenue churn usage ticket "
         "account event campaign channel device refund shipment inventory").split()
DB, SCHEMA = "analytics", "main"


def _column(name: str, rng: random.Random, pii: bool = False) -> dict:
    meta = {"pii": True, "classification": "restricted"} if pii else {}
    tags = ["pii"] if pii else []
    return {"name": name, "description": f"The {name.replace('_', ' ')} of the {rng.choice(WORDS)}.", "meta": meta, "data_type": None,
            "constraints": [], "quote": None, "config": {"meta": meta, "tags": tags}, "tags": tags,
            "granularity": None, "doc_blocks": []}


def _config(materialized: str, meta: dict) -> dict:
    return {"enabled": True, "alias": None, "schema": None, "database": None, "tags": [], "meta": meta,
            "group": None, "materialized": materialized, "incremental_strategy": None, "persist_docs": {},
            "post-hook": [], "pre-hook": [], "quoting": {}, "column_types": {}, "full_refresh": None,
            "unique_key": None, "on_schema_change": "ignore", "on_configuration_change": "apply", "grants": {},
            "packages": [], "docs": {"show": True, "node_color": None},
            "contract": {"enforced": False, "alias_types": True}, "access": "protected"}


def synthetic_artifacts(n_models: int = 5000, n_sources: int = 200, seed: int = 7) -> tuple[dict, dict]:
    """A manifest and catalog of `n_models` models over `n_sources` sources, each model reading
    one to three earlier nodes through CTEs, a join, aliases and `select *`."""
    rng = random.Random(seed)
    nodes, sources, cat_nodes, cat_sources = {}, {}, {}, {}
    columns_of: dict[str, list[str]] = {}
    for i in range(n_sources):
        uid = f"source.bench.raw.table_{i}"
        cols = ["id"] + [f"{rng.choice(WORDS)}_{j}" for j in range(12)] + (["email"] if i % 10 == 0 else [])
        columns_of[uid] = cols
        sources[uid] = {"database": DB, "schema": "raw", "name": f"table_{i}", "resource_type": "source",
                        "package_name": "bench", "path": "models/sources.yml",
                        "original_file_path": "models/sources.yml", "unique_id": uid,
                        "fqn": ["bench", "raw", f"table_{i}"], "source_name": "raw",
                        "source_description": "Raw tables.", "loader": "", "identifier": f"table_{i}",
                        "description": f"Raw {rng.choice(WORDS)} records.",
                        "columns": {c: _column(c, rng, pii=(c == "email")) for c in cols},
                        "meta": {}, "source_meta": {}, "tags": [], "config": {"enabled": True, "meta": {}},
                        "relation_name": f'"{DB}"."raw"."table_{i}"'}
        cat_sources[uid] = _catalog_entry(uid, "raw", f"table_{i}", cols)
    uids = list(sources)
    for i in range(n_models):
        name = f"model_{i}"
        uid = f"model.bench.{name}"
        parents = rng.sample(uids, k=min(len(uids), rng.randint(1, 3)))
        first, rest = parents[0], parents[1:]
        cols = ["id"] + [f"{rng.choice(WORDS)}_{i}_{j}" for j in range(7)]
        selects = ["a.id"] + [f"a.{c} as {cols[k + 1]}" for k, c in enumerate(columns_of[first][1:6])]
        joins, ctes = [], [f"a as (select * from {_rel(first, sources, nodes)})"]
        for k, parent in enumerate(rest):
            alias = "bcdefgh"[k]
            ctes.append(f"{alias} as (select id, {columns_of[parent][1]} as v from {_rel(parent, sources, nodes)})")
            joins.append(f"left join {alias} on a.id = {alias}.id")
        while len(selects) < len(cols):
            selects.append(f"coalesce(a.{columns_of[first][-1]}, 0) + {len(selects)} as {cols[len(selects)]}")
        if "email" in columns_of[first]:
            cols.append("email")
            selects.append("lower(a.email) as email")
        columns_of[uid] = cols
        code = f"with {', '.join(ctes)}\nselect {', '.join(selects)}\nfrom a {' '.join(joins)}"
        raw = code
        for parent in parents:  # the Jinja source names parents with ref()/source()
            raw = raw.replace(_rel(parent, sources, nodes), "{{ ref('" + parent.rsplit(".", 1)[-1] + "') }}")
        documented = {c: _column(c, rng) for c in cols[:3]}
        nodes[uid] = {"database": DB, "schema": SCHEMA, "name": name, "resource_type": "model",
                      "package_name": "bench", "path": f"{name}.sql", "original_file_path": f"models/{name}.sql",
                      "unique_id": uid, "fqn": ["bench", name], "alias": name,
                      "checksum": {"name": "sha256", "checksum": f"{rng.getrandbits(256):064x}"},
                      "config": _config("table", {"owner": f"team-{rng.choice(WORDS)}"}), "tags": [rng.choice(WORDS)],
                      "description": f"{name}: {rng.choice(WORDS)} facts per {rng.choice(WORDS)} and day.",
                      "columns": documented, "meta": {}, "group": None, "docs": {"show": True},
                      "build_path": None, "unrendered_config": {"materialized": "table"}, "created_at": 1.7e9,
                      "relation_name": f'"{DB}"."{SCHEMA}"."{name}"', "raw_code": raw,
                      "language": "sql", "refs": [], "sources": [], "metrics": [],
                      "depends_on": {"macros": [], "nodes": parents}, "compiled_path": f"target/compiled/{name}.sql",
                      "compiled": True, "compiled_code": code, "extra_ctes_injected": True, "extra_ctes": [],
                      "contract": {"enforced": False}, "access": "protected", "constraints": [], "version": None}
        cat_nodes[uid] = _catalog_entry(uid, SCHEMA, name, cols)
        for test in ("not_null", "unique")[: 1 + (i % 10 == 0)]:
            tid = f"test.bench.{test}_{name}_id.{i:010x}"
            nodes[tid] = {"unique_id": tid, "name": f"{test}_{name}_id", "resource_type": "test",
                          "package_name": "bench", "attached_node": uid, "column_name": "id",
                          "test_metadata": {"name": test, "kwargs": {"column_name": "id"}, "namespace": None},
                          "depends_on": {"macros": [f"macro.dbt.test_{test}"], "nodes": [uid]},
                          "config": {"enabled": True, "severity": "ERROR", "materialized": "test"},
                          "raw_code": "{{ test_" + test + "(**_dbt_generic_test_kwargs) }}", "compiled_code": None}
        uids.append(uid)
    manifest = {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                             "dbt_version": "1.11.16", "adapter_type": "duckdb", "project_name": "bench"},
                "nodes": nodes, "sources": sources, "macros": {}, "docs": {}, "exposures": {}, "metrics": {},
                "groups": {}, "selectors": {}, "disabled": {}, "parent_map": {}, "child_map": {}}
    catalog = {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json"},
               "nodes": cat_nodes, "sources": cat_sources, "errors": None}
    return manifest, catalog


def _rel(uid: str, sources: dict, nodes: dict) -> str:
    return (sources.get(uid) or nodes[uid])["relation_name"]


def _catalog_entry(uid: str, schema: str, name: str, cols: list[str]) -> dict:
    return {"metadata": {"type": "BASE TABLE", "schema": schema, "name": name, "database": DB,
                         "comment": None, "owner": None}, "unique_id": uid, "stats": {},
            "columns": {c: {"type": "BIGINT" if c == "id" else "VARCHAR", "index": k + 1, "name": c, "comment": None}
                        for k, c in enumerate(cols)}}


def _time(func, repeat: int) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    manifest, catalog = synthetic_artifacts(args.models)
    with tempfile.TemporaryDirectory() as tmp:
        mpath, cpath = Path(tmp) / "manifest.json", Path(tmp) / "catalog.json"
        mpath.write_text(json.dumps(manifest, separators=(",", ":")))
        cpath.write_text(json.dumps(catalog, separators=(",", ":")))
        size_mb = mpath.stat().st_size / 1e6
        load_s, cat = _time(lambda: Catalog.from_files(mpath, cpath), args.repeat)

    started = time.perf_counter()
    first_hits = cat.search("revenue")
    first_search_s = time.perf_counter() - started
    search_s, hits = _time(lambda: cat.search("email", limit=50), args.repeat)
    show_s, _ = _time(lambda: cat.show(f"model_{args.models - 1}").to_dict(), args.repeat)
    deep = f"model.bench.model_{args.models - 1}"
    started = time.perf_counter()
    result = column_lineage(cat, deep, "id")
    lineage_s = time.perf_counter() - started
    started = time.perf_counter()
    pii = propagate_tags(cat)
    propagate_s = time.perf_counter() - started
    parsed = len(cat._lineage._models)

    rows = [
        ("manifest size (MB)", f"{size_mb:.1f}"),
        ("nodes in catalog", str(len(cat))),
        ("Catalog.from_files (s)", f"{load_s:.3f}"),
        ("first search, builds index (s)", f"{first_search_s:.3f}"),
        ("search, warm (s)", f"{search_s:.4f}"),
        ("show + to_dict (s)", f"{show_s:.4f}"),
        (f"column_lineage, {len(result.steps)} ancestors (s)", f"{lineage_s:.3f}"),
        (f"propagate_tags, {len(pii)} PII columns (s)", f"{propagate_s:.2f}"),
        ("models parsed by sqlglot", str(parsed)),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value:>10}")
    out = {"bench": "catalog", "models": args.models, "manifest_mb": round(size_mb, 1), "load_s": round(load_s, 3),
           "first_search_s": round(first_search_s, 3), "search_s": round(search_s, 4), "show_s": round(show_s, 4),
           "lineage_s": round(lineage_s, 3), "lineage_ancestors": len(result.steps),
           "propagate_tags_s": round(propagate_s, 2), "pii_columns": len(pii), "models_parsed": parsed,
           "hits_revenue": len(first_hits), "hits_email": len(hits)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
