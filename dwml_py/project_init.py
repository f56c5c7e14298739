"""`dwml init`: set up dwml in an existing dbt project, adding only what it needs.

1. packages.yml (or the dependencies.yml that holds the packages) gets dwml's dbt package: a
   `local:` path to the package this companion installed, or a git URL pinned to the revision of
   the installed version (`--git`);
2. .gitignore gets what dwml writes and no one commits: `artifacts/` (model artifacts) and
   `target/dwml_reports/` (model cards);
3. the model named with `--model` gets a commented meta.dwml example in its yml;
4. `dbt deps` installs the package, and `dwml doctor` checks the whole set-up.

Every change is an addition: no line already in a file is changed or removed, what is already
there is left as it is (a second run changes nothing), and each change is reported.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dwml_py.versions import __version__
from dwml_py.errors import DwmlError, InputError
from dwml_py.meta_example import find_model, write_example
from dwml_py.package_files import DISTRIBUTION, dbt_package_dir
from dwml_py.progress import SILENT, Progress
from dwml_py.project import PATH_SETTINGS, Project
from dwml_py.project_packages import append_entry, check_appendable, declared_dwml, dwml_entry

# What dwml writes inside a project that is not source: model artifacts (DWML_ARTIFACT_DIR's
# default) and the HTML model cards of `dwml report`.
GITIGNORE_LINES = ("artifacts/", "target/dwml_reports/")


@dataclass
class Change:
    file: str
    action: str  # created, appended, inserted or unchanged
    detail: str


def init_project(project: Project, model: str | None = None, git: str | None = None, revision: str | None = None,
                 subdirectory: str | None = None, progress: Progress = SILENT) -> dict:
    """Add dwml to `project` (see the module's docstring); the result lists each file's change,
    the `dbt deps` outcome and `dwml doctor`'s report."""
    if (revision or subdirectory) and not git:
        raise InputError("--revision and --subdirectory go with --git.",
                         hint="pass --git URL (the repository dwml's dbt package is installed from), or leave "
                              "them out to install the package by local path.")
    progress = progress or SILENT
    project_dir = project.project_dir
    # Everything is checked before the first write: a refused init changes nothing.
    found = find_model(project_dir, _model_paths(project), model) if model else None
    entry = dwml_entry(local=dbt_package_dir(), git=git, revision=revision, subdirectory=subdirectory)
    if declared_dwml(project_dir) is None:
        check_appendable(project_dir)

    changes = [_add_package(project_dir, entry), _extend_gitignore(project_dir)]
    if found is not None:
        path, action, detail = write_example(found)
        changes.append(Change(_shown(path, project_dir), action, detail))
    deps = _dbt_deps(project, progress)

    from dwml_py.doctor import run_doctor

    doctor = run_doctor(project_dir, project.profiles_dir_option, project.target_option)
    return {"project_dir": str(project_dir), "version": __version__, "changes": [asdict(c) for c in changes],
            "deps": deps, "doctor": doctor, "ok": bool(deps.get("ok")) and doctor["ok"]}


def _add_package(project_dir: Path, entry: dict) -> Change:
    declared = declared_dwml(project_dir)
    if declared is not None:
        return Change(_shown(declared.file, project_dir), "unchanged", f"already lists dwml ({declared.describe()})")
    existed = (project_dir / "packages.yml").is_file() or (project_dir / "dependencies.yml").is_file()
    how = (f"pinned to {entry['revision']}, the installed {DISTRIBUTION} {__version__}" if "git" in entry
           else f"the package data of the installed {DISTRIBUTION} {__version__}")
    path = append_entry(project_dir, entry, f"dwml's dbt package: {how} (added by `dwml init`)")
    shown = ", ".join(f"{k}: {v}" for k, v in entry.items())
    return Change(_shown(path, project_dir), "appended" if existed else "created",
                  f"dwml's dbt package ({shown})")


def _extend_gitignore(project_dir: Path) -> Change:
    path = project_dir / ".gitignore"
    text = path.read_text() if path.is_file() else ""
    present = {line.strip().lstrip("/") for line in text.splitlines()}
    missing = [line for line in GITIGNORE_LINES if not _ignored(line, present)]
    if not missing:
        return Change(".gitignore", "unchanged", f"already ignores {', '.join(GITIGNORE_LINES)}")
    addition = "# written by dwml (dwml init)\n" + "".join(f"{line}\n" for line in missing)
    path.write_text(text + ("\n" if text and not text.endswith("\n") else "") + addition)
    return Change(".gitignore", "appended" if text else "created", f"ignores {', '.join(missing)}")


def _ignored(line: str, present: set[str]) -> bool:
    """Whether `line` (a folder) or a folder above it is a line of .gitignore already."""
    parts = line.rstrip("/").split("/")
    return any(candidate in present or candidate + "/" in present
               for candidate in ("/".join(parts[:i]) for i in range(1, len(parts) + 1)))


def _dbt_deps(project: Project, progress: Progress) -> dict:
    from dwml_py.dbt_runner import run_dbt

    try:
        with progress.step("Installing the project's dbt packages (dbt deps)") as step:
            run = run_dbt(project, ["deps"])
            step.summary = "installed" if run.success else "failed"
    except DwmlError as exc:  # no profile yet, dbt missing: the doctor below says what to fix
        return {"ran": False, "ok": False, "error": exc.message, "fix": exc.hint}
    if not run.success:
        return {"ran": True, "ok": False, "error": "`dbt deps` failed",
                "fix": f"run `dbt deps --project-dir {project.project_dir}` to see why"}
    return {"ran": True, "ok": True, "seconds": round(run.seconds, 2)}


def _model_paths(project: Project) -> list[str]:
    return [str(p) for p in project.config.get("model-paths") or PATH_SETTINGS["model-paths"]]


def _shown(path: Path, project_dir: Path) -> str:
    return os.path.relpath(path, project_dir)
