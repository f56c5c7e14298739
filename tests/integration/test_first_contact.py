"""The first contact with a dbt project nobody here wrote (tests/user_project, a shop: its own model
names, no timestamp, NULL labels, few documented columns), as a new user makes it: `dbt deps`,
`dbt build` (or only `dbt parse`), then dwml. Every command runs in this process, as the CLI
does, with real dbt on a real DuckDB file.

- doctor names what keeps dbt from parsing (a package clash) and a manifest of another project;
- columns come from the warehouse, not from yml: `select`, `estimate`, `features suggest` see the
  undocumented columns; train reads no `dbt docs generate` and checks the spec before any dbt run;
- a model in the manifest but not built gets "run `dbt run --select X`";
- with a parse-only manifest and the warehouse file there, every command that may compile works
  (no clash between dwml's DuckDB connection and dbt's), compiles only the models it needs, and the
  next call runs no dbt at all;
- the quality gate runs only the dbt tests without a current result.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from tests.user_project.make_seeds import write_seeds

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Columns of customer_features its yml does not document: only the warehouse knows them.
UNDOCUMENTED = {"signup_channel", "country", "age", "orders_last_year", "spend_last_year", "avg_order_last_year",
                "returns_last_year"}


@pytest.fixture(scope="module")
def built_shop(tmp_path_factory) -> Path:
    """The shop copied, seeded, `dbt deps` and `dbt build` (which writes no catalog.json)."""
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.project import Project, copy_project

    base = tmp_path_factory.mktemp("first_contact")
    project_dir = copy_project(REPO_ROOT / "tests" / "user_project", base / "shop")
    write_seeds(project_dir)
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, project_dir)
        mp.setenv("DBT_LOG_PATH", str(base / "logs"))
        project = Project.locate(project_dir)
        assert run_dbt(project, ["deps"]).success
        built = run_dbt(project, ["build"])
        assert built.success, built.to_dict()
    assert not (project_dir / "target" / "catalog.json").exists()
    return project_dir


def _point_at(mp, project_dir: Path) -> None:
    mp.setenv("SHOP_DUCKDB_PATH", str(project_dir / "shop.duckdb"))
    mp.delenv("DBT_TARGET_PATH", raising=False)  # the project's own target/, as a user has it
    mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    mp.chdir(project_dir)


@pytest.fixture
def shop(built_shop, tmp_path, monkeypatch) -> Path:
    """A copy of the built shop (project, target/, warehouse file) for one test to change."""
    copy = tmp_path / "shop"
    shutil.copytree(built_shop, copy, symlinks=True)
    _point_at(monkeypatch, copy)
    return copy


@pytest.fixture
def dbt_calls(monkeypatch) -> list[list[str]]:
    """Every dbt command run in this process (they still run: this only records them)."""
    from dbt.cli.main import dbtRunner

    calls: list[list[str]] = []
    invoke = dbtRunner.invoke

    def recording(self, args, **kwargs):
        calls.append(list(args))
        return invoke(self, args, **kwargs)

    monkeypatch.setattr(dbtRunner, "invoke", recording)
    return calls


def selected(call: list[str]) -> set[str]:
    """What a recorded dbt command selected."""
    start = call.index("--select") + 1
    end = next((i for i in range(start, len(call)) if call[i].startswith("--")), len(call))
    return set(call[start:end])


def dwml(*args, code: int = 0):
    from dwml_py.cli import app

    result = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, f"dwml {' '.join(args)} -> {result.exit_code}\n{result.output[-3000:]}"
    return json.loads(result.stdout)


def dbt(*args) -> None:
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.project import Project

    run = run_dbt(Project.locate(Path.cwd()), list(args))
    assert run.success, run.to_dict()


def edit_yml(shop: Path, change) -> None:
    path = shop / "models" / "ml" / "customer_features.yml"
    doc = yaml.safe_load(path.read_text())
    change(doc["models"][0])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


# -- 2. doctor ----------------------------------------------------------------------------------

def test_doctor_names_a_package_that_clashes_with_the_projects_model(shop, tmp_path):
    """A package whose (disabled) model has a yml entry named like one of the project's models
    keeps dbt from parsing: doctor says so by name, instead of "ok" everywhere."""
    package = tmp_path / "their_package"
    (package / "models").mkdir(parents=True)
    (package / "dbt_project.yml").write_text("name: their_package\nversion: '1.0.0'\nconfig-version: 2\n"
                                             "models:\n  their_package:\n    +enabled: false\n")
    (package / "models" / "stg_customers.sql").write_text("select 1 as customer_id")
    (package / "models" / "stg_customers.yml").write_text(
        "version: 2\nmodels:\n  - name: stg_customers\n    description: theirs\n")
    packages = yaml.safe_load((shop / "packages.yml").read_text())
    packages["packages"].append({"local": str(package)})
    (shop / "packages.yml").write_text(yaml.safe_dump(packages))
    dbt("deps")

    report = dwml("doctor", code=1)
    checks = {c["name"]: c for c in report["checks"]}
    parse = checks["dbt parse"]
    assert parse["status"] == "fail"
    assert "stg_customers" in parse["detail"] and "'their_package'" in parse["detail"]
    assert "rename your model" in parse["fix"]
    assert checks["warehouse"]["status"] == "ok"


def test_doctor_refuses_a_manifest_of_another_project(shop):
    manifest = json.loads((shop / "target" / "manifest.json").read_text())
    manifest["metadata"]["project_name"] = "jaffle_shop"
    (shop / "target" / "manifest.json").write_text(json.dumps(manifest))
    report = dwml("doctor", code=1)
    check = next(c for c in report["checks"] if c["name"] == "dbt manifest")
    assert check["status"] == "fail" and "'jaffle_shop'" in check["detail"] and "dbt parse" in check["fix"]
    # and every command refuses it, with the same fix
    error = dwml("catalog", "show", "customers", code=1)
    assert "'jaffle_shop'" in error["message"] and "dbt parse" in error["hint"]


# -- 3. columns from the warehouse, input checked first -----------------------------------------

def test_select_estimate_and_suggest_see_the_columns_the_yml_does_not_document(shop, dbt_calls):
    chosen = dwml("select", "churn")
    assert chosen["ranking"] and chosen["characteristics"]["columns"] == len(UNDOCUMENTED)  # every feature undocumented
    estimate = dwml("estimate", "churn", "--algorithm", "logistic")
    assert estimate["predicted_seconds"] > 0
    suggested = dwml("features", "suggest", "--target-column", "customer_features.churned")
    seen = {c["column"] for c in suggested["candidates"] + suggested["excluded"] if c["model"] == "customer_features"}
    assert UNDOCUMENTED <= seen
    spend = next(c for c in suggested["candidates"] + suggested["excluded"]
                 if c["ref"] == "customer_features.spend_last_year")
    assert spend["type"] and spend["type"].upper() in ("DOUBLE", "DECIMAL(38,2)", "HUGEINT") or spend["kind"] == "numeric"
    assert not any("could not" in n for n in suggested["notes"])
    # the spend model's label (`label: next_year_spend`) is an outcome, never a churn feature
    leak = next(c for c in suggested["excluded"] if c["ref"] == "customer_features.next_year_spend")
    assert any(f["flag"] == "LEAKAGE" and "label declared" in f["reason"] for f in leak["flags"])
    assert dbt_calls == []  # `dbt build` wrote compiled SQL for every model: nothing to compile


def test_train_reads_no_docs_generate_and_reuses_the_build_s_test_results(shop, dbt_calls):
    started = time.process_time()
    trained = dwml("train", "churn", "--param", "n_estimators=20")
    assert trained["version"] == 1 and UNDOCUMENTED & set(trained["features"])
    assert dbt_calls == [], dbt_calls  # the catalog from the warehouse, the tests from run_results.json
    assert not (shop / "target" / "catalog.json").exists()
    print(f"train churn: {time.process_time() - started:.1f} CPU s in this process")


def test_train_checks_the_spec_before_any_dbt_command(shop, dbt_calls):
    edit_yml(shop, lambda model: model["config"]["meta"]["dwml"].pop("entity"))
    dbt("parse")  # the yml changed: a current manifest, with no compiled SQL and no catalog.json
    dbt_calls.clear()
    started = time.perf_counter()
    error = dwml("train", "churn", code=1)
    assert "declares no entity key" in error["message"]
    assert dbt_calls == [] and time.perf_counter() - started < 30
    suggest = dwml("features", "suggest", "--target-column", "customer_features.churned", code=1)
    assert "No entity key" in suggest["message"]
    assert dbt_calls == []


def test_a_model_in_the_manifest_but_not_built_names_the_dbt_command(shop, dbt_calls):
    (shop / "models" / "ml" / "customer_features_v2.sql").write_text("select * from {{ ref('customer_features') }}")
    (shop / "models" / "ml" / "customer_features_v2.yml").write_text(yaml.safe_dump({"version": 2, "models": [{
        "name": "customer_features_v2", "description": "Next version.", "config": {"meta": {"owner": "shop", "dwml": {
            "entity": "customer_id", "models": {"churn_v2": {"task": "classification", "label": "churned"}}}}},
        "columns": [{"name": "customer_id"}, {"name": "churned"}]}]}))
    dbt("parse")
    for args in (("select", "churn_v2"), ("estimate", "churn_v2"), ("train", "churn_v2"),
                 ("features", "suggest", "--target-column", "customer_features_v2.churned")):
        error = dwml(*args, code=1)
        assert "not built" in error["message"] and "customer_features_v2" in error["message"], args
        assert "dbt run --select customer_features_v2" in error["hint"], args
        assert "dwml bug" not in error["hint"]
    assert [c for c in dbt_calls if c[0] != "parse"] == []  # all refused before any dbt command


# -- 4. dbt only when needed, and never against dwml's connection -------------------------------

@pytest.mark.parametrize("command", [
    ("catalog", "lineage", "customer_features.spend_last_year"),
    ("features", "suggest", "--target-column", "customer_features.churned"),
    ("features", "pipeline", "churn_pipeline", "--target-column", "customer_features.churned",
     "--columns", "customers.orders"),
    ("governance", "customer_features", "--column", "spend_last_year"),
    ("check", "customer_features"),
    ("train", "churn", "--param", "n_estimators=20"),
], ids=lambda c: "-".join(c[:2]))
def test_a_parse_only_manifest_with_the_warehouse_file_there(shop, dbt_calls, command):
    """After `dbt parse` the manifest has no compiled SQL; the warehouse file exists and dwml holds
    a connection to it when dbt must run (compile for lineage, test for the gate)."""
    dbt("parse")
    dbt_calls.clear()
    result = dwml(*command)
    notes = " ".join(result.get("notes") or [])
    assert "Connection" not in notes and "could not" not in notes, notes
    assert dbt_calls, "this command has something to compile or test"
    if command[0] == "features" and command[1] == "suggest":
        seen = {c["column"] for c in result["candidates"] + result["excluded"] if c["model"] == "customer_features"}
        assert UNDOCUMENTED <= seen  # undocumented columns are not dropped after dbt ran


def test_deploy_on_a_parse_only_manifest(shop, dbt_calls):
    """deploy re-runs the governance gate, whose lineage route compiles what the manifest lacks
    while deploy holds its warehouse connection."""
    dwml("train", "churn", "--param", "n_estimators=20")
    dbt("parse")
    dbt_calls.clear()
    deployed = dwml("deploy", "churn", "--version", "1")
    assert deployed["governance"]["decision"] == "pass" and deployed["alias"] == "production"
    assert [c[0] for c in dbt_calls] == ["compile"]


def test_lineage_compiles_only_the_ancestors_and_the_next_call_runs_no_dbt(shop, dbt_calls):
    dbt("parse")
    dbt_calls.clear()
    first = dwml("catalog", "lineage", "customers.orders")
    assert [c[0] for c in dbt_calls] == ["compile"]
    compiled = selected(dbt_calls[0])
    assert compiled == {"customers", "stg_customers", "stg_orders"}  # not its children, not the rest
    assert {r["name"] for r in first["upstream"]} >= {"stg_orders"}
    # its children were not compiled: downstream is unknown, not none
    assert set(first["downstream_unknown"]) == {"model.shop.customer_features", "model.shop.churn_scores"}

    dbt_calls.clear()
    again = dwml("catalog", "lineage", "customers.orders")
    assert dbt_calls == [] and again["upstream"] == first["upstream"]


def test_suggestions_compile_only_what_leakage_needs_and_the_next_call_runs_no_dbt(shop, dbt_calls):
    dbt("parse")
    dbt_calls.clear()
    first = dwml("features", "suggest", "--target-column", "customer_features.churned")
    assert [c[0] for c in dbt_calls] == ["compile"]
    compiled = selected(dbt_calls[0])
    assert "dwml_runs" not in compiled and "customer_features" in compiled  # dwml's own models are no candidates
    dbt_calls.clear()
    again = dwml("features", "suggest", "--target-column", "customer_features.churned")
    assert dbt_calls == []
    assert [c["ref"] for c in again["candidates"]] == [c["ref"] for c in first["candidates"]]


def test_the_quality_gate_runs_only_the_tests_without_a_current_result(shop, dbt_calls):
    dbt("test", "--select", "stg_orders")  # run_results.json now holds those tests only
    dbt_calls.clear()
    gate = dwml("check", "customer_features")
    assert gate["passed"]
    assert [c[0] for c in dbt_calls] == ["test"]
    tested = selected(dbt_calls[0])
    assert tested and not {"unique_stg_orders_order_id", "not_null_stg_orders_order_id"} & tested
    assert {"unique_customer_features_customer_id", "not_null_customer_features_customer_id"} <= tested
    tests = gate["dbt_tests"]
    assert tests["source"] == "run_results + dbt test" and tests["reused"] == 2 and tests["ran"] == len(tested)

    dbt_calls.clear()
    assert dwml("check", "customer_features")["dbt_tests"]["source"] == "run_results"  # all current now
    assert dbt_calls == []
