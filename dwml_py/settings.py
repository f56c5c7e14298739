"""Where dwml's settings live in a dbt project: `vars: dwml: <section>:` of dbt_project.yml for the
project, `meta: dwml: <section>:` of a model for that model. Each section's own module checks
what the section holds; this is the one place that finds it.

>>> project_var({"vars": {"dwml": {"cost": {"max_seconds": 60}}}}, "cost")
{'max_seconds': 60}
>>> project_var({"vars": {"dwml": "oops"}}, "cost") is None  # a `dwml:` that is no mapping holds no section
True
>>> meta_section({"dwml": {"quality": {"min_rows": 10}}}, "quality")
{'min_rows': 10}
"""

from __future__ import annotations

from typing import Any


def _section(settings: Any, section: str) -> Any:
    return settings.get(section) if isinstance(settings, dict) else None


def project_var(project_config: dict | None, section: str) -> Any:
    """`vars: dwml: <section>:` of a parsed dbt_project.yml, or None when unset."""
    return _section(((project_config or {}).get("vars") or {}).get("dwml"), section)


def meta_section(meta: dict | None, section: str) -> Any:
    """`meta: dwml: <section>:` of a model's (merged) meta, or None when unset."""
    return _section((meta or {}).get("dwml"), section)
