"""dwml's dbt package as a dbt project sees it: the entry of packages.yml that declares it, the
copy `dbt deps` installed, and the entry `dwml init` appends.

dbt reads a project's packages from packages.yml, or from dependencies.yml when that holds
`packages:` instead. dwml is found there by what an entry points at: a `local:` folder whose
dbt_project.yml is named `dwml`, a git repository whose name contains dwml, or a package named dwml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dwml_py.versions import __version__
from dwml_py.errors import ConfigError
from dwml_py.package_files import DBT_PACKAGE_NAME, dbt_project_name

PACKAGE_FILES = ("packages.yml", "dependencies.yml")
# Release tags are v<version>: a git entry pins the tag of the installed companion.
TAG_PREFIX = "v"


def release_tag(version: str = __version__) -> str:
    return f"{TAG_PREFIX}{version}"


@dataclass
class Declared:
    """dwml's entry in a project's packages file."""

    file: Path
    entry: dict

    @property
    def source(self) -> str:
        """How it is installed: local, git, or the key the entry uses (package, tarball, private)."""
        return next((k for k in ("local", "git", "package", "tarball", "private") if k in self.entry), "unknown")

    def describe(self) -> str:
        if self.source == "git":
            revision = self.entry.get("revision")
            return f"git: {self.entry['git']}" + (f", revision {revision}" if revision else "")
        return f"{self.source}: {self.entry.get(self.source)}"


def packages_file(project_dir: Path) -> Path:
    """The file dbt reads the project's packages from: packages.yml, else a dependencies.yml that has
    `packages:`, else packages.yml (to be written)."""
    packages = project_dir / "packages.yml"
    dependencies = project_dir / "dependencies.yml"
    if not packages.is_file() and dependencies.is_file() and "packages" in (_load(dependencies) or {}):
        return dependencies
    return packages


def declared_entries(project_dir: Path) -> tuple[Path, list]:
    """(the packages file, its `packages:` list); the list is empty when the file does not exist."""
    path = packages_file(project_dir)
    if not path.is_file():
        return path, []
    data = _load(path)
    if data is None:
        return path, []
    if not isinstance(data, dict) or not isinstance(data.get("packages") or [], list):
        raise ConfigError(f"{path} does not hold `packages:` as a list (found {type(data).__name__}).",
                          hint="see dbt's packages.yml docs: `packages:` followed by `- local: ...` / `- git: ...` "
                               "entries.")
    return path, list(data.get("packages") or [])


def declared_dwml(project_dir: Path) -> Declared | None:
    """dwml's entry in the project's packages file, or None when it lists no dwml."""
    path, entries = declared_entries(project_dir)
    for entry in entries:
        if isinstance(entry, dict) and _is_dwml(entry, project_dir):
            return Declared(path, entry)
    return None


def _is_dwml(entry: dict, project_dir: Path) -> bool:
    if "local" in entry:
        return dbt_project_name((project_dir / str(entry["local"])).expanduser()) == DBT_PACKAGE_NAME
    if "git" in entry:
        repository = str(entry["git"]).rstrip("/").removesuffix(".git").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        return DBT_PACKAGE_NAME in repository.lower()
    name = str(entry.get("package") or entry.get("name") or entry.get("private") or "")
    return name.rsplit("/", 1)[-1].lower() == DBT_PACKAGE_NAME


def installed_dwml(project_dir: Path) -> Path | None:
    """The folder `dbt deps` installed dwml's dbt package into (under packages-install-path), or None."""
    try:
        config = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    install_path = project_dir / str(config.get("packages-install-path", "dbt_packages"))
    if not install_path.is_dir():
        return None
    for folder in sorted(install_path.iterdir()):
        if folder.is_dir() and dbt_project_name(folder) == DBT_PACKAGE_NAME:
            return folder
    return None


def dbt_package_version(folder: Path) -> str | None:
    """The `version:` of the dbt package in `folder`, as a string."""
    try:
        config = yaml.safe_load((folder / "dbt_project.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    version = config.get("version") if isinstance(config, dict) else None
    return str(version) if version is not None else None


def dwml_entry(local: Path | None = None, git: str | None = None, revision: str | None = None,
               subdirectory: str | None = None) -> dict:
    """The packages.yml entry for dwml: a local path, or a git URL pinned to a revision."""
    if git:
        entry = {"git": git, "revision": revision or release_tag()}
        if subdirectory:
            entry["subdirectory"] = subdirectory
        return entry
    return {"local": str(local)}


def append_entry(project_dir: Path, entry: dict, note: str) -> Path:
    """Add `entry` to the project's packages file, after what is there (nothing in it is rewritten);
    a missing file is written. Returns the file."""
    path = packages_file(project_dir)
    item = _entry_lines(entry, note)
    text = path.read_text() if path.is_file() else ""
    indent = _list_indent(path, text)
    addition = "".join(f"{' ' * indent}{line}\n" for line in item)
    if indent < 0:  # no YAML in the file yet (missing, empty or only comments)
        addition = "packages:\n" + "".join(f"  {line}\n" for line in item)
    path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + addition)
    return path


def check_appendable(project_dir: Path) -> None:
    """Raise the ConfigError `append_entry` would, without writing anything."""
    path = packages_file(project_dir)
    _list_indent(path, path.read_text() if path.is_file() else "")


def _entry_lines(entry: dict, note: str) -> list[str]:
    dumped = yaml.safe_dump([entry], sort_keys=False, default_flow_style=False).splitlines()
    return [f"# {note}", *dumped]


def _list_indent(path: Path, text: str) -> int:
    """The column of the `-` of `packages:` items, when a new item can go at the end of the file
    (`packages:` is its last key, and its list is in block style or empty); -1 when the file holds
    no YAML yet."""
    refusal = ConfigError(f"dwml cannot add its entry to {path}: `packages:` is not the last block-style list "
                          "in it.", hint="add the entry that `dwml init` prints by hand, then run `dbt deps`.")
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", hint="fix it (dbt deps shows the same problem).") from exc
    if root is None:
        return -1
    if not isinstance(root, yaml.MappingNode) or root.flow_style or not root.value:
        raise refusal
    key, value = root.value[-1]
    if key.value != "packages":
        raise refusal
    if isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null"):
        return key.start_mark.column + 2  # `packages:` with nothing under it yet
    if not isinstance(value, yaml.SequenceNode) or value.flow_style or not value.value:
        raise refusal
    return value.start_mark.column  # a block sequence starts at its first "-"


def _load(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", hint="fix it (dbt deps shows the same problem).") from exc
