"""Read the connection from the dbt profile, as dbt would.

We render profiles.yml ourselves (Jinja with `env_var()` and dbt's `as_*` filters) instead of
importing dbt-core internals, which change between releases. The search order for
profiles.yml is dbt's, with the project directory added because that is where dwml's demo
keeps its profile: --profiles-dir, DBT_PROFILES_DIR, the working directory, the project
directory, ~/.dbt.

The secret values of the resolved target (at any depth: see dwml_py.redaction) are registered
as soon as it is rendered, so nothing dwml prints, logs or stores afterwards can carry them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.nativetypes import NativeEnvironment

from dwml_py import redaction
from dwml_py.errors import ProfileError, did_you_mean


@dataclass
class ConnectionProfile:
    profile_name: str
    target_name: str
    adapter_type: str
    settings: dict[str, Any]
    profiles_dir: Path
    searched: list[str] = field(default_factory=list)

    def redacted(self) -> dict[str, Any]:
        """The settings with secrets masked at any depth: safe to show or store."""
        return redaction.masked(self.settings)


class _MissingEnvVar(Exception):
    def __init__(self, name: str):
        self.name = name


def _env_var(name: str, default: Any = None) -> Any:
    if name in os.environ:
        value = os.environ[name]
        if name.startswith(redaction.SECRET_ENV_PREFIX):  # dbt's convention: secret wherever it is used
            redaction.register([value])
        return value
    if default is not None:
        return default
    raise _MissingEnvVar(name)


def _as_number(value: Any) -> int | float:
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _as_bool(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _environment() -> NativeEnvironment:
    env = NativeEnvironment(undefined=StrictUndefined)
    env.globals["env_var"] = _env_var
    env.filters.update(as_number=_as_number, as_bool=_as_bool, as_text=str, as_native=lambda v: v)
    return env


def _render(value: Any, env: NativeEnvironment) -> Any:
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        rendered = env.from_string(value).render()
        # dbt keeps rendered values as text unless an as_* filter asked otherwise.
        return rendered if ("as_number" in value or "as_bool" in value or "as_native" in value) else str(rendered)
    if isinstance(value, dict):
        return {k: _render(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, env) for v in value]
    return value


def profile_search_path(project) -> list[Path]:
    """The folders searched for profiles.yml, in order."""
    if project.profiles_dir_option is not None:
        return [project.profiles_dir_option]
    if os.environ.get("DBT_PROFILES_DIR"):
        return [Path(os.environ["DBT_PROFILES_DIR"]).expanduser().resolve()]
    candidates = [Path.cwd().resolve(), project.project_dir, Path.home() / ".dbt"]
    unique: list[Path] = []
    for c in candidates:
        if c not in unique:
            unique.append(c)
    return unique


def resolve_profile(project) -> ConnectionProfile:
    searched = profile_search_path(project)
    path = next((d / "profiles.yml" for d in searched if (d / "profiles.yml").is_file()), None)
    if path is None:
        places = ", ".join(str(d / "profiles.yml") for d in searched)
        raise ProfileError(
            f"No profiles.yml found; looked in: {places}.",
            hint="pass --profiles-dir with the folder holding profiles.yml, or set DBT_PROFILES_DIR.",
        )
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path} is not valid YAML: {exc}", hint="fix the YAML syntax.") from exc
    name = project.profile_name
    profiles = {k: v for k, v in document.items() if k != "config"} if isinstance(document, dict) else {}
    if name not in profiles:
        raise ProfileError(
            f"Profile {name!r} (named in dbt_project.yml) is not in {path}.",
            hint=f"add a `{name}:` profile to {path}, or change `profile:` in dbt_project.yml; "
            + did_you_mean(name, profiles),
        )
    profile = profiles[name] or {}
    outputs = profile.get("outputs") or {}
    env = _environment()
    try:
        target = project.target_option or _render(profile.get("target"), env)
    except _MissingEnvVar as exc:
        raise _missing_env_error(exc.name, path) from None
    if not target:
        raise ProfileError(f"Profile {name!r} in {path} names no `target:`.",
                           hint="add `target: <output name>` to the profile, or pass --target.")
    if target not in outputs:
        raise ProfileError(
            f"Target {target!r} is not an output of profile {name!r} in {path}.",
            hint="pass --target with one of the profile's outputs; " + did_you_mean(str(target), outputs),
        )
    try:
        settings = _render(dict(outputs[target] or {}), env)
    except _MissingEnvVar as exc:
        raise _missing_env_error(exc.name, path) from None
    except TemplateError as exc:
        raise ProfileError(f"Cannot render target {target!r} of {path}: {exc}",
                           hint="check the Jinja in profiles.yml (dbt debug shows the same).") from exc
    redaction.register(redaction.secret_values(settings))
    adapter_type = settings.get("type")
    if not adapter_type:
        raise ProfileError(f"Target {target!r} in {path} has no `type:`.",
                           hint="add `type: duckdb` (or the adapter you use) to the target.")
    return ConnectionProfile(
        profile_name=name,
        target_name=str(target),
        adapter_type=str(adapter_type),
        settings=settings,
        profiles_dir=path.parent,
        searched=[str(d) for d in searched],
    )


def _missing_env_error(variable: str, path: Path) -> ProfileError:
    return ProfileError(
        f"profiles.yml ({path}) uses env_var({variable!r}), which is not set and has no default.",
        hint=f"export {variable}=... before running dwml (or give env_var a default).",
    )
