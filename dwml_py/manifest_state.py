"""Is target/manifest.json there, is it newer than every file dbt parsed into it, and is it this
project's? `read_manifest` is the one reader of a project's manifest that checks all three.

dbt parses the root project's model, macro, seed, snapshot, test and analysis folders, and those
of every package installed in dbt_packages/ (a local package is a link there): a change to any of
them, to dbt_project.yml or to packages.yml leaves the manifest stale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

SOURCE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".py", ".md"}
PATH_DEFAULTS = {"model-paths": ["models"], "macro-paths": ["macros"], "seed-paths": ["seeds"],
                 "snapshot-paths": ["snapshots"], "test-paths": ["tests"], "analysis-paths": ["analyses"]}
PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml")


@dataclass
class ManifestState:
    path: Path
    exists: bool
    stale: bool
    newest_source: Path | None


def _source_dirs(root: Path, config: dict) -> list[Path]:
    dirs = []
    for key, default in PATH_DEFAULTS.items():
        for rel in config.get(key, default) or []:
            dirs.append(root / rel)
    return dirs


def package_roots(project) -> list[Path]:
    """The folders of the packages `dbt deps` installed (resolved: local packages are links)."""
    installed = project.project_dir / str(project.config.get("packages-install-path", "dbt_packages"))
    if not installed.is_dir():
        return []
    return [entry.resolve() for entry in sorted(installed.iterdir())
            if entry.is_dir() and (entry / "dbt_project.yml").is_file()]


def _newest_below(directory: Path, skip: set[Path]) -> tuple[float, Path | None]:
    newest, found = 0.0, None
    for folder, subfolders, files in os.walk(directory):
        # a package's own dbt_packages/ or target/ is not parsed; a nested project is walked on its own
        subfolders[:] = [d for d in subfolders if Path(folder, d) not in skip and not d.startswith(".")]
        for name in files:
            if os.path.splitext(name)[1] in SOURCE_SUFFIXES:
                path = os.path.join(folder, name)
                try:
                    mtime = os.stat(path).st_mtime
                except OSError:  # removed while we walked
                    continue
                if mtime > newest:
                    newest, found = mtime, Path(path)
    return newest, found


def newest_project_file(project) -> Path | None:
    """The most recently changed file that dbt parses: the root's and every installed package's."""
    candidates: list[tuple[float, Path]] = []
    roots = [(project.project_dir, project.config)]
    for package in package_roots(project):
        try:
            config = yaml.safe_load((package / "dbt_project.yml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            config = {}
        roots.append((package, config if isinstance(config, dict) else {}))
    for root, config in roots:
        for name in PROJECT_FILES:
            path = root / name
            if path.is_file():
                candidates.append((path.stat().st_mtime, path))
        skip = {root / "dbt_packages", root / "target"}
        for directory in _source_dirs(root, config):
            if directory.is_dir():
                mtime, path = _newest_below(directory, skip)
                if path is not None:
                    candidates.append((mtime, path))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def manifest_state(project) -> ManifestState:
    path = project.manifest_path
    newest = newest_project_file(project)
    if not path.is_file():
        return ManifestState(path, exists=False, stale=True, newest_source=newest)
    stale = newest is not None and newest.stat().st_mtime > path.stat().st_mtime
    return ManifestState(path, exists=True, stale=stale, newest_source=newest)


def check_project_name(project, manifest: dict, path: Path) -> None:
    """Refuse a manifest dbt wrote for another project (a target folder shared through
    DBT_TARGET_PATH, or copied with the project): its models are not this project's."""
    from dwml_py.errors import ConfigError

    written_for = (manifest.get("metadata") or {}).get("project_name")
    if written_for and written_for != project.name:
        via = os.environ.get("DBT_TARGET_PATH")
        raise ConfigError(
            f"{str(path)!r} was written for the dbt project {written_for!r}, not for {project.name!r} "
            f"at {str(project.project_dir)!r}.",
            hint=(f"DBT_TARGET_PATH={via} points dbt and dwml at another project's target folder: unset it or give "
                  f"this project its own, then run `dbt parse` in {str(project.project_dir)!r}." if via else
                  f"run `dbt parse` in {str(project.project_dir)!r} to write this project's manifest."))


def read_manifest(project, state: ManifestState | None = None) -> dict:
    """The project's target/manifest.json as a dict: refused when missing, stale or another
    project's, each with the command that fixes it."""
    from dwml_py.dbt_artifacts import read_artifact
    from dwml_py.errors import ConfigError, NotFoundError

    state = state or manifest_state(project)
    if not state.exists:
        raise NotFoundError(f"No dbt manifest at {str(state.path)!r}.",
                            hint=f"run `dbt parse` in {str(project.project_dir)!r}, or pass --refresh.")
    if state.stale:
        raise ConfigError(f"The dbt manifest {str(state.path)!r} is older than {str(state.newest_source)!r}, "
                          "so it may not describe the project as it is.",
                          hint="run `dbt parse` in the project, or pass --refresh.")
    manifest = read_artifact(state.path, "manifest")
    check_project_name(project, manifest, state.path)
    return manifest
