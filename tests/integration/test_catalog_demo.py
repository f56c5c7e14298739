"""The catalog and column lineage of the real demo project after `dbt build`: columns and types
from the warehouse (no `dbt docs generate`), compiled SQL from the build."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PII = ("email", "phone", "full_name", "birth_date")


@pytest.fixture
def built_demo(project):
    demo = pytest.importorskip("dwml_py.demo", reason="the demo generator is not in this checkout yet")
    from dwml_py.dbt_runner import run_dbt

    demo.generate_demo(project, demo.DemoConfig(customers=300))
    build = run_dbt(project, ["build"])
    assert build.success, build.to_dict()
    return project


def test_demo_catalog_search_show_and_pii_lineage(built_demo):
    from dwml_py.catalog import Catalog
    from dwml_py.lineage import column_lineage, downstream, propagate_tags
    from dwml_py.tools.catalog_tools import catalog_lineage, search_catalog, show_catalog_node

    from dwml_py.warehouse import connect

    # No catalog.json (target/ is per test, and nothing runs `dbt docs generate`): the warehouse
    # gives columns and types, and refresh has nothing to do after `dbt build`.
    warehouse = connect(built_demo, read_only=True)
    cat = Catalog.load(built_demo, refresh=True, warehouse=warehouse)
    assert not cat.notes and not (built_demo.target_dir / "catalog.json").exists()
    assert cat.manifest_version == 12 and cat.dialect == "duckdb"

    stg = cat.show("stg_customers")
    assert sorted(stg.pii_columns) == sorted(PII)
    assert stg.columns["email"].type == "VARCHAR" and stg.column_source == "warehouse"
    assert {"unique", "not_null"} <= {t.test_name for t in stg.columns["customer_id"].tests}
    assert stg.owner == "dwml-demo" and stg.parents == ["source.dwml_demo.raw.customers"]
    assert "model.dwml_demo.customer_features" in stg.children

    hits = cat.search("email")
    assert hits[0].column == "email" and hits[0].matched[0] == "exact name"  # (its description may match too)

    # Every demo model's SQL can be traced, except the scoring and monitoring models, which the
    # default selector leaves out (selectors.yml), so `dbt build` does not compile them.
    from dwml_py.lineage import lineage_graph

    graph = lineage_graph(cat)
    deferred = {"dwml_scoring", "dwml_monitoring"}
    unavailable = {uid: graph.model(uid).unavailable for uid in cat.unique_ids(["model"])
                   if graph.model(uid).unavailable and not deferred & set(cat.node(uid).tags or [])}
    assert not unavailable
    assert {"model.dwml_demo.churn_scores", "model.dwml_demo.churn_drift"} <= set(cat.unique_ids(["model"]))

    # birth_date (PII, tagged in staging) reaches customer_features through a derived column.
    age = next(c for c in cat.show("customer_features").columns if c.startswith("age"))
    traced = column_lineage(cat, "customer_features", age)
    ancestors = {str(s.ref) for s in traced.ancestors}
    assert "model.dwml_demo.stg_customers.birth_date" in ancestors
    assert "source.dwml_demo.raw.customers.birth_date" in ancestors

    tagged = propagate_tags(cat, "pii")
    assert tagged[("model.dwml_demo.customer_features", age)] == ("model.dwml_demo.stg_customers", "birth_date")
    derived = {node for (node, _), origin in tagged.items() if origin[0] != node}
    assert "model.dwml_demo.customer_features" in derived
    # From the raw CRM table, PII columns flow into at least two downstream models.
    reached = set()
    for column in PII:
        reached |= {s.ref.node_id for s in downstream(cat, "raw.customers", column).descendants}
    assert {"model.dwml_demo.stg_customers", "model.dwml_demo.customer_features"} <= reached
    # ...and no feature column carries PII unless it derives from it.
    features = {col for (node, col) in tagged if node == "model.dwml_demo.customer_features"}
    assert features == {age}

    # The tools answer with JSON.
    found = search_catalog(built_demo, "pii")
    assert found["count"] >= 4 and all(h["pii"] for h in found["hits"][:4])
    shown = show_catalog_node(built_demo, "customer_features")
    assert shown["sql_is_compiled"] and shown["lineage_unavailable"] is None
    lineage = catalog_lineage(built_demo, f"customer_features.{age}")
    assert lineage["derived_from_pii"] and {r["column"] for r in lineage["pii_sources"]} == {"birth_date"}
    json.dumps([found, shown, lineage])
    warehouse.close()
