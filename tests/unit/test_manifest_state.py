"""Is target/manifest.json current? The project's own files, packages.yml and the sources of the
packages installed in dbt_packages/ all count; and a manifest of another project is refused."""

from __future__ import annotations

import json
import os
import time

import pytest

from dwml_py.errors import ConfigError
from dwml_py.manifest_state import manifest_state, read_manifest
from dwml_py.project import Project

MANIFEST_URL = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def _age(*paths, seconds=3600):
    old = time.time() - seconds
    for path in paths:
        os.utime(path, (old, old))


@pytest.fixture
def shop(tmp_path):
    """A project `shop` with one model and a package installed as dbt deps does for a local path (a link)."""
    package = tmp_path / "their_package"
    (package / "models" / "staging").mkdir(parents=True)
    (package / "macros").mkdir()
    (package / "dbt_project.yml").write_text("name: their_package\nmodel-paths: [models]\n")
    (package / "models" / "staging" / "stg_things.sql").write_text("select 1 as id")
    (package / "macros" / "helper.sql").write_text("{% macro helper() %}1{% endmacro %}")
    (package / "notes.txt").write_text("not a dbt source")

    root = tmp_path / "shop"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (root / "packages.yml").write_text(f"packages:\n  - local: {package}\n")
    (root / "models" / "orders.sql").write_text("select 1 as id")
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "their_package").symlink_to(package, target_is_directory=True)
    project = Project(project_dir=root)
    project.target_dir.mkdir()
    project.manifest_path.write_text(json.dumps({"metadata": {"dbt_schema_version": MANIFEST_URL,
                                                              "project_name": "shop"}, "nodes": {}, "sources": {}}))
    _age(*(p for p in [*root.rglob("*"), *package.rglob("*")] if p.is_file()), root / "dbt_project.yml")
    os.utime(project.manifest_path)  # written after every source
    return project, package


def test_a_manifest_newer_than_every_source_is_current(shop):
    project, _ = shop
    assert not manifest_state(project).stale


def test_a_changed_model_of_an_installed_package_makes_the_manifest_stale(shop):
    project, package = shop
    changed = package / "models" / "staging" / "stg_things.sql"
    changed.write_text("select 2 as id")
    state = manifest_state(project)
    assert state.stale
    assert state.newest_source.resolve() == changed.resolve()


def test_a_changed_macro_of_an_installed_package_makes_the_manifest_stale(shop):
    project, package = shop
    (package / "macros" / "helper.sql").write_text("{% macro helper() %}2{% endmacro %}")
    assert manifest_state(project).stale


def test_files_that_are_no_dbt_sources_do_not_count(shop):
    project, package = shop
    (package / "notes.txt").write_text("edited")
    assert not manifest_state(project).stale


def test_a_changed_packages_yml_makes_the_manifest_stale(shop):
    project, _ = shop
    (project.project_dir / "packages.yml").write_text("packages: []\n")
    state = manifest_state(project)
    assert state.stale and state.newest_source.name == "packages.yml"


def test_a_manifest_of_another_project_is_refused_with_the_fix(shop, monkeypatch):
    project, _ = shop
    project.manifest_path.write_text(json.dumps({"metadata": {"dbt_schema_version": MANIFEST_URL,
                                                              "project_name": "jaffle_shop"},
                                                 "nodes": {}, "sources": {}}))
    with pytest.raises(ConfigError) as err:
        read_manifest(project)
    assert "'jaffle_shop'" in err.value.message and "'shop'" in err.value.message
    assert str(project.manifest_path) in err.value.message
    assert "dbt parse" in err.value.hint


def test_the_fix_names_dbt_target_path_when_it_points_elsewhere(shop, monkeypatch, tmp_path):
    project, _ = shop
    elsewhere = tmp_path / "other_target"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_text(json.dumps({"metadata": {"dbt_schema_version": MANIFEST_URL,
                                                                      "project_name": "jaffle_shop"},
                                                         "nodes": {}, "sources": {}}))
    monkeypatch.setenv("DBT_TARGET_PATH", str(elsewhere))
    with pytest.raises(ConfigError) as err:
        read_manifest(project)
    assert "DBT_TARGET_PATH" in err.value.hint
