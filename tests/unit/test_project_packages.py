"""dwml's dbt package as a project declares and installs it, and the doctor's version check: real
packages.yml files and real dbt_packages/ folders, without running dbt."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dwml_py import __version__
from dwml_py.doctor import dbt_package_check
from dwml_py.errors import ConfigError
from dwml_py.package_files import dbt_package_dir
from dwml_py.project_packages import append_entry, declared_dwml, dwml_entry, installed_dwml, release_tag
from tests.conftest import REPO_ROOT

NOTE = "dwml's dbt package (added by `dwml init`)"


def _project(tmp_path: Path, packages: str | None = None, **files: str) -> Path:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nprofile: shop\n")
    if packages is not None:
        (project / "packages.yml").write_text(packages)
    for name, text in files.items():
        (project / name).write_text(text)
    return project


def _installed(project: Path, version: str, folder: str = "dbt_packages/dwml") -> Path:
    path = project / folder
    path.mkdir(parents=True)
    (path / "dbt_project.yml").write_text(f"name: dwml\nversion: \"{version}\"\n")
    (path / "macros").mkdir()
    return path


@pytest.mark.parametrize("before", [
    "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n",
    "packages:\n- package: dbt-labs/dbt_utils\n  version: 1.3.0\n",           # an indentless list
    "# our packages\npackages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n\n# end\n",
    "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0",           # no newline at the end
    "packages:\n",
    "# nothing yet\n",
])
def test_the_entry_is_added_after_what_is_there(tmp_path, before):
    project = _project(tmp_path, before)
    append_entry(project, dwml_entry(local=REPO_ROOT), NOTE)
    after = (project / "packages.yml").read_text()
    assert after.startswith(before), "what was there is kept as it was"
    entries = yaml.safe_load(after)["packages"]
    assert entries[-1] == {"local": str(REPO_ROOT)}
    assert entries[:-1] == ((yaml.safe_load(before) or {}).get("packages") or [])
    assert f"# {NOTE}" in after
    assert declared_dwml(project).describe() == f"local: {REPO_ROOT}"


def test_a_missing_packages_file_is_written(tmp_path):
    project = _project(tmp_path)
    append_entry(project, dwml_entry(git="https://example.com/acme/dwml.git"), NOTE)
    assert yaml.safe_load((project / "packages.yml").read_text()) == {
        "packages": [{"git": "https://example.com/acme/dwml.git", "revision": release_tag()}]}
    assert release_tag() == f"v{__version__}"


def test_dependencies_yml_is_used_when_it_holds_the_packages(tmp_path):
    project = _project(tmp_path, **{"dependencies.yml": "projects:\n  - name: core\npackages:\n  - local: ../x\n"})
    path = append_entry(project, dwml_entry(git="git@example.com:acme/dwml.git", revision="abc123",
                                            subdirectory="dbt"), NOTE)
    assert path.name == "dependencies.yml" and not (project / "packages.yml").exists()
    assert yaml.safe_load(path.read_text())["packages"][-1] == {
        "git": "git@example.com:acme/dwml.git", "revision": "abc123", "subdirectory": "dbt"}
    assert declared_dwml(project).source == "git"


@pytest.mark.parametrize("before", ["packages: [{package: dbt-labs/dbt_utils, version: 1.3.0}]\n",
                                    "packages:\n  - local: ../x\nextra: 1\n"])
def test_a_file_the_entry_cannot_be_appended_to_is_refused_unchanged(tmp_path, before):
    project = _project(tmp_path, before)
    with pytest.raises(ConfigError, match="cannot add its entry") as caught:
        append_entry(project, dwml_entry(local=REPO_ROOT), NOTE)
    assert "by hand" in caught.value.hint
    assert (project / "packages.yml").read_text() == before


@pytest.mark.parametrize("entry, is_dwml", [
    ({"git": "https://github.com/acme/dwml.git", "revision": "v0.1.0"}, True),
    ({"git": "git@github.com:acme/dwml-fork", "revision": "main"}, True),
    ({"git": "https://github.com/dbt-labs/dbt-utils.git", "revision": "1.3.0"}, False),
    ({"package": "dbt-labs/dbt_utils", "version": "1.3.0"}, False),
    ({"local": "../elsewhere"}, False),
])
def test_dwml_is_recognised_by_what_an_entry_points_at(tmp_path, entry, is_dwml):
    project = _project(tmp_path, yaml.safe_dump({"packages": [entry]}))
    assert (declared_dwml(project) is not None) == is_dwml


def test_a_local_entry_is_dwml_when_its_folder_is_dwmls_package(tmp_path):
    project = _project(tmp_path, f"packages:\n  - local: {REPO_ROOT}\n")
    assert declared_dwml(project).entry == {"local": str(REPO_ROOT)}


def test_doctor_names_a_project_without_dwmls_package(tmp_path):
    check = dbt_package_check(_project(tmp_path))
    assert check.status == "warn" and "does not install" in check.detail and "dwml init" in check.fix


def test_doctor_names_a_declared_package_that_is_not_installed(tmp_path):
    check = dbt_package_check(_project(tmp_path, f"packages:\n  - local: {REPO_ROOT}\n"))
    assert check.status == "warn" and "not installed" in check.detail and check.fix == "run `dbt deps`"


def test_doctor_is_content_with_the_same_version(tmp_path):
    project = _project(tmp_path, f"packages:\n  - local: {REPO_ROOT}\n")
    _installed(project, __version__)
    check = dbt_package_check(project)
    assert check.status == "ok" and __version__ in check.detail


def test_doctor_names_a_git_pinned_package_of_another_version_and_the_fix(tmp_path):
    project = _project(tmp_path, "packages:\n  - git: https://example.com/acme/dwml.git\n    revision: v0.0.9\n")
    _installed(project, "0.0.9")
    check = dbt_package_check(project)
    assert check.status == "fail"
    assert "0.0.9" in check.detail and __version__ in check.detail and "revision v0.0.9" in check.detail
    assert f"revision: v{__version__}" in check.fix and 'pip install "dwml-dbt==0.0.9"' in check.fix


def test_doctor_points_a_stale_local_package_at_the_installed_one(tmp_path):
    old = _installed(tmp_path, "0.0.9", folder="old_dwml")
    project = _project(tmp_path, f"packages:\n  - local: {old}\n",
                       **{"dbt_project.yml": "name: shop\nprofile: shop\npackages-install-path: vendor\n"})
    _installed(project, "0.0.9", folder="vendor/dwml")
    assert installed_dwml(project) == project / "vendor" / "dwml"
    check = dbt_package_check(project)
    assert check.status == "fail" and "vendor/dwml" in check.detail
    assert str(dbt_package_dir()) in check.fix and "dbt deps" in check.fix
