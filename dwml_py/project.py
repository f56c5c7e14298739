"""Where the dbt project is, which profile and target it uses: what every command needs.

The same flags as dbt (`--project-dir`, `--profiles-dir`, `--target`) with the same
environment variables (DBT_PROJECT_DIR, DBT_PROFILES_DIR, DBT_TARGET), so dwml always talks
to the warehouse dbt talks to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from dwml_py.errors import ConfigError


def find_project_dir(start: Path) -> Path | None:
    """The nearest directory at or above `start` that holds a dbt_project.yml."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "dbt_project.yml").is_file():
            return directory
    return None


@dataclass
class Project:
    """A dbt project on disk plus the profile/target choices made for this invocation."""

    project_dir: Path
    profiles_dir_option: Path | None = None
    target_option: str | None = None
    _profile: object = field(default=None, repr=False)

    @classmethod
    def locate(
        cls,
        project_dir: str | Path | None = None,
        profiles_dir: str | Path | None = None,
        target: str | None = None,
    ) -> "Project":
        """Resolve the project from the flag, DBT_PROJECT_DIR, or the working directory upwards."""
        given = project_dir or os.environ.get("DBT_PROJECT_DIR")
        if given:
            path = Path(given).expanduser()
            if not (path / "dbt_project.yml").is_file():
                raise ConfigError(
                    f"No dbt_project.yml in the project directory {str(path)!r}.",
                    hint="pass --project-dir with the folder that holds dbt_project.yml "
                    "(or set DBT_PROJECT_DIR).",
                )
            found = path.resolve()
        else:
            found = find_project_dir(Path.cwd())
            if found is None:
                raise ConfigError(
                    f"No dbt_project.yml in {str(Path.cwd())!r} or any folder above it.",
                    hint="run dwml inside a dbt project, or pass --project-dir "
                    "(`dwml demo run` in an empty folder writes and runs the demo project).",
                )
        _refuse_dwml_package(found)
        target = target or os.environ.get("DBT_TARGET") or None
        profiles = Path(profiles_dir).expanduser().resolve() if profiles_dir else None
        return cls(project_dir=found, profiles_dir_option=profiles, target_option=target)

    @cached_property
    def config(self) -> dict:
        """dbt_project.yml as a dict."""
        path = self.project_dir / "dbt_project.yml"
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{path} is not valid YAML: {exc}",
                hint="fix the YAML syntax (dbt parse shows the same problem).",
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} does not hold a mapping.", hint="see dbt's dbt_project.yml docs.")
        return data

    @property
    def name(self) -> str:
        return str(self.config.get("name", self.project_dir.name))

    @property
    def profile_name(self) -> str:
        name = self.config.get("profile")
        if not name:
            raise ConfigError(
                f"{self.project_dir / 'dbt_project.yml'} names no `profile:`.",
                hint="add `profile: <name of a profile in profiles.yml>` to dbt_project.yml.",
            )
        return str(name)

    @property
    def target_dir(self) -> Path:
        """dbt's target folder: DBT_TARGET_PATH wins over dbt_project.yml, as in dbt."""
        configured = os.environ.get("DBT_TARGET_PATH") or str(self.config.get("target-path", "target"))
        return self.project_dir / configured  # an absolute path replaces project_dir

    @property
    def manifest_path(self) -> Path:
        return self.target_dir / "manifest.json"

    @property
    def gate_target_dir(self) -> Path:
        """Where the gates' own dbt runs write their artifacts, so target/manifest.json (with the
        compiled SQL of every model, from the user's last full dbt command) is left as it was."""
        return self.target_dir / "dwml_gates"

    @property
    def compile_target_dir(self) -> Path:
        """Where dwml's own `dbt compile` of the models lineage needs writes its artifacts (apart
        from the gates' `dbt test` results, which the next gate may reuse)."""
        return self.target_dir / "dwml_compile"

    @property
    def profile(self):
        """The resolved connection settings (see dwml_py.profiles)."""
        if self._profile is None:
            from dwml_py.profiles import resolve_profile

            self._profile = resolve_profile(self)
        return self._profile

    def dbt_flags(self) -> list[str]:
        """The flags that make a dbt command use exactly this project, profile and target."""
        flags = ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.profile.profiles_dir)]
        flags += ["--target", self.profile.target_name]
        return flags


def _refuse_dwml_package(directory: Path) -> None:
    """dwml's own dbt package (a checkout's root) is installed into projects, never run as one."""
    from dwml_py.package_files import is_dbt_package

    if is_dbt_package(directory):
        demo = directory / "demo"
        raise ConfigError(
            f"{str(directory)!r} is dwml's own dbt package, which projects install; it is not a project to run dwml in.",
            hint=(f"the demo project is {str(demo)!r}: `cd {demo}` (after `dwml demo run`), or pass --project-dir "
                  "with your own project." if demo.is_dir() else "pass --project-dir with your own dbt project."))


# What a copy of a dbt project needs (not its warehouse, target/, logs or Python code): these
# files, and the folders dbt_project.yml names (dbt's defaults where it names none).
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "packages.yml")
PATH_SETTINGS = {"model-paths": ["models"], "macro-paths": ["macros"], "seed-paths": ["seeds"],
                 "snapshot-paths": ["snapshots"], "analysis-paths": ["analyses"], "test-paths": ["tests"]}


def copy_project(source: Path, destination: Path) -> Path:
    """Copy the dbt project at `source` (files and folders above) to `destination`, which must
    not exist yet: a scratch project that generated files and hand edits cannot reach. Packages
    installed from a local path stay installed: the copy's packages.yml and dbt_packages/ point at
    the same folders, so it needs no `dbt deps`."""
    import shutil

    source = source.resolve()
    destination.mkdir(parents=True)
    for name in PROJECT_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, destination / name)
    config = yaml.safe_load((source / "dbt_project.yml").read_text()) or {}
    for setting, default in PATH_SETTINGS.items():
        for name in config.get(setting) or default:
            if (source / name).is_dir():
                shutil.copytree(source / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
    _point_local_packages_at(source, destination)
    return destination


def _point_local_packages_at(source: Path, destination: Path) -> None:
    """Make relative `local:` packages of the copy absolute, and link its dbt_packages/ entries to
    the source's installed packages."""
    packages_file = destination / "packages.yml"
    if packages_file.is_file():
        data = yaml.safe_load(packages_file.read_text()) or {}
        for package in data.get("packages") or []:
            if isinstance(package, dict) and "local" in package and not Path(str(package["local"])).is_absolute():
                package["local"] = str((source / str(package["local"])).resolve())
        packages_file.write_text(yaml.safe_dump(data, sort_keys=False))
    installed = source / "dbt_packages"
    if installed.is_dir():
        (destination / "dbt_packages").mkdir()
        for entry in installed.iterdir():
            (destination / "dbt_packages" / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
