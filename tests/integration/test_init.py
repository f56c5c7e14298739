"""`dwml init` in a user's own dbt project (a copy of tests/user_project before it had dwml): the
files it touches, and nothing else; additions only; a second run changes nothing; real `dbt deps`
(from the local package, and from a git repository pinned to the installed version's tag) and a
real `dwml doctor`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dwml_py import __version__
from dwml_py.cli import app
from dwml_py.package_files import dbt_package_dir
from dwml_py.project import copy_project
from tests.conftest import REPO_ROOT
from tests.user_project.make_seeds import write_seeds

pytestmark = [pytest.mark.integration]

GITIGNORE = "target/\ndbt_packages/\nlogs"  # a typical dbt project's, without a newline at the end
# What `dbt deps` writes; everything else that changes is `dwml init`'s doing.
DBT_DEPS_OUTPUTS = ("dbt_packages", "package-lock.yml")


def invoke(*args) -> tuple[int, str]:
    """The exit code, and stdout (with --json) or everything printed (errors go to stderr)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout if "--json" in args else result.output


@pytest.fixture
def shop(tmp_path, monkeypatch) -> Path:
    """The shop's project as it was before dwml: no packages.yml, its own .gitignore, its seeds."""
    project = copy_project(REPO_ROOT / "tests" / "user_project", tmp_path / "shop")
    (project / "packages.yml").unlink()
    (project / ".gitignore").write_text(GITIGNORE)
    write_seeds(project, customers=50)
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "shop.duckdb"))
    monkeypatch.chdir(project)  # where a user runs it: dbt and dwml read its profiles.yml
    return project


def snapshot(project: Path) -> dict[str, bytes]:
    """Every file of the project by its path, not following links (dbt deps links local packages)."""
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] in DBT_DEPS_OUTPUTS or not path.is_file() or any(p.is_symlink() for p in
                                                                              [path, *path.parents]):
            continue
        files[str(relative)] = path.read_bytes()
    return files


def test_init_adds_dwml_to_a_project_and_only_adds(shop):
    before = snapshot(shop)
    code, out = invoke("init", "--model", "stg_customers", "--project-dir", str(shop), "--json")
    assert code == 0, out
    result = json.loads(out)
    changes = {c["file"]: c["action"] for c in result["changes"]}
    assert changes == {"packages.yml": "created", ".gitignore": "appended", "models/staging/_staging.yml": "inserted"}

    after = snapshot(shop)
    touched = {path for path in after if before.get(path) != after[path]}
    assert touched == set(changes), "init touches exactly the files it reports"
    for path in touched - {"packages.yml"}:
        old, new = before[path].decode().splitlines(), after[path].decode().splitlines()
        kept = iter(new)
        assert all(line in kept for line in old), f"{path}: a line that was there was changed or removed"

    assert yaml.safe_load(after["packages.yml"]) == {"packages": [{"local": str(dbt_package_dir())}]}
    assert after[".gitignore"].decode() == GITIGNORE + "\n# written by dwml (dwml init)\nartifacts/\n"
    staging = yaml.safe_load(after["models/staging/_staging.yml"])
    assert staging == yaml.safe_load(before["models/staging/_staging.yml"]), "the example is comments only"
    assert "# dwml init: the ML spec of stg_customers." in after["models/staging/_staging.yml"].decode()

    assert result["deps"]["ok"] and (shop / "dbt_packages" / "dwml" / "dbt_project.yml").is_file()
    checks = {c["name"]: c for c in result["doctor"]["checks"]}
    assert checks["dwml dbt package"]["status"] == "ok" and __version__ in checks["dwml dbt package"]["detail"]
    assert checks["dbt project"]["status"] == "ok" and result["ok"]

    # a second run changes nothing, and says so
    code, out = invoke("init", "--model", "stg_customers", "--project-dir", str(shop))
    assert code == 0, out
    assert snapshot(shop) == after
    assert out.count("unchanged") == 3 and "already lists dwml" in out and "earlier `dwml init`" in out


def test_a_refused_init_writes_nothing(shop):
    before = snapshot(shop)
    code, out = invoke("init", "--model", "customer_feature", "--project-dir", str(shop))
    assert code == 1
    assert "No model named 'customer_feature'" in out and "customer_features" in out and "Traceback" not in out
    code, out = invoke("init", "--revision", "v1", "--project-dir", str(shop))
    assert code == 1 and "--git" in out
    assert snapshot(shop) == before and not (shop / "dbt_packages").exists()

    # a packages.yml that an entry cannot be appended to: refused before anything is written
    (shop / "packages.yml").write_text("packages: [{package: dbt-labs/dbt_utils, version: 1.3.0}]\n")
    before = snapshot(shop)
    code, out = invoke("init", "--model", "stg_customers", "--project-dir", str(shop))
    assert code == 1 and "cannot add its entry" in out and "by hand" in out
    assert snapshot(shop) == before


def test_init_refuses_dwmls_own_package(tmp_path):
    code, out = invoke("init", "--project-dir", str(REPO_ROOT))
    assert code == 1 and "dwml's own dbt package" in out


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_init_pins_a_git_install_to_the_installed_versions_tag(shop, tmp_path):
    """A team that installs dwml's dbt package from git (here a repository on disk that keeps the
    package in a subfolder): `--git` pins the tag of the installed version, and dbt deps installs it."""
    repository = tmp_path / "dwml-repo"
    package = repository / "dbt"
    package.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dbt_project.yml", package / "dbt_project.yml")
    shutil.copytree(REPO_ROOT / "macros", package / "macros")
    shutil.copytree(REPO_ROOT / "models" / "dwml", package / "models" / "dwml")
    git = ["git", "-C", str(repository), "-c", "user.name=dwml", "-c", "user.email=dwml@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "dwml"], ["tag", f"v{__version__}"]):
        subprocess.run([*git, *args], check=True, capture_output=True)

    code, out = invoke("init", "--git", f"file://{repository}", "--subdirectory", "dbt", "--project-dir", str(shop),
                       "--json")
    assert code == 0, out
    result = json.loads(out)
    assert yaml.safe_load((shop / "packages.yml").read_text()) == {"packages": [
        {"git": f"file://{repository}", "revision": f"v{__version__}", "subdirectory": "dbt"}]}
    assert result["deps"]["ok"]
    installed = shop / "dbt_packages" / "dwml"
    assert (installed / "macros" / "scoring" / "dwml_predict.sql").is_file() and not installed.is_symlink()
    check = {c["name"]: c for c in result["doctor"]["checks"]}["dwml dbt package"]
    assert check["status"] == "ok", check
