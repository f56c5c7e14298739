"""Which folder the demo runs in, writing the demo project there first when needed.

The demo is its own dbt project (name `dwml_demo`) that installs dwml's dbt package by a local
path. From a dwml checkout, `dwml demo run` uses the checkout's demo/ folder in place; anywhere
else it writes the demo project into the working folder (or `--dir`) and runs it there, so an
installed wheel needs no checkout. It never writes into a folder that holds another dbt project,
and never over a file that is already there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import yaml

from dwml_py.errors import ConfigError
from dwml_py.package_files import DEMO_PROJECT_NAME, dbt_project_name, demo_source_dir, is_dbt_package
from dwml_py.project import find_project_dir

# What belongs to the demo project; everything else in its folder (target/, logs/, dbt_packages/,
# the warehouse file, artifacts/) is written by running it.
PROJECT_SUFFIXES = (".yml", ".sql", ".md")
GENERATED_DIRS = ("target", "logs", "dbt_packages", "artifacts")
GENERATED_FILES = ("package-lock.yml",)


def demo_project_dir(directory: Path | None = None, project_dir: Path | None = None) -> Path:
    """The demo project's folder for `dwml demo generate|run`, written first where it is not there.

    `directory` (`--dir`) is where the user wants the demo; `project_dir` (`--project-dir` or
    DBT_PROJECT_DIR) an existing demo project, or a dwml checkout; with neither, the working folder
    decides: a dwml checkout (or a folder inside one) means its demo/, a folder inside the demo
    project means that project, and a folder with no dbt project gets the demo written into it.
    """
    project_dir = project_dir or (Path(os.environ["DBT_PROJECT_DIR"]) if os.environ.get("DBT_PROJECT_DIR") else None)
    if directory is not None:
        return _existing_or_written(Path(directory).expanduser().resolve(), explicit=True)
    if project_dir is not None:
        path = Path(project_dir).expanduser().resolve()
        if not (path / "dbt_project.yml").is_file():
            raise ConfigError(f"No dbt_project.yml in the project directory {str(path)!r}.",
                              hint="pass --project-dir with the demo project's folder, or --dir with an empty "
                                   "folder to write the demo into.")
        return _existing_or_written(path, explicit=True)
    found = find_project_dir(Path.cwd())
    return _existing_or_written(found or Path.cwd().resolve(), explicit=False)


def _existing_or_written(folder: Path, explicit: bool) -> Path:
    name = dbt_project_name(folder) if (folder / "dbt_project.yml").is_file() else None
    if name == DEMO_PROJECT_NAME:
        return folder
    if name is not None and is_dbt_package(folder) and dbt_project_name(folder / "demo") == DEMO_PROJECT_NAME:
        return folder / "demo"  # a dwml checkout: its demo project, in place
    if name is not None:
        where = "--dir" if explicit else "the working folder"
        raise ConfigError(f"{str(folder)!r} ({where}) holds the dbt project {name!r}; the demo is a dbt project of its "
                          "own and is not written into another one.",
                          hint="run `dwml demo run --dir <an empty folder>` (or run it in an empty folder).")
    write_demo_project(folder)
    return folder


def write_demo_project(folder: Path) -> list[Path]:
    """Copy the demo project into `folder`, its packages.yml pointing at the installed dwml dbt
    package; returns the files written. Refuses, writing nothing, if any of them exists already."""
    source = demo_source_dir()
    files = [p for p in sorted(source.rglob("*")) if _is_project_file(p.relative_to(source))]
    existing = [str(p.relative_to(source)) for p in files if (folder / p.relative_to(source)).exists()]
    if existing:
        raise ConfigError(f"Cannot write the demo project into {str(folder)!r}: {', '.join(existing[:5])} "
                          f"{'is' if len(existing) == 1 else 'are'} already there.",
                          hint="use an empty folder (`dwml demo run --dir <folder>`); dwml never overwrites a file "
                               "it did not write.")
    written = []
    for path in files:
        target = folder / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text()
        if path.relative_to(source) == Path("packages.yml"):
            text = packages_yml(source.parent)
        target.write_text(text)
        written.append(target)
    return written


def packages_yml(dbt_package: Path) -> str:
    return yaml.safe_dump({"packages": [{"local": str(dbt_package)}]}, sort_keys=False)


def _is_project_file(relative: Path) -> bool:
    return (relative.suffix in PROJECT_SUFFIXES and relative.parts[0] not in GENERATED_DIRS
            and relative.name not in GENERATED_FILES and not relative.name.startswith("."))


def packages_installed(project_dir: Path) -> bool:
    """Whether every `local:` package of the project's packages.yml is installed in dbt_packages/
    (all the demo declares: it installs dwml by path)."""
    try:
        declared = (yaml.safe_load((project_dir / "packages.yml").read_text()) or {}).get("packages") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return False
    installed = project_dir / "dbt_packages"
    for package in declared:
        local = package.get("local") if isinstance(package, dict) else None
        if local is None:
            return False  # a hub or git package: let dbt deps decide
        name = dbt_project_name((project_dir / local).resolve())
        if name is None or not (installed / name / "dbt_project.yml").is_file() or \
                (installed / name).resolve() != (project_dir / local).resolve():
            return False
    return True


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run with `path` as the working folder (dbt and the demo's profile resolve relative paths
    from it, so the warehouse file and artifacts land in the demo's folder), then go back."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def project_lock(project_dir: Path) -> Iterator[None]:
    """One process at a time installs the demo's packages (parallel test workers share the folder)."""
    project_dir.mkdir(parents=True, exist_ok=True)
    with open(project_dir / ".dwml-deps.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
