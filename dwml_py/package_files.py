"""Where dwml's dbt package and its demo project are on disk.

dwml is two things: this Python package and a dbt package (dbt_project.yml, macros/, models/dwml)
that projects install through packages.yml; the demo is a third, its own dbt project installing
the dbt package. In a checkout they sit at its root (the demo in demo/); an installed wheel carries
them as package data under dwml_py/dbt_package/, laid out the same way.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dwml_py.errors import ConfigError

DBT_PACKAGE_NAME = "dwml"
# The name on the package index (`pip install dwml-dbt`): `dwml` there is an unrelated project.
DISTRIBUTION = "dwml-dbt"
DEMO_PROJECT_NAME = "dwml_demo"

_HERE = Path(__file__).resolve().parent


def dbt_project_name(directory: Path) -> str | None:
    """The `name:` in directory/dbt_project.yml, or None when there is no readable one."""
    try:
        config = yaml.safe_load((directory / "dbt_project.yml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return str(config.get("name")) if isinstance(config, dict) and config.get("name") else None


def is_dbt_package(directory: Path) -> bool:
    """Whether `directory` is dwml's own dbt package (a checkout's root or the wheel's copy)."""
    return dbt_project_name(directory) == DBT_PACKAGE_NAME and (directory / "macros").is_dir()


def dbt_package_dir() -> Path:
    """The folder holding dwml's dbt_project.yml: the wheel's package data, else the checkout's root."""
    for candidate in (_HERE / "dbt_package", _HERE.parent):
        if is_dbt_package(candidate):
            return candidate
    raise ConfigError(f"dwml's dbt package is missing from this installation (looked in {str(_HERE / 'dbt_package')!r} "
                      f"and {str(_HERE.parent)!r}).",
                      hint=f"reinstall dwml from a wheel or a checkout (pip install --force-reinstall {DISTRIBUTION}).")


def demo_source_dir() -> Path:
    """The demo project as shipped (never run in place inside an installed package)."""
    return dbt_package_dir() / "demo"
