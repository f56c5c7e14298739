"""Column-level lineage from compiled SQL: CTEs, joins, aliases, subqueries, `select *`, the
upstream closure, downstream uses, tag propagation, and models whose lineage is unavailable."""

from __future__ import annotations

import doctest

import pytest

import dwml_py.lineage as lineage_module
from dwml_py.catalog import Catalog
from dwml_py.errors import NotFoundError
from dwml_py.lineage import ColumnRef, column_lineage, downstream, model_lineage, propagate_tags

URL = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def col(name, pii=False, **meta):
    meta = {**meta, **({"pii": True} if pii else {})}
    return {"name": name, "meta": meta, "tags": ["pii"] if pii else [], "config": {"meta": meta, "tags": []}}


def model(name, sql, deps=(), columns=(), **extra):
    return {"unique_id": f"model.shop.{name}", "name": name, "resource_type": "model", "package_name": "shop",
            "database": "db", "schema": "main", "alias": name, "relation_name": f'"db"."main"."{name}"',
            "compiled_code": sql, "raw_code": "{{ jinja }}", "language": "sql", "config": {"materialized": "table"},
            "depends_on": {"nodes": list(deps)}, "columns": {c["name"]: c for c in columns}, **extra}


def source(name, columns):
    return {"unique_id": f"source.shop.raw.{name}", "name": name, "source_name": "raw", "resource_type": "source",
            "package_name": "shop", "database": "db", "schema": "raw", "identifier": name,
            "relation_name": f'"db"."raw"."{name}"', "columns": {c["name"]: c for c in columns}}


def build(nodes, sources=(), catalog=None, adapter="duckdb"):
    manifest = {"metadata": {"dbt_schema_version": URL, "adapter_type": adapter, "project_name": "shop"},
                "nodes": {n["unique_id"]: n for n in nodes}, "sources": {s["unique_id"]: s for s in sources}}
    return Catalog.from_dicts(manifest, catalog)


SRC_CUSTOMERS = source("customers", [col("id"), col("email", pii=True), col("full_name", pii=True),
                                     col("birth_date", pii=True), col("country")])
SRC_ORDERS = source("orders", [col("order_id"), col("customer_id"), col("amount"), col("ordered_at")])

# `select *` from a source whose columns are known from its yml
STG_CUSTOMERS = model("stg_customers", 'select * from "db"."raw"."customers"', deps=["source.shop.raw.customers"])
# CTEs with `select *`, a join, aliases, an expression over two columns, and a scalar subquery
CUSTOMER_ORDERS = model(
    "customer_orders",
    """
    with c as (select * from "db"."main"."stg_customers"),
    o as (
        select customer_id as cid, amount as order_amount, ordered_at
        from "db"."raw"."orders"
    ),
    per_customer as (
        select cid, sum(order_amount) as total, max(ordered_at) as last_order from o group by cid
    )
    select
        c.id as customer_id,
        lower(c.email) as contact,
        c.full_name || ' <' || c.email || '>' as display_name,
        date_diff('year', c.birth_date, p.last_order) as age_at_last_order,
        p.total as lifetime_value,
        (select max(amount) from "db"."raw"."orders") as biggest_order_anywhere,
        1 as one
    from c
    left join per_customer as p on c.id = p.cid
    """,
    deps=["model.shop.stg_customers", "source.shop.raw.orders"],
)
# a second downstream model: PII must keep flowing through it
MART = model(
    "mart_customers",
    'select customer_id, contact as contact_email, lifetime_value * 2 as ltv_x2, age_at_last_order '
    'from "db"."main"."customer_orders"',
    deps=["model.shop.customer_orders"],
)


@pytest.fixture
def cat():
    return build([STG_CUSTOMERS, CUSTOMER_ORDERS, MART], [SRC_CUSTOMERS, SRC_ORDERS])


def refs(*pairs):
    return [ColumnRef(n, c) for n, c in pairs]


def test_docstring_examples():
    assert doctest.testmod(lineage_module).failed == 0


def test_select_star_expands_from_parent_columns(cat):
    stg = model_lineage(cat, "stg_customers")
    assert stg.unavailable is None and not stg.unresolved
    assert list(stg.columns) == ["id", "email", "full_name", "birth_date", "country"]
    assert stg.columns["email"] == refs(("source.shop.raw.customers", "email"))


def test_lineage_through_ctes_join_alias_and_subquery(cat):
    lin = model_lineage(cat, "customer_orders")
    assert lin.unavailable is None, lin.unavailable
    assert lin.columns["customer_id"] == refs(("model.shop.stg_customers", "id"))
    assert lin.columns["contact"] == refs(("model.shop.stg_customers", "email"))
    assert sorted(lin.columns["display_name"]) == refs(("model.shop.stg_customers", "email"),
                                                       ("model.shop.stg_customers", "full_name"))
    assert sorted(lin.columns["age_at_last_order"]) == refs(("model.shop.stg_customers", "birth_date"),
                                                            ("source.shop.raw.orders", "ordered_at"))
    assert lin.columns["lifetime_value"] == refs(("source.shop.raw.orders", "amount"))
    assert lin.columns["biggest_order_anywhere"] == refs(("source.shop.raw.orders", "amount"))
    assert lin.columns["one"] == []


def test_column_lineage_closure_with_depth_and_path(cat):
    result = column_lineage(cat, "mart_customers", "contact_email")
    assert result.direct == refs(("model.shop.customer_orders", "contact"))
    depth = {str(s.ref): s.depth for s in result.ancestors}
    assert depth == {"model.shop.customer_orders.contact": 1, "model.shop.stg_customers.email": 2,
                     "source.shop.raw.customers.email": 3}
    assert [str(r) for r in result.path(ColumnRef("source.shop.raw.customers", "email"))] == [
        "model.shop.mart_customers.contact_email", "model.shop.customer_orders.contact",
        "model.shop.stg_customers.email", "source.shop.raw.customers.email"]
    payload = result.to_dict()
    assert payload["direction"] == "upstream" and payload["columns"][-1]["depth"] == 3


def test_downstream(cat):
    result = downstream(cat, "raw.customers", "birth_date")
    assert {str(s.ref): s.depth for s in result.descendants} == {
        "model.shop.stg_customers.birth_date": 1, "model.shop.customer_orders.age_at_last_order": 2,
        "model.shop.mart_customers.age_at_last_order": 3}


def test_pii_propagates_through_two_models(cat):
    tagged = propagate_tags(cat, "pii")
    email = ("source.shop.raw.customers", "email")
    assert tagged[email] == email  # declared columns map to themselves
    assert tagged[("model.shop.customer_orders", "contact")] == email
    assert tagged[("model.shop.mart_customers", "contact_email")] == email
    assert tagged[("model.shop.customer_orders", "age_at_last_order")] == ("source.shop.raw.customers", "birth_date")
    assert tagged[("model.shop.mart_customers", "age_at_last_order")] == ("source.shop.raw.customers", "birth_date")
    assert ("model.shop.mart_customers", "ltv_x2") not in tagged
    assert ("model.shop.customer_orders", "customer_id") not in tagged


def test_propagate_any_tag_for_leakage():
    label = model("labels", 'select id, churned from "db"."raw"."customers"', deps=["source.shop.raw.customers"],
                  columns=[col("id"), col("churned", target=True)])
    feats = model("features", 'select l.id, l.churned and true as churn_flag, 1 as k from "db"."main"."labels" l',
                  deps=["model.shop.labels"])
    src = source("customers", [col("id"), col("churned")])
    tagged = propagate_tags(build([label, feats], [src]), tag="target")
    assert tagged[("model.shop.features", "churn_flag")] == ("model.shop.labels", "churned")
    assert ("model.shop.features", "k") not in tagged


def test_select_star_without_known_columns_uses_the_parents_sql():
    # no yml columns, no catalog.json: the parent's own SQL says what its columns are
    base = model("base", 'select id, email from "db"."raw"."customers"', deps=["source.shop.raw.customers"])
    top = model("top", 'select * from "db"."main"."base"', deps=["model.shop.base"])
    cat = build([base, top], [source("customers", [])])
    lin = model_lineage(cat, "top")
    assert lin.columns == {"id": refs(("model.shop.base", "id")), "email": refs(("model.shop.base", "email"))}
    assert column_lineage(cat, "top", "email").ancestors[-1].ref == ColumnRef("source.shop.raw.customers", "email")


def test_star_over_unknown_columns_is_reported():
    top = model("top", 'select * from "db"."raw"."customers"', deps=["source.shop.raw.customers"])
    lin = model_lineage(build([top], [source("customers", [])]), "top")
    assert "could not be expanded" in lin.unresolved["*"]


def test_catalog_json_columns_win_and_case_is_ignored():
    catalog = {"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json"},
               "nodes": {}, "sources": {"source.shop.raw.customers": {"columns": {
                   "ID": {"name": "ID", "type": "NUMBER", "index": 1},
                   "EMAIL": {"name": "EMAIL", "type": "TEXT", "index": 2}}}}}
    top = model("top", 'select id, lower(email) as email_lc from db.raw.customers',
                deps=["source.shop.raw.customers"])
    cat = build([top], [source("customers", [col("email", pii=True)])], catalog=catalog, adapter="snowflake")
    lin = model_lineage(cat, "top")
    assert lin.columns["EMAIL_LC"] == refs(("source.shop.raw.customers", "EMAIL"))
    assert propagate_tags(cat)[("model.shop.top", "EMAIL_LC")] == ("source.shop.raw.customers", "EMAIL")


def test_unparseable_sql_does_not_break_the_rest():
    broken = model("broken", "select from from where (", deps=["source.shop.raw.customers"])
    after = model("after", 'select id from "db"."main"."broken"', deps=["model.shop.broken"])
    ok = model("ok", 'select email from "db"."raw"."customers"', deps=["source.shop.raw.customers"])
    cat = build([broken, after, ok], [SRC_CUSTOMERS])
    assert model_lineage(cat, "broken").unavailable.startswith("lineage unavailable: ")
    assert model_lineage(cat, "ok").columns["email"] == refs(("source.shop.raw.customers", "email"))
    result = column_lineage(cat, "after", "id")
    assert result.direct == refs(("model.shop.broken", "id"))
    assert result.unavailable["model.shop.broken"].startswith("lineage unavailable: ")
    assert ("model.shop.ok", "email") in propagate_tags(cat)


def test_missing_compiled_sql_says_run_dbt_compile():
    bare = model("bare", None, deps=["source.shop.raw.customers"], columns=[col("id")])
    lin = model_lineage(build([bare], [SRC_CUSTOMERS]), "bare")
    assert "no compiled SQL" in lin.unavailable and "dbt compile" in lin.unavailable
    result = column_lineage(build([bare], [SRC_CUSTOMERS]), "bare", "id")
    assert result.direct == [] and "model.shop.bare" in result.unavailable


def test_unknown_column_and_model(cat):
    with pytest.raises(NotFoundError, match="no column 'contct'") as err:
        column_lineage(cat, "customer_orders", "contct")
    assert "contact" in err.value.hint
    with pytest.raises(NotFoundError, match="mart_customer"):
        column_lineage(cat, "mart_customer", "contact_email")


def test_unknown_relations_are_named():
    top = model("top", "select x.a from some_schema.hand_written x", deps=[])
    lin = model_lineage(build([top]), "top")
    assert lin.columns["a"] == refs(("relation:some_schema.hand_written", "a"))


def test_propagation_within_some_nodes_equals_the_whole_catalogs_and_parses_only_their_ancestors():
    """suggest_features asks about a few joinable nodes: scoping to them and their ancestors gives
    the same origins (nearest first, same ties) as propagating over everything."""
    import random

    from benchmarks.catalog_bench import synthetic_artifacts

    manifest, catalog = synthetic_artifacts(n_models=120, n_sources=12, seed=3)
    full = propagate_tags(Catalog.from_dicts(manifest, catalog), "pii")
    assert sum(1 for k, v in full.items() if k != v) > 20  # PII spreads through many models
    rng = random.Random(5)
    models = sorted(manifest["nodes"])
    for within in ([models[-1]], rng.sample(models, 4), rng.sample(models, 12)):
        cat = Catalog.from_dicts(manifest, catalog)
        scope = cat.ancestors(within)
        scoped = propagate_tags(cat, "pii", within=within)
        assert scoped == {k: v for k, v in full.items() if k[0] in scope}
        assert set(cat._lineage._models) <= scope < set(cat.unique_ids())


def test_one_unresolvable_column_leaves_the_other_columns_their_lineage():
    """Snowflake lets a select use an alias defined earlier in it (a lateral column alias). With a
    parent whose columns are unknown, sqlglot cannot tell such an alias from that parent's column
    and gives up on the whole query; dwml falls back per column."""
    customers = source("customers", [col("id"), col("amount")])
    unknown = source("visits", [])  # no yml, no catalog.json: its columns are unknown
    sql = ("with a as (select c.id, c.amount * 2 as dbl, dbl + 1 as dbl1, v.channel "
           "from db.raw.customers c join db.raw.visits v on c.id = v.customer_id) "
           "select id, dbl, dbl1, channel, (select max(zzz) from db.raw.visits) as odd from a")
    top = model("top", sql, deps=["source.shop.raw.customers", "source.shop.raw.visits"])
    lin = model_lineage(build([top], [customers, unknown], adapter="snowflake"), "top")
    assert lin.unavailable is None, lin.unavailable
    assert lin.upstream("id") == refs(("source.shop.raw.customers", "id"))
    assert lin.upstream("dbl") == refs(("source.shop.raw.customers", "amount"))
    # the lateral alias resolves through the column it names
    assert lin.upstream("dbl1") == refs(("source.shop.raw.customers", "amount"))
    # (Snowflake folds unquoted names to upper case; the unknown parent has no yml name to map to)
    assert [(r.node_id, r.column.lower()) for r in lin.upstream("channel")] == [("source.shop.raw.visits", "channel")]
    assert "zzz" in lin.unresolved[next(k for k in lin.unresolved if k.lower() == "odd")].lower()


def test_a_column_whose_source_cannot_be_traced_is_unresolved_alone():
    customers = source("customers", [col("id"), col("amount")])
    unknown = source("visits", [])
    sql = ("with a as (select c.id, c.amount, mystery + 1 as guess from db.raw.customers c "
           "join db.raw.visits v on c.id = v.customer_id join db.raw.customers c2 on c2.id = c.id) "
           "select id, amount, guess from a")
    top = model("top", sql, deps=["source.shop.raw.customers", "source.shop.raw.visits"])
    lin = model_lineage(build([top], [customers, unknown], adapter="snowflake"), "top")
    assert lin.unavailable is None, lin.unavailable
    assert lin.upstream("amount") == refs(("source.shop.raw.customers", "amount"))
    assert any(k.lower() == "guess" for k in lin.unresolved)


def test_compiled_sql_is_parsed_in_the_dialect_of_the_adapter_that_compiled_it():
    events = source("events", [col("id"), col("v")])
    top = model("top", None, deps=["source.shop.raw.events"])
    cat = build([top], [events], adapter="duckdb")  # the manifest came from a DuckDB target
    cat.add_compiled_code({"model.shop.top": "select id, v:channel::string as channel from db.raw.events"},
                          adapter_type="snowflake")
    lin = model_lineage(cat, "top")
    assert lin.unavailable is None, lin.unavailable
    assert lin.upstream("channel") == refs(("source.shop.raw.events", "v"))


def test_downstream_names_the_children_whose_lineage_is_unknown(cat):
    uncompiled = model("uncompiled_child", None, deps=["model.shop.mart_customers"], columns=[col("x")])
    catalog = build([STG_CUSTOMERS, CUSTOMER_ORDERS, MART, uncompiled], [SRC_CUSTOMERS, SRC_ORDERS])
    result = downstream(catalog, "mart_customers", "ltv_x2")
    assert result.steps == [] and list(result.unavailable) == ["model.shop.uncompiled_child"]


def test_pii_names_are_origins_where_no_declared_pii_reaches():
    """A column whose name says PII (no meta, no tag) is PII, and so are the columns derived from
    it; a declared PII column upstream stays the origin of what derives from it."""
    src = source("people", [col("person_id"), col("social_security_number")])
    top = model("top", 'select person_id, right(social_security_number, 4) as ssn_tail from "db"."raw"."people"',
                deps=["source.shop.raw.people"])
    tagged = propagate_tags(build([top], [src]), "pii")
    origin = ("source.shop.raw.people", "social_security_number")
    assert tagged[origin] == origin and tagged[("model.shop.top", "ssn_tail")] == origin
