"""The catalog read from hand-made manifest/catalog JSON: versions, freshness, node fields,
search ranking, show with did-you-mean, and the catalog tools."""

from __future__ import annotations

import doctest
import json
import os
import time

import pytest

import dwml_py.catalog as catalog_module
from dwml_py.catalog import Catalog
from dwml_py.errors import ConfigError, InputError, NotFoundError
from dwml_py.project import Project

MANIFEST_URL = "https://schemas.getdbt.com/dbt/manifest/v{}.json"
CATALOG_URL = "https://schemas.getdbt.com/dbt/catalog/v1.json"


# -- builders -------------------------------------------------------------------------------

def column(name, description="", meta=None, tags=None, in_config=True, data_type=None):
    """A manifest column; dbt >= 1.10 (in_config) repeats meta/tags under `config`."""
    col = {"name": name, "description": description, "meta": dict(meta or {}), "tags": list(tags or []),
           "data_type": data_type}
    if in_config:
        col["config"] = {"meta": dict(meta or {}), "tags": list(tags or [])}
    return col


def model(name, sql=None, deps=(), columns=(), description="", meta=None, tags=(), package="shop", **extra):
    uid = f"model.{package}.{name}"
    return {"unique_id": uid, "name": name, "resource_type": "model", "package_name": package,
            "database": "db", "schema": "main", "alias": name, "description": description,
            "relation_name": f'"db"."main"."{name}"', "tags": list(tags),
            "config": {"materialized": "table", "meta": dict(meta or {}), "tags": []},
            "checksum": {"name": "sha256", "checksum": f"sum-{name}"},
            "raw_code": f"-- jinja of {name}", "compiled_code": sql, "language": "sql",
            "depends_on": {"nodes": list(deps), "macros": []},
            "columns": {c["name"]: c for c in columns}, **extra}


def source(source_name, name, columns=(), description=""):
    uid = f"source.shop.{source_name}.{name}"
    return {"unique_id": uid, "name": name, "source_name": source_name, "resource_type": "source",
            "package_name": "shop", "database": "db", "schema": source_name, "identifier": name,
            "relation_name": f'"db"."{source_name}"."{name}"', "description": description,
            "source_description": "Raw data.", "config": {"meta": {}}, "meta": {}, "tags": [],
            "columns": {c["name"]: c for c in columns}}


def test_node(name, attached, column_name=None, test="not_null", deps=None):
    uid = f"test.shop.{name}"
    return {"unique_id": uid, "name": name, "resource_type": "test", "package_name": "shop",
            "attached_node": attached, "column_name": column_name,
            "test_metadata": {"name": test, "kwargs": {"column_name": column_name}} if test else None,
            "depends_on": {"nodes": deps or ([attached] if attached else []), "macros": []},
            "config": {"severity": "ERROR"}}


test_node.__test__ = False  # a builder, not a pytest test


def manifest(nodes=(), sources=(), version=12, adapter="duckdb", groups=None, project="shop"):
    return {"metadata": {"dbt_schema_version": MANIFEST_URL.format(version), "dbt_version": "1.11.16",
                         "adapter_type": adapter, "project_name": project},
            "nodes": {n["unique_id"]: n for n in nodes}, "sources": {s["unique_id"]: s for s in sources},
            "groups": groups or {}}


def catalog_json(entries: dict[str, list[tuple[str, str]]]):
    """catalog.json with (column, type) lists per unique_id."""
    def entry(uid, cols):
        return {"unique_id": uid, "metadata": {"type": "BASE TABLE"},
                "columns": {c: {"name": c, "type": t, "index": i + 1} for i, (c, t) in enumerate(cols)}}

    return {"metadata": {"dbt_schema_version": CATALOG_URL},
            "nodes": {u: entry(u, c) for u, c in entries.items() if u.startswith("model.")},
            "sources": {u: entry(u, c) for u, c in entries.items() if u.startswith("source.")}}


def shop_manifest(version=12, in_config=True):
    raw_customers = source("raw", "customers", description="CRM export.", columns=[
        column("id", "Customer key.", in_config=in_config),
        column("email", "Email address.", meta={"pii": True}, in_config=in_config),
    ])
    customers = model("customers", 'select id, email from "db"."raw"."customers"',
                      deps=[raw_customers["unique_id"]], description="One row per customer.",
                      meta={"owner": "crm-team", "classification": "restricted"}, tags=["core"],
                      columns=[column("id", "Customer key.", in_config=in_config),
                               column("email", "Where receipts go.", tags=["pii"], in_config=in_config),
                               column("phone", "Phone.", meta={"contains_pii": "yes"}, in_config=in_config)])
    orders = model("orders", 'select o.id, o.customer_id from "db"."raw"."customers" o', group="finance",
                   deps=["model.shop.customers"], description="Orders placed by customers, with email receipts.",
                   columns=[column("id", "Order key.", in_config=in_config),
                            column("customer_email_domain", "Domain only.", in_config=in_config)])
    email_stats = model("email_stats", None, deps=["model.shop.orders"], meta={"topic": "marketing"},
                        description="Counts.")
    tests = [test_node("not_null_customers_id", "model.shop.customers", "id"),
             test_node("unique_customers_id", "model.shop.customers", "id", test="unique"),
             test_node("assert_orders_match", None, test=None, deps=["model.shop.customers", "model.shop.orders"])]
    groups = {"group.shop.finance": {"name": "finance", "owner": {"name": "Finance Analytics", "email": "f@x"}}}
    return manifest([customers, orders, email_stats, *tests], [raw_customers], version=version, groups=groups)


def make_project(tmp_path) -> Project:
    root = tmp_path / "proj"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (root / "models" / "customers.sql").write_text("select 1 as id")
    old = time.time() - 3600
    for path in (root / "dbt_project.yml", root / "models" / "customers.sql"):
        os.utime(path, (old, old))
    return Project(project_dir=root)


def write_artifacts(project, manifest_doc, catalog_doc=None):
    project.target_dir.mkdir(parents=True, exist_ok=True)
    project.manifest_path.write_text(json.dumps(manifest_doc))
    if catalog_doc is not None:
        (project.target_dir / "catalog.json").write_text(json.dumps(catalog_doc))


# -- versions and loading ---------------------------------------------------------------------

def test_docstring_examples():
    assert doctest.testmod(catalog_module).failed == 0


@pytest.mark.parametrize("version", [10, 11, 12])
def test_reads_supported_manifest_versions(tmp_path, version):
    path = tmp_path / "manifest.json"
    # v10/v11 manifests (dbt 1.6/1.7) keep column meta/tags at the top level only
    path.write_text(json.dumps(shop_manifest(version, in_config=version == 12)))
    cat = Catalog.from_files(path)
    assert cat.manifest_version == version
    assert len(cat) == 4  # three models and one source; tests are not catalog nodes
    customers = cat.show("customers")
    assert customers.columns["email"].pii and customers.columns["phone"].pii
    assert not customers.columns["id"].pii
    assert cat.show("raw.customers").columns["email"].pii


@pytest.mark.parametrize("version", [9, 13])
def test_refuses_unsupported_manifest_version(tmp_path, version):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(shop_manifest(version)))
    with pytest.raises(ConfigError) as err:
        Catalog.from_files(path)
    assert f"v{version}" in err.value.message and str(path) in err.value.message
    assert "dbt parse" in err.value.hint


def test_refuses_a_file_that_is_not_a_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(catalog_json({})))
    with pytest.raises(ConfigError, match="does not look like a dbt manifest.json"):
        Catalog.from_files(path)


def test_refuses_unsupported_catalog_version(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(shop_manifest()))
    doc = catalog_json({})
    doc["metadata"]["dbt_schema_version"] = "https://schemas.getdbt.com/dbt/catalog/v2.json"
    (tmp_path / "catalog.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="catalog schema v2"):
        Catalog.from_files(tmp_path / "manifest.json", tmp_path / "catalog.json")


def test_load_refuses_missing_manifest(tmp_path):
    project = make_project(tmp_path)
    with pytest.raises(NotFoundError) as err:
        Catalog.load(project)
    assert str(project.manifest_path) in err.value.message
    assert "dbt parse" in err.value.hint


def test_load_refuses_stale_manifest(tmp_path):
    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest())
    Catalog.load(project)  # fresh: fine
    (project.project_dir / "models" / "orders.sql").write_text("select 2 as id")
    future = time.time() + 60
    os.utime(project.project_dir / "models" / "orders.sql", (future, future))
    with pytest.raises(ConfigError) as err:
        Catalog.load(project)
    assert "orders.sql" in err.value.message and str(project.manifest_path) in err.value.message
    assert "dbt parse" in err.value.hint


def test_load_reads_types_from_catalog_json(tmp_path):
    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest(), catalog_json({
        "model.shop.customers": [("ID", "BIGINT"), ("EMAIL", "VARCHAR"), ("signup_date", "DATE")]}))
    cat = Catalog.load(project)
    customers = cat.show("customers")
    # catalog.json order and names first (case-insensitive match to yml), then yml-only columns
    assert list(customers.columns) == ["ID", "EMAIL", "signup_date", "phone"]
    assert customers.columns["EMAIL"].type == "VARCHAR" and customers.columns["EMAIL"].pii
    assert customers.columns["phone"].type is None
    assert customers.column_source == "catalog"
    assert cat.search("signup_date")[0].column == "signup_date"  # undocumented columns are searchable


def test_load_without_catalog_json_asks_the_warehouse(tmp_path):
    class FakeWarehouse:
        def __init__(self):
            self.asked = []

        def columns(self, schema, name):
            self.asked.append((schema, name))
            return [("id", "BIGINT"), ("email", "VARCHAR")] if name == "customers" else []

    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest())
    warehouse = FakeWarehouse()
    cat = Catalog.load(project, warehouse=warehouse)
    assert cat.show("customers").columns["id"].type == "BIGINT"
    assert warehouse.asked == [("main", "customers")]  # lazily: only the node we looked at
    # the warehouse is where columns come from without catalog.json: nothing to note
    assert cat.show("customers").column_source == "warehouse" and not cat.notes


def test_refresh_runs_dbt_parse_only_when_the_manifest_is_missing_or_stale(tmp_path, monkeypatch):
    """Columns come from the warehouse, so a refresh never needs `dbt docs generate` (which compiles
    the whole project): `dbt parse` when the manifest is missing or stale, nothing otherwise."""
    project = make_project(tmp_path)
    ran = []

    def fake_run_dbt(proj, args, on_node=None):
        from dwml_py.dbt_runner import DbtRun

        ran.append(args)
        write_artifacts(proj, shop_manifest())
        return DbtRun(command=["dbt", *args], success=True)

    monkeypatch.setattr("dwml_py.dbt_runner.run_dbt", fake_run_dbt)
    cat = Catalog.load(project, refresh=True)
    assert ran == [["parse"]]
    assert "customers" in [n.name for n in cat.nodes()]
    ran.clear()
    Catalog.load(project, refresh=True)  # no catalog.json, but the manifest is fresh: no dbt run
    assert ran == []


def test_refresh_names_the_parse_error(tmp_path, monkeypatch):
    from dwml_py.dbt_runner import DbtRun
    from dwml_py.errors import DbtCommandError

    project = make_project(tmp_path)

    def fake_run_dbt(proj, args, on_node=None):
        return DbtRun(command=["dbt", *args], success=False, error="Compilation Error: two models named x")

    monkeypatch.setattr("dwml_py.dbt_runner.run_dbt", fake_run_dbt)
    with pytest.raises(DbtCommandError) as err:
        Catalog.load(project, refresh=True)
    assert "two models named x" in err.value.message


class ListWarehouse:
    """The columns a warehouse would list, and which relations were asked for."""

    def __init__(self, tables):
        self.tables = tables
        self.asked = []

    def columns(self, schema, name):
        self.asked.append((schema, name))
        return list(self.tables.get((schema, name), []))


def test_a_manifest_of_another_project_is_refused(tmp_path):
    project = make_project(tmp_path)
    write_artifacts(project, manifest([model("orders", "select 1 as id")], project="jaffle_shop"))
    with pytest.raises(ConfigError) as err:
        Catalog.load(project)
    assert "'jaffle_shop'" in err.value.message and "'shop'" in err.value.message
    assert "dbt parse" in err.value.hint


def test_a_broken_catalog_json_falls_back_to_the_warehouse_and_names_docs_generate(tmp_path):
    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest())
    (project.target_dir / "catalog.json").write_text('{"metadata": {"dbt_schema_version": ')  # half-written
    warehouse = ListWarehouse({("main", "customers"): [("id", "BIGINT"), ("email", "VARCHAR"), ("status", "VARCHAR")]})
    cat = Catalog.load(project, warehouse=warehouse)
    customers = cat.show("customers")
    assert customers.column_source == "warehouse"
    assert customers.columns["status"].type == "VARCHAR"  # undocumented in yml, known to the warehouse
    note = next(n for n in cat.notes if "catalog.json" in n)
    assert "dbt docs generate" in note and "dbt parse" not in note


def test_reading_a_broken_catalog_json_names_docs_generate(tmp_path):
    from dwml_py.dbt_artifacts import read_json

    path = tmp_path / "catalog.json"
    path.write_text("{")
    with pytest.raises(ConfigError) as err:
        read_json(path)
    assert "dbt docs generate" in err.value.hint


def test_a_stale_catalog_json_gives_way_to_the_warehouse(tmp_path):
    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest(), catalog_json({"model.shop.customers": [("id", "BIGINT")]}))
    old = time.time() - 1800
    os.utime(project.target_dir / "catalog.json", (old, old))  # docs generate ran before the last change
    (project.project_dir / "models" / "customers.sql").write_text("select 1 as id, 'x' as status")
    os.utime(project.project_dir / "models" / "customers.sql", (old + 60, old + 60))
    warehouse = ListWarehouse({("main", "customers"): [("id", "BIGINT"), ("status", "VARCHAR")]})
    cat = Catalog.load(project, warehouse=warehouse)
    assert cat.show("customers").column_source == "warehouse"
    assert "status" in cat.show("customers").columns


def test_a_relation_missing_from_catalog_json_is_read_from_the_warehouse(tmp_path):
    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest(), catalog_json({"model.shop.customers": [("id", "BIGINT")]}))
    warehouse = ListWarehouse({("main", "orders"): [("id", "BIGINT"), ("customer_id", "BIGINT")]})
    cat = Catalog.load(project, warehouse=warehouse)
    assert cat.show("customers").column_source == "catalog"
    assert cat.show("orders").column_source == "warehouse" and "customer_id" in cat.show("orders").columns


def test_a_model_not_built_is_known_as_such(tmp_path):
    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest())
    cat = Catalog.load(project, warehouse=ListWarehouse({}))
    orders = cat.show("orders")
    assert orders.built is False and orders.column_source == "yml"
    with pytest.raises(NotFoundError) as err:
        cat.require_built(orders)
    assert "not built" in err.value.message
    assert "dbt run --select orders" in err.value.hint
    assert Catalog.from_dicts(shop_manifest()).show("orders").built is None  # no warehouse: unknown


# -- nodes --------------------------------------------------------------------------------------

@pytest.fixture
def cat():
    return Catalog.from_dicts(shop_manifest())


def test_node_fields(cat):
    customers = cat.show("customers")
    assert customers.unique_id == "model.shop.customers"
    assert customers.relation == '"db"."main"."customers"'
    assert (customers.database, customers.schema, customers.alias) == ("db", "main", "customers")
    assert customers.owner == "crm-team" and customers.classification == "restricted"
    assert customers.tags == ["core"] and customers.meta["owner"] == "crm-team"
    assert customers.checksum == "sum-customers"
    assert customers.parents == ["source.shop.raw.customers"]
    assert customers.children == ["model.shop.orders"]
    assert customers.pii_columns == ["email", "phone"]
    assert customers.sql.startswith("select id")
    assert sorted(t.test_name for t in customers.columns["id"].tests) == ["not_null", "unique"]
    # the singular test has no attached_node: it belongs to every node it reads
    assert "singular" in [t.test_name for t in customers.tests]
    assert [t.name for t in cat.show("orders").tests] == ["assert_orders_match"]


def test_owner_from_group_and_sql_fallback(cat):
    orders = cat.show("orders")
    assert orders.owner == "Finance Analytics"
    stats = cat.show("email_stats")
    assert stats.compiled_code is None and stats.sql == "-- jinja of email_stats"
    payload = stats.to_dict()
    assert payload["sql_is_compiled"] is False
    json.dumps(payload)  # JSON-serialisable


def test_meta_merges_config_and_top_level():
    node = model("m", "select 1 as a", meta={"owner": "from-config"})
    node["meta"] = {"owner": "top-level", "domain": "sales"}
    cat = Catalog.from_dicts(manifest([node]))
    assert cat.show("m").meta == {"owner": "from-config", "domain": "sales"}


def test_show_accepts_unique_id_name_and_source_name(cat):
    assert cat.show("model.shop.orders").name == "orders"
    assert cat.show("raw.customers").unique_id == "source.shop.raw.customers"
    assert cat.show("customers").unique_id == "model.shop.customers"  # the model wins over the source table


def test_show_unknown_name_suggests(cat):
    with pytest.raises(NotFoundError) as err:
        cat.show("custmers")
    assert "custmers" in err.value.message
    assert "did you mean 'customers'" in err.value.hint


def test_show_prefers_root_project_on_name_clash():
    mine = model("dim_date", "select 1 as d")
    theirs = model("dim_date", "select 1 as d", package="utils")
    cat = Catalog.from_dicts(manifest([mine, theirs], project="shop"))
    assert cat.show("dim_date").unique_id == "model.shop.dim_date"
    cat = Catalog.from_dicts(manifest([mine, theirs], project="other"))
    with pytest.raises(NotFoundError, match="several nodes"):
        cat.show("dim_date")


def test_unknown_column_suggests(cat):
    with pytest.raises(NotFoundError, match="no column 'emial'") as err:
        cat.show("customers").column("emial")
    assert "email" in err.value.hint
    assert cat.show("customers").column("EMAIL").name == "email"


# -- search -------------------------------------------------------------------------------------

def test_search_ranks_exact_name_then_name_then_tags_meta_then_description(cat):
    hits = cat.search("email")
    assert hits[0].matched == ["exact name"]
    # exact column names first (both tables), then names containing it, then description-only
    assert [h.column for h in hits[:2]] == ["email", "email"]
    assert {h.name for h in hits[:2]} == {"customers", "raw.customers"}
    tiers = [h.score for h in hits]
    assert tiers == sorted(tiers, reverse=True)
    by_key = {(h.name, h.column): h for h in hits}
    assert by_key[("email_stats", None)].matched == ["name"]
    assert by_key[("orders", "customer_email_domain")].matched == ["name"]
    assert by_key[("orders", None)].matched == ["description"]
    assert by_key[("email_stats", None)].score > by_key[("orders", None)].score


def test_search_matches_tags_and_meta_and_says_what(cat):
    hits = {(h.name, h.column): h for h in cat.search("pii")}
    assert hits[("customers", "email")].matched == ["tag 'pii'"]
    assert hits[("customers", "phone")].matched == ["meta contains_pii=yes"]
    assert hits[("raw.customers", "email")].matched == ["meta pii=true"]
    marketing = cat.search("marketing")
    assert [(h.name, h.matched) for h in marketing] == [("email_stats", ["meta topic=marketing"])]
    assert cat.search("CRM-TEAM")[0].matched == ["meta owner=crm-team"]  # values match, any case


def test_search_filters_and_limits(cat):
    assert {h.resource_type for h in cat.search("email", resource_types=["source"])} == {"source"}
    assert len(cat.search("e", limit=3)) == 3
    with pytest.raises(InputError, match="Unknown resource type 'modle'"):
        cat.search("email", resource_types=["modle"])
    with pytest.raises(InputError, match="empty"):
        cat.search("  ")


def healthcare_manifest():
    """A patients model whose PII carries no meta or tags, as in a large project nobody tagged."""
    names = ["patient_id", "first_name", "birth_date", "social_security_number", "email", "address",
             "visit_count", "contact"]
    patients = model("patients", "select 1", columns=[column(n) for n in names])
    return manifest([patients])


def test_pii_is_recognised_by_column_names_without_meta_or_tags():
    patients = Catalog.from_dicts(healthcare_manifest()).show("patients")
    assert {c.name for c in patients.columns.values() if c.pii} == {
        "first_name", "birth_date", "social_security_number", "email", "address"}
    assert patients.columns["social_security_number"].pii_evidence == ["name: social_security (national_id)"]
    assert patients.columns["social_security_number"].to_dict()["pii"] is True


def test_search_for_a_pii_term_finds_columns_of_that_kind():
    cat = Catalog.from_dicts(healthcare_manifest())
    hits = cat.search("ssn")
    assert [(h.name, h.column) for h in hits] == [("patients", "social_security_number")]
    assert hits[0].matched == ["PII national_id by name"]
    assert ("patients", "birth_date") in [(h.name, h.column) for h in cat.search("dob")]
    assert {h.column for h in cat.search("pii")} >= {"first_name", "email", "address"}


def test_pii_is_recognised_by_sampled_values(tmp_path):
    from dwml_py.warehouse.duckdb import DuckDBWarehouse

    with DuckDBWarehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.execute("create table main.patients as select i as patient_id, 'p' || i || '@example.org' as contact, "
                          "'note ' || i as visit_note from range(50) t(i)")
        doc = healthcare_manifest()
        doc["nodes"]["model.shop.patients"]["database"] = None
        cat = Catalog.from_dicts(doc, warehouse=warehouse)
        assert not cat.show("patients").columns["contact"].pii  # the name alone does not say
        cat.sample_pii(["model.shop.patients"])
        contact = cat.show("patients").columns["contact"]
        assert contact.pii and contact.pii_evidence == ["values: 100% of 50 sampled values look like email"]
        assert not cat.show("patients").columns["visit_note"].pii


def test_search_says_how_many_hits_there_were(tmp_path):
    from dwml_py.tools.catalog_tools import search_catalog

    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest())
    found = search_catalog(project, "e", limit=3)
    assert found["count"] == 3 and found["total"] > 3
    assert found["truncated"] is True


# -- tools --------------------------------------------------------------------------------------

def test_catalog_tools_return_json(tmp_path):
    from dwml_py.tools.catalog_tools import catalog_lineage, search_catalog, show_catalog_node

    project = make_project(tmp_path)
    write_artifacts(project, shop_manifest(), catalog_json({
        "source.shop.raw.customers": [("id", "BIGINT"), ("email", "VARCHAR")],
        "model.shop.customers": [("id", "BIGINT"), ("email", "VARCHAR"), ("phone", "VARCHAR")]}))

    found = search_catalog(project, "email", limit=5)
    json.dumps(found)
    first = found["hits"][0]
    assert first["column"] == "email" and first["matched"] == ["exact name"]
    assert {"name", "resource_type", "relation", "type", "description", "tests", "owner", "pii", "tags",
            "parents", "matched"} <= set(first)
    assert first["type"] == "VARCHAR" and first["pii"] is True
    assert search_catalog(project, "email", resource_type="source")["count"] == 1

    shown = show_catalog_node(project, "customers")
    json.dumps(shown)
    assert shown["owner"] == "crm-team" and shown["pii_columns"] == ["email", "phone"]
    assert shown["lineage_unavailable"] is None

    traced = catalog_lineage(project, "customers.email")
    json.dumps(traced)
    assert traced["direct"] == [{"node": "source.shop.raw.customers", "name": "raw.customers",
                                 "resource_type": "source", "column": "email", "pii": True}]
    assert traced["pii"] is True and traced["derived_from_pii"] is True
    with pytest.raises(Exception, match="not MODEL.COLUMN"):
        catalog_lineage(project, "customers")
