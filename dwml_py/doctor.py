"""`dwml doctor`: check the set-up and say what to fix, one check at a time.

Each check says ok, warn or fail, what it found, and (when not ok) the fix. Later checks that
need an earlier one (the warehouse needs the profile) are skipped when it failed.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dwml_py.errors import DwmlError
from dwml_py.manifest_state import manifest_state
from dwml_py.tables import DWML_SCHEMA, TABLES

OK, WARN, FAIL = "ok", "warn", "fail"

REQUIRED_PACKAGES = {
    "dbt-core": ("1.11", "1.13"),  # as dbt_project.yml's require-dbt-version
    "dbt-duckdb": None,
    "duckdb": None,
    "scikit-learn": None,
    "xgboost": None,
    "pandas": None,
    "pyarrow": None,
    "sqlglot": None,
}


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def check_packages() -> list[Check]:
    checks = []
    for package, bounds in REQUIRED_PACKAGES.items():
        try:
            version = md.version(package)
        except md.PackageNotFoundError:
            checks.append(Check(f"package {package}", FAIL, "not installed", f"pip install {package}"))
            continue
        if bounds and not (_version_tuple(bounds[0]) <= _version_tuple(version) < _version_tuple(bounds[1])):
            checks.append(Check(f"package {package}", FAIL, f"{version} is outside >={bounds[0]},<{bounds[1]}",
                                f"pip install '{package}>={bounds[0]},<{bounds[1]}'"))
        else:
            checks.append(Check(f"package {package}", OK, version))
    return checks


def run_doctor(project_dir=None, profiles_dir=None, target=None) -> dict:
    """All checks; `ok` is False when any check failed."""
    from dwml_py.project import Project

    checks = check_packages()
    try:
        project = Project.locate(project_dir, profiles_dir, target)
        project.config  # parses dbt_project.yml
        checks.append(Check("dbt project", OK, f"{project.name} at {project.project_dir}"))
    except DwmlError as exc:
        checks.append(Check("dbt project", FAIL, exc.message, exc.hint))
        return _summary(checks)

    try:
        profile = project.profile
        checks.append(Check("dbt profile", OK, f"profile {profile.profile_name!r}, target {profile.target_name!r} "
                            f"({profile.adapter_type}) from {profile.profiles_dir / 'profiles.yml'}"))
    except DwmlError as exc:
        checks.append(Check("dbt profile", FAIL, exc.message, exc.hint))
        return _summary(checks)

    checks.append(dbt_package_check(project.project_dir))
    checks.extend(_warehouse_checks(project))
    checks.extend(_parse_checks(project))
    return _summary(checks)


def _parse_checks(project) -> list[Check]:
    """Can dbt parse the project (its packages included), and is target/manifest.json this
    project's? A current manifest is the proof of a parse that succeeded; otherwise `dbt parse`
    runs, writing target/ as the user's own `dbt parse` would (the fix it would be told to run)."""
    from dwml_py.dbt_artifacts import read_json
    from dwml_py.dbt_runner import run_dbt
    from dwml_py.manifest_state import check_project_name

    state = manifest_state(project)
    if state.exists and not state.stale:
        parse = Check("dbt parse", OK, "target/manifest.json is newer than every file dbt parses, packages' included")
    else:
        why = "missing" if not state.exists else f"older than {state.newest_source}"
        try:
            run = run_dbt(project, ["parse"])
            error = None if run.success else run.error or "see logs/dbt.log"
        except DwmlError as exc:
            error = exc.message.split(" could not run: ", 1)[-1]
        if error is not None:
            detail, fix = explain_parse_error(project, error)
            return [Check("dbt parse", FAIL, detail, fix)]
        parse = Check("dbt parse", OK, f"ran `dbt parse` (target/manifest.json was {why})")
    try:
        check_project_name(project, read_json(state.path), state.path)
    except DwmlError as exc:
        return [parse, Check("dbt manifest", FAIL, exc.message, exc.hint)]
    return [parse, Check("dbt manifest", OK, f"{state.path} is current and this project's")]


_PATH = re.compile(r"[\w./-]+\.(?:yml|yaml|sql|csv|py|md)\b")


def explain_parse_error(project, error: str) -> tuple[str, str]:
    """(dbt's parse error on one line with each file it names placed in this project or in an
    installed package, the fix)."""
    from dwml_py.manifest_state import package_roots

    message = " ".join(str(error).split())
    places = []
    for path in dict.fromkeys(_PATH.findall(message)):
        if (project.project_dir / path).is_file():
            places.append(f"{path} is this project's")
        else:
            owner = next((root for root in package_roots(project) if (root / path).is_file()), None)
            if owner is not None:
                places.append(f"{path} is in the package {owner.name!r} ({owner})")
    detail = message + (f" [{'; '.join(places)}]" if places else "")
    in_package = any("package" in p for p in places)
    if in_package and re.search(r"\btwo\b|duplicate|same (resource|name)", message, re.IGNORECASE):
        fix = ("a package declares a resource of the same name as yours (dbt reads a package's yml entries even "
               "when its models are disabled): rename your model, or remove or change that package in packages.yml "
               "and run `dbt deps`")
    else:
        fix = "fix what dbt names, then run `dbt parse` (or `dwml doctor` again)"
    return detail, fix


def _warehouse_checks(project) -> list[Check]:
    from dwml_py.warehouse import SUPPORTED_ADAPTERS, connect

    profile = project.profile
    if profile.adapter_type not in SUPPORTED_ADAPTERS:
        return [Check("warehouse", FAIL, f"adapter {profile.adapter_type!r} is not supported by dwml yet",
                      f"use a target of a supported adapter ({', '.join(SUPPORTED_ADAPTERS)}) with --target")]
    checks = []
    if profile.adapter_type == "duckdb":
        path = str(profile.settings.get("path", ":memory:"))
        if Path(path).stem.lower() == DWML_SCHEMA:
            checks.append(Check("duckdb file name", FAIL,
                                f"the DuckDB file {path!r} is named like dwml's schema {DWML_SCHEMA!r}, which makes "
                                f"`{DWML_SCHEMA}.<table>` ambiguous in DuckDB",
                                "give the file another name in profiles.yml (e.g. warehouse.duckdb)"))
    try:
        with connect(project) as warehouse:
            warehouse.fetch_scalar("select 1")
            checks.append(Check("warehouse", OK, f"connected ({profile.adapter_type}, "
                                f"{profile.redacted().get('path') or profile.redacted().get('host', '')})"))
            missing = []
            outdated = []
            for spec in TABLES.values():
                have = {c.lower() for c, _ in warehouse.columns(DWML_SCHEMA, spec.name)}
                if not have:
                    missing.append(spec.name)
                elif set(spec.column_names()) - have:
                    outdated.append(spec.name)
    except DwmlError as exc:
        checks.append(Check("warehouse", FAIL, exc.message, exc.hint))
        return checks
    if missing or outdated:
        detail = "; ".join(part for part in (f"missing: {', '.join(missing)}" if missing else "",
                                             f"lacking new columns: {', '.join(outdated)}" if outdated else "") if part)
        checks.append(Check("dwml tables", WARN, detail,
                            "run `dwml demo run`, or `dbt run --select tag:dwml`: both create and migrate them"))
    else:
        checks.append(Check("dwml tables", OK, f"all {len(TABLES)} tables in schema {DWML_SCHEMA!r}"))
    return checks


def dbt_package_check(project_dir: Path) -> Check:
    """Whether the project installed dwml's dbt package, and the same version as this companion:
    the macros and the tables' definitions of one version must meet the Python side of the same."""
    from dwml_py.versions import __version__
    from dwml_py.package_files import DISTRIBUTION, dbt_package_dir
    from dwml_py.project_packages import dbt_package_version, declared_dwml, installed_dwml, release_tag

    name = "dwml dbt package"
    try:
        declared = declared_dwml(project_dir)
    except DwmlError as exc:
        return Check(name, WARN, exc.message, exc.hint)
    installed = installed_dwml(project_dir)
    if installed is None:
        if declared is None:
            return Check(name, WARN, "the project does not install dwml's dbt package (macros, generic tests, the "
                         "models over dwml's tables)", "run `dwml init` (adds it to packages.yml and runs dbt deps)")
        return Check(name, WARN, f"{declared.file.name} lists it ({declared.describe()}) but it is not installed",
                     "run `dbt deps`")
    where = os.path.relpath(installed, project_dir)
    version = dbt_package_version(installed)
    if version == __version__:
        return Check(name, OK, f"{version} in {where}, the companion's version")
    if declared is not None and declared.source == "git":
        fix = f"set `revision: {release_tag()}` for dwml in {declared.file.name} and run `dbt deps`"
    elif declared is not None and declared.source == "local":
        fix = (f"point `local:` for dwml in {declared.file.name} at {dbt_package_dir()} (the installed companion's "
               "package) and run `dbt deps`")
    else:
        fix = "run `dbt deps`"
    return Check(name, FAIL, f"the project installed dwml's dbt package {version} ({where}"
                 + (f", from {declared.describe()}" if declared else "") + f"), but the companion is {__version__}",
                 f"{fix}; or install the companion of that version: pip install \"{DISTRIBUTION}=={version}\"")


def _summary(checks: list[Check]) -> dict:
    return {"ok": not any(c.status == FAIL for c in checks), "checks": [asdict(c) for c in checks]}
