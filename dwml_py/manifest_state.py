"""Is target/manifest.json there, and is it newer than the project's files?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOURCE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".py", ".md"}


@dataclass
class ManifestState:
    path: Path
    exists: bool
    stale: bool
    newest_source: Path | None

    @property
    def fix(self) -> str:
        return "run `dbt parse` (or `dbt docs generate` for column types) in the project."


def _source_dirs(project) -> list[Path]:
    cfg = project.config
    keys = ("model-paths", "macro-paths", "seed-paths", "snapshot-paths", "test-paths", "analysis-paths")
    defaults = {"model-paths": ["models"], "macro-paths": ["macros"], "seed-paths": ["seeds"],
                "snapshot-paths": ["snapshots"], "test-paths": ["tests"], "analysis-paths": ["analyses"]}
    dirs = []
    for key in keys:
        for rel in cfg.get(key, defaults[key]) or []:
            dirs.append(project.project_dir / rel)
    return dirs


def newest_project_file(project) -> Path | None:
    candidates = [project.project_dir / "dbt_project.yml"]
    for directory in _source_dirs(project):
        if directory.is_dir():
            candidates.extend(p for p in directory.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
    candidates = [p for p in candidates if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def manifest_state(project) -> ManifestState:
    path = project.manifest_path
    newest = newest_project_file(project)
    if not path.is_file():
        return ManifestState(path, exists=False, stale=True, newest_source=newest)
    stale = newest is not None and newest.stat().st_mtime > path.stat().st_mtime
    return ManifestState(path, exists=True, stale=stale, newest_source=newest)
