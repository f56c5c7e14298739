"""Where `dwml demo generate|run` runs: the checkout's demo/, an existing demo project, or an empty
folder it writes the demo into; never another project, never over an existing file."""

import pytest
import yaml

from dwml_py.demo.project_folder import demo_project_dir, packages_installed, write_demo_project
from dwml_py.errors import ConfigError
from dwml_py.package_files import DEMO_PROJECT_NAME, dbt_package_dir, dbt_project_name, demo_source_dir


def test_in_a_checkout_the_package_and_demo_are_found(repo_root, demo_dir):
    assert dbt_package_dir() == repo_root
    assert demo_source_dir() == demo_dir
    assert dbt_project_name(repo_root) == "dwml" and dbt_project_name(demo_dir) == DEMO_PROJECT_NAME


def test_from_the_checkout_root_or_inside_it_the_demo_folder_is_used(repo_root, demo_dir, monkeypatch):
    for where in (repo_root, repo_root / "macros", demo_dir / "models" / "features"):
        monkeypatch.chdir(where)
        assert demo_project_dir() == demo_dir
    assert demo_project_dir(project_dir=repo_root) == demo_dir
    assert demo_project_dir(directory=demo_dir) == demo_dir


def test_an_empty_folder_gets_the_demo_pointing_at_the_installed_package(tmp_path, monkeypatch, repo_root, demo_dir):
    monkeypatch.chdir(tmp_path)
    assert demo_project_dir() == tmp_path
    assert dbt_project_name(tmp_path) == DEMO_PROJECT_NAME
    assert yaml.safe_load((tmp_path / "packages.yml").read_text()) == {"packages": [{"local": str(repo_root)}]}
    shipped = sorted(str(p.relative_to(demo_dir)) for p in demo_dir.rglob("*.sql") if "target" not in p.parts
                     and "dbt_packages" not in p.parts)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.sql")) == shipped
    assert not (tmp_path / "dbt_packages").exists() and not packages_installed(tmp_path)
    # a second call finds the demo it wrote and writes nothing
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert demo_project_dir() == tmp_path
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before


def test_dir_is_created_when_missing(tmp_path):
    folder = tmp_path / "a" / "b"
    assert demo_project_dir(directory=folder) == folder.resolve()
    assert (folder / "models" / "features" / "customer_features.yml").is_file()


def test_another_dbt_project_is_never_written_into(tmp_path, monkeypatch):
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path / "models")
    with pytest.raises(ConfigError) as err:
        demo_project_dir()
    assert "'shop'" in err.value.message and "--dir" in err.value.hint
    with pytest.raises(ConfigError):
        demo_project_dir(directory=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbt_project.yml", "models"]


def test_an_existing_file_is_never_overwritten(tmp_path):
    (tmp_path / "profiles.yml").write_text("mine: {}\n")
    with pytest.raises(ConfigError) as err:
        write_demo_project(tmp_path)
    assert "profiles.yml" in err.value.message and "empty folder" in err.value.hint
    assert [p.name for p in tmp_path.iterdir()] == ["profiles.yml"]
    assert (tmp_path / "profiles.yml").read_text() == "mine: {}\n"


def test_packages_installed_follows_the_local_path(tmp_path, repo_root):
    write_demo_project(tmp_path)
    (tmp_path / "dbt_packages").mkdir()
    (tmp_path / "dbt_packages" / "dwml").symlink_to(tmp_path)  # a stale link to somewhere else
    assert not packages_installed(tmp_path)
    (tmp_path / "dbt_packages" / "dwml").unlink()
    (tmp_path / "dbt_packages" / "dwml").symlink_to(repo_root)
    assert packages_installed(tmp_path)
