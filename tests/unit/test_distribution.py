"""What a user installs: the distribution's name (not `dwml`, an unrelated project on the package
index), one version for the Python and the dbt package, the dbt versions both admit, and the wheel's
contents as pyproject.toml declares them (the release check, .ci/release_check.py, builds the wheel
and checks the real file list)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

from dwml_py import __version__
from dwml_py.doctor import REQUIRED_PACKAGES
from dwml_py.package_files import DISTRIBUTION
from tests.conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
# `pip install dwml`, `pip install 'dwml[mcp]'`, `pip install -U "dwml"`: the other project
BARE_INSTALL = re.compile(r"""pip3?\s+install\s+(?:-{1,2}[\w-]+\s+)*['"]?dwml(?![\w-])""")


def _text_files() -> list[Path]:
    return [REPO_ROOT / "README.md", REPO_ROOT / "pyproject.toml", REPO_ROOT / ".ci" / "run",
            *sorted((REPO_ROOT / "docs").rglob("*.md")), *sorted((REPO_ROOT / "dwml_py").rglob("*.py")),
            *sorted((REPO_ROOT / "demo").glob("*.yml"))]  # the demo's profiles.yml says how to install extras


def test_the_distribution_is_not_the_other_projects_dwml():
    assert PYPROJECT["project"]["name"] == DISTRIBUTION == "dwml-dbt"
    assert PYPROJECT["project"]["scripts"] == {"dwml": "dwml_py.entry:main"}  # the command keeps its name


def test_no_install_line_names_the_bare_dwml():
    found = [f"{path.relative_to(REPO_ROOT)}: {match.group(0)}" for path in _text_files()
             for match in BARE_INSTALL.finditer(path.read_text())]
    assert not found, f"these would install the unrelated `dwml` from the package index: {found}"
    assert BARE_INSTALL.search("pip install 'dwml[mcp]'") and BARE_INSTALL.search("pip install -U dwml")
    assert not BARE_INSTALL.search('pip install "dwml-dbt[serve]"') and not BARE_INSTALL.search("pip install -e .")


def test_readme_installs_the_extras_by_the_distributions_name():
    readme = (REPO_ROOT / "README.md").read_text()
    for extra in ("serve", "mcp"):
        assert f"dwml-dbt[{extra}]" in readme


def test_the_python_and_the_dbt_package_have_one_version():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert SETUPTOOLS["dynamic"]["version"] == {"attr": "dwml_py.versions.__version__"}
    package = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    assert str(package["version"]) == __version__


def test_dbt_1_11_and_1_12_are_admitted_alike():
    package = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    assert package["require-dbt-version"] == [">=1.11.0", "<1.13.0"]
    assert REQUIRED_PACKAGES["dbt-core"] == ("1.11", "1.13")


def test_every_python_package_is_in_the_wheel():
    packages = {".".join(p.parent.relative_to(REPO_ROOT).parts) for p in (REPO_ROOT / "dwml_py").rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == packages | {"dwml_py.dbt_package"}
    assert SETUPTOOLS["package-dir"] == {"dwml_py.dbt_package": "."}
    assert SETUPTOOLS["include-package-data"] is False  # only the globs below: never the demo's outputs


def _tracked(*paths: str) -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "--", *paths], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the release check compares the built wheel instead")
    return [p for p in listed if p.endswith((".yml", ".sql", ".md"))]


def test_the_package_data_globs_take_every_tracked_file_of_the_dbt_package_and_demo():
    globs = SETUPTOOLS["package-data"]["dwml_py.dbt_package"]
    tracked = _tracked("dbt_project.yml", "macros", "models/dwml", "demo")
    assert "demo/dbt_project.yml" in tracked and "macros/scoring/dwml_predict.sql" in tracked
    missed = [path for path in tracked if not any(_glob_matches(path, glob) for glob in globs)]
    assert not missed, f"pyproject.toml's package-data leaves these out of the wheel: {missed}"
    generated = ["demo/target/manifest.json", "demo/target/compiled/dwml_demo/models/a.sql", "demo/logs/dbt.log",
                 "demo/dbt_packages/dwml/dbt_project.yml", "demo/warehouse.duckdb", "demo/package-lock.yml",
                 "demo/artifacts/churn/model.json", "models/other/x.sql", "tests/user_project/dbt_project.yml"]
    assert not [path for path in generated if any(_glob_matches(path, glob) for glob in globs)]


def _glob_matches(path: str, glob: str) -> bool:
    """setuptools' package-data glob: `**` is any number of folders, `*` stays within one."""
    pattern = re.escape(glob).replace(r"\*\*/", "(?:[^/]+/)*").replace(r"\*", "[^/]*")
    return re.fullmatch(pattern, path) is not None and fnmatch.fnmatch(Path(path).name, Path(glob).name)


def test_dwml_version_answers_before_the_cli_is_built():
    """`dwml --version` costs a Python start and one small module: typer, rich and the tool
    registry (what building the CLI imports) are never imported for it."""
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['dwml', '--version']; from dwml_py.entry import main; main(); "
            "heavy = sorted(m for m in ('typer', 'rich', 'duckdb', 'pyarrow', 'sqlglot', 'dwml_py.tools.registry') "
            "if m in sys.modules); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.splitlines() == [f"dwml {__version__}", "[]"]
